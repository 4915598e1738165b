"""A static site server on loopback for tests and benchmarks.

It serves a directory (the bundled corpus, a generated site) over HTTP with
scripted answers for chosen paths, ETags on request, and a log of every
request, so that a test can say exactly what a crawl asked for.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from crawler.demo import send_answer

RESET, STALL, TRUNCATE = -1, -2, -3  # scripted answers that are not HTTP answers


class SiteServer:
    """Serves a directory over HTTP, plus scripted answers for chosen paths.

    ``routes[path]`` is a list of answers ``(status, headers, body)`` given in
    turn (the last one repeats); status ``RESET`` drops the connection, and
    ``STALL`` answers after ``body`` seconds, ``TRUNCATE`` sends half of what it promised.
    ``prefix`` serves the tree below a path, as a
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
