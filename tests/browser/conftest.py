"""Browser tests: the console served by `penguinmails serve` (API, scheduler and workers in one
process, on the test database), driven by a real headless Chromium through Playwright's Python
API. Debian's `chromium` is used as is (`PENGUINMAILS_CHROMIUM`, default /usr/bin/chromium);
Playwright's own browser download is never needed. Without it the tests skip, unless
`PENGUINMAILS_REQUIRE_CHROMIUM` is set (CI), where a missing browser fails them."""

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.support.environment import TEST_SECRET_KEY, child_env
from tests.support.serving import create_tenant, serving

CHROMIUM = (
    os.environ.get("PENGUINMAILS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)


def _chromium_or_skip() -> str:
    if os.path.exists(CHROMIUM):
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            if os.environ.get("PENGUINMAILS_REQUIRE_CHROMIUM"):
                raise
            pytest.skip("playwright is not installed (pip install playwright)")
        return CHROMIUM
    message = f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("PENGUINMAILS_REQUIRE_CHROMIUM"):
        pytest.fail(message + "; PENGUINMAILS_REQUIRE_CHROMIUM is set")
    pytest.skip(message)


@dataclass(frozen=True)
class Served:
    base: str
    env: dict[str, str]
    key: str  # tenant "Acme"
    other_key: str  # tenant "Globex"


@pytest.fixture(scope="module")
def served(
    database_url: str, engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    _chromium_or_skip()
    env = child_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        data_dir=tmp_path_factory.mktemp("console-data"),
        poll_interval_seconds=0.05,
        coalesce_seconds=0.2,
        console_refresh_seconds=0.5,
        # DNS sweeps would query the outside world for example domains: keep them local.
        dns_nameservers="127.0.0.1:9",
        dns_timeout_seconds=0.2,
        metrics_token="scrape-token",
    )
    try:
        with serving(env) as base:
            yield Served(
                base=base,
                env=env,
                key=create_tenant(env, "Acme")["api_key"],
                other_key=create_tenant(env, "Globex")["api_key"],
            )
    finally:
        from database.base import Base

        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watched:
    """A page, and every request it made and console error it logged."""

    page: Any
    requests: list[str]
    errors: list[str]


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    seen = Watched(page=page, requests=[], errors=[])
    page.on("request", lambda r: seen.requests.append(r.url))
    page.on("console", lambda m: seen.errors.append(m.text) if m.type == "error" else None)
    try:
        yield seen
    finally:
        context.close()


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(f"{base}/console")
    assert "/console/sign-in" in page.url
    page.fill("#f-api_key", key)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"{base}/console")


SHOTS = (
    Path(os.environ.get("PENGUINMAILS_SCREENSHOTS", ""))
    if os.environ.get("PENGUINMAILS_SCREENSHOTS")
    else None
)
