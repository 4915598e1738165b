"""Every command, on every bad input: one line ``error: ...``, exit 2 (usage) or 1 (runtime), no traceback.

Each case is a command and a bad input; what the user sees is checked as the
README's "Faults and bad input" table shows it.  Read commands must read a
read-only mirror without writing it, and no command writes a mirror of a newer
schema than it knows.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import ROOT

from pipeline.schema import SCHEMA_VERSION, open_database

READERS = {
    "export": ["export", "--format", "jsonl"],
    "dead-links": ["dead-links"],
    "report": ["report", "--out", "{tmp}/report"],
    "serve": ["serve", "--port", "0"],
    "status": ["status"],
}
WRITERS = {
    "check-links": ["check-links", "-s", "LOCK_TIMEOUT=1"],
    "run": ["run", "-s", "LOCK_TIMEOUT=1", "-s", "CHECK_SOURCES=False"],
}


def cli(*args, cwd, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def command(args, db, tmp_path) -> list[str]:
    return [arg.format(tmp=tmp_path) for arg in args] + ["--db", str(db)]


def one_error_line(proc, code: int, *words: str) -> str:
    """The process exited ``code`` having said one line, ``error: ...``, with each of ``words``."""
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file of the folder and its content's hash: to see that nothing was written."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


@pytest.fixture
def mirror(tmp_path) -> Path:
    """A current mirror, empty, its WAL folded back into the file."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    db = folder / "mirror.db"
    open_database(str(db)).close()
    return db


@contextmanager
def read_only(db: Path):
    """The mirror's file and folder made read-only, for root too (chattr +i), as a read-only mount."""
    folder = db.parent
    if os.geteuid() == 0:
        done = []
        for path in (db, folder):
            if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
                for undo in done:
                    subprocess.run(["chattr", "-i", str(undo)], check=True)
                pytest.skip(
                    "running as root and chattr +i is not permitted here: cannot make a read-only file"
                )
            done.append(path)
        undo = [["chattr", "-i", str(folder)], ["chattr", "-i", str(db)]]
    else:
        db.chmod(0o444)
        folder.chmod(0o555)
        undo = [["chmod", "755", str(folder)], ["chmod", "644", str(db)]]
    try:
        yield
    finally:
        for step in undo:
            subprocess.run(step, check=True)


# -- a file that is not a mirror ---------------------------------------------------


@pytest.mark.parametrize("name", [*READERS, *WRITERS])
def test_a_file_that_is_not_sqlite_is_one_line(tmp_path, name):
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 100)
    before = db.read_bytes()
    proc = cli(*command({**READERS, **WRITERS}[name], db, tmp_path), cwd=tmp_path)
    assert one_error_line(proc, 1) == f"error: {db} is not a SQLite database"
    assert db.read_bytes() == before


@pytest.mark.parametrize("name", [*READERS])
def test_an_empty_file_or_another_database_is_not_a_mirror_and_is_left_alone(tmp_path, name):
    empty, other = tmp_path / "empty.db", tmp_path / "other.db"
    empty.touch()
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text)")
    conn.close()
    for db in (empty, other):
        before = db.read_bytes()
        proc = cli(*command(READERS[name], db, tmp_path), cwd=tmp_path)
        one_error_line(proc, 1, f"{db} is not a mirror", "python -m crawler run")
        assert db.read_bytes() == before


def test_a_folder_named_as_the_mirror(tmp_path):
    proc = cli("status", "--db", str(tmp_path), cwd=tmp_path)
    one_error_line(proc, 1, f"{tmp_path} is a folder, not a mirror")


def test_metadata_into_a_read_only_folder(mirror, tmp_path):
    with read_only(mirror):
        proc = cli("serve", "--db", str(mirror), "--write-metadata", cwd=tmp_path)
    one_error_line(proc, 1, f"cannot write {mirror.parent / 'metadata.yml'}")


@pytest.mark.parametrize("name", ["check-links", "status", "export", "dead-links", "report", "serve"])
def test_a_missing_mirror_is_said_and_not_created(tmp_path, name):
    db = tmp_path / "none.db"
    proc = cli(*command({**READERS, **WRITERS}[name], db, tmp_path), cwd=tmp_path)
    one_error_line(proc, 1, f"no mirror at {db}", "python -m crawler run")
    assert not db.exists()


@pytest.mark.parametrize("name", [*READERS, *WRITERS])
def test_a_mirror_of_a_newer_schema_is_refused_and_not_written(mirror, tmp_path, name):
    conn = sqlite3.connect(mirror)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = fingerprint(mirror.parent)
    proc = cli(*command({**READERS, **WRITERS}[name], mirror, tmp_path), cwd=tmp_path)
    line = one_error_line(proc, 1, str(mirror), "newer version of news-event-mirror", "upgrade")
    assert f"schema version {SCHEMA_VERSION + 1}; this version knows up to {SCHEMA_VERSION}" in line
    assert fingerprint(mirror.parent)["mirror.db"] == before["mirror.db"]
    wal = mirror.with_name("mirror.db-wal")  # a reader's empty WAL (SQLite's own, for WAL readers)
    assert not wal.exists() or wal.stat().st_size == 0


def test_the_schema_version_is_set_when_the_schema_is_ensured(tmp_path):
    db = tmp_path / "m.db"
    sqlite3.connect(db).close()
    open_database(str(db)).close()
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1


# -- a read-only mirror is read, never written ---------------------------------------


