"""What a crawl has asked for lives on disk, not in memory: still each page once, in the same order.

Scrapy's duplicate filter is off for the event spider (``crawler.asked``), so
nothing but ``AskedUrls`` stands between a page linked from forty others and
forty requests: these tests count the requests a real server sees.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter

from test_checkout import assert_same_mirror

from crawler.asked import AskedUrls
from crawler.loopback.site import SiteServer
from crawler.testing.sitegen import generate
from pipeline.clock import Clock
from pipeline.frontier import Frontier


def test_a_url_is_asked_once_and_counted_not_due_once():
    asked = AskedUrls()
    try:
        assert asked.state("http://a/1") is None and "http://a/1" not in asked
        asked.pass_over("http://a/1")
        asked.pass_over("http://a/1")
        assert asked.state("http://a/1") is False and asked.not_due == 1
        asked.ask("http://a/1")  # a start URL, a missing file's check: asked although not due
        asked.ask("http://a/2")
        assert "http://a/1" in asked and asked.state("http://a/2") is True
        assert (asked.requested, asked.not_due) == (2, 1)
    finally:
        asked.close()


def test_links_wait_on_disk_for_room_in_the_scheduler_and_are_all_fetched(tmp_path, crawl):
    """The links a crawl meets outrun the pages it fetches: beyond ``REQUESTS_AHEAD`` requests in
    Scrapy's (in-memory) scheduler, they wait in the run's temporary database, and the mirror is
    the one a crawl without the limit makes."""
    site = generate(tmp_path / "site", days=6, events_per_day=12)
    server = SiteServer(site.root)
    try:
        start = ("--start-url", server.url("index.md"), "--now", "2019-07-01T00:00:00Z")
        start += ("-s", "LOG_LEVEL=INFO")
        free = crawl(*start, "-s", "REQUESTS_AHEAD=0", db=tmp_path / "free.db")
        assert "waited on disk" not in free.proc.stderr
        server.requests.clear()
        held = crawl(*start, "-s", "REQUESTS_AHEAD=3", db=tmp_path / "held.db")
        counts = Counter(server.requests)
        assert counts and max(counts.values()) == 1, counts.most_common(3)
    finally:
        server.close()
    waited = re.search(r"(\d+) followed links waited on disk", held.proc.stderr)
    assert waited and int(waited[1]) > 10, held.proc.stderr[-2000:]
    assert held.summary["events_new"] == site.events
    assert_same_mirror(free, held)


def test_every_page_is_requested_once_in_a_crawl_and_in_a_full_resync(tmp_path, crawl):
    site = generate(tmp_path / "site", days=6, events_per_day=12)
    server = SiteServer(site.root)
    try:
        first = crawl("--start-url", server.url("index.md"), "--now", "2019-07-01T00:00:00Z")
        counts = Counter(server.requests)
        assert counts and max(counts.values()) == 1, counts.most_common(3)
        server.requests.clear()
        # Its start requests are read 5 at a time, as the scheduler makes room for them.
        ahead = ("-s", "REQUESTS_AHEAD=5", "--full")
        again = crawl("--start-url", server.url("index.md"), "--now", "2019-07-01T06:00:00Z", *ahead)
        assert again.summary["events_new"] == 0
        counts = Counter(server.requests)
        # Every known page asked again (--full), each once, although each is linked many times.
        assert max(counts.values()) == 1, counts.most_common(3)
        known = {row["url"] for row in first.query("SELECT url FROM pages")}
        assert {server.origin + path for path in counts if path != "/robots.txt"} == known
        assert first.summary["events_new"] == site.events
    finally:
        server.close()


def test_the_due_pages_read_in_lots_are_the_one_ordered_list(tmp_path, crawl):
    site = generate(tmp_path / "site", days=5, events_per_day=9)
    mirror = crawl("--start-url", (site.root / "index.md").as_uri(), "--now", "2019-07-01T00:00:00Z")
    root = site.root.as_uri() + "/"
    conn = sqlite3.connect(mirror.db)
    frontier = Frontier(conn, Clock())
    try:
        whole = [
            row[0]
            for row in conn.execute(
                "SELECT url FROM pages WHERE url >= ? AND url < ? ORDER BY date DESC, url",
                [root, root + "\U0010ffff"],
            )
        ]
        assert len(whole) > 50 and any(
            date is None for (date,) in conn.execute("SELECT date FROM pages")
        )  # the front page has no date: it comes last, across a lot's edge
        assert list(frontier.due_pages(root, everything=True, lot=7)) == whole
        assert list(frontier.due_pages(root, everything=True, lot=len(whole))) == whole
    finally:
        conn.close()
