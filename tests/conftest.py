"""Fixtures: a real HTTP server on loopback, fixture sites, and the real CLI.

Every crawl in the tests runs ``python -m crawler run`` as a child process
(a Twisted reactor cannot restart inside one pytest process) against a
server started here on 127.0.0.1, then the test reads ``mirror.db``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crawler.demo import send_answer

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
RESET, STALL = -1, -2  # scripted answers that are not HTTP answers


class SiteServer:
    """Serves a directory over HTTP, plus scripted answers for chosen paths.

    ``routes[path]`` is a list of answers ``(status, headers, body)`` given in
    turn (the last one repeats); status ``RESET`` drops the connection, and
    ``STALL`` answers after ``body`` seconds.  ``prefix`` serves the tree below a path, as a
    raw-file host does.  Every request path is logged in ``requests``.
    """

    def __init__(self, root: Path, prefix: str = "/", host: str = "127.0.0.1"):
        self.root = root
        self.prefix = prefix
        self.routes: dict[str, list[tuple[int, dict, bytes]]] = {}
        self.requests: list[str] = []
        self.user_agents: set[str] = set()
        self.times: list[tuple[str, float]] = []
        self.delay = 0.0  # seconds to wait before each answer
        self.etags = False  # send ETags and answer If-None-Match with 304
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                server.times.append((self.path, time.monotonic()))
                server.user_agents.add(self.headers.get("User-Agent", ""))
                time.sleep(server.delay)
                status, headers, body = server.answer(self.path)
                if status == RESET:  # drop the connection with a TCP reset, answering nothing
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if status == STALL:  # answer only after the client has given up
                    time.sleep(float(body))
                    status, body = 200, b"too late"
                if server.etags and status == 200:
                    etag = '"' + hashlib.sha1(body).hexdigest() + '"'
                    headers = {**headers, "ETag": etag}
                    if self.headers.get("If-None-Match") == etag:
                        status, body = 304, b""
                try:
                    send_answer(self, status, headers, body)
                except ConnectionError:
                    pass  # the client gave up first (a timeout test)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def origin(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.origin + self.prefix + path.lstrip("/")

    def answer(self, path: str) -> tuple[int, dict, bytes]:
        if path in self.routes:
            answers = self.routes[path]
            return answers.pop(0) if len(answers) > 1 else answers[0]
        if not path.startswith(self.prefix):
            return 404, {}, b"not found"
        file = self.root / path[len(self.prefix) :].split("?", 1)[0]
        if file.is_file():
            return 200, {"Content-Type": "text/markdown; charset=utf-8"}, file.read_bytes()
        return 404, {}, b"not found"

    def requested(self, fragment: str) -> list[str]:
        return [p for p in self.requests if fragment in p]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


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
