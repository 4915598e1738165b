"""Crawl real HTTP servers through the real Scrapy stack; assert on mirror.db."""

from __future__ import annotations

import json
import sqlite3

from conftest import MALI_PAGES, SEED, THAILAND_PAGES, SiteServer

SEED_TEXT = (
    "The Government of Mali announces that 63 of their soldiers have been killed fighting "
    "jihadists since the French led intervention Operation Serval in January 2013."
)


def test_seed_page_field_by_field(site, crawl):
    mirror = crawl("--start-url", site.url(SEED))
    event = mirror.query("SELECT * FROM events WHERE url = ?", [site.url(SEED)])[0]
    assert event["date"] == "2013-03-27"
    assert event["story"] == "Northern Mali conflict"
    assert event["text"] == SEED_TEXT
    assert event["title"] == "Northern Mali conflict:" + SEED_TEXT
    assert event["topic"] is None and event["description"] is None and event["removed_at"] is None
    assert event["first_seen"] and event["last_seen"]
    sources = mirror.query(
        "SELECT s.url, s.domain, es.label, es.position FROM event_sources es"
        " JOIN sources s ON s.id = es.source_id WHERE es.event_id = ?",
        [event["id"]],
    )
    assert sources == [
        {
            "url": "http://www.sbs.com.au/news/article/1751054/63-Malian-soldiers-600-Islamists-killed",
            "domain": "sbs.com.au",
            "label": "AFP via SBS",
            "position": 1,
        }
    ]
    related = mirror.query(
        "SELECT r.*, e.date AS related_date FROM related_events r"
        " LEFT JOIN events e ON e.id = r.related_id WHERE r.event_id = ? ORDER BY position",
        [event["id"]],
    )
    assert [r["position"] for r in related] == list(range(1, 11))
    # All ten related pages are in the corpus, so all ten link to mirrored events.
    assert all(r["related_id"] for r in related)
    assert related[0]["related_url"] == site.url(
        "news/2013/03/4/northern-mali-conflict-pfrench-officials-announce-that-a-soldier-was-killed-"
        "in-action-during-contact-with-islamic-militants-over-the-weekend.md"
    )
    assert related[0]["related_date"] == "2013-03-04"
    assert json.loads(related[0]["contexts"]) == [
        "French",
        "Northern Mali conflict (2012-present)",
        "Operation Serval",
    ]
    assert related[8]["related_date"] == "2016-12-30"
    contexts = mirror.query(
        "SELECT c.name FROM event_contexts ec JOIN contexts c ON c.id = ec.context_id"
        " WHERE ec.event_id = ? ORDER BY c.name",
        [event["id"]],
    )
    assert [c["name"] for c in contexts] == [
        "French",
        "Mali",
        "Northern Mali conflict (2012-present)",
        "Operation Serval",
    ]


def test_slug_variants_are_one_event(site, crawl):
    day = "news/2013/03/27/index.md"
    urls = [site.url(p) for p in [*MALI_PAGES, *THAILAND_PAGES, day]]
    args = [a for url in urls for a in ("--start-url", url)]
    mirror = crawl(*args, "--since", "2013-03-27", "--until", "2013-03-27")
    # The day lists 16 events; its folder holds 20 files (4 are older slugs).
    assert mirror.scalar("SELECT count(*) FROM events WHERE date = '2013-03-27'") == 16
    for pages, story in (
        (MALI_PAGES, "Northern Mali conflict"),
        (THAILAND_PAGES, "South Thailand insurgency"),
    ):
        ids = {mirror.scalar("SELECT event_id FROM event_urls WHERE url = ?", [site.url(p)]) for p in pages}
        assert len(ids) == 1
        event = mirror.query("SELECT * FROM events WHERE id = ?", [ids.pop()])[0]
        # The canonical URL is the one the day page lists.
        assert event["url"] == site.url(pages[0])
        assert event["story"] == story
    day_row = mirror.query("SELECT * FROM days")[0]
    assert day_row["date"] == "2013-03-27" and day_row["event_count"] == 16
    assert mirror.scalar("SELECT count(*) FROM day_events WHERE event_id IS NULL") == 0
    # Sources of the three Thailand files are two sources, not six.
    thai_sources = mirror.scalar(
        "SELECT count(*) FROM sources WHERE url IN (?, ?)",
        [
            "http://www.aljazeera.com/news/asia-pacific/2013/03/201332833444182953.html",
            "http://www.guardian.co.uk/world/2013/mar/28/thailand-peace-talks-muslim-rebels",
        ],
    )
    assert thai_sources == 2


