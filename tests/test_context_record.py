"""The Context's record as published: what the pages point to, redirects below a prefix, mis-dated folders.

Real corpus pages and real-looking ones written from docs/FORMAT.md, crawled
for real over HTTP (at the root and below a path prefix) into mirror.db.
"""

# ruff: noqa: E501  (titles of real-looking pages are quoted whole)

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
    redirect = mirror.query("SELECT kind, error, redirect_to FROM pages WHERE url = ?", [server.origin + old])
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


# -- one row per real event: story-prefixed variants ---------------------------

DAY = "news/2015/08/20"
VARIANTS = {
    # slug: (title, source, description, related slugs)
    "a-prefixed": ("European migration crisis. The Italian Coast Guard rescues 1,000 migrants off Libya.", "s1", "Ten ships took part.", ["a-plain"]),
    "a-plain": ("The Italian Coast Guard rescues 1,000 migrants off Libya.", "s1", "Ten ships took part.", ["a-year"]),
    "a-year": ("European migration crisis, 2015: The Italian Coast Guard rescues 1,000 migrants off Libya.", "s1", "Ten ships took part.", []),
    "b-other": ("European migration crisis. Hungary closes its border with Serbia.", "s2", "A fence is built.", ["a-prefixed"]),
    "c-syria": ("Syrian civil war:Protests continue in the capital.", "s3", None, []),
    "c-venezuela": ("Venezuelan crisis:Protests continue in the capital.", "s4", None, []),
    "d-greece": ("European migration crisis. Greece asks the European Union for emergency aid for its islands.", "s1", None, []),
}  # fmt: skip


def variant_page(title, source, description, related) -> str:
    lines = [f"### [2015-08-20](/{DAY}/index.md)", "", f"# {title}", ""]
    if description:
        lines += [description, ""]
    lines += ["### Sources:", "", f"1. [BBC](http://bbc.example/{source})", ""]
    if related:
        lines += ["### Related:", ""]
        lines += [
            f"1. [x ](/{DAY}/{slug}.md) _Context: European migration crisis, Libya_" for slug in related
        ]
    return "\n".join(lines) + "\n"


def variant_site(site_dir):
    folder = site_dir / DAY
    folder.mkdir(parents=True)
    for slug, page in VARIANTS.items():
        (folder / f"{slug}.md").write_text(variant_page(*page))
    listed = ["a-plain", "b-other", "c-syria", "c-venezuela", "d-greece"]
    (folder / "index.md").write_text(
        f"## [2015-08-20](/{DAY}/index.md)\n\n"
        + "".join(f"### [x ](/{DAY}/{slug}.md)\n\n" for slug in listed)
    )
    return SiteServer(site_dir)


def grouped(mirror) -> list[list[str]]:
    rows = mirror.query("SELECT event_id, url FROM event_urls WHERE via = 'page' ORDER BY url")
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row["event_id"], []).append(row["url"].rsplit("/", 1)[1].removesuffix(".md"))
    return sorted(sorted(g) for g in groups.values())


EXPECTED_GROUPS = [
    ["a-plain", "a-prefixed", "a-year"],
    ["b-other"],
    ["c-syria"],
    ["c-venezuela"],
    ["d-greece"],
]


def test_story_prefixed_variants_are_one_event_and_different_events_stay_apart(site_dir, crawl):
    server = variant_site(site_dir)
    try:
        window = ("--since", "2015-08-20", "--until", "2015-08-20")
        # Met in both orders: the prefixed version first, and the plain one first.
        prefixed_first = crawl(
            "--start-url", server.url(f"{DAY}/a-prefixed.md"), *window, db=site_dir / "p.db"
        )
        plain_first = crawl("--start-url", server.url(f"{DAY}/index.md"), *window, db=site_dir / "q.db")
        year_first = crawl("--start-url", server.url(f"{DAY}/a-year.md"), *window, db=site_dir / "y.db")
    finally:
        server.close()
    from_checkout = crawl(
        "--start-url", (site_dir / DAY / "a-prefixed.md").as_uri(), *window, db=site_dir / "f.db"
    )
    for mirror in (prefixed_first, plain_first, year_first, from_checkout):
        assert grouped(mirror) == EXPECTED_GROUPS
        assert mirror.scalar("SELECT count(*) FROM events") == 5
        # The day page lists the plain version: the row shows it.
        shown = mirror.scalar("SELECT text FROM events WHERE text LIKE '%Italian Coast Guard%'")
        assert shown == "The Italian Coast Guard rescues 1,000 migrants off Libya."


