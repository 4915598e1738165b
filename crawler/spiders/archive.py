"""The spider that asks the Internet Archive for copies of failing and dead sources.

A crawl of its own, after the source checks (:mod:`crawler.runner` starts it when the
check run was settled): only the settled run knows which sources are failing or dead,
and a separate stream lets the lookups have their own budget later.  It reads who to
ask about from a read-only :class:`pipeline.source_frontier.SourceFrontier`, asks
``WAYBACK_API_URL`` once per source for the capture closest to the end of the day of
the earliest event citing it, and yields each answer as an :class:`ArchiveItem` for
:class:`pipeline.archive.ArchivePipeline`.

The archive is one host, asked with the source checks' politeness
(:func:`crawler.spiders.sources.polite_per_host`); its API is not a page, so
robots.txt is not asked, and its host is allowed even when private (a local
stand-in for the archive, as in the tests).  In demo mode the demo server plays the
archive, so only the sources it plays are looked up: its made-up captures are not
written on a real source.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from scrapy import Request, Spider

from crawler.failures import error_kind
from crawler.items import ArchiveItem
from crawler.spiders.sources import demo_plays, polite_per_host
from pipeline.source_frontier import SourceFrontier


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
        polite_per_host(settings)

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        wayback = urlsplit(crawler.settings.get("WAYBACK_API_URL")).hostname
        if wayback:
            spider.allowed_private_hosts.add(wayback.lower())
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
            query = urlencode({"url": lookup.url, "timestamp": lookup.timestamp})
            yield Request(
                f"{api}?{query}",
                callback=self.archived,
                errback=self.archive_failed,
                dont_filter=True,
                meta={"source_id": lookup.source_id, "dont_obey_robotstxt": True},
            )

    def archived(self, response):
        yield ArchiveItem(source_id=response.meta["source_id"], body=response.body)

    def archive_failed(self, failure):
        kind, detail = error_kind(failure)
        yield ArchiveItem(source_id=failure.request.meta["source_id"], error=f"{kind}: {detail}")