def test_later_layout_topics_descriptions_and_changes(site, crawl):
    mirror = crawl("--start-url", site.url("news/2018/01/18/index.md"), "--since", "2018-01-18")
    events = mirror.query("SELECT * FROM events ORDER BY url")
    assert len(events) == 5
    bus = next(e for e in events if "uzbek" in e["url"])
    assert bus["topic"] == "2018 Aktobe bus fire"
    assert bus["story"] is None
    assert bus["description"].startswith("Five people survived the accident")
    # The "### Changes:" section names the first version: one more URL of the same event.
    urls = mirror.query("SELECT url, via FROM event_urls WHERE event_id = ? ORDER BY via", [bus["id"]])
    assert [u["via"] for u in urls] == ["changes", "page"]
    assert "killing-at-least-52-people" in urls[0]["url"]
    labels = mirror.query("SELECT label FROM event_sources WHERE event_id = ?", [bus["id"]])
    assert labels == [{"label": "BBC"}]  # the Cover Image is not a source
    macron = next(e for e in events if "macron" in e["url"])
    assert macron["topic"] is None  # no topic line on its page, though its day lists one
    fetched = "SELECT count(*) FROM pages WHERE url LIKE '%2018/01/17%' AND fetched_at IS NOT NULL"
    assert mirror.scalar(fetched) == 0


HANDMADE = {
    "news/2020/01/2/index.md": """
## [2020-01-2](/news/2020/01/2/index.md)

### [Storm hits the coast: thousands evacuated. ](/news/2020/01/2/storm.md)
_Context: Storm, Coast_

### [A second event cites the same article. ](/news/2020/01/2/second.md)
A description line.

### [A flaky page answers 500 once. ](/news/2020/01/2/flaky.md)
_Context: Flakes_

### [A malformed page. ](/news/2020/01/2/malformed.md)
_Context: Broken_

### [A page in Latin-1. ](/news/2020/01/2/latin1.md)
_Context: Broken_

## [Previous Day...](/news/2020/01/1/index.md)
""",
    "news/2020/01/2/storm.md": """
### [2020-01-2](/news/2020/01/2/index.md)

# Storm hits the coast: thousands evacuated.

### Sources:

1. [BBC](http://www.bbc.co.uk/news/storm?utm_source=twitter&id=7#top)
2. [Reuters](https://Reuters.com:443/article/storm)
3. [Contact](mailto:desk@example.org)

### Related:

1. [The second event, under its old slug ](/news/2020/01/2/second-old.md) _Context: Coast_
2. [A page that does not exist ](/news/2020/01/1/missing.md) _Context: Storm_
3. [Off-site ](http://elsewhere.invalid/news/2020/01/2/z.md) _Context: Storm_
4. [Script ](javascript:alert(1)) _Context: Storm_
5. [Local file ](file:///etc/passwd) _Context: Storm_
""",
    "news/2020/01/2/second.md": """
### [2020-01-2](/news/2020/01/2/index.md)

# A second event cites the same article.

### Source:

1. [BBC](HTTP://WWW.BBC.CO.UK:80/news/storm?id=7&fbclid=abc)
""",
    "news/2020/01/2/flaky.md": """
### [2020-01-2](/news/2020/01/2/index.md)

# A flaky page answers 500 once.

### Source:

1. [AP](https://apnews.com/flaky)
""",
    "news/2020/01/2/malformed.md": """
### [2020-01-2](/news/2020/01/2/index.md)

### Source:

1. [AP](https://apnews.com/x)
""",
}


def handmade_site(site_dir, prefix="/"):
    for path, text in HANDMADE.items():
        target = site_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.lstrip("\n"), encoding="utf-8")
    (site_dir / "news/2020/01/2/latin1.md").write_bytes(
        "### [2020-01-2](/news/2020/01/2/index.md)\n\n# Caf\xe9 cr\xe8me\n".encode("latin-1")
    )
    server = SiteServer(site_dir, prefix=prefix)
    server.routes[prefix + "news/2020/01/2/second-old.md"] = [
        (301, {"Location": server.url("news/2020/01/2/second.md")}, b"")
    ]
    server.routes[prefix + "news/2020/01/2/flaky.md"] = [
        (500, {}, b"oops"),
        (200, {}, (site_dir / "news/2020/01/2/flaky.md").read_bytes()),
    ]
    return server


