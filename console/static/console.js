// PenguinMails console: a little progressive enhancement. Every page works without it except
// live refresh. Loaded from this origin only (the CSP allows no inline script).
(function () {
  "use strict";

  // Copy buttons: shown only when they can work.
  function setupCopy(root) {
    if (!navigator.clipboard) return;
    root.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      button.hidden = false;
      if (button.dataset.bound) return;
      button.dataset.bound = "1";
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copy);
        if (!source) return;
        navigator.clipboard.writeText(source.textContent.trim()).then(function () {
          var label = button.textContent;
          button.textContent = "Copied ✓";
          setTimeout(function () { button.textContent = label; }, 1500);
        });
      });
    });
  }

  // Forms that ask first.
  document.addEventListener("submit", function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // Live refresh: every [data-live] element (with an id) is replaced by the same element of a
  // fresh copy of the page, unless focus is inside it (never yank a form from under a user).
  function refresh() {
    var live = document.querySelectorAll("[data-live][id]");
    if (!live.length) return;
    var done = Array.prototype.every.call(live, function (el) { return el.hasAttribute("data-live-done"); });
    if (done) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
      .then(function (response) {
        if (response.redirected || !response.ok) return null;
        return response.text();
      })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          if (el.contains(document.activeElement) && document.activeElement !== document.body) return;
          var next = fresh.getElementById(el.id);
          if (!next) return;
          if (next.innerHTML !== el.innerHTML) {
            el.innerHTML = next.innerHTML;
            setupCopy(el);
          }
          if (next.hasAttribute("data-live-done")) el.setAttribute("data-live-done", "");
        });
      })
      .catch(function () { /* offline for a moment: try again next tick */ });
  }

  document.addEventListener("DOMContentLoaded", function () {
    setupCopy(document);
    var ms = parseInt(document.body.dataset.refreshMs || "2000", 10);
    if (document.querySelector("[data-live][id]")) {
      var note = document.querySelector("[data-live-note]");
      if (note) note.hidden = false;
      setInterval(refresh, Math.max(ms, 250));
    }
  });
})();