@pytest.mark.parametrize("name", ["export", "dead-links", "report", "status"])
def test_a_read_only_mirror_is_readable_by_every_read_command(mirror, tmp_path, name):
    before = fingerprint(mirror.parent)
    with read_only(mirror):
        proc = cli(*command(READERS[name], mirror, tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert fingerprint(mirror.parent) == before  # no -wal, no -shm, no migration


@pytest.mark.parametrize(
    "name, column", [("status", "duration_seconds"), ("dead-links", "archive_timestamp")]
)
def test_a_read_only_mirror_of_an_older_schema_says_what_to_do(mirror, tmp_path, name, column):
    table = "sync_runs" if column == "duration_seconds" else "sources"
    conn = sqlite3.connect(mirror)
    conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    before = fingerprint(mirror.parent)
    with read_only(mirror):
        proc = cli(*command(READERS[name], mirror, tmp_path), cwd=tmp_path)
    one_error_line(proc, 1, f"{mirror} has an older schema", "read-only", "make it writable")
    assert fingerprint(mirror.parent) == before


# -- where the output goes ---------------------------------------------------------


def test_export_into_a_missing_folder(mirror, tmp_path):
    out = tmp_path / "no" / "such" / "events.csv"
    proc = cli("export", "--db", str(mirror), "--format", "csv", "--out", str(out), cwd=tmp_path)
    assert one_error_line(proc, 1) == f"error: cannot write {out}: No such file or directory"


def test_report_into_a_file_or_a_read_only_folder(mirror, tmp_path):
    out = tmp_path / "taken"
    out.write_text("a file")
    proc = cli("report", "--db", str(mirror), "--out", str(out), cwd=tmp_path)
    one_error_line(proc, 2, "--out", "is a file")
    out = mirror.parent / "report"
    with read_only(mirror):
        proc = cli("report", "--db", str(mirror), "--out", str(out), cwd=tmp_path)
    one_error_line(proc, 1, f"cannot write the report into {out}")


# -- bad arguments: exit 2, nothing created ----------------------------------------


@pytest.mark.parametrize(
    "args, words",
    [
        (["run", "--start-url", "not-a-url"], ["--start-url", "not an http(s) or file URL: 'not-a-url'"]),
        (["run", "--start-url", "ftp://example.com/x"], ["--start-url", "ftp: is not fetched"]),
        (["run", "--start-url", "http://example.com:80a/"], ["--start-url", "not a valid URL"]),
        (["run", "--start-url", "https:///news/"], ["--start-url", "not a URL with a host"]),
        (["run", "--start-url", "file:///"], ["--start-url", "not a file URL with a path"]),
        (["run", "--site-root", "thecontext.net"], ["--site-root", "not an http(s) or file URL"]),
        (["run", "--since", "2013-13-01"], ["--since"]),
        (["export"], ["Missing option '--format'"]),
        (["dead-links", "--format", "xml"], ["--format"]),
        (["no-such-command"], ["No such command"]),
        (["schedule", "--sync-every", "2w"], ["expected an interval like 90s"]),
        (["schedule", "--job-timeout", "soon"], ["--job-timeout"]),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, args, words):
    proc = cli(*args, "--db", str(tmp_path / "m.db"), cwd=tmp_path, timeout=60)
    line = one_error_line(proc, 2, *words)
    assert "--help" in line  # where to read how to say it
    assert not (tmp_path / "m.db").exists()


def test_scheduler_py_bad_arguments_are_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scheduler.py"), "--sync", "61 * * * *"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    one_error_line(proc, 2, "bad cron expression")


# -- dead-links for scripts ----------------------------------------------------------


def test_dead_links_fail_on_dead_exits_1_when_any_source_is_dead(mirror, tmp_path):
    assert cli("dead-links", "--db", str(mirror), "--fail-on-dead", cwd=tmp_path).returncode == 0
    conn = sqlite3.connect(mirror)
    conn.execute(
        "INSERT INTO sources (url, domain, status, strikes, dead_since) VALUES"
        " ('https://gone.example/a', 'gone.example', 'dead', 3, '2030-01-10T12:00:00+00:00')"
    )
    conn.commit()
    conn.close()
    plain = cli("dead-links", "--db", str(mirror), cwd=tmp_path)
    assert plain.returncode == 0 and "https://gone.example/a" in plain.stdout
    failing = cli("dead-links", "--db", str(mirror), "--fail-on-dead", "--format", "csv", cwd=tmp_path)
    assert failing.returncode == 1 and "https://gone.example/a" in failing.stdout  # listed, then exit 1
    assert failing.stderr == ""


# -- what no command expected: one line, or the traceback with --debug ----------------

BOOM = """
import sys
import crawler.reports
def boom(conn):
    raise RuntimeError("the disk said no")
crawler.reports.dead_links = boom
from crawler.cli import main
sys.argv = ["python -m crawler", *sys.argv[1:]]
main()
"""


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(mirror, tmp_path):
    args = [sys.executable, "-c", BOOM]
    proc = subprocess.run(
        [*args, "dead-links", "--db", str(mirror)], capture_output=True, text=True, cwd=ROOT
    )
    assert one_error_line(proc, 1) == "error: RuntimeError: the disk said no (--debug shows where)"
    debug = subprocess.run(
        [*args, "--debug", "dead-links", "--db", str(mirror)], capture_output=True, text=True, cwd=ROOT
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "the disk said no" in debug.stderr