def test_every_corpus_file_as_a_start_url_gives_one_event_per_real_event(crawl):
    from conftest import CORPUS

    files = sorted(p for p in (CORPUS / "news").rglob("*.md"))
    server = SiteServer(CORPUS)
    try:
        mirror = crawl(
            *[arg for p in files for arg in ("--start-url", server.url(str(p.relative_to(CORPUS))))]
        )
    finally:
        server.close()
    # 84 event pages and day pages; the real events, counted by hand from the day listings
    # and the single-file days (three files each for the Mali and Thailand events of 2013-03-27).
    assert mirror.scalar("SELECT count(*) FROM events") == 75
    # No two different events merged: every listing entry of a day page is its own event.
    days = "SELECT date, count(*) AS n, count(DISTINCT event_id) AS events FROM day_events GROUP BY date"
    for day in mirror.query(days):
        assert day["n"] == day["events"], day


# -- the change history, and the version it names current -----------------------

BUS = "news/2018/02/6"
BUS_VERSIONS = {
    "v1": "A bus catches fire in Aktobe Region, killing at least 52 people.",
    "v2": "A bus catches fire in Aktobe Region, killing 52 people.",
    "v3": "A bus carrying Uzbek migrant workers catches fire in Aktobe Region, killing 52 people.",
}
FULL_HISTORY = [
    ("v1", "2018-02-06 13:49:31 (First version)"),
    ("v2", "2018-02-07 10:00:00 (Update)"),
    ("v3", "(Current version)"),
]


def bus_page(version: str, history: list[tuple[str, str]]) -> str:
    changes = "".join(f"1. [{BUS_VERSIONS[v]} ](/{BUS}/{v}.md) _{note}_\n" for v, note in history)
    return (
        f"### [2018-02-06](/{BUS}/index.md)\n\n##### 2018 Aktobe bus fire\n# {BUS_VERSIONS[version]}\n\n"
        f"### Sources:\n\n1. [BBC](http://www.bbc.co.uk/news/world-asia-42729597)\n\n### Changes:\n\n{changes}"
    )


def test_the_change_history_is_kept_and_the_version_it_names_current_is_shown(site_dir, crawl):
    folder = site_dir / BUS
    folder.mkdir(parents=True)
    (folder / "v1.md").write_text(bus_page("v1", [("v1", "(Current version)")]))  # as it stood then
    (folder / "v2.md").write_text(bus_page("v2", FULL_HISTORY))
    (folder / "v3.md").write_text(bus_page("v3", FULL_HISTORY))
    server = SiteServer(site_dir)
    try:
        # No day page lists any version (the day's index is missing); v1 is met first.
        mirror = crawl("--start-url", server.url(f"{BUS}/v1.md"), "--start-url", server.url(f"{BUS}/v2.md"),
                       "--since", "2018-02-06", "--until", "2018-02-06")  # fmt: skip
    finally:
        server.close()
    assert mirror.scalar("SELECT count(*) FROM events") == 1
    assert mirror.scalar("SELECT text FROM events") == BUS_VERSIONS["v3"]
    history = mirror.query(
        "SELECT url, changed_at, label FROM event_history ORDER BY changed_at IS NULL, changed_at"
    )
    assert [(h["url"].rsplit("/", 1)[1], h["changed_at"], h["label"]) for h in history] == [
        ("v1.md", "2018-02-06 13:49:31", "First version"),
        ("v2.md", "2018-02-07 10:00:00", "Update"),
        ("v3.md", None, "Current version"),
    ]
    # Every list as each page published it: v1's own (itself current), v2's and v3's.
    assert mirror.scalar("SELECT count(*) FROM event_changes") == 1 + 3 + 3


INLINE = f"""
### [2010-05-01](/news/2010/05/1/index.md)

# War in Afghanistan:A suicide bomber kills five people in Kabul. [Reuters](http://www.reuters.com/article/idUS1?type=worldNews&storyID=1) http://www.bbc.co.uk/news/10101010.stm.

### Related:

1. [The Rolling Stones ](/{ROLLING_STONES}) _Context: Kabul_
"""


def test_sources_cited_inline_are_sources(site_dir, crawl):
    folder = site_dir / "news/2010/05/1"
    folder.mkdir(parents=True)
    (folder / "a-suicide-bomber.md").write_text(INLINE)
    server = SiteServer(site_dir)
    try:
        mirror = crawl(
            "--start-url",
            server.url("news/2010/05/1/a-suicide-bomber.md"),
            "--since",
            "2010-05-01",
            "--until",
            "2010-05-01",
        )
    finally:
        server.close()
    event = mirror.query("SELECT id, story, text FROM events")[0]
    assert event["story"] == "War in Afghanistan"
    assert event["text"] == "A suicide bomber kills five people in Kabul. Reuters."
    sources = mirror.query(
        "SELECT es.position, es.label, s.url FROM event_sources es JOIN sources s ON s.id = es.source_id"
        " WHERE es.event_id = ? ORDER BY es.position",
        [event["id"]],
    )
    assert [(s["position"], s["label"]) for s in sources] == [(1, "Reuters"), (2, "www.bbc.co.uk")]
    assert sources[1]["url"] == "http://www.bbc.co.uk/news/10101010.stm"
    assert "reuters.com/article/idUS1" in sources[0]["url"]


