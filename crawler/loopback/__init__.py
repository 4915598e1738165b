"""Loopback HTTP servers, shipped: the bundled demo serves through them, and so do the tests.

The demo (``python -m crawler run --demo``) plays the event site, the news
articles it cites and, with ``--site wikipedia``, the MediaWiki API over a
loopback port; the tests and the benchmarks script the same servers.  So they
live here, in shipped code, and ``crawler/testing`` (test helpers only) builds
on them, never the reverse.

* this module: the threading server every one of them runs on, and
  :func:`send_answer`, which writes a scripted answer;
* :mod:`crawler.loopback.site`: :class:`~crawler.loopback.site.SiteServer`, a
  directory served with scripted answers, a request log, ETags and chaos;
* :mod:`crawler.loopback.mediawiki`: a stand-in for the MediaWiki Action API.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose handler threads never keep the process alive."""

    # The default backlog of 5 drops connections when a crawl opens 16 at once, and each
    # dropped SYN costs the client a second before it tries again.
    request_queue_size = 128
    daemon_threads = True

    @property
    def origin(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def serve_in_background(self) -> threading.Thread:
        """Serve from a daemon thread; :meth:`stop` ends it."""
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop serving (once :meth:`serve_in_background` has run) and close the socket."""
        self.shutdown()
        self.server_close()


def send_answer(handler: BaseHTTPRequestHandler, status: int, headers: dict, body: bytes) -> None:
    """Write a whole scripted answer on an ``http.server`` handler."""
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