def test_faults_links_and_spellings(site_dir, crawl):
    server = handmade_site(site_dir)
    try:
        mirror = crawl("--start-url", server.url("news/2020/01/2/index.md"))
    finally:
        server.close()
    events = {e["url"].rsplit("/", 1)[1]: e for e in mirror.query("SELECT * FROM events")}
    assert sorted(events) == ["flaky.md", "second.md", "storm.md"]
    # "Story: Text" with a space is not a story; the colon is punctuation.
    assert events["storm.md"]["story"] is None
    assert events["second.md"]["description"] is None  # only the day page has one
    # One source row for three spellings of the BBC URL; mailto: is not a source.
    sources = mirror.query("SELECT url, domain FROM sources ORDER BY url")
    assert sources == [
        {"url": "http://www.bbc.co.uk/news/storm?id=7", "domain": "bbc.co.uk"},
        {"url": "https://apnews.com/flaky", "domain": "apnews.com"},
        {"url": "https://reuters.com/article/storm", "domain": "reuters.com"},
    ]
    shared = mirror.scalar(
        "SELECT count(DISTINCT event_id) FROM event_sources es JOIN sources s ON s.id = es.source_id"
        " WHERE s.domain = 'bbc.co.uk'"
    )
    assert shared == 2
    # Related items: the old slug redirects to the second event and resolves to it;
    # the missing page dangles; off-site and non-http links are kept as written
    # only when they are site links, and never fetched.
    related = mirror.query(
        "SELECT position, related_url, related_id FROM related_events WHERE event_id = ? ORDER BY position",
        [events["storm.md"]["id"]],
    )
    assert related[0]["related_id"] == events["second.md"]["id"]
    assert related[0]["related_url"].endswith("second-old.md")
    assert related[1]["related_url"].endswith("2020/01/1/missing.md") and related[1]["related_id"] is None
    assert [r["position"] for r in related] == [1, 2, 3]  # javascript: and file: (from a web page) dropped
    pages = {p["url"].rsplit("/news/", 1)[-1]: p for p in mirror.query("SELECT * FROM pages")}
    assert pages["2020/01/2/second-old.md"]["kind"] == "redirect"
    assert pages["2020/01/2/second-old.md"]["http_status"] == 301
    assert pages["2020/01/2/second-old.md"]["redirect_to"].endswith("second.md")
    assert pages["2020/01/1/missing.md"]["error"] == "HTTP 404"
    assert pages["2020/01/1/index.md"]["error"] == "HTTP 404"
    assert pages["2020/01/2/malformed.md"]["kind"] == "error"
    assert pages["2020/01/2/malformed.md"]["error"] == "event page without title"
    assert pages["2020/01/2/latin1.md"]["error"].startswith("invalid UTF-8")
    assert (
        pages["2020/01/2/flaky.md"]["kind"] == "event" and pages["2020/01/2/flaky.md"]["http_status"] == 200
    )
    assert server.requested("flaky.md") == ["/news/2020/01/2/flaky.md"] * 2
    assert not any("passwd" in p or "z.md" in p for p in server.requests)
    assert not [url for url in pages if "elsewhere" in url or url.startswith("file:")]
    run = mirror.summary
    assert run["status"] == "finished"
    assert run["errors"] == 4  # malformed, latin-1, missing related, missing previous day


def test_site_root_below_a_path_prefix(site_dir, crawl):
    server = handmade_site(site_dir, prefix="/owner/repo/main/")
    try:
        mirror = crawl(
            "--start-url",
            server.url("news/2020/01/2/index.md"),
            "--site-root",
            server.url(""),
        )
    finally:
        server.close()
    urls = [e["url"] for e in mirror.query("SELECT url FROM events ORDER BY url")]
    assert len(urls) == 3
    assert all(u.startswith(server.origin + "/owner/repo/main/news/2020/01/2/") for u in urls)
    assert not [p for p in server.requests if not p.startswith("/owner/repo/main/") and p != "/robots.txt"]


def test_file_checkout(site_dir, crawl):
    start = (site_dir / "news/2018/01/18/index.md").as_uri()
    mirror = crawl("--start-url", start, "--since", "2018-01-18")
    assert mirror.scalar("SELECT count(*) FROM events") == 5
    assert mirror.scalar("SELECT count(*) FROM event_urls WHERE url NOT LIKE 'file:///%'") == 0
    previous = mirror.query("SELECT * FROM days")[0]["previous_url"]
    assert previous == (site_dir / "news/2018/01/17/index.md").as_uri()


def test_rerun_over_an_unchanged_site_rewrites_no_event_data(site, crawl):
    start = site.url("news/2013/03/27/index.md")
    first = crawl("--start-url", start, "--since", "2013-03-26")
    tables = [
        "events",
        "event_urls",
        "event_sources",
        "related_events",
        "event_contexts",
        "sources",
        "day_events",
    ]
    volatile = {"last_seen"}

    def snapshot(mirror):
        return {
            table: sorted(
                json.dumps({k: v for k, v in row.items() if k not in volatile}, sort_keys=True)
                for row in mirror.query(f"SELECT * FROM {table}")
            )
            for table in tables
        }

    before = snapshot(first)
    # --full: every page is fetched again; without validators, the hash tells it is unchanged.
    second = crawl("--start-url", start, "--since", "2013-03-26", "--full", db=first.db)
    assert snapshot(second) == before
    assert second.summary["events_new"] == 0
    assert second.summary["events_changed"] == 0
    assert second.summary["events_unchanged"] == first.summary["events_new"] >= 35
    assert second.scalar("SELECT count(*) FROM sync_runs") == 2
    assert second.scalar("SELECT count(*) FROM event_versions") == 0
    assert second.scalar("SELECT count(DISTINCT last_seen) FROM events") >= 1