# -- the URL that was cited is kept, and fetched ------------------------------

CITED = "http://127.0.0.1:{port}/article.asp?type=worldNews&storyID=42&src=rss/worldNews"
CITING = """
### [2013-03-26](/news/2013/03/26/index.md)

# {title}

### Sources:

1. [Reuters]({url})
"""


def test_a_source_keeps_the_url_as_cited_and_is_fetched_with_it(site_dir, crawl, tmp_path):
    """An old server answers only the spelling the page cited (its own query order, '/' unescaped)."""
    outlet = SiteServer(tmp_path)
    cited = CITED.format(port=outlet.httpd.server_address[1])
    outlet.routes["/article.asp?type=worldNews&storyID=42&src=rss/worldNews"] = [
        (200, {"Content-Type": "text/html"}, b"<html><head><title>Quake jolts Taipei</title></head><body><p>"
         + b"A 6.0 quake jolted Taipei on Wednesday. " * 40 + b"</p></body></html>")
    ]  # fmt: skip
    respelled = cited.replace("?type=worldNews&storyID=42", "?storyID=42&type=worldNews")
    folder = site_dir / "news/2013/03/26"
    (folder / "quake-a.md").write_text(CITING.format(title="A quake jolts Taipei.", url=cited))
    (folder / "quake-b.md").write_text(
        CITING.format(title="Another event on the quake in Taipei.", url=respelled)
    )
    site = SiteServer(site_dir)
    window = ("--since", "2013-03-26", "--until", "2013-03-26", "--allow-private")
    try:
        # The first page cites the old server's own spelling; a later one respells it.
        (folder / "index.md").write_text(
            "## [2013-03-26](/news/2013/03/26/index.md)\n\n### [a ](/news/2013/03/26/quake-a.md)\n"
        )
        first = crawl("--start-url", site.url("news/2013/03/26/index.md"), *window, check_sources=True)
        (folder / "index.md").write_text(
            "## [2013-03-26](/news/2013/03/26/index.md)\n\n### [a ](/news/2013/03/26/quake-a.md)\n\n"
            "### [b ](/news/2013/03/26/quake-b.md)\n"
        )
        mirror = crawl(
            "--start-url", site.url("news/2013/03/26/index.md"), *window, db=first.db, check_sources=True
        )
    finally:
        site.close()
        outlet.close()
    source = mirror.query("SELECT id, url, cited_url, status FROM sources WHERE url LIKE '%article.asp%'")
    assert len(source) == 1  # one resource, cited twice
    assert source[0]["cited_url"] == cited and source[0]["url"] != cited  # canonical: reordered, escaped
    assert source[0]["status"] == "alive"  # fetched as cited, not as canonicalised
    assert mirror.query("SELECT cited_url FROM source_aliases WHERE source_id = ?", [source[0]["id"]]) == [
        {"cited_url": respelled}
    ]
    assert any("type=worldNews&storyID=42&src=rss/worldNews" in path for path in outlet.requests)


def test_a_mirror_of_the_previous_version_is_filled_in_on_the_next_run(crawl, tmp_path):
    """What the previous version left: no cited spellings, no Changes rows, snapshots without them."""
    import json
    import sqlite3

    db = tmp_path / "old.db"
    reference = crawl(db=tmp_path / "new.db")
    crawl(db=db)
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE sources SET cited_url = NULL")
        conn.execute("DELETE FROM event_changes")
        for url, snapshot in conn.execute(
            "SELECT url, snapshot FROM event_urls WHERE snapshot IS NOT NULL"
        ).fetchall():
            data = json.loads(snapshot)
            data.pop("changes")
            for source in data["sources"]:
                source.pop("cited")
            conn.execute(
                "UPDATE event_urls SET snapshot = ? WHERE url = ?", [json.dumps(data, sort_keys=True), url]
            )
    conn.close()
    again = crawl("--full", db=db)
    assert again.summary["events_new"] == again.summary["events_changed"] == 0  # nothing changed upstream
    for sql in (
        "SELECT url, cited_url FROM sources ORDER BY url",
        "SELECT listed_on, url, changed_at, label FROM event_changes ORDER BY listed_on, url",
        "SELECT count(*) AS n FROM event_versions",
    ):
        assert again.query(sql) == reference.query(sql), sql
