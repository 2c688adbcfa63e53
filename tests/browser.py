"""Browser tests: the app on a live HTTP server, driven by Playwright with Debian's chromium.

Fixtures: ``live_server`` (the ``app`` fixture over real HTTP), ``browser`` (one chromium per
session), ``new_page(phone=False)`` (a page in a fresh context, desktop or 390×844 phone) and
``browser_page`` (one desktop page). A test module pulls them in with

    from tests.browser import (  # noqa: F401 -- fixtures, used by name
        browser_fixture, browser_page_fixture, live_server_fixture, new_page_fixture,
    )

(the functions are named ``*_fixture`` so test parameters never shadow an import). Everything
runs in the test thread except the WSGI server: Playwright's sync API keeps its own event loop
there. Chromium comes from the system (``make browser``); ``playwright install`` is never used.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from tests.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Set ALI_SCREENSHOTS=/some/dir to keep screenshots of the pages the tests visit.
SCREENSHOTS = os.environ.get("ALI_SCREENSHOTS")


class _QuietHandler(WSGIRequestHandler):
    # Set here so werkzeug does not switch the shared WSGIRequestHandler class to HTTP/1.1.
    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Tests assert on pages and rows, not on an access log."""


class LiveServer:
    """One app served over real HTTP on an ephemeral port, in a background thread."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def start(self) -> LiveServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture(name="live_server")
def live_server_fixture(app: Flask) -> Iterator[LiveServer]:
    # Plain http on 127.0.0.1: a Secure cookie would never come back from the browser.
    app.config["SESSION_COOKIE_SECURE"] = False
    server = LiveServer(app).start()
    yield server
    server.stop()


class _Chromium:
    """One Playwright and one chromium for the whole run. Each module that imports
    ``browser_fixture`` defines a session fixture of its own to pytest, and a second sync
    Playwright cannot start while one runs: they share this one, counted."""

    playwright: Playwright | None = None
    browser: Browser | None = None
    users = 0


@pytest.fixture(name="browser", scope="session")
def browser_fixture() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    if _Chromium.browser is None:
        _Chromium.playwright = sync_playwright().start()
        _Chromium.browser = _Chromium.playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
    _Chromium.users += 1
    yield _Chromium.browser
    _Chromium.users -= 1
    if _Chromium.users == 0 and _Chromium.browser and _Chromium.playwright:
        _Chromium.browser.close()
        _Chromium.playwright.stop()
        _Chromium.browser = _Chromium.playwright = None


@dataclass
class BrowserPage:
    """A page plus what its console said (CSP violations and script errors show up there)."""

    page: Page
    console_errors: list[str] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        source = message.location.get("url", "")
        # Browsers ask for /favicon.ico on their own; Ali has none.
        if message.type == "error" and not source.endswith("/favicon.ico"):
            self.console_errors.append(f"{message.text} ({source})")

    def screenshot(self, name: str, *, full_page: bool = True) -> None:
        if SCREENSHOTS:
            Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
            path = Path(SCREENSHOTS) / f"{name}.png"
            self.page.screenshot(path=str(path), full_page=full_page)


PageFactory = Callable[..., BrowserPage]


@pytest.fixture(name="new_page")
def new_page_fixture(browser: Browser, live_server: LiveServer) -> Iterator[PageFactory]:
    """Open pages in fresh contexts (own cookies); ``phone=True`` for a 390×844 phone."""
    contexts: list[Any] = []

    def factory(*, phone: bool = False) -> BrowserPage:
        options: dict[str, Any] = {
            "base_url": live_server.url,
            "locale": "it-IT",
            "timezone_id": "Europe/Rome",
        }
        if phone:
            options.update(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
        else:
            options.update(viewport=DESKTOP)
        context = browser.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        opened = BrowserPage(context.new_page())
        opened.page.on("console", opened.record)
        return opened

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture(name="browser_page")
def browser_page_fixture(new_page: PageFactory) -> BrowserPage:
    """One desktop page."""
    return new_page()


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Through the real login form; waits until the browser has left it."""
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.locator("form button[type=submit].primary").click()
    page.wait_for_url(lambda url: "/login" not in url)


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the document is wider than the viewport (0 when it fits)."""
    overflow: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )
    return overflow


AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page: Page) -> list[str]:
    """The WCAG 2.1 A and AA violations axe-core finds on the page, one line each.

    axe-core comes from npm (``make browser``). It is injected with ``evaluate``, which the
    page's CSP does not govern, so the page keeps its CSP and a violation of it still shows up
    among the console errors.
    """
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `make browser` (npm install axe-core)")
    page.evaluate(AXE.read_text() + "\n;0")
    found: list[str] = page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map(v =>
                `${v.id}: ${v.help} — ${v.nodes.map(n => n.target.join(' ')).join(', ')}`);
        }""",
        WCAG_21_AA,
    )
    return found
