"""The spider that checks cited sources: one polite GET per source that is due.

It reads the due sources from ``mirror.db`` (through
:class:`pipeline.checks.SourceCheckPipeline`), and for each host first asks
for a random sibling of a cited page (the soft-404 probe, cached per host),
then checks the sources.  Each check becomes a :class:`CheckItem` of plain
facts (status, final URL, redirects, error, timing, body); the pipeline
classifies and stores it.  When every check is in, the pipeline settles the
run (probe comparisons, shared redirect targets, host outages, liveness) and
hands back the sources that need an archived copy; the spider then asks the
Internet Archive's availability API for each.

Politeness is per host: ``SOURCE_CONCURRENCY_PER_HOST`` requests in flight,
``SOURCE_DELAY`` seconds apart, ``Retry-After`` honoured and back-off on 429
and 5xx (:class:`crawler.middlewares.HostBackoffMiddleware`).  Only
transient failures are retried within a run.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode, urlsplit, urlunsplit

from scrapy import Request, Spider, signals
from scrapy.exceptions import DontCloseSpider
from scrapy.settings import default_settings

from crawler.failures import error_kind
from crawler.items import ArchiveItem, CheckItem, ProbeItem
from crawler.spiders import arguments
from pipeline.checks import SourceCheckPipeline

# Every status reaches the callback except redirects, which Scrapy follows.
CHECKED_STATUSES = [*range(200, 300), *range(400, 600), 999]


class SourceCheckSpider(Spider):
    name = "sources"

    def __init__(self, check_all=False, limit=0, only_unchecked=False, run_id=None, **kwargs):
        super().__init__(**kwargs)
        self.check_all = arguments.flag(check_all)
        self.only_unchecked = arguments.flag(only_unchecked)
        self.limit = int(limit or 0)
        self.run_id = int(run_id) if run_id else None
        self.settled = False
        self.allowed_private_hosts: set[str] = set()
        self.waiting: dict[str, list[tuple[int, str]]] = {}

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        spider = "spider"
        settings.set("ITEM_PIPELINES", {"pipeline.checks.SourceCheckPipeline": 400}, priority=spider)
        settings.set(
            "CONCURRENT_REQUESTS_PER_DOMAIN", settings.getint("SOURCE_CONCURRENCY_PER_HOST"), priority=spider
        )
        settings.set("DOWNLOAD_DELAY", settings.getfloat("SOURCE_DELAY"), priority=spider)
        # Scrapy would draw each delay from 0.5–1.5 × DOWNLOAD_DELAY: half a second is not "1 s apart".
        if hasattr(default_settings, "DOWNLOAD_DELAY_JITTER"):  # Scrapy 2.19+
            settings.set("DOWNLOAD_DELAY_JITTER", 0, priority=spider)
        else:
            settings.set("RANDOMIZE_DOWNLOAD_DELAY", False, priority=spider)
        settings.set("DOWNLOAD_MAXSIZE", settings.getint("SOURCE_MAXSIZE"), priority=spider)
        settings.set("REDIRECT_MAX_TIMES", 10, priority=spider)
        # 429 (and 503 with Retry-After) are the back-off middleware's to handle, not retries'.
        settings.set("RETRY_HTTP_CODES", [500, 502, 503, 504, 522, 524, 408], priority=spider)
        middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
        middlewares.setdefault("crawler.middlewares.HostBackoffMiddleware", 560)
        settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority=spider)

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.idle, signal=signals.spider_idle)
        wayback = urlsplit(crawler.settings.get("WAYBACK_API_URL")).hostname
        if wayback:
            spider.allowed_private_hosts.add(wayback.lower())
        return spider

    def progress(self, stats) -> str:
        return f"sources checked {self.checks.checked}"

    @property
    def checks(self) -> SourceCheckPipeline:
        return self.crawler.get_item_pipeline(SourceCheckPipeline)

    async def start(self):
        due = self.checks.due_sources(self.check_all, self.only_unchecked, self.limit)
        to_probe = self.checks.hosts_to_probe(due)
        for source_id, url in due:
            host = urlsplit(url).netloc.lower()
            if host in to_probe:
                # A host's checks wait for its probe, so that each check can be judged at once.
                self.waiting.setdefault(host, []).append((source_id, url))
            else:
                yield self._check(source_id, url)
        for host, sample_url in to_probe.items():
            yield self._probe(host, sample_url)

    def _check(self, source_id: int, url: str) -> Request:
        return Request(
            url,
            callback=self.checked,
            errback=self.failed,
            dont_filter=True,
            meta={"source_id": source_id, "source_url": url, "handle_httpstatus_list": CHECKED_STATUSES},
        )

    def _release(self, host: str):
        for source_id, url in self.waiting.pop(host, []):
            yield self._check(source_id, url)

    def _probe(self, host: str, sample_url: str) -> Request:
        """A random sibling of a cited page: how does the host answer for a missing page?"""
        parts = urlsplit(sample_url)
        folder = parts.path.rsplit("/", 1)[0]
        probe = urlunsplit((parts.scheme, parts.netloc, f"{folder}/{secrets.token_hex(12)}.html", "", ""))
        return Request(
            probe,
            callback=self.probed,
            errback=self.probe_failed,
            dont_filter=True,
            priority=10,
            meta={"probe_host": host, "handle_httpstatus_list": CHECKED_STATUSES},
        )

    # -- answers -----------------------------------------------------------

    def checked(self, response):
        meta = response.meta
        content_type = response.headers.get("Content-Type", b"").decode("latin-1") or None
        keep = {}
        for name in ("Retry-After", "cf-mitigated"):
            value = response.headers.get(name)
            if value is not None:
                keep[name.lower()] = value.decode("latin-1")
        yield CheckItem(
            source_id=meta["source_id"],
            url=meta["source_url"],
            http_status=response.status,
            final_url=response.url,
            redirects=len(meta.get("redirect_urls", [])),
            content_type=content_type,
            size=len(response.body),
            elapsed_ms=int(meta.get("download_latency", 0) * 1000),
            headers=keep,
            body=response.body if 200 <= response.status < 300 else None,
        )

    def failed(self, failure):
        request = failure.request
        kind, detail = error_kind(failure)
        yield CheckItem(
            source_id=request.meta["source_id"],
            url=request.meta["source_url"],
            final_url=request.url,
            redirects=len(request.meta.get("redirect_urls", [])),
            error=kind,
            detail=detail,
        )

    def probed(self, response):
        yield ProbeItem(
            host=response.meta["probe_host"],
            probe_url=response.meta.get("redirect_urls", [response.url])[0],
            http_status=response.status,
            final_url=response.url,
            content_type=response.headers.get("Content-Type", b"").decode("latin-1") or None,
            body=response.body if 200 <= response.status < 300 else None,
        )
        yield from self._release(response.meta["probe_host"])

    def probe_failed(self, failure):
        host = failure.request.meta["probe_host"]
        yield ProbeItem(host=host, probe_url=failure.request.url)
        yield from self._release(host)

    # -- after the checks: settle, then archive lookups -----------------------

    def idle(self):
        if self.settled:
            return
        self.settled = True
        lookups = self.checks.settle()
        api = self.settings.get("WAYBACK_API_URL")
        for source_id, url, timestamp in lookups:
            query = urlencode({"url": url, "timestamp": timestamp})
            self.crawler.engine.crawl(
                Request(
                    f"{api}?{query}",
                    callback=self.archived,
                    errback=self.archive_failed,
                    dont_filter=True,
                    meta={"source_id": source_id, "dont_obey_robotstxt": True},
                )
            )
        if lookups:
            raise DontCloseSpider

    def archived(self, response):
        yield ArchiveItem(source_id=response.meta["source_id"], body=response.body)

    def archive_failed(self, failure):
        kind, detail = error_kind(failure)
        yield ArchiveItem(source_id=failure.request.meta["source_id"], error=f"{kind}: {detail}")
