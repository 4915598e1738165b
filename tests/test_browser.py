"""End to end in a real browser: headless Chromium (Debian's package) driven by Playwright.

Opens the events table in Datasette, searches, clicks through to an event and
on to a source it cites, and saves a screenshot.  Skipped, with the reason,
where Chromium is not installed (.ci/run installs it).
"""

from __future__ import annotations

import shutil

import pytest
from test_browse import Datasette

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Quiet flags: this machine's network is closed, and Chromium's background services would knock on it.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def test_search_then_click_through_to_a_source(browser, aged_demo, tmp_path):
    server = Datasette(aged_demo.db)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.base + "/mirror/events")
        assert "One row per event" in page.content()
        page.fill('input[name="_search"]', "Thailand")
        page.press('input[name="_search"]', "Enter")
        page.wait_for_url("**_search=Thailand**")
        rows = page.locator("table.rows-and-columns tbody tr")
        assert rows.count() == 1
        assert "Thailand government prepares for peace talks" in rows.first.inner_text()

        rows.first.locator("td.col-id a").click()
        page.wait_for_url("**/mirror/events/2013-03-27-*")
        page.locator('a[href*="event_sources?event_id="]').first.click()
        page.wait_for_url("**/mirror/event_sources?event_id=*")
        source = page.locator("td.col-source_id a").first
        url = source.inner_text()
        source.click()
        page.wait_for_url("**/mirror/sources/*")
        text = page.content()
        assert url in text and "status" in text
        status = aged_demo.scalar("SELECT status FROM sources WHERE url = ?", [url])
        assert status in text
        shot = tmp_path / "source.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes().startswith(b"\x89PNG")
    finally:
        server.close()
