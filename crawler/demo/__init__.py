"""The bundled demo site, served on a loopback port by the command itself.

``python -m crawler run`` with no start URL mirrors real pages of the event
site (``site/``, CC BY-SA 3.0, see ``site/NOTICE.md``) so that a new user sees
the whole pipeline work offline in seconds.

The demo crawls the pages under their real address, ``https://thecontext.net/``,
and :class:`~crawler.demo.routing.DemoRoutingHandler` delivers every request
of the crawl to this loopback server instead of the network.  So the demo's
``mirror.db`` holds the URLs a real mirror would (stable from run to run), and
the news articles the pages cite answer too, offline: the server plays them
(see :mod:`crawler.demo.sources`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from crawler.demo.sources import answer_source

SITE_DIR = Path(__file__).parent / "site"
SITE_ORIGIN = "https://thecontext.net"
START_URL = SITE_ORIGIN + "/index.md"
ORIGIN_HEADER = "X-Demo-Origin"


def send_answer(handler: BaseHTTPRequestHandler, status: int, headers: dict, body: bytes) -> None:
    """Write a whole scripted answer on an ``http.server`` handler."""
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


class _DemoHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".md": "text/markdown; charset=utf-8"}

    def do_GET(self):
        origin = self.headers.get(ORIGIN_HEADER, SITE_ORIGIN)
        if origin == SITE_ORIGIN:
            return super().do_GET()
        send_answer(self, *answer_source(origin + self.path))

    def log_message(self, format, *args):  # the crawl reports progress itself
        pass


class DemoServer:
    """Serve ``site/`` on 127.0.0.1 from a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        handler = functools.partial(_DemoHandler, directory=str(SITE_DIR))
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def __enter__(self) -> DemoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


PORTAL_MONTH = Path(__file__).parent / "wikipedia" / "Portal_Current_events_January_2023.html"
PORTAL_SINCE, PORTAL_UNTIL = dt.date(2023, 1, 1), dt.date(2023, 1, 31)


@contextlib.contextmanager
def portal_demo():
    """A loopback MediaWiki API serving the bundled month of the portal (January 2023).

    ``run --site wikipedia --demo`` reads it as it would read Wikipedia, so the
    portal adapter can be seen working offline.
    """
    from crawler.testing.mediawiki import MediaWikiServer  # the demo's only use of the test server

    server = MediaWikiServer()
    try:
        server.add_month(PORTAL_MONTH.read_text(encoding="utf-8"))
        yield server
    finally:
        server.close()
