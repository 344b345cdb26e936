"""/docs and /redoc render in a real browser with every off-site request blocked."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import OfflinePage

pytestmark = pytest.mark.slow


async def test_swagger_ui_lists_the_operations_offline(
    offline_page: OfflinePage, live_server: str, tmp_path: Path
) -> None:
    page = offline_page.page

    await page.goto(f"{live_server}/docs")
    campaigns = page.locator('.opblock-summary-path[data-path="/v1/campaigns"]').first
    await campaigns.wait_for(state="visible")
    await page.screenshot(path=tmp_path / "swagger-ui.png", full_page=False)

    assert await page.locator(".opblock").count() > 20
    assert "polis-api" in await page.locator(".info .title").first.inner_text()
    assert offline_page.blocked == []
    assert (tmp_path / "swagger-ui.png").stat().st_size > 0


async def test_redoc_renders_the_reference_offline(
    offline_page: OfflinePage, live_server: str, tmp_path: Path
) -> None:
    page = offline_page.page

    await page.goto(f"{live_server}/redoc")
    heading = page.locator("h1").first
    await heading.wait_for(state="visible")
    operation = page.get_by_role("heading", name="Create a campaign document").first
    await operation.wait_for(state="visible")
    await page.screenshot(path=tmp_path / "redoc.png", full_page=False)

    assert "polis-api" in await heading.inner_text()
    assert offline_page.blocked == []
    assert (tmp_path / "redoc.png").stat().st_size > 0
