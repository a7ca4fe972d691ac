"""A real browser (Debian's chromium, driven by Playwright) against the live test server.

No browser is downloaded: Playwright drives `/usr/bin/chromium` (or `CHROMIUM_PATH`) through
`executable_path`; `.ci/run` installs the Debian package. Without it these tests skip, saying
so. Every page may load only from the loopback server: a request anywhere else is aborted
and fails the test, so the admin and the API docs are proven to work offline.

Each test saves a screenshot of where it ended (`SCREENSHOT_DIR`, default
`test-artifacts/playwright/`), named `<test>.png` when it passed and `<test>-FAILED.png`
when it failed.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOT_DIR = (
    Path(os.environ.get("SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "test-artifacts")
    / "playwright"
)
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_outcome] = report.failed
    return report


_outcome = pytest.StashKey[bool]()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per module.

    Playwright's sync API runs an event loop in this thread, and Django refuses database
    calls from a thread with a running loop; the test's own ORM calls are synchronous
    code, so the check is lifted for this module only and restored after it.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(
            f"chromium is not installed at {CHROMIUM}: `apt-get install chromium` "
            "(.ci/run does) or set CHROMIUM_PATH"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_api.sync_playwright() as playwright:
            launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
            yield launched
            launched.close()


@pytest.fixture
def page(browser: Any, live_server: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context on the live server; requests off loopback are refused."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    offsite: list[str] = []

    def only_loopback(route: Any) -> None:
        host = urlsplit(route.request.url).hostname
        if host in ("127.0.0.1", "localhost") or route.request.url.startswith("data:"):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort()

    context.route("**/*", only_loopback)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    failed = request.node.stash.get(_outcome, False)
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_") + ("-FAILED" if failed else "")
    tab.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), timeout=30_000)
    context.close()
    assert not offsite, f"pages asked for resources off loopback: {offsite}"
    assert not errors, f"JavaScript errors on the pages: {errors}"


def log_in(page: Any, email: str, password: str) -> None:
    """Sign in through the admin's login form, as a person would."""
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", email)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
