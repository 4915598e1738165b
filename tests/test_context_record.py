"""The Context's record as published: what the pages point to, redirects below a prefix, mis-dated folders.

Real corpus pages and real-looking ones written from docs/FORMAT.md, crawled
for real over HTTP (at the root and below a path prefix) into mirror.db.
"""

from __future__ import annotations

from crawler.loopback.site import SiteServer

ROLLING_STONES = "news/2013/03/27/the-rolling-stones-are-to-headline-glastonbury-festival-2013-in-pilton-somerset-england.md"  # noqa: E501


def test_a_crawl_started_from_one_event_page_mirrors_its_day(site, crawl):
    mirror = crawl("--start-url", site.url(ROLLING_STONES), "--since", "2013-03-27", "--until", "2013-03-27")
    assert mirror.query("SELECT kind FROM pages WHERE url = ?", [site.url("news/2013/03/27/index.md")]) == [
        {"kind": "day"}
    ]
    assert mirror.scalar("SELECT count(*) FROM day_events WHERE date = '2013-03-27'") > 10
    assert mirror.scalar("SELECT count(*) FROM events WHERE date = '2013-03-27'") == 16


def test_a_padded_date_heading_leads_to_the_unpadded_day_folder(site_dir, crawl):
    page = site_dir / "news/2013/03/4"
    name = next(p.name for p in page.iterdir() if p.name != "index.md")
    text = (page / name).read_text(encoding="utf-8")
    (page / name).write_text(
        text.replace("](/news/2013/03/4/index.md)", "](/news/2013/03/04/index.md)"), encoding="utf-8"
    )
    (page / "index.md").write_text(
        f"## [2013-03-4](/news/2013/03/4/index.md)\n\n### [x ](/news/2013/03/4/{name})\n"
    )
    server = SiteServer(site_dir)
    try:
        mirror = crawl(
            "--start-url",
            server.url(f"news/2013/03/4/{name}"),
            "--since",
            "2013-03-04",
            "--until",
            "2013-03-04",
        )
    finally:
        server.close()
    assert (
        "/news/2013/03/4/index.md" in server.requests and "/news/2013/03/04/index.md" not in server.requests
    )
    assert mirror.scalar("SELECT count(*) FROM days WHERE date = '2013-03-04'") == 1


def test_undated_pages_of_the_news_tree_are_recorded_once(site_dir, crawl):
    (site_dir / "news/README.md").write_text("# About the news folder\n\nDays live in YYYY/MM/D.\n")
    (site_dir / "news/about.md").write_text("# About\n\nA robot-maintained site.\n")
    (site_dir / "index.md").write_text(
        "# The Context\n\n* [2017-12-31](/news/2017/12/31/index.md)\n* [About](/news/about.md)\n"
        "* [Read me](/news/README.md)\n"
    )
    server = SiteServer(site_dir)
    try:
        window = ("--since", "2017-12-31", "--until", "2017-12-31")
        first = crawl("--start-url", server.url("index.md"), *window)
        kinds = {
            r["url"].rsplit("/", 1)[1]: r["kind"]
            for r in first.query("SELECT url, kind FROM pages WHERE url LIKE '%/news/%' AND kind = 'other'")
        }
        assert kinds == {"README.md": "other", "about.md": "other"}
        server.requests.clear()
        crawl("--start-url", server.url("index.md"), *window, db=first.db)
        assert "/news/about.md" not in server.requests and "/news/README.md" not in server.requests
    finally:
        server.close()


def test_a_redirect_below_a_path_prefix_is_followed_to_its_page(site_dir, crawl):
    """A raw-file host below /repo/main/ answers an old slug with a root-relative Location."""
    server = SiteServer(site_dir, prefix="/repo/main/")
    old = "/repo/main/news/2013/03/27/the-rolling-stones-old-slug.md"
    server.routes[old] = [(301, {"Location": f"/repo/main/{ROLLING_STONES}"}, b"")]
    try:
        mirror = crawl(
            "--start-url", server.origin + old, "--site-root", server.url(""),
            "--since", "2013-03-27", "--until", "2013-03-27",
        )  # fmt: skip
    finally:
        server.close()
    redirect = mirror.query(
        "SELECT kind, error, redirect_to FROM pages WHERE url = ?", [server.origin + old]
    )
    assert redirect == [{"kind": "redirect", "error": None, "redirect_to": server.url(ROLLING_STONES)}]
    event = mirror.query(
        "SELECT e.text FROM events e JOIN event_urls u ON u.event_id = e.id WHERE u.url = ?",
        [server.url(ROLLING_STONES)],
    )
    assert event and event[0]["text"].startswith("The Rolling Stones are to headline")


MISDATED = """
Formats: [HTML](/news/2018/06/24/a-misdated-event.html)

### [2007-06-24](/news/2007/06/24/index.md)

##### 2007 Gaza clashes
# Gaza clashes:Fighting continues in the Gaza Strip.

### Sources:

1. [BBC](http://news.bbc.co.uk/2/hi/middle_east/6234567.stm)
"""


def test_a_misdated_folder_keeps_the_heading_date_on_events_and_counts_the_page(site_dir, crawl):
    folder = site_dir / "news/2018/06/24"
    folder.mkdir(parents=True)
    (folder / "a-misdated-event.md").write_text(MISDATED)
    (folder / "index.md").write_text(
        "## [2018-06-24](/news/2018/06/24/index.md)\n\n### [Gaza ](/news/2018/06/24/a-misdated-event.md)\n"
    )
    server = SiteServer(site_dir)
    try:
        mirror = crawl(
            "--start-url",
            server.url("news/2018/06/24/index.md"),
            "--since",
            "2018-06-24",
            "--until",
            "2018-06-24",
        )
        text = crawl(
            "--start-url", server.url("news/2018/06/24/index.md"), "--since", "2018-06-24",
            db=site_dir / "again.db", json_output=False,
        ).proc.stdout  # fmt: skip
    finally:
        server.close()
    assert mirror.query("SELECT date, story FROM events") == [{"date": "2007-06-24", "story": "Gaza clashes"}]
    page = mirror.query("SELECT date, heading_date FROM pages WHERE url LIKE '%a-misdated-event.md'")
    assert page == [{"date": "2018-06-24", "heading_date": "2007-06-24"}]
    assert mirror.summary["pages_misdated"] == 1
    assert "pages filed under another day than their heading says: 1" in text
