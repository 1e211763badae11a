"""Every console page at desktop and phone width, in a real Chromium: none scrolls sideways on
a phone, and each is captured. `make screenshots` writes them to docs/console/ (the README shows
them); otherwise they go to a temporary directory, so CI still renders every page."""

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SHOTS, Served, sign_in

pytestmark = pytest.mark.slow

WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def _seed(page: Any, base: str) -> dict[str, str]:
    """A sandbox workspace with two provisioned inboxes and a webhook, made from the forms."""
    page.goto(f"{base}/console/workspaces/new")
    page.fill("#f-name", "eu-outbound")
    page.click("button:has-text('Create workspace')")
    page.wait_for_url(re.compile(r"/console/workspaces/[0-9a-f-]{36}$"))
    workspace = str(page.url)
    for address in ("sales@penguin.example", "support@penguin.example"):
        page.goto(f"{workspace}/inboxes/new")
        page.fill("#f-email_address", address)
        page.fill("#f-display_name", address.split("@")[0].title())
        page.select_option("#f-vps_provider", "hetzner")
        page.select_option("#f-vps_size", "starter")
        page.click("button:has-text('Create inbox')")
        page.wait_for_selector("text=Shown once")
    credentials = page.url
    page.click("a:has-text('Go to the inbox')")
    expect(page.locator("#inbox-status")).not_to_contain_text("pending setup", timeout=90_000)
    inbox = str(page.url)
    page.goto(f"{base}/console/webhooks")
    page.fill("#f-url", "https://hooks.penguin.example/mail")
    page.fill("#f-description", "alerts to the on-call channel")
    page.fill("#f-event_types", "health.* dns.*")
    page.click("button:has-text('Create webhook')")
    page.wait_for_selector("#wh-secret")
    page.click("a:has-text('Go to the webhook')")
    webhook = str(page.url)
    page.goto(workspace)
    page.click("button:has-text('Preview changes')")
    page.wait_for_url(re.compile(r"/console/operations/"))
    expect(page.locator("#op-status")).to_contain_text("succeeded", timeout=60_000)
    return {
        "overview": f"{base}/console",
        "workspace": workspace,
        "inbox": inbox,
        "dns": f"{inbox}/dns",
        "operations": f"{workspace}/operations",
        "operation": str(page.url),
        "events": f"{base}/console/events",
        "webhooks": f"{base}/console/webhooks",
        "webhook": webhook,
        "new-inbox": f"{workspace}/inboxes/new",
        "credentials": str(credentials),
    }


def test_every_page_at_desktop_and_phone_width(
    served: Served, browser: Any, tmp_path: Path
) -> None:
    out = SHOTS or tmp_path
    out.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=WIDTHS["desktop"])
    page = context.new_page()
    page.set_default_timeout(20_000)
    sign_in(page, served.base, served.key)
    pages = _seed(page, served.base)
    context.close()
    for width, viewport in WIDTHS.items():
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{served.base}/console/sign-in")
        page.screenshot(path=str(out / f"sign-in-{width}.png"), full_page=True)
        sign_in(page, served.base, served.key)
        for name, url in pages.items():
            if name == "credentials":
                continue
            page.goto(url)
            if name == "new-inbox":  # the API's messages beside the fields at fault
                page.fill("#f-email_address", "not an address")
                page.click("button:has-text('Create inbox')")
                page.wait_for_selector("#e-email_address")
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= viewport["width"] + 1, f"{name} scrolls sideways at {width} ({wide}px)"
            page.screenshot(path=str(out / f"{name}-{width}.png"), full_page=True)
        context.close()
    assert len(list(out.glob("*.png"))) == 2 * len(pages)
