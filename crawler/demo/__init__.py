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
import functools
import threading
from http.server import SimpleHTTPRequestHandler

from crawler.demo.bundle import (
    ORIGIN_HEADER,
    PORTAL_MONTH,
    PORTAL_SINCE,
    PORTAL_UNTIL,
    SITE_DIR,
    SITE_ORIGIN,
    START_URL,
)
from crawler.demo.sources import answer_source
from crawler.loopback import LoopbackHTTPServer, send_answer

__all__ = [
    "ORIGIN_HEADER",
    "PORTAL_MONTH",
    "PORTAL_SINCE",
    "PORTAL_UNTIL",
    "SITE_DIR",
    "SITE_ORIGIN",
    "START_URL",
    "DemoServer",
    "portal_demo",
]


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
        self.httpd = LoopbackHTTPServer((host, port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return self.httpd.origin + "/"

    def __enter__(self) -> DemoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.stop()


@contextlib.contextmanager
def portal_demo():
    """A loopback MediaWiki API serving the bundled month of the portal (January 2023).

    ``run --site wikipedia --demo`` reads it as it would read Wikipedia, so the
    portal adapter can be seen working offline.
    """
    from crawler.loopback.mediawiki import MediaWikiServer  # reads the portal's HTML: load it when asked

    server = MediaWikiServer()
    try:
        server.add_month(PORTAL_MONTH.read_text(encoding="utf-8"))
        yield server
    finally:
        server.close()