def test_an_edited_event_is_one_event_with_a_version(site_dir, crawl):
    server = handmade_site(site_dir)
    try:
        first = crawl("--start-url", server.url("news/2020/01/2/index.md"))
        storm_id = first.scalar("SELECT id FROM events WHERE url LIKE '%storm.md'")
        # The editors fix a word; the site writes a new slug and lists it instead.
        day = site_dir / "news/2020/01/2/index.md"
        day.write_text(day.read_text().replace("/storm.md", "/storm-v2.md").replace("thousands", "hundreds"))
        (site_dir / "news/2020/01/2/storm-v2.md").write_text(
            HANDMADE["news/2020/01/2/storm.md"].replace("thousands", "hundreds")
        )
        second = crawl("--start-url", server.url("news/2020/01/2/index.md"), db=first.db)
    finally:
        server.close()
    assert second.scalar("SELECT count(*) FROM events") == 3
    event = second.query("SELECT * FROM events WHERE id = ?", [storm_id])[0]
    assert event["url"].endswith("storm-v2.md")
    assert "hundreds" in event["text"]
    versions = second.query("SELECT * FROM event_versions WHERE event_id = ?", [storm_id])
    assert len(versions) == 1 and versions[0]["url"].endswith("/storm.md")
    assert "thousands" in json.loads(versions[0]["snapshot"])["text"]
    assert second.summary["events_changed"] == 1
    assert second.summary["events_new"] == 0


def mirror_two_days(site, crawl):
    """Mirror 2013-03-26/27 from a server with ETags; the server's log starts empty after."""
    site.etags = True
    start = site.url("news/2013/03/27/index.md")
    window = ("--since", "2013-03-26", "--until", "2013-03-27")
    first = crawl("--start-url", start, *window)
    events = first.query("SELECT id, content_hash, updated_at FROM events ORDER BY id")
    site.requests.clear()
    return ("--start-url", start, *window), first, events


def test_an_unchanged_sync_asks_only_the_start_url(site, crawl):
    args, first, events = mirror_two_days(site, crawl)
    second = crawl(*args, db=first.db)
    # Pages of 2013 are not due for a month: only the start URL is asked, and it answers 304.
    assert [p for p in site.requests if p != "/robots.txt"] == ["/news/2013/03/27/index.md"]
    assert second.summary["pages_not_modified"] == 1
    assert second.summary["bodies"] == 1  # robots.txt
    assert second.summary["events_new"] == second.summary["events_changed"] == 0
    assert second.query("SELECT id, content_hash, updated_at FROM events ORDER BY id") == events


def test_full_revalidates_every_page_conditionally(site, crawl):
    args, first, events = mirror_two_days(site, crawl)
    second = crawl(*args, "--full", db=first.db)
    # Every event and day page answered 304: nothing parsed, nothing rewritten, all still seen.
    assert second.summary["pages_not_modified"] == first.summary["pages_fetched"] - first.summary["errors"]
    assert second.summary["events_unchanged"] == len(events) == 35
    assert second.query("SELECT id, content_hash, updated_at FROM events ORDER BY id") == events
    assert second.scalar("SELECT count(*) FROM pages WHERE http_status = 304") == 35 + 2
    assert second.scalar("SELECT count(*) FROM pages WHERE etag IS NULL AND kind IN ('event', 'day')") == 0
    started = second.summary["started_at"]
    seen = "SELECT count(*) FROM event_urls WHERE via = 'page' AND last_seen < ?"
    assert second.scalar(seen, [started]) == 0
    assert len([p for p in site.requests if p != "/robots.txt"]) == first.summary["pages_fetched"]
    assert second.summary["full"] == 1


def test_a_page_whose_event_was_never_stored_is_parsed_again(site, crawl):
    site.etags = True
    start = site.url(SEED)
    first = crawl("--start-url", start, "--max-pages", "1")
    # As if the run had been killed after recording the page but before storing its event.
    conn = sqlite3.connect(first.db)
    with conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        for table in ("event_sources", "related_events", "event_contexts", "event_urls", "events"):
            conn.execute(f"DELETE FROM {table}")
    conn.close()
    second = crawl("--start-url", start, "--max-pages", "1", db=first.db)
    assert second.summary["pages_not_modified"] == 0
    assert second.scalar("SELECT story FROM events") == "Northern Mali conflict"
