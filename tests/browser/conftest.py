"""A headless Chromium for tests that look at pages the way a person does.

Debian's chromium (``apt-get install chromium``) is driven by Playwright; Playwright's
own browser download is never used. Every request to a host other than the server
under test is blocked and recorded, so a page that still needs the internet fails
its test instead of passing on a machine that happens to be online.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Route, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Rendering a large OpenAPI document on a busy two-core machine takes a while.
PAGE_TIMEOUT_MS = 60_000

SKIP_REASON = f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium"


@dataclass
class OfflinePage:
    """A page whose requests may only go to localhost; ``blocked`` lists the others."""

    page: Page
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, once per session; every browser test skips without it."""
    if not CHROMIUM.exists():
        pytest.skip(SKIP_REASON)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def offline_page(browser: Browser) -> AsyncIterator[OfflinePage]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = await context.new_page()
    offline = OfflinePage(page)

    async def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            offline.blocked.append(url)
            await route.abort()

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            offline.console_errors.append(message.text)

    await page.route("**/*", only_local)
    page.on("console", console)
    try:
        yield offline
    finally:
        await context.close()
