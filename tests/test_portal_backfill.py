"""The whole record: a backfill planned, resumed after a kill, and kept current at the cost of what changed.

Against the strict MediaWiki stand-in, filled with generated years of portal
days (``crawler.testing.portalgen``), through the real CLI into mirror.db.
"""

# ruff: noqa: E501  (titles are quoted whole)

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

from conftest import read_count
from test_wikipedia import api_calls, portal

from crawler.testing.portalgen import fill

AFTER = "2023-02-01T12:00:00Z"


def plan(crawl_db, wiki, *args) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "run", "--site", "wikipedia", "--start-url", wiki.api_url,
         "--dry-run", "--json", "--db", str(crawl_db), "--now", AFTER, *args],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(proc.stdout)


def test_a_dry_run_counts_a_backfill_and_sends_nothing(crawl, wiki, tmp_path):
    fill(wiki, dt.date(2022, 11, 1), dt.date(2022, 12, 31))
    window = ("--since", "2022-11-01", "--until", "2023-01-31")
    db = tmp_path / "mirror.db"
    before = plan(db, wiki, *window)
    assert wiki.requests == [] and not db.exists()
    assert (before["days"], before["revision_queries"], before["parses_if_unchanged"]) == (92, 2, 3)
    mirror = portal(crawl, wiki, *window, db=db)
    assert len(wiki.requests) == before["requests_at_least"] == mirror.summary["requests"] == 5
    assert mirror.scalar("SELECT count(*) FROM days WHERE site = 'wikipedia'") == 92
    after = plan(db, wiki, *window)
    assert (after["days_held"], after["parses_if_unchanged"], after["requests_at_least"]) == (92, 0, 2)
    text = subprocess.run(
        [sys.executable, "-m", "crawler", "run", "--site", "wikipedia", "--dry-run", "--db", str(db), *window],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert "revisions queries: 2 (50 days each)" in text and "nothing sent, nothing written" in text


def test_a_killed_backfill_resumes_without_asking_again_what_is_stored(wiki, tmp_path):
    fill(wiki, dt.date(2022, 7, 1), dt.date(2022, 12, 31))
    wiki.delay = 0.3  # a month a request: time to kill the run mid-way
    db = tmp_path / "mirror.db"
    cmd = [sys.executable, "-m", "crawler", "run", "--site", "wikipedia", "--start-url", wiki.api_url,
           "--since", "2022-07-01", "--until", "2023-01-31", "--now", AFTER, "--db", str(db), "--json",
           "-s", "CHECK_SOURCES=False"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 90
    while read_count(db, "SELECT count(*) FROM days") < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    held = {r[0] for r in _rows(db, "SELECT date FROM days")}
    assert 60 <= len(held) < 215, "the kill did not land mid-backfill"
    wiki.requests.clear()
    wiki.delay = 0
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    parsed = [c["page"] for c in api_calls(wiki) if c["action"] == "parse"]
    missing = {dt.date(2022, 7, 1) + dt.timedelta(days=n) for n in range(215)} - {dt.date.fromisoformat(d) for d in held}
    months_left = {(d.year, d.month) for d in missing}
    assert parsed, "nothing left to read?"
    for page in parsed:  # only what the kill left unread is read again
        assert any(f"{m:%B}_{m:%Y}" in page or f"{m:%Y}_{m:%B}_" in page for m in (dt.date(y, mo, 1) for y, mo in months_left)), page
    assert len(parsed) <= len(months_left) + len(missing)
    assert {r[0] for r in _rows(db, "SELECT count(*) FROM days")} == {215}
    assert _rows(db, "SELECT count(*) FROM (SELECT date, text FROM events GROUP BY date, text HAVING count(*) > 1)") == [(0,)]
    runs = _rows(db, "SELECT status FROM sync_runs ORDER BY id")
    assert runs == [("abandoned",), ("finished",)]


def _rows(db, sql):
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_sync_finds_older_days_edited_since_through_recent_changes(crawl, wiki):
    backfill = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31")
    # The first sync after a backfill asks about every held day once (no earlier sync to start from).
    wiki.requests.clear()
    first = crawl("--site", "wikipedia", "--start-url", wiki.api_url, "--now", "2023-02-02T00:00:00Z", db=backfill.db)
    calls = api_calls(wiki)
    assert [c.get("list") or c.get("prop") for c in calls] == ["revisions"]
    assert len(calls[0]["titles"].split("|")) == 33  # Jan 1 to Feb 2
    assert first.query("SELECT covers FROM sync_runs ORDER BY id") == [{"covers": "backfill"}, {"covers": "sweep"}]
    # A week later, an editor fixes January 5; nothing else changed.
    wiki.clock = dt.datetime(2023, 2, 8, 9, 0, tzinfo=dt.UTC)
    day5 = "Portal:Current events/2023 January 5"
    head, _, tail = wiki.html(day5).rpartition("</ul>")
    wiki.edit(day5, f"{head}<li>A correction, years later.</li></ul>{tail}")
    wiki.requests.clear()
    synced = crawl("--site", "wikipedia", "--start-url", wiki.api_url, "--now", "2023-02-09T00:00:00Z", db=backfill.db)
    calls = api_calls(wiki)
    assert [c.get("list") or c.get("rvprop") or c["action"] for c in calls] == ["recentchanges", "ids|timestamp", "parse"]
    assert calls[0]["rcend"] == "2023-02-01T23:00:00Z"  # the last sync began at 00:00, less an hour
    assert "Portal:Current_events/2023_January_5" in calls[1]["titles"].split("|")
    assert len(calls[1]["titles"].split("|")) == 8  # the last 7 days and January 5, not the whole mirror
    assert calls[2]["page"] == "Portal:Current_events/2023_January_5"
    assert synced.scalar("SELECT count(*) FROM events WHERE text = 'A correction, years later.'") == 1
    assert synced.query("SELECT covers FROM sync_runs ORDER BY id DESC LIMIT 1") == [{"covers": "recent changes"}]


def test_a_sync_after_a_long_gap_asks_about_every_held_day(crawl, wiki):
    backfill = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31")
    crawl("--site", "wikipedia", "--start-url", wiki.api_url, "--now", "2023-02-02T00:00:00Z", db=backfill.db)
    wiki.requests.clear()
    later = crawl("--site", "wikipedia", "--start-url", wiki.api_url, "--now", "2023-04-01T00:00:00Z", db=backfill.db)
    calls = api_calls(wiki)
    assert [c.get("prop") for c in calls] == ["revisions"]  # past the 30 days of recent changes: a sweep
    assert "Portal:Current_events/2023_January_5" in calls[0]["titles"].split("|")
    assert later.query("SELECT covers FROM sync_runs ORDER BY id DESC LIMIT 1") == [{"covers": "sweep"}]


def test_a_day_a_run_could_not_read_is_asked_again_by_the_next_sync(crawl, wiki):
    original = wiki.answer

    def down(path):
        if "2023_January_5" in path and "action=parse" in path:
            return 503, {}, b"down"
        return original(path)

    wiki.answer = down
    window = ("--since", "2023-01-05", "--until", "2023-01-05")
    first = portal(crawl, wiki, *window, "-s", "WIKIPEDIA_RETRIES=0")
    assert first.summary["errors"] == 1
    del wiki.answer
    wiki.requests.clear()
    # A sync of the last week, weeks later: January 5 is not in its window, but is asked again.
    synced = crawl("--site", "wikipedia", "--start-url", wiki.api_url, "--now", "2023-02-02T00:00:00Z", db=first.db)
    calls = api_calls(wiki)
    assert "Portal:Current_events/2023_January_5" in calls[0]["titles"].split("|")
    assert synced.scalar("SELECT count(*) FROM days WHERE date = '2023-01-05'") == 1


def test_unreadable_recent_changes_fall_back_to_asking_about_every_held_day(crawl, wiki):
    backfill = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31")
    crawl("--site", "wikipedia", "--start-url", wiki.api_url, "--now", "2023-02-02T00:00:00Z", db=backfill.db)
    original = wiki.answer

    def broken(path):
        if "list=recentchanges" in path:
            return 200, {}, json.dumps({"error": {"code": "badvalue", "info": "Unrecognized value."}}).encode()
        return original(path)

    wiki.answer = broken
    wiki.requests.clear()
    synced = crawl("--site", "wikipedia", "--start-url", wiki.api_url, "--now", "2023-02-09T00:00:00Z", db=backfill.db)
    calls = api_calls(wiki)
    assert [c.get("list") or c.get("prop") for c in calls] == ["recentchanges", "revisions"]
    assert len(calls[1]["titles"].split("|")) == 38  # the week, and every held day of January
    assert synced.query("SELECT status, covers FROM sync_runs ORDER BY id DESC LIMIT 1") == [
        {"status": "finished", "covers": "sweep"}
    ]
