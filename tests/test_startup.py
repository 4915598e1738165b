"""The command line answers without loading what its job does not need.

Timing is for ``benchmarks/startup.py``; these check what a process has
imported, which does not depend on how busy the machine is.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from conftest import ROOT

from pipeline.schema import open_database

CRAWLING = ("scrapy", "twisted", "trafilatura", "matplotlib", "apscheduler")  # a crawl's, a report's
READING = ("sqlite_utils", "numpy")  # a migration's (numpy comes with sqlite-utils)

# Run the CLI in a fresh interpreter, then say which of the heavy modules it loaded.
PROBE = """
import sys
from crawler.cli import main
sys.argv = ["python -m crawler", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
heavy = {heavy!r}
print("\\nloaded:", " ".join(sorted(m for m in heavy if m in sys.modules)), "exit:", code)
"""


def loaded(*args: str, heavy=CRAWLING + READING) -> tuple[set[str], object]:
    """The heavy modules ``python -m crawler ARGS`` imports, and its exit code."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=heavy), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stdout.rstrip().splitlines()[-1]
    names, _, code = last.removeprefix("loaded:").rpartition("exit:")
    return set(names.split()), code.strip()


def test_importing_the_cli_loads_no_crawler_nor_charts():
    probe = f"import sys, crawler.cli; print(sorted(m for m in {CRAWLING!r} if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_help_loads_neither_scrapy_nor_sqlite_utils():
    assert loaded("--help") == (set(), "0")
    assert loaded("run", "--help") == (set(), "0")
    assert loaded("schedule", "--help") == (set(), "0")


def test_status_and_dead_links_read_a_current_mirror_without_sqlite_utils(tmp_path):
    db = tmp_path / "mirror.db"
    open_database(str(db)).close()
    assert loaded("status", "--db", str(db)) == (set(), "0")
    assert loaded("dead-links", "--db", str(db), "--format", "json") == (set(), "0")


def test_status_and_dead_links_bring_an_older_mirror_up_to_date(tmp_path):
    """A file from before a column existed: the read fails, the schema is brought up to date, read again."""
    for command, table, column in (
        ("status", "sync_runs", "duration_seconds"),
        ("dead-links", "sources", "archive_timestamp"),
    ):
        db = tmp_path / f"{command}.db"
        open_database(str(db)).close()
        with sqlite3.connect(db) as conn:
            conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        modules, code = loaded(command, "--db", str(db), heavy=READING)
        assert code == "0" and "sqlite_utils" in modules
        with sqlite3.connect(db) as conn:
            assert column in {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
