"""End to end in a real browser: headless Chromium (Debian's package) driven by Playwright.

A journalist's path through ``python -m crawler serve`` on the aged demo: the
events table, a search, one click to the event's page with its sources (status,
last check, archived copy), then the dead-link list with its outlet facet.
Every page is saved as a PNG from a 1400-pixel-wide window into the folder
named by ``BROWSE_SCREENSHOTS`` (default: ``screenshots`` under pytest's
temporary folder), to be looked at.  Skipped, with the reason, where Chromium
is not installed (.ci/run installs it).  Datasette listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

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
WINDOW = {"width": 1400, "height": 900}

# Its tests share one Datasette server (test_browse's), and so one xdist worker.
pytestmark = pytest.mark.xdist_group("datasette")


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(aged_demo):
    datasette = Datasette(aged_demo.db)
    yield datasette
    datasette.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("BROWSE_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser):
    tab = browser.new_page(viewport=WINDOW)
    # Loopback only: a request for any other host is refused before it leaves the browser.
    tab.route(
        "**/*",
        lambda route: (
            route.continue_()
            if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost")
            else route.abort()
        ),
    )
    yield tab
    tab.close()


def shoot(page, shots: Path, name: str, full_page: bool = True) -> Path:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.read_bytes().startswith(b"\x89PNG")
    return path


def test_search_then_one_click_to_the_event_and_its_sources(page, server, aged_demo, shots):
    page.goto(server.base + "/mirror/events")
    assert "One row per event" in page.content()
    header = [th.inner_text().strip() for th in page.locator("table.rows-and-columns thead th").all()]
    assert "text" in header and "text_key" not in header and "content_hash" not in header
    assert not page.locator("dl.column-descriptions").is_visible()  # on demand
    shoot(page, shots, "1-events-table", full_page=False)
    page.get_by_text("columns mean").click()
    assert page.locator("dl.column-descriptions").is_visible()
    shoot(page, shots, "1b-events-column-help", full_page=False)
    page.evaluate("document.querySelector('table.rows-and-columns').scrollIntoView()")
    shoot(page, shots, "1c-events-rows", full_page=False)

    page.fill('input[name="_search"]', "Catalonia")
    page.press('input[name="_search"]', "Enter")
    page.wait_for_url("**_search=Catalonia**")
    rows = page.locator("table.rows-and-columns tbody tr")
    assert rows.count() == 1
    page.evaluate("document.querySelector('table.rows-and-columns').scrollIntoView()")
    shoot(page, shots, "2-search-results", full_page=False)
    rows.first.locator("td.col-text a").click()  # the event's text is the link to its page
    page.wait_for_url("**/mirror/events/2017-10-01-*")

    event_id = page.url.rsplit("/", 1)[1]
    assert "The government of Catalonia holds a public referendum" in page.locator("h1").inner_text()
    sources = aged_demo.query(
        "SELECT s.url, s.status, s.archive_url, s.last_checked_at, es.label FROM event_sources es"
        " JOIN sources s ON s.id = es.source_id WHERE es.event_id = ? ORDER BY es.position",
        [event_id],
    )
    items = page.locator("ol.event-sources > li")
    assert items.count() == len(sources) == 8
    for item, source in zip(items.all(), sources, strict=True):
        text = item.inner_text()
        assert source["label"] in text and source["status"] in text
        assert f"checked {source['last_checked_at'][:10]}" in text
        assert item.locator(f'a[href="{source["url"]}"]').count() == 1
        archive = item.locator("a.archive-link")
        if source["archive_url"]:
            assert archive.get_attribute("href") == source["archive_url"]
        else:
            assert archive.count() == 0 and "No archived copy" in text
    assert {s["status"] for s in sources} == {"alive", "dead"}
    assert page.locator("ol.event-sources .status-dead").count() == 2
    shoot(page, shots, "3-event-page")


def test_dead_links_lead_with_the_event_and_facet_by_outlet(page, server, aged_demo, shots):
    page.goto(server.base + "/mirror/dead_sources")
    # The page is the canned query's answer: say what it shows if it is not the table.
    assert page.locator("table.dead-links thead th").count() or False, page.locator("body").inner_text()[:500]
    header = [th.inner_text().strip(" ▼▲\xa0") for th in page.locator("table.dead-links thead th").all()]
    assert header[:5] == ["date", "event", "outlet", "status", "archive_url"]
    first = page.locator("table.dead-links tbody tr").first
    cells = first.locator("td")
    newest = aged_demo.scalar(
        "SELECT max(e.date) FROM events e JOIN event_sources es ON es.event_id = e.id"
        " JOIN sources s ON s.id = es.source_id WHERE s.status = 'dead'"
    )
    assert cells.nth(0).inner_text() == newest
    cells.nth(1).locator("a").wait_for()  # the event's text links to its page
    shoot(page, shots, "4-dead-links", full_page=False)

    page.locator('#facet-outlet a[data-facet-value="cnn.com"]').click()
    page.wait_for_url("**outlet=cnn.com**")
    urls = [a.get_attribute("href") for a in page.locator("table.dead-links td.col-url a").all()]
    hosts = {urlsplit(url).hostname for url in urls}
    assert {"edition.cnn.com", "money.cnn.com", "www.cnn.com"} <= hosts
    assert all(host.endswith("cnn.com") for host in hosts)
    page.locator("table.dead-links thead th.col-outlet a").click()  # sort by outlet, the filter kept
    page.wait_for_url("**sort=outlet**")
    assert "outlet=cnn.com" in page.url
    shoot(page, shots, "5-dead-links-cnn", full_page=False)


def test_source_page_and_a_table_with_long_urls(page, server, aged_demo, shots):
    page.goto(server.base + "/mirror/sources?status=dead")
    link = page.locator("td.col-archive_url a").first
    full = link.get_attribute("href")
    assert "://web.archive.org/web/" in full and link.inner_text().startswith("web.archive.org · ")
    assert link.get_attribute("title") == full  # the whole address on hover
    assert "content_hash" not in page.locator("table.rows-and-columns thead").inner_text()
    page.evaluate("document.querySelector('table.rows-and-columns').scrollIntoView()")
    shoot(page, shots, "6-dead-sources-table", full_page=False)
