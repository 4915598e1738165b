"""The database, not the site, fails: full disk, locked by another program.

Each must end in a clear error and a non-zero exit, with what was stored
before intact and a later run able to finish the job.
"""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys

import pytest

WINDOW = ("--since", "2013-03-27", "--until", "2013-03-27")


def run_cli(site, db, *args, preexec_fn=None):
    cmd = [sys.executable, "-m", "crawler", "run", "--db", str(db), "--start-url", site.url("index.md")]
    return subprocess.run(
        [*cmd, *args, "-s", "CHECK_SOURCES=False", "-s", "LOCK_TIMEOUT=1", "--json"],
        capture_output=True,
        text=True,
        preexec_fn=preexec_fn,
        timeout=180,
    )


def rows(db, sql):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_full_disk_stops_the_crawl_with_a_clear_error_and_loses_nothing(site, tmp_path):
    db = tmp_path / "mirror.db"
    first = run_cli(site, db, *WINDOW)
    assert first.returncode == 0, first.stderr
    before = rows(db, "SELECT id, content_hash FROM events ORDER BY id")
    assert len(before) == 16
    limit = db.stat().st_size + 64 * 1024

    def small_disk():  # files of this process may not grow past `limit` bytes: as a disk that fills up
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = run_cli(site, db, preexec_fn=small_disk)
    assert full.returncode == 1, full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write the database") and "next run resumes" in last
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    stored = dict(rows(db, "SELECT id, content_hash FROM events"))
    assert all(stored[event_id] == content for event_id, content in before)  # nothing lost

    again = run_cli(site, db)  # room again: the next run completes the mirror
    assert again.returncode == 0, again.stderr
    reference = tmp_path / "reference.db"
    assert run_cli(site, reference).returncode == 0
    query = "SELECT id, url, content_hash FROM events ORDER BY id"
    assert rows(db, query) == rows(reference, query)


def test_a_database_another_program_keeps_locked_is_a_clear_error(site, tmp_path):
    db = tmp_path / "mirror.db"
    assert run_cli(site, db, *WINDOW).returncode == 0
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # e.g. a sqlite3 shell left in a write transaction
    try:
        proc = run_cli(site, db)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot write the database")
    assert "locked" in proc.stderr
    assert rows(db, "SELECT count(*) FROM events") == [(16,)]
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_a_read_only_database_is_a_clear_error(site, tmp_path):
    db = tmp_path / "mirror.db"
    assert run_cli(site, db, *WINDOW).returncode == 0
    before = rows(db, "SELECT id, content_hash FROM events ORDER BY id")
    if os.geteuid() == 0:  # root writes through file modes: make the file immutable instead
        if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
            pytest.skip("running as root and chattr +i is not permitted here: cannot make a read-only file")
        undo = ["chattr", "-i", str(db)]
    else:
        db.chmod(0o444)
        undo = ["chmod", "644", str(db)]
    try:
        proc = run_cli(site, db)
    finally:
        subprocess.run(undo, check=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot write the database")
    assert "readonly" in proc.stderr or "read-only" in proc.stderr or "Permission" in proc.stderr
    assert rows(db, "SELECT id, content_hash FROM events ORDER BY id") == before
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
