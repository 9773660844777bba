"""What the browser tests share: Debian's Chromium, the requests and errors a page made,
and the screenshots written for review."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: The computed background of each light, as dashboard.css sets it.
COLOURS = {
    "green": "rgb(46, 125, 50)", "orange": "rgb(245, 158, 11)", "red": "rgb(198, 40, 40)",
    "suppressed": "rgb(158, 158, 158)", "none": "rgb(229, 231, 235)",
}  # fmt: skip

#: Skip a module's tests, with the reason, where Debian's Chromium is not installed.
NEEDS_CHROMIUM = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no /usr/bin/chromium: install the chromium package (.ci/run does) to run these",
)


class Recorded:
    """Every request a page made, and every console error and uncaught exception."""

    def __init__(self, page: Page) -> None:
        self.requests: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: self.errors.append(str(error)))


def new_context(browser: Browser, lang: str) -> BrowserContext:
    locale = "ja-JP" if lang == "ja" else "en-GB"
    return browser.new_context(
        locale=locale, viewport={"width": 1280, "height": 900}, service_workers="block"
    )


def screenshot(page: Page, name: str, lang: str) -> None:
    folder = Path(os.environ.get("SCFED_SCREENSHOTS") or ROOT / ".screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}-{lang}.png"), full_page=True)
