"""Fixtures: a real HTTP server on loopback, fixture sites, and the real CLI.

Every crawl in the tests runs ``python -m crawler run`` as a child process
(a Twisted reactor cannot restart inside one pytest process) against a
server started here on 127.0.0.1, then the test reads ``mirror.db``.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crawler.loopback.site import RESET, STALL, SiteServer  # noqa: F401 (tests import them from here)
from pipeline.schema import open_read_only

ROOT = Path(__file__).resolve().parents[1]
# The bundled demo site is a byte-for-byte copy of shared/corpus/thecontext.
CORPUS = ROOT / "crawler" / "demo" / "site"
NEWS = CORPUS / "news"

MALI_PAGES = [
    "news/2013/03/27/northern-mali-conflict-pthe-government-of-mali-announces-that-63-of-their-soldiers-have-been-killed-fighting-jihadists-since-the-french-led.md",
    "news/2013/03/27/northern-mali-conflict-the-government-of-mali-announces-that-63-of-their-soldiers-have-been-killed-fighting-jihadists-since-the-french-led.md",
    "news/2013/03/27/the-government-of-mali-announces-that-63-of-their-soldiers-have-been-killed-fighting-jihadists-since-the-french-led-intervention-operation-s.md",
]
THAILAND_PAGES = [
    "news/2013/03/27/south-thailand-insurgency-pthe-thailand-government-prepares-for-peace-talks-with-muslim-separatist-groups-with-the-hope-of-ending-a-decade-l.md",
    "news/2013/03/27/south-thailand-insurgency-the-thailand-government-prepares-for-peace-talks-with-muslim-separatist-groups-with-the-hope-of-ending-a-decade.md",
    "news/2013/03/27/the-thailand-government-prepares-for-peace-talks-with-muslim-separatist-groups-with-the-hope-of-ending-a-decade-long-insurgency.md",
]
SEED = MALI_PAGES[0]


@pytest.fixture
def site_dir(tmp_path) -> Path:
    """A writable copy of the corpus that a test may add pages to."""
    target = tmp_path / "site"
    shutil.copytree(CORPUS, target)
    return target


@pytest.fixture
def site(site_dir):
    server = SiteServer(site_dir)
    yield server
    server.close()


class Mirror:
    """The result of one CLI run: its process and its database."""

    def __init__(self, proc: subprocess.CompletedProcess, db: Path):
        self.proc = proc
        self.db = db

    @property
    def summary(self) -> dict:
        return json.loads(self.proc.stdout)

    def query(self, sql: str, params=()) -> list[dict]:
        conn = sqlite3.connect(self.db)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(row) for row in conn.execute(sql, params)]
        finally:
            conn.close()

    def scalar(self, sql: str, params=()):
        rows = self.query(sql, params)
        return next(iter(rows[0].values())) if rows else None


@pytest.fixture
def crawl(tmp_path):
    """Run ``python -m crawler run --json`` and return a :class:`Mirror`."""

    def run(
        *args: str, db: Path | None = None, check: bool = True, json_output=True, check_sources=False
    ) -> Mirror:
        db = db or tmp_path / "mirror.db"
        cmd = [sys.executable, "-m", "crawler", "run", "--db", str(db), *args]
        if not check_sources:
            # The corpus cites real news sites: never contact them from a test.
            cmd += ["-s", "CHECK_SOURCES=False"]
        if json_output:
            cmd.append("--json")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=tmp_path)
        if check and proc.returncode != 0:
            raise AssertionError(f"crawl failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return Mirror(proc, db)

    return run


def read_count(db, sql: str) -> int:
    """A count read while another process may be writing (0 while the file is not ready)."""
    try:
        conn = open_read_only(db, timeout=1)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


@pytest.fixture(scope="session")
def aged_demo(tmp_path_factory) -> Mirror:
    """The demo mirrored, then its sources checked three times three days apart (offline).

    A known mirror for the read side (export, Datasette, report): 75 events,
    108 sources of which 61 alive, 6 blocked and 41 dead, 31 of those with an
    archived copy.
    """
    folder = tmp_path_factory.mktemp("aged-demo")
    db = folder / "mirror.db"
    commands = [["run", "--now", "2030-01-01T12:00:00Z"]]
    commands += [
        ["check-links", "--demo", "--now", f"{day}T12:00:00Z"]
        for day in ("2030-01-04", "2030-01-07", "2030-01-10")
    ]
    for args in commands:
        proc = subprocess.run(
            [sys.executable, "-m", "crawler", *args, "--db", str(db), "--json"],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
    return Mirror(proc, db)
