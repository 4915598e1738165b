"""The spider that checks cited sources: one polite GET per source that is due.

It reads the due sources from ``mirror.db`` through a read-only
:class:`pipeline.source_frontier.SourceFrontier` of its own, and for each host
first asks for a random sibling of a cited page (the soft-404 probe, cached per
host), then checks the sources.  Each check becomes a :class:`CheckItem` of
plain facts (status, final URL, redirects, error, timing, body); the pipeline
(:class:`pipeline.checks.SourceCheckPipeline`) classifies and stores it, and
settles the run when the spider closes having finished.  The spider writes
nothing and calls no pipeline: data flows one way.  The archive lookups that a
settled run calls for are a crawl of their own
(:class:`crawler.spiders.archive.ArchiveSpider`), which :mod:`crawler.runner`
starts after this one.

A good HTML answer's text and metadata (:func:`pipeline.extract.extract_page`,
trafilatura: the CPU-heavy part of a check) are extracted here, in the parse pool's
worker processes (:mod:`crawler.parse_pool`, ``PARSE_PROCESSES``), and travel on the
item (``CheckItem.extracted``) as an event page's parse does: a multi-megabyte article
costs the event loop one ``await``, so the other checks' timeouts fire on time, and the
pipeline only judges and writes.  Only an answer that can be kept is extracted: 2xx,
HTML, and ``ok`` by its own facts (:func:`pipeline.liveness.classify`).  A page that the
host's probe later shows to be a soft 404 is extracted for nothing; those are the host's
small "not found" pages.  A parser process that dies costs the page its text for this
check, not the check: it is stored ``ok`` with the reason as its note.

Politeness is per host (:func:`polite_per_host`, shared with the archive
lookups): ``SOURCE_CONCURRENCY_PER_HOST`` requests in flight, ``SOURCE_DELAY``
seconds apart as the host sees them (from the end of one answer to the next
request: :class:`crawler.middlewares.HostSpacingMiddleware`), ``Retry-After``
honoured and back-off on 429 and 5xx
(:class:`crawler.middlewares.HostBackoffMiddleware`).  Only transient failures
are retried within a run.

In demo mode (``check-links --demo``, ``run`` on the bundled demo: ``DEMO_SERVER`` is
set) only the sources the demo server plays are checked
(:func:`crawler.demo.sources.plays`); any other source of the mirror (a real site's, the
portal's) is left as it is, still due for a real ``check-links``.  Checking it for
real would mean the network from a command meant to run offline, without the
private-address guard and the politeness that demo mode turns off.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit, urlunsplit

from scrapy import Request, Spider
from scrapy.settings import default_settings

from crawler.failures import error_kind
from crawler.items import CheckItem, ProbeItem
from crawler.parse_pool import PoolBroken, UsesParsePool
from crawler.spiders import arguments
from pipeline.extract import Extracted, extract_page, is_html, page_words
from pipeline.liveness import classify
from pipeline.source_frontier import SourceFrontier
from pipeline.urls import canonical_url

# A page the pool extracts first, so that trafilatura's first, slow extraction is done early.
WARM_UP = b"<html><head><title>t</title></head><body><article><p>%s</p></article></body></html>" % (
    b"words " * 60
)

# Every status reaches the callback except redirects, which Scrapy follows.
CHECKED_STATUSES = [*range(200, 300), *range(400, 600), 999]


def polite_per_host(settings, priority="spider") -> None:
    """The per-host politeness of every request to a cited host or the archive."""
    settings.set(
        "CONCURRENT_REQUESTS_PER_DOMAIN", settings.getint("SOURCE_CONCURRENCY_PER_HOST"), priority=priority
    )
    settings.set("DOWNLOAD_DELAY", settings.getfloat("SOURCE_DELAY"), priority=priority)
    # Scrapy would draw each delay from 0.5–1.5 × DOWNLOAD_DELAY: half a second is not "1 s apart".
    if hasattr(default_settings, "DOWNLOAD_DELAY_JITTER"):  # Scrapy 2.19+
        settings.set("DOWNLOAD_DELAY_JITTER", 0, priority=priority)
    else:
        settings.set("RANDOMIZE_DOWNLOAD_DELAY", False, priority=priority)
    settings.set("DOWNLOAD_MAXSIZE", settings.getint("SOURCE_MAXSIZE"), priority=priority)
    settings.set("REDIRECT_MAX_TIMES", 10, priority=priority)
    # 429 (and 503 with Retry-After) are the back-off middleware's to handle, not retries'.
    settings.set("RETRY_HTTP_CODES", [500, 502, 503, 504, 522, 524, 408], priority=priority)
    middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
    middlewares.setdefault("crawler.middlewares.HostBackoffMiddleware", 560)
    # The delay counted from a host's last answer, not from the last send (the host sees it so).
    middlewares.setdefault("crawler.middlewares.HostSpacingMiddleware", 990)
    settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority=priority)


def demo_plays(settings):
    """In demo mode, the test of a source URL the demo server answers for; otherwise None."""
    if not settings.get("DEMO_SERVER"):
        return None
    from crawler.demo.sources import plays  # the demo's cited URLs: read only in demo mode

    return plays


class SourceCheckSpider(UsesParsePool, Spider):
    name = "sources"

    def __init__(self, check_all=False, limit=0, only_unchecked=False, run_id=None, **kwargs):
        super().__init__(**kwargs)
        self.check_all = arguments.flag(check_all)
        self.only_unchecked = arguments.flag(only_unchecked)
        self.limit = int(limit or 0)
        self.run_id = int(run_id) if run_id else None
        self.waiting: dict[str, list[tuple[int, str]]] = {}
        # Hosts that answer a made-up URL with a page: their good pages' words are taken in the
        # pool with the text, for the pipeline's soft-404 comparison.
        self.soft_hosts: set[str] = set()

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        settings.set("ITEM_PIPELINES", {"pipeline.checks.SourceCheckPipeline": 400}, priority="spider")
        polite_per_host(settings)

    def progress(self, stats) -> str:
        return f"sources checked {stats.get_value('mirror/sources_checked', 0)}"

    async def warm_up(self) -> None:
        """Start the parse pool and extract one small page there, before any request is in flight.

        The first job starts the forkserver, which imports trafilatura (``PRELOAD``), and its
        submission waits for the first worker's fork: on a loaded machine that held the event
        loop for seconds, too long once requests (or a Redis worker's leases) are waiting."""
        try:
            await self.parse_pool.run(extract_page, WARM_UP, "http://example.invalid/warm-up")
        except PoolBroken as exc:
            self.logger.warning("parse pool: %s while warming up; a new one starts with the first page", exc)

    async def start(self):
        await self.warm_up()
        # Read after the pipeline opened (and, for a new mirror, created) the database.
        keep = demo_plays(self.settings)
        with SourceFrontier.from_settings(self.settings) as frontier:
            if keep is None:
                due = frontier.due_sources(self.check_all, self.only_unchecked, self.limit)
            else:
                everything = frontier.due_sources(self.check_all, self.only_unchecked)
                played = [row for row in everything if keep(row[1])]
                due = played[: self.limit] if self.limit else played
                left = len(everything) - len(due)
                if left and not self.limit:
                    self.logger.warning(
                        "demo: %d sources the demo does not play were not checked (a real check-links"
                        " checks them)",
                        left,
                    )
                self.crawler.stats.set_value("mirror/sources_not_played", left)
            to_probe = frontier.hosts_to_probe(due)
            self.soft_hosts = frontier.soft_hosts(due, to_probe)
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

    async def checked(self, response):
        meta = response.meta
        content_type = response.headers.get("Content-Type", b"").decode("latin-1") or None
        keep = {}
        for name in ("Retry-After", "cf-mitigated"):
            value = response.headers.get(name)
            if value is not None:
                keep[name.lower()] = value.decode("latin-1")
        item = CheckItem(
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
        await self._extract(item)
        yield item

    async def _extract(self, item: CheckItem) -> None:
        """What the store keeps of a good HTML page, extracted in the parse pool (see above)."""
        if item.body is None or not is_html(item.content_type, item.body):
            return
        final_url = canonical_url(item.final_url) if item.final_url else None
        if classify(item.url, item.http_status, final_url, None, item.headers) != "ok":
            return
        self.crawler.stats.inc_value("mirror/source_texts_extracted")
        words = urlsplit(item.url).netloc.lower() in self.soft_hosts
        try:
            item.extracted = await self.parse_pool.run(extract_page, item.body, final_url or "", words)
        except PoolBroken as exc:
            # Not extracted again on the loop: the page may be what killed the worker.  The check
            # stands; the text is kept by the next good check.
            item.extracted = Extracted(failed=str(exc))
            item.detail = f"text not kept: {exc}"
        else:
            if words:
                self.crawler.stats.inc_value("mirror/page_words_in_pool")

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

    async def probed(self, response):
        host = response.meta["probe_host"]
        item = ProbeItem(
            host=host,
            probe_url=response.meta.get("redirect_urls", [response.url])[0],
            http_status=response.status,
            final_url=response.url,
            content_type=response.headers.get("Content-Type", b"").decode("latin-1") or None,
            body=response.body if 200 <= response.status < 300 else None,
        )
        if item.body is not None:
            self.soft_hosts.add(host)
            if is_html(item.content_type, item.body):
                try:
                    item.words = await self.parse_pool.run(page_words, item.body)
                except PoolBroken:
                    pass  # the pipeline takes them
        yield item
        for request in self._release(host):
            yield request

    def probe_failed(self, failure):
        host = failure.request.meta["probe_host"]
        yield ProbeItem(host=host, probe_url=failure.request.url)
        yield from self._release(host)
