"""Fixtures: a real HTTP server on loopback, fixture sites, and the real CLI.

Every crawl in the tests runs ``python -m crawler run`` as a child process
(a Twisted reactor cannot restart inside one pytest process) against a
server started here on 127.0.0.1, then the test reads ``mirror.db``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
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


def crawler_in(folder: Path):
    """A function that runs ``python -m crawler run --json`` in ``folder`` and returns a :class:`Mirror`."""

    def run(
        *args: str, db: Path | None = None, check: bool = True, json_output=True, check_sources=False
    ) -> Mirror:
        db = db or folder / "mirror.db"
        cmd = [sys.executable, "-m", "crawler", "run", "--db", str(db), *args]
        if not check_sources:
            # The corpus cites real news sites: never contact them from a test.
            cmd += ["-s", "CHECK_SOURCES=False"]
        if json_output:
            cmd.append("--json")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, cwd=folder)
        if check and proc.returncode != 0:
            raise AssertionError(f"crawl failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        return Mirror(proc, db)

    return run


@pytest.fixture
def crawl(tmp_path):
    """Run ``python -m crawler run --json`` and return a :class:`Mirror`."""
    return crawler_in(tmp_path)


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
def aged_demo(tmp_path_factory, worker_id) -> Mirror:
    """The demo mirrored, then its sources checked three times three days apart (offline).

    A known mirror for the read side (export, Datasette, report): 75 events,
    108 sources of which 61 alive, 6 blocked and 41 dead, 31 of those with an
    archived copy.  Built once per test session: under pytest-xdist the first
    worker to need it builds it in the session's shared folder while the others
    wait on a lock, since the read side only reads it.
    """
    if worker_id == "master":
        return _age_demo(tmp_path_factory.mktemp("aged-demo"))
    shared = tmp_path_factory.getbasetemp().parent / "aged-demo"
    shared.mkdir(exist_ok=True)
    with open(shared / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "summary.json"
        if not done.exists():
            mirror = _age_demo(shared)
            done.write_text(mirror.proc.stdout)
    return Mirror(subprocess.CompletedProcess([], 0, done.read_text(), ""), shared / "mirror.db")


def _age_demo(folder: Path) -> Mirror:
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


@pytest.fixture
def wiki():
    """The MediaWiki stand-in serving the portal's January 2023 (the demo's month)."""
    from crawler.demo import PORTAL_MONTH
    from crawler.loopback.mediawiki import MediaWikiServer

    server = MediaWikiServer()
    server.add_month(PORTAL_MONTH.read_text(encoding="utf-8"))
    yield server
    server.close()


class RedisServer:
    """A redis-server of the test's own on a free loopback port, with no persistence."""

    def __init__(self, folder: Path):
        import socket

        self.folder = folder
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        import time

        import redis

        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        """Stopped and started again: without persistence, it comes back empty."""
        self.stop()
        self.start()

    def client(self):
        import redis

        return redis.Redis(port=self.port)


@pytest.fixture
def redis_server(tmp_path):
    """redis-server on a free loopback port (``--save "" --appendonly no``), stopped after the test."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    pytest.importorskip("redis", reason="the redis client is not installed (pip install -e '.[redis]')")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder)
    yield server
    server.stop()


@pytest.fixture
def busy_core():
    """A process that keeps one core busy for the length of the test: the crawl under test runs
    on a machine whose other core is taken (a page parsed on the event loop then shows)."""
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
    yield
    os.killpg(burner.pid, signal.SIGKILL)
    burner.wait()
