"""Incremental sync against a generated site that the tests change between runs.

Time moves with ``--now``: the generated site's newest day is 2019-06-30, so
"2019-07-01" makes it recent (asked every run) and "2019-09-01" makes every
page a month or more old (asked again after 30 days, then 60, ...).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import crawler_in, read_count

from crawler.loopback.site import SiteServer
from crawler.testing.sitegen import add_day, generate

RECENT = "2019-07-01T12:00:00Z"
LATER_THAT_DAY = "2019-07-01T14:00:00Z"
OLD = "2019-09-01T00:00:00Z"


@pytest.fixture
def gen(tmp_path):
    site = generate(tmp_path / "gen", days=6, events_per_day=4)
    server = SiteServer(site.root)
    server.etags = True
    server.site = site
    yield server
    server.close()


def sync(crawl, server, now, *args, db=None):
    return crawl("--start-url", server.url("index.md"), "--now", now, *args, db=db)


def asked(server) -> list[str]:
    return sorted(p for p in server.requests if p != "/robots.txt")


def content(mirror) -> dict:
    """What the mirror says about the record, without timestamps and run numbers."""
    queries = {
        "events": "SELECT id, url, date, story, topic, title, text, description, content_hash,"
        " removed_at FROM events ORDER BY id",
        "event_urls": "SELECT url, event_id, via, listed, content_hash FROM event_urls ORDER BY url",
        "event_sources": "SELECT es.event_id, es.position, es.label, s.url FROM event_sources es"
        " JOIN sources s ON s.id = es.source_id ORDER BY 1, 2",
        "related": "SELECT event_id, position, related_url, related_id FROM related_events ORDER BY 1, 2",
        "days": "SELECT date, url, event_count, previous_url FROM days ORDER BY date",
        "day_events": "SELECT date, position, url, event_id FROM day_events ORDER BY 1, 2",
        "pages": "SELECT url, kind, http_status, content_hash FROM pages ORDER BY url",
        # History is what the site changed, never an artefact of where a crawl was stopped.
        "event_versions": "SELECT event_id, url, content_hash FROM event_versions ORDER BY 1, 2, 3",
    }
    return {name: mirror.query(sql) for name, sql in queries.items()}


def test_a_generated_site_mirrors_to_one_event_per_event(tmp_path, crawl):
    """Edited events (two files, a Changes list) and shared sources, at a size no hand test reaches."""
    site = generate(tmp_path / "edits", days=12, events_per_day=10, edited=0.3, shared_sources=0.3)
    files = sorted(p.relative_to(site.root).as_posix() for p in site.root.rglob("*.md"))
    first_versions = [f for f in files if "/event-" in f and "-first-" in f]
    assert len(first_versions) > 20, "the generator wrote too few edited events to test"
    server = SiteServer(site.root)
    try:
        mirror = crawl("--start-url", server.url("index.md"), "--now", OLD)
    finally:
        server.close()
    assert mirror.scalar("SELECT count(*) FROM events") == site.events
    # Every first-version file is known, as a URL of the same event as its current page.
    pairs = mirror.query(
        "SELECT a.url AS old, b.url AS new FROM event_urls a JOIN event_urls b ON a.event_id = b.event_id"
        " WHERE a.url LIKE '%-first-%' AND b.url NOT LIKE '%-first-%'"
    )
    assert sorted(p["old"] for p in pairs) == sorted(server.url(f) for f in first_versions)
    assert all(p["old"].replace("-first-", "-") == p["new"] for p in pairs)
    # A source cited by several events is one row that several events point at.
    shared = mirror.scalar(
        "SELECT count(*) FROM (SELECT source_id FROM event_sources GROUP BY source_id"
        " HAVING count(DISTINCT event_id) > 1)"
    )
    assert shared > 10
    assert mirror.scalar("SELECT count(*) FROM sources") == mirror.scalar(
        "SELECT count(DISTINCT url) FROM sources"
    )


def test_an_unchanged_sync_downloads_no_page_body(gen, crawl):
    first = sync(crawl, gen, OLD)
    assert first.summary["events_new"] == 24
    events = first.query("SELECT * FROM events ORDER BY id")
    gen.requests.clear()
    second = sync(crawl, gen, "2019-09-01T02:00:00Z", db=first.db)
    # Nothing is due two hours later: only the start URL is asked, and it answers 304.
    assert asked(gen) == ["/index.md"]
    assert (second.summary["requests"], second.summary["bodies"]) == (2, 1)  # robots.txt is the body
    assert second.summary["pages_not_modified"] == 1
    assert second.query("SELECT * FROM events ORDER BY id") == events  # not one event row written

    # Forty-five days later every page is due: all are asked, all answer 304, nothing is parsed.
    gen.requests.clear()
    third = sync(crawl, gen, "2019-10-16T00:00:00Z", db=first.db)
    assert third.summary["pages_not_modified"] == first.summary["pages_fetched"] - first.summary["errors"]
    assert third.summary["events_new"] == third.summary["events_changed"] == 0
    assert third.query("SELECT * FROM events ORDER BY id") == events
    # Found unchanged once more, a month-old page now waits twice as long.
    page = third.query("SELECT * FROM pages WHERE url = ?", [gen.url("news/2019/06/30/index.md")])[0]
    assert page["unchanged_streak"] == 1
    assert "2019-12-03" <= page["next_check_at"] <= "2019-12-27"  # 60 days ± 20%


def test_a_new_day_is_found_through_the_front_page(gen, crawl):
    first = sync(crawl, gen, RECENT)
    new_day = add_day(gen.site, events=3)
    gen.requests.clear()
    second = sync(crawl, gen, LATER_THAT_DAY, db=first.db)
    assert second.summary["events_new"] == 3
    assert second.scalar("SELECT count(*) FROM events WHERE date = ?", [new_day.isoformat()]) == 3
    assert second.scalar("SELECT max(date) FROM days") == new_day.isoformat()
    # The newest days are asked again; a day two days old is not due before tomorrow.
    paths = asked(gen)
    assert "/news/2019/07/1/index.md" in paths and "/news/2019/06/30/index.md" in paths
    assert [p for p in paths if "/2019/06/" in p and "/2019/06/30/" not in p] == []
    assert second.summary["pages_not_due"] >= 1


def test_an_edited_event_keeps_its_earlier_version(gen, crawl):
    first = sync(crawl, gen, RECENT)
    page = next((gen.root / "news/2019/06/30").glob("event-2-*.md"))
    url = gen.url(page.relative_to(gen.root).as_posix())
    before = first.query("SELECT id, text FROM events WHERE url = ?", [url])[0]
    page.write_text(page.read_text().replace(", item 2.", ", item 2 (corrected)."))
    second = sync(crawl, gen, LATER_THAT_DAY, db=first.db)
    assert second.summary["events_changed"] == 1 and second.summary["events_new"] == 0
    after = second.query("SELECT id, text FROM events WHERE url = ?", [url])[0]
    assert after["id"] == before["id"] and "(corrected)" in after["text"]
    versions = second.query("SELECT * FROM event_versions WHERE event_id = ?", [before["id"]])
    assert len(versions) == 1 and before["text"] in versions[0]["snapshot"]


def test_a_page_that_disappears_is_marked_removed_and_restored_when_it_returns(gen, crawl):
    first = sync(crawl, gen, RECENT)
    page = next((gen.root / "news/2019/06/30").glob("event-1-*.md"))
    url = gen.url(page.relative_to(gen.root).as_posix())
    event_id = first.scalar("SELECT id FROM events WHERE url = ?", [url])
    text = page.read_text()
    page.unlink()
    gone = sync(crawl, gen, "2019-07-01T13:00:00Z", db=first.db)
    row = gone.query("SELECT * FROM events WHERE id = ?", [event_id])[0]
    assert (row["removed_reason"], row["removed_at"]) == ("gone", "2019-07-01T13:00:00+00:00")
    assert gone.summary["events_removed"] == 1
    assert gone.scalar("SELECT count(*) FROM event_sources WHERE event_id = ?", [event_id]) >= 1  # kept

    page.write_text(text)
    back = sync(crawl, gen, LATER_THAT_DAY, db=first.db)
    row = back.query("SELECT * FROM events WHERE id = ?", [event_id])[0]
    assert row["removed_at"] is None and row["removed_reason"] is None
    assert back.summary["events_restored"] == 1


def test_an_event_page_that_now_redirects_to_another_event_is_superseded(gen, crawl):
    first = sync(crawl, gen, RECENT)
    old, new = (next((gen.root / "news/2019/06/30").glob(f"event-{n}-*.md")) for n in (1, 2))
    old_path, new_path = ("/" + page.relative_to(gen.root).as_posix() for page in (old, new))
    ids = {
        path: first.scalar("SELECT id FROM events WHERE url = ?", [gen.origin + path])
        for path in (old_path, new_path)
    }
    gen.routes[old_path] = [(301, {"Location": gen.origin + new_path}, b"")]
    second = sync(crawl, gen, LATER_THAT_DAY, db=first.db)
    row = second.query("SELECT * FROM events WHERE id = ?", [ids[old_path]])[0]
    assert (row["removed_reason"], row["superseded_by"]) == ("superseded", ids[new_path])
    assert second.scalar("SELECT kind FROM pages WHERE url = ?", [gen.origin + old_path]) == "redirect"


def test_an_event_its_day_no_longer_lists_is_marked_removed(gen, crawl):
    first = sync(crawl, gen, RECENT)
    day = gen.root / "news/2019/06/30/index.md"
    listing = day.read_text()
    dropped = next(line for line in listing.splitlines() if "item 3." in line)
    day.write_text(listing.replace(dropped + "\n", ""))
    second = sync(crawl, gen, "2019-07-01T13:00:00Z", db=first.db)
    removed = second.query("SELECT url, removed_reason FROM events WHERE removed_at IS NOT NULL")
    assert len(removed) == 1 and removed[0]["removed_reason"] == "unlisted"
    assert removed[0]["url"] in dropped.replace("](/", "](" + gen.origin + "/")
    history = second.query("SELECT * FROM day_versions")
    assert len(history) == 1 and "item 3." in history[0]["listing"]

    day.write_text(listing)
    third = sync(crawl, gen, LATER_THAT_DAY, db=first.db)
    assert third.scalar("SELECT count(*) FROM events WHERE removed_at IS NOT NULL") == 0
    assert third.summary["events_restored"] == 1


@pytest.fixture(scope="module")
def big_site(tmp_path_factory):
    """A site of 240 events and an uninterrupted crawl of it, shared by the kill tests."""
    folder = tmp_path_factory.mktemp("big")
    site = generate(folder / "site", days=30, events_per_day=8)
    server = SiteServer(site.root)
    server.delay = 0.02
    reference = sync(crawler_in(folder), server, OLD, db=folder / "reference.db")
    yield site, server, reference
    server.close()


@pytest.mark.xdist_group("big-site")  # one worker builds the shared site and its reference crawl
@pytest.mark.parametrize("kill_after", [15, 90, 180])  # events stored when the run is killed, of 240
def test_a_run_killed_mid_crawl_is_completed_by_the_next(tmp_path, crawl, kill_after, big_site):
    site, server, reference = big_site
    db = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "crawler", "run", "--db", str(db), "--start-url", server.url("index.md")]
    proc = subprocess.Popen([*cmd, "--now", OLD, "-s", "CHECK_SOURCES=False"], cwd=tmp_path)
    deadline = time.monotonic() + 60
    stored = 0
    while stored < kill_after and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        stored = read_count(db, "SELECT count(*) FROM events")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 0 < stored < site.events, "the crawl was not caught mid-way"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored_pages = {
        url[len(server.origin) :]
        for (url,) in conn.execute("SELECT url FROM pages WHERE fetched_at IS NOT NULL")
    }
    conn.close()
    server.requests.clear()
    resumed = sync(crawl, server, OLD, db=db)
    assert content(resumed) == content(reference)
    # What the killed run had stored is not fetched again; the start URL is asked every run.
    assert stored_pages & set(server.requests) <= {"/index.md"}
    runs = resumed.query("SELECT status FROM sync_runs ORDER BY id")
    assert [r["status"] for r in runs] == ["abandoned", "finished"]


def test_a_second_writer_waits_then_exits_75(gen, crawl, tmp_path):
    gen.delay = 0.6  # one request at a time: the first run takes ten seconds or more
    db = tmp_path / "mirror.db"
    first = subprocess.Popen(
        [sys.executable, "-m", "crawler", "run", "--db", str(db), "--start-url", gen.url("index.md")]
        + ["--now", OLD, "-s", "CHECK_SOURCES=False", "-s", "CONCURRENT_REQUESTS=1", "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not read_count(db, "SELECT count(*) FROM pages") and time.monotonic() < deadline:
        time.sleep(0.05)
    others = [
        [sys.executable, "-m", "crawler", "run", "--db", str(db), "--start-url", gen.url("index.md")],
        [sys.executable, "-m", "crawler", "check-links", "--db", str(db)],
    ]
    for other in others:
        assert first.poll() is None, f"the first run ended before the others tried: {first.communicate()}"
        started = time.monotonic()
        proc = subprocess.run(
            # Were the lock not held, nothing may leave the machine: no archive lookups.
            [*other, "-s", "LOCK_TIMEOUT=1", "-s", "CHECK_SOURCES=False"]
            + ["-s", f"WAYBACK_API_URL={gen.origin}/"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert proc.returncode == 75, proc.stderr
        assert time.monotonic() - started >= 1  # it waited before giving up
        assert f"{db} is being written by pid {first.pid} (run" in proc.stderr
    out, _ = first.communicate(timeout=120)
    assert first.returncode == 0
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*), min(status) FROM sync_runs").fetchone() == (1, "finished")
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 24
    conn.close()


def test_status_says_what_the_mirror_holds_and_what_is_due(gen, crawl, tmp_path):
    first = sync(crawl, gen, OLD)
    later = "2019-10-20T00:00:00Z"  # every page is due again (see the unchanged-sync test)
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "status", "--db", str(first.db), "--json", "--now", later],
        capture_output=True,
        text=True,
        check=True,
    )
    s = json.loads(proc.stdout)
    assert s["events"] == {"count": 24, "removed": 0, "versions": 0}
    assert s["days"] == {"count": 6, "first": "2019-06-25", "last": "2019-06-30"}
    assert s["last_sync"]["requests"] == first.summary["requests"]
    assert s["last_check_links"] is None
    due = first.scalar("SELECT count(*) FROM pages WHERE next_check_at <= ?", [later.replace("Z", "+00:00")])
    assert s["due"]["pages_due_now"] == due > 0
    assert sum(s["pages"].values()) == first.scalar("SELECT count(*) FROM pages")
    assert s["pages"]["failed"] == first.scalar("SELECT count(*) FROM pages WHERE error IS NOT NULL")
