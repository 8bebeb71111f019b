"""Debian's headless Chromium, driven by Playwright's sync API.

Playwright's sync API refuses to run on a thread whose asyncio loop is
running, which pytest-twisted's asyncio reactor makes true of the main
thread: every call is made on one worker thread of our own instead. Playwright
cannot download its own browsers here (no network): it launches the system
``chromium`` (``.ci/run`` installs it; without it the tests are skipped, and
fail under CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Runs before the page's own script: records CSP violations and errors.
_WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__violations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why} (.ci/run installs Debian's chromium and the test extras)")
    pytest.skip(why)


class Tab:
    """One page; every method runs on the browser's thread."""

    def __init__(self, browser: Browser, page: Any, requests: list[str], errors: list[str]):
        self._browser = browser
        self.page = page
        #: URLs of every request the page made (file:// included).
        self.requests = requests
        #: Console errors and uncaught exceptions.
        self.errors = errors

    def call(self, fn: Callable[[Any], T]) -> T:
        return self._browser.call(lambda: fn(self.page))

    def eval(self, script: str, arg: Any = None) -> Any:
        return self.call(lambda p: p.evaluate(script, arg))

    def texts(self, selector: str) -> list[str]:
        return self.call(lambda p: p.locator(selector).all_text_contents())

    def text(self, selector: str) -> str:
        return self.call(lambda p: p.locator(selector).text_content(timeout=5000) or "")

    def select(self, selector: str, value: str) -> None:
        self.call(lambda p: p.select_option(selector, value, timeout=5000))

    def fill(self, selector: str, value: str) -> None:
        # The page filters 150 ms after typing stops: wait for it.
        def fill(p: Any) -> None:
            p.fill(selector, value, timeout=5000)
            p.wait_for_timeout(400)

        self.call(fill)

    def click(self, selector: str) -> None:
        self.call(lambda p: p.click(selector, timeout=5000))

    def count(self, table: str = "#rows") -> int:
        """Rows matching the filters in a table (its ``data-count``)."""
        return int(self.call(lambda p: p.get_attribute(f"{table} .table-wrap", "data-count")))

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        self.call(lambda p: p.screenshot(path=str(path), full_page=full_page))

    def close(self) -> None:
        self.call(lambda p: p.context.close())


class Browser:
    """A headless Chromium on its own thread (module docstring)."""

    def __init__(self) -> None:
        executable = chromium_path()
        if executable is None:
            _unavailable("chromium is not installed (apt-get install chromium)")
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            _unavailable("playwright is not installed (pip install -e '.[test]')")
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="chromium")

        def start() -> tuple[Any, Any]:
            from playwright.sync_api import sync_playwright

            driver = sync_playwright().start()
            # launch() gives the browser a fresh profile of its own.
            browser = driver.chromium.launch(
                executable_path=executable, args=CHROMIUM_ARGS, timeout=60_000
            )
            return driver, browser

        self._driver, self._browser = self.call(start)

    def call(self, fn: Callable[[], T], timeout: float = 90) -> T:
        return self._thread.submit(fn).result(timeout=timeout)

    def open(self, path: Path, viewport: tuple[int, int] = (1280, 900)) -> Tab:
        """Open ``path`` from disk; wait until its script has drawn it. Any
        request other than the file itself is recorded, then refused."""
        url = path.resolve().as_uri()
        requests: list[str] = []
        errors: list[str] = []

        def open_page() -> Any:
            context = self._browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}
            )
            context.add_init_script(_WATCH)

            def refuse(route: Any) -> None:
                if route.request.url == url:
                    route.continue_()
                else:
                    route.abort()

            context.route("**/*", refuse)
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
            page.on(
                "console",
                lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None,
            )
            page.goto(url, wait_until="load", timeout=60_000)
            page.wait_for_selector("body[data-ready]", timeout=30_000)
            return page

        return Tab(self, self.call(open_page), requests, errors)

    def close(self) -> None:
        def stop() -> None:
            self._browser.close()
            self._driver.stop()

        try:
            self.call(stop, timeout=30)
        finally:
            self._thread.shutdown(wait=True)
