"""A page opened in a real browser: Debian's chromium, headless, driven by Playwright. What the page did is
recorded: console messages, uncaught errors, every request beyond the page itself, images that failed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from playwright.sync_api import ViewportSize, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")  # `make test` installs Debian's package when it is missing
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}


@dataclass(frozen=True)
class Visit:
    """What happened while a page loaded and rendered."""

    console: list[str]  # "type: text" of every console message
    errors: list[str]  # uncaught exceptions
    requests: list[str]  # URLs requested besides the page itself and data: URIs
    broken_images: int
    title: str
    text: str  # the rendered text (innerText of the body)


def visit(page: Path, screenshot: Path) -> Visit:
    """Open `page` (a local file), wait for it to load, record what it did and save a full-page screenshot."""
    console: list[str] = []
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        # as root, chromium's sandbox cannot start: the page is our own, loaded from a file
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"] if os.geteuid() == 0 else []
        )
        try:
            tab = browser.new_page(viewport=VIEWPORT)
            tab.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            tab.on("pageerror", lambda error: errors.append(str(error)))
            tab.on("request", lambda request: requests.append(request.url))
            tab.goto(page.resolve().as_uri(), wait_until="load")
            tab.wait_for_load_state("networkidle")
            broken = tab.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
            tab.screenshot(path=str(screenshot), full_page=True)
            title, text = tab.title(), tab.inner_text("body")
        finally:
            browser.close()
    own = page.resolve().as_uri()
    return Visit(
        console,
        errors,
        [url for url in requests if url != own and not url.startswith("data:")],
        int(broken),
        title,
        text,
    )
