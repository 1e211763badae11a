"""SPF merging as text: our terms go into the zone's own `v=spf1` record before its `all`, and
come out again leaving exactly what was there."""

import re

LOOKUP_LIMIT = 10


def is_spf(text: str) -> bool:
    return text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")


def terms(text: str) -> list[str]:
    """The terms after `v=spf1`."""
    return text.split()[1:]


def _mechanism(term: str) -> str:
    return term.lstrip("+-~?").lower()


def lookups(text: str) -> int:
    """DNS-querying terms (RFC 7208 4.6.4): include, a, mx, ptr, exists, redirect."""
    names = ("include", "a", "mx", "ptr", "exists", "redirect")
    return sum(1 for t in terms(text) if re.split(r"[:/=]", _mechanism(t), maxsplit=1)[0] in names)


def _is_tail(term: str) -> bool:
    """Where our terms go before: the `all` mechanism or a trailing modifier."""
    mech = _mechanism(term)
    return mech == "all" or mech.startswith(("redirect=", "exp="))


def our_terms(value: str) -> list[str]:
    """The mechanisms of a record we generate (`v=spf1 ip4:... ~all`), without its `all`."""
    return [t for t in terms(value) if not _is_tail(t)]


def merge(existing: str, add: list[str]) -> tuple[str, list[str]]:
    """`existing` with each of `add` that it lacks inserted before its `all` (or appended);
    returns the new text and the terms actually added. Spacing elsewhere is kept."""
    have = {t.lower() for t in terms(existing)}
    missing = [t for t in add if t.lower() not in have]
    if not missing:
        return existing, []
    insert = " ".join(missing)
    for match in re.finditer(r"\S+", existing):
        if match.start() == 0:
            continue
        if _is_tail(match.group()):
            at = match.start()
            return existing[:at] + insert + " " + existing[at:], missing
    return existing.rstrip() + " " + insert, missing


def unmerge(current: str, added: list[str]) -> str:
    """`current` without the terms we added (each once), spacing elsewhere kept."""
    remove = [t.lower() for t in added]
    out = current
    for match in reversed(list(re.finditer(r"(\s+)(\S+)", current))):
        if match.group(2).lower() in remove:
            remove.remove(match.group(2).lower())
            out = out[: match.start()] + out[match.end() :]
    return out


def only_all(text: str) -> bool:
    """Nothing left but `v=spf1` and its `all`: a record with no sender in it."""
    return all(_is_tail(t) for t in terms(text))
