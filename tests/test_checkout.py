"""``run --checkout DIR``: a local checkout imported through the same pipelines as a crawl.

The mirror must be the one a ``file://`` crawl of the same tree makes, table
for table; a re-import reads only the files that changed; a killed import
resumes to the mirror an uninterrupted one makes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from crawler.testing.sitegen import generate

NOW = "2019-07-01T12:00:00"
LATER = "2019-07-01T14:00:00"

# What a mirror holds, keyed by what rows point to (row ids follow the order pages were stored).
TABLES = {
    "events": "SELECT id, url, date, story, topic, text, title, description, text_key, content_hash,"
    " removed_at, removed_reason, superseded_by FROM events ORDER BY id",
    "event_urls": "SELECT url, event_id, via, date, text_key, title, listed, content_hash, snapshot,"
    " removed_at FROM event_urls ORDER BY url",
    "event_sources": "SELECT es.event_id, s.url, es.label, es.position FROM event_sources es"
    " JOIN sources s ON s.id = es.source_id ORDER BY 1, 4",
    "sources": "SELECT url, cited_url, domain, status FROM sources ORDER BY url",
    "related_events": "SELECT event_id, position, related_url, related_id, title, contexts, via"
    " FROM related_events ORDER BY 1, 2",
    "days": "SELECT site, date, url, previous_url FROM days ORDER BY 1, 2",
    "day_events": "SELECT site, date, position, url, event_id FROM day_events ORDER BY 1, 2, 3",
    "event_changes": "SELECT listed_on, url, event_id, position, title, changed_at, label"
    " FROM event_changes ORDER BY 1, 2",
    "event_versions": "SELECT event_id, url, content_hash, snapshot FROM event_versions ORDER BY 1, 2",
    "pages": "SELECT url, kind, error, content_hash, size, http_status, date, redirect_to, bad_links,"
    " heading_date FROM pages ORDER BY url",
}


def assert_same_mirror(a, b, skip=()):
    for name, sql in TABLES.items():
        if name not in skip:
            assert a.query(sql) == b.query(sql), name


@pytest.fixture
def checkout(tmp_path):
    return generate(tmp_path / "checkout", days=8, events_per_day=12)


def import_(crawl, site, *args, db, now=NOW):
    return crawl("--checkout", str(site.root), "--now", now, *args, db=db)


def test_a_checkout_import_is_the_file_crawl_table_for_table(checkout, crawl, tmp_path):
    # A page outside news/, linked from the front page: the import does not walk there, and
    # neither does a crawl (it follows the front page into news/ only).
    (checkout.root / "faq").mkdir()
    (checkout.root / "faq" / "index.md").write_text("# FAQ\n\nSee [the news](/news/index.md).\n")
    with open(checkout.root / "index.md", "a") as front:
        front.write("\n[FAQ](/faq/index.md)\n")
    crawled = crawl(
        "--start-url", (checkout.root / "index.md").as_uri(), "--now", NOW, db=tmp_path / "crawled.db"
    )
    imported = import_(crawl, checkout, db=tmp_path / "imported.db")
    assert imported.scalar("SELECT count(*) FROM events") == checkout.events
    assert_same_mirror(crawled, imported)
    assert not imported.query("SELECT url FROM pages WHERE url LIKE '%/faq/%'")
    # Dangling related links were asked as files, as the crawl asks them: "file not found".
    missing = imported.scalar("SELECT count(*) FROM pages WHERE error = 'file not found'")
    assert missing > 0 and imported.summary["errors_by_reason"] == {"file not found": missing}


def test_a_file_over_the_size_limit_is_recorded_as_a_crawl_records_it(checkout, crawl, tmp_path):
    event = next(checkout.root.glob("news/*/*/*/[!i]*.md"))
    event.write_bytes(event.read_bytes() + b"\n" + b"padding " * 4000)
    limit = ("-s", f"DOWNLOAD_MAXSIZE={event.stat().st_size - 100}")
    start = (checkout.root / "index.md").as_uri()
    crawled = crawl("--start-url", start, "--now", NOW, *limit, db=tmp_path / "crawled.db")
    imported = import_(crawl, checkout, *limit, db=tmp_path / "imported.db")
    assert_same_mirror(crawled, imported)
    row = imported.query("SELECT error, content_hash, size FROM pages WHERE error LIKE 'size:%'")
    assert len(row) == 1 and row[0]["content_hash"] and row[0]["size"] == event.stat().st_size
    again = import_(crawl, checkout, *limit, db=tmp_path / "imported.db", now=LATER)
    assert again.summary["pages_fetched"] == 0  # size and mtime stored: not read again


def test_a_reimport_reads_only_the_files_that_changed(checkout, crawl, tmp_path):
    db = tmp_path / "mirror.db"
    import_(crawl, checkout, db=db)
    events = sorted((checkout.root / "news").rglob("event-*.md"))
    for path in events[:10]:  # ten edits in place
        path.write_text(path.read_text().replace("\n# ", "\n# Edited: ", 1))
    for path in events[10:15]:  # five files a checkout touched without changing them
        os.utime(path, ns=(time.time_ns(), time.time_ns()))
    gone = events[20]
    gone.unlink()  # deleted upstream
    again = import_(crawl, checkout, db=db, now=LATER)
    summary = again.summary
    # Ten read and parsed, five read and found unchanged (not parsed), the rest not opened;
    # the deleted file's page was asked for once, as a crawl would, and found missing.
    assert summary["pages_fetched"] == 10 + 5 + 1
    assert summary["requests"] == 1
    files = len(list(checkout.root.rglob("*.md")))
    assert summary["pages_not_due"] == files - 15
    assert summary["events_changed"] == 10 and summary["events_new"] == 0
    edited = again.query("SELECT title FROM events WHERE title LIKE 'Edited: %'")
    assert len(edited) == 10
    # Nothing lost: the edited events' earlier text is kept as versions; the deleted page's event
    # is marked, not deleted.
    row = again.query(
        "SELECT e.removed_at, e.removed_reason FROM events e JOIN event_urls u ON u.event_id = e.id"
        " WHERE u.url = ?",
        [gone.as_uri()],
    )
    assert row and row[0]["removed_at"] and row[0]["removed_reason"] == "gone"
    kept = again.query("SELECT snapshot FROM event_versions WHERE recorded_at LIKE '2019-07-01T14:%'")
    assert len(kept) == 10 and not [row for row in kept if "Edited" in row["snapshot"]]
    # A third import with nothing changed opens no file at all.
    third = import_(crawl, checkout, db=db, now="2019-07-01T16:00:00")
    assert third.summary["pages_fetched"] == 0 and third.summary["requests"] == 0


def test_a_killed_import_resumes_to_the_same_mirror(tmp_path, crawl):
    site = generate(tmp_path / "checkout", days=60, events_per_day=30)
    whole = import_(crawl, site, db=tmp_path / "whole.db")
    db = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "crawler", "run", "--db", str(db), "--checkout", str(site.root),
           "--now", NOW, "-s", "CHECK_SOURCES=False", "-s", "STORE_BATCH_PAGES=100"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and stored(db) < site.events // 3:
            time.sleep(0.05)
        assert proc.poll() is None, "the import ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the crawl process and its parse workers
        proc.wait()
    interrupted = stored(db)
    assert 0 < interrupted < site.events
    resumed = import_(crawl, site, db=db)
    assert resumed.summary["pages_not_due"] > 0  # what had landed was not read again
    assert_same_mirror(whole, resumed)


def stored(db) -> int:
    import sqlite3

    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0
