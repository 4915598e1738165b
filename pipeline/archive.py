"""The pipeline of the archive lookups: the Internet Archive's answers on failing and dead sources.

The lookups are a crawl of their own (:class:`crawler.spiders.archive.ArchiveSpider`),
started by :mod:`crawler.runner` once the check run is settled, because only the
settled run knows which sources are failing or dead.  A phase of its own also gives
the lookups their own stream and, later, their own budget.

An answer with a capture fills ``archive_url``/``archive_timestamp``; an empty,
malformed or failed answer only dates ``archive_checked_at``, so the source is asked
again after ``ARCHIVE_RECHECK_DAYS`` (:func:`pipeline.settle.archive_lookups`).  The
phase adds its duration to the run's row (:mod:`pipeline.run_phase`).
"""

from __future__ import annotations

import time

from scrapy import signals

from crawler.items import ArchiveItem
from pipeline.clock import Clock
from pipeline.run_phase import close_phase
from pipeline.schema import open_database
from pipeline.settle import read_archive_answer


class ArchivePipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        self.clock = Clock.from_settings(crawler.settings)
        self.db = open_database(crawler.settings.get("MIRROR_DB"))
        self.run_id = crawler.spider.run_id
        self.started = time.monotonic()
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        if isinstance(item, ArchiveItem):
            row = {"archive_checked_at": self.clock.iso()}
            copy = read_archive_answer(item.body)
            if copy:
                row.update(archive_url=copy[0], archive_timestamp=copy[1])
            with self.db.atomic():
                self.db["sources"].update(item.source_id, row)
            self.crawler.stats.inc_value("mirror/archive_answers")
        return item

    def spider_closed(self, spider, reason):
        """Add the lookups to the run's row (the checks already said whether the run finished)."""
        if self.run_id is not None:
            elapsed = time.monotonic() - self.started
            close_phase(
                self.db, self.crawler.stats, self.run_id, reason, elapsed, self.clock.iso(), owns_status=False
            )
        self.db.close()
