"""The spider that asks the Internet Archive for copies of failing and dead sources.

A crawl of its own, after the source checks (:mod:`crawler.runner` starts it when the
check run was settled): only the settled run knows which sources are failing or dead,
and a separate stream lets the lookups have their own budget later.  It reads who to
ask about from a read-only :class:`pipeline.source_frontier.SourceFrontier`, asks
``WAYBACK_API_URL`` once per source for the capture closest to the end of the day of
the earliest event citing it, and yields each answer as an :class:`ArchiveItem` for
:class:`pipeline.archive.ArchivePipeline`.

The archive is one host with a budget of its own (:func:`polite_to_archive`: the source
checks' politeness, with ``ARCHIVE_DELAY`` and ``ARCHIVE_CONCURRENCY`` for its host); its
API is not a page, so robots.txt is not asked, and its host is allowed even when private
(a local stand-in for the archive, as in the tests).  The request and the answer are made
by :func:`lookup_request`, :func:`answered` and :func:`not_answered`, which the Redis
workers use too (``check-links --redis`` puts the lookups on a stream of their own).

In demo mode the demo server plays the archive, so only the sources it plays are looked
up: its made-up captures are not written on a real source.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from scrapy import Request, Spider

from crawler.failures import error_kind
from crawler.items import ArchiveItem
from crawler.spiders.sources import demo_plays, polite_per_host
from pipeline.source_frontier import SourceFrontier


def archive_host(settings) -> str | None:
    """The archive API's host name: the key of its download slot (and of its private-host pass)."""
    host = urlsplit(settings.get("WAYBACK_API_URL") or "").hostname
    return host.lower() if host else None


def polite_to_archive(settings, priority="spider") -> None:
    """Per-host politeness, and the archive's own budget on its host's download slot.

    ``ARCHIVE_DELAY`` and ``ARCHIVE_CONCURRENCY`` (unset: ``SOURCE_DELAY`` and
    ``SOURCE_CONCURRENCY_PER_HOST``) apply to the archive's host alone, so that a process that
    checks sources and asks the archive (a Redis worker) spaces each by its own rule.
    """
    polite_per_host(settings, priority)
    host = archive_host(settings)
    if not host:
        return
    delay = settings.get("ARCHIVE_DELAY")
    concurrency = settings.get("ARCHIVE_CONCURRENCY")
    slots = dict(settings.getdict("DOWNLOAD_SLOTS"))
    slots[host] = {
        "delay": settings.getfloat("SOURCE_DELAY") if delay in (None, "") else float(delay),
        "concurrency": settings.getint("SOURCE_CONCURRENCY_PER_HOST")
        if concurrency in (None, "")
        else int(concurrency),
        "jitter": 0,
    }
    settings.set("DOWNLOAD_SLOTS", slots, priority=priority)


def lookup_request(api: str, source_id: int, url: str, timestamp: str, callback, errback) -> Request:
    """The availability API asked about one source (robots.txt is for pages, not this API)."""
    query = urlencode({"url": url, "timestamp": timestamp})
    return Request(
        f"{api}?{query}",
        callback=callback,
        errback=errback,
        dont_filter=True,
        meta={"source_id": source_id, "archive_lookup": True, "dont_obey_robotstxt": True},
    )


def answered(response) -> ArchiveItem:
    return ArchiveItem(source_id=response.meta["source_id"], body=response.body)


def not_answered(failure) -> ArchiveItem:
    kind, detail = error_kind(failure)
    return ArchiveItem(source_id=failure.request.meta["source_id"], error=f"{kind}: {detail}")


class ArchiveSpider(Spider):
    name = "archive"

    def __init__(self, run_id=None, lookups=None, **kwargs):
        super().__init__(**kwargs)
        self.run_id = int(run_id) if run_id else None  # the run whose row the lookups add to
        # The runner read them already to know whether to start this crawl; alone
        # (``scrapy crawl archive``), the spider reads them itself.
        self.lookups = lookups
        self.allowed_private_hosts: set[str] = set()

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        settings.set("ITEM_PIPELINES", {"pipeline.archive.ArchivePipeline": 400}, priority="spider")
        polite_to_archive(settings)

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        wayback = archive_host(crawler.settings)
        if wayback:
            spider.allowed_private_hosts.add(wayback)
        return spider

    def progress(self, stats) -> str:
        return f"archive lookups {stats.get_value('mirror/archive_answers', 0)}"

    async def start(self):
        lookups = self.lookups
        if lookups is None:
            with SourceFrontier.from_settings(self.settings) as frontier:
                lookups = frontier.archive_lookups()
        keep = demo_plays(self.settings)
        if keep is not None:
            lookups = [lookup for lookup in lookups if keep(lookup.url)]
        api = self.settings.get("WAYBACK_API_URL")
        for lookup in lookups:
            yield lookup_request(
                api, lookup.source_id, lookup.url, lookup.timestamp, self.archived, self.archive_failed
            )

    def archived(self, response):
        yield answered(response)

    def archive_failed(self, failure):
        yield not_answered(failure)
