"""A static site server on loopback, with scripted answers and chaos.

It serves a directory (the bundled corpus, a generated site) over HTTP with
scripted answers for chosen paths, ETags on request, and a log of every
request, so that a test can say exactly what a crawl asked for.  The demo's
MediaWiki stand-in (:mod:`crawler.loopback.mediawiki`) is one, so it ships;
the tests and the benchmarks use it directly.
"""

from __future__ import annotations

import hashlib
import random
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from crawler.loopback import LoopbackHTTPServer, send_answer

RESET, STALL, TRUNCATE, TRICKLE = -1, -2, -3, -4  # scripted answers that are not HTTP answers
FAULTS = (500, 503, RESET, STALL, TRUNCATE, TRICKLE)


class SiteServer:
    """Serves a directory over HTTP, plus scripted answers for chosen paths.

    ``routes[path]`` is a list of answers ``(status, headers, body)`` given in
    turn (the last one repeats); status ``RESET`` drops the connection, and
    ``STALL`` answers after ``body`` seconds, ``TRUNCATE`` sends half of what it promised.
    ``prefix`` serves the tree below a path, as a
    raw-file host does.  Every request path is logged in ``requests``.

    Chaos: with ``faults`` set to a share (0.2), that share of answers (robots.txt
    excepted) is replaced, at random but reproducibly (``seed``), by a 500, a 503,
    a reset, a stall past ``stall`` seconds, a truncated body or a slow trickle of
    the real answer; ``fault_log`` says which request got what.
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
        self.faults = 0.0
        self.stall = 3.0
        self.fault_log: list[tuple[str, int, float]] = []
        self._rng = random.Random(0)
        self._rng_lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                server.times.append((self.path, time.monotonic()))
                server.user_agents.add(self.headers.get("User-Agent", ""))
                time.sleep(server.delay)
                status, headers, body = server.chaos(
                    self.path, server.answer_request(self.path, self.headers)
                )
                if status == TRICKLE:  # the real answer, a few bytes at a time
                    self.send_response(200)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    step = max(1, len(body) // 8)
                    for start in range(0, len(body), step):
                        self.wfile.write(body[start : start + step])
                        self.wfile.flush()
                        time.sleep(0.02)
                    return
                if status == RESET:  # drop the connection with a TCP reset, answering nothing
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    return
                if status == TRUNCATE:  # promise twice the body, send it, hang up
                    self.send_response(200)
                    self.send_header("Content-Length", str(2 * len(body)))
                    self.end_headers()
                    self.wfile.write(body)
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

        self.httpd = LoopbackHTTPServer((host, 0), Handler)
        self.httpd.serve_in_background()

    def seed(self, value: int) -> None:
        self._rng = random.Random(value)

    def chaos(self, path: str, answer: tuple[int, dict, bytes]) -> tuple[int, dict, bytes]:
        """The answer, or with probability ``faults`` a fault in its place."""
        if not self.faults or path == "/robots.txt":
            return answer
        with self._rng_lock:
            if self._rng.random() >= self.faults:
                return answer
            fault = self._rng.choice(FAULTS)
        self.fault_log.append((path, fault, time.monotonic()))
        status, headers, body = answer
        if fault in (500, 503):
            return fault, {}, b"chaos"
        if fault == STALL:
            return STALL, {}, str(self.stall).encode()
        if status != 200:
            return RESET, {}, b""
        return fault, headers, body

    @property
    def origin(self) -> str:
        return self.httpd.origin

    def url(self, path: str) -> str:
        return self.origin + self.prefix + path.lstrip("/")

    def answer_request(self, path: str, headers) -> tuple[int, dict, bytes]:
        """The answer to a request; the request's headers are there for servers that need them."""
        return self.answer(path)

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
        self.httpd.stop()
