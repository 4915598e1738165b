"""Deliver a demo crawl's requests to the local demo server, never the network.

Installed as the ``http``/``https`` download handler in demo mode only (the
CLI sets ``DOWNLOAD_HANDLERS`` and ``DEMO_SERVER``).  Everything above the
download handler, redirects, retries, robots.txt and the pipelines, sees the
original URLs, so the demo exercises the same code as a real crawl.

Only the demo's own hosts are delivered (:func:`crawler.demo.sources.demo_hosts`:
the demo site, the hosts its pages cite, the archive).  A request for any other
host is refused, not sent to the network: demo mode turns the private-address
guard and the politeness delay off, and the demo server's answer for a host it
does not play would be a made-up one (a 404 recorded as a strike on a real source).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler
from scrapy.exceptions import IgnoreRequest

from crawler.demo.bundle import ORIGIN_HEADER
from crawler.demo.sources import demo_hosts

NOT_PLAYED = "not a host the demo plays"


class DemoRoutingHandler(BaseDownloadHandler):
    def __init__(self, crawler):
        super().__init__(crawler)
        self.server = crawler.settings.get("DEMO_SERVER").rstrip("/")
        self.inner = HTTP11DownloadHandler(crawler)

    async def download_request(self, request):
        parts = urlsplit(request.url)
        if parts.netloc.lower() not in demo_hosts():
            raise IgnoreRequest(f"{NOT_PLAYED}: {parts.netloc}")
        local = self.server + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        routed = request.replace(url=local)
        routed.headers[ORIGIN_HEADER] = f"{parts.scheme}://{parts.netloc}"
        response = await self.inner.download_request(routed)
        return response.replace(url=request.url, request=request)

    async def close(self) -> None:
        await self.inner.close()
