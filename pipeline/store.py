"""The store pipeline: write each page item into ``mirror.db``, one transaction a page.

Each item is written whole (its page row, its events or day, and the links
it queues) or not at all, so a crash between items leaves a database that
holds whole pages only, and whatever was queued but not fetched is due at
the next run.  Writes are conditional: a page whose content hash is the one
already stored moves ``last_seen`` and its schedule and nothing else, which
is what makes a re-run over an unchanged site cheap and quiet.

The work is split by what it owns; this module only composes it:

==========================  ====================================================
``pipeline.pages``          ``pages``: answers, validators, schedule, the queue
``pipeline.events``         ``events`` (new rows) and ``event_urls`` (variants)
``pipeline.canonical``      which variant an event row shows; ``event_versions``
``pipeline.days``           ``days``, ``day_events``, ``day_versions``
``pipeline.removals``       ``removed_at``: gone, unlisted, superseded, restored
``pipeline.linkup``         the end of the run: redirects, links, related events
``pipeline.runs``           the run's ``sync_runs`` row and its counts
``pipeline.frontier``       the spiders' read-only view (never written here)
==========================  ====================================================
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3

from scrapy import signals
from scrapy.exceptions import DropItem

from crawler.failures import FILE_NOT_FOUND
from crawler.items import PageItem
from pipeline.canonical import Canonical
from pipeline.clock import Clock
from pipeline.days import Days
from pipeline.events import Events
from pipeline.linkup import link_up
from pipeline.pages import Pages
from pipeline.removals import Removals
from pipeline.revalidate import Revalidation
from pipeline.runs import SyncRun, start_run
from pipeline.schema import FIRST_SITE, open_database

logger = logging.getLogger(__name__)

GONE = (404, 410)


class Mirror:
    """The write side of ``mirror.db`` for one sync run."""

    def __init__(self, run: SyncRun, revalidation: Revalidation | None = None):
        self.run = run
        self.db = run.db
        self.pages = Pages(run, revalidation or Revalidation())
        canonical = Canonical(run)
        self.removals = Removals(run, canonical)
        self.events = Events(run, canonical, self.removals)
        self.days = Days(run, canonical, self.removals)

    @classmethod
    def start(
        cls,
        path: str,
        clock: Clock,
        start_urls: list[str],
        site_root: str,
        revalidation: Revalidation | None = None,
        full: bool = False,
        site: str = FIRST_SITE,
    ) -> Mirror:
        db = open_database(path)
        run_id = start_run(
            db,
            clock,
            kind="sync",
            start_urls=json.dumps(start_urls),
            site_root=site_root,
            full=int(full),
            site=site,
        )
        return cls(SyncRun(db, run_id, clock, site), revalidation)

    def store(self, item: PageItem) -> None:
        """Write one page and what it holds, in one transaction."""
        with self.db.atomic():
            if item.unchanged:
                if item.kind == "event":
                    self.events.seen_unchanged(item.url)
                elif item.kind == "day":
                    self.days.seen_unchanged(item.url)
            elif item.events or item.day is not None:
                # A portal day holds its events and their listing: events first, so the listing finds them.
                for event_id, event in zip(item.event_ids, item.events, strict=True):
                    self.events.store(event_id, event)
                if item.day is not None:
                    self.days.store(item.day)
            elif item.http_status in GONE or item.error == FILE_NOT_FOUND:
                self.removals.page_gone(item.url)
            self.pages.queue(item.links)
            # Last, so that a page whose content did not land stays due.
            self.pages.record(item)

    def link_up(self) -> None:
        link_up(self.run, self.removals)

    def finish(self, reason: str, costs: dict | None = None) -> dict:
        return self.run.finish(reason, costs)


class StorePipeline:
    """The last pipeline: writes each item and closes the run's bookkeeping."""

    def __init__(self, crawler):
        self.crawler = crawler
        spider = crawler.spider
        self.mirror = Mirror.start(
            crawler.settings.get("MIRROR_DB"),
            Clock.from_settings(crawler.settings),
            list(spider.start_urls),
            spider.site.url,
            Revalidation.from_settings(crawler.settings),
            full=getattr(spider, "full", False),
            site=spider.site_name,
        )
        self.db = self.mirror.db
        self.mirror_path = crawler.settings.get("MIRROR_DB")
        # Pages per transaction: 1 for a crawl (each page lands alone); more for a checkout import,
        # where the commit and its WAL write cost a share of a page's few milliseconds.
        self.batch = max(1, crawler.settings.getint("STORE_BATCH_PAGES"))
        self.pending = 0
        self.db_error: str | None = None
        # The run's row is open until spider_closed closes it; a crawl stopped before Scrapy
        # opened the spider never gets there, and the runner closes the row instead.
        crawler.stats.set_value("mirror/phase_open", self.mirror.run.id)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item: PageItem):
        if self.db_error:
            # The error is logged once, below, and ends the run: the pages in flight stay due.
            raise DropItem(f"not stored: the database cannot be written ({self.db_error})", log_level="DEBUG")
        try:
            if self.batch > 1 and not self.db.conn.in_transaction:
                self.db.execute("BEGIN")  # each page's own transaction becomes a savepoint in it
            self.mirror.store(item)
            self.pending += 1
            if self.pending >= self.batch:
                self._commit()
        except sqlite3.Error as exc:  # disk full, locked past busy_timeout, read-only, corrupt
            self._database_failed(exc)
            raise DropItem(f"not stored: {exc}", log_level="DEBUG") from exc
        stats = self.crawler.stats
        stats.set_value("mirror/events_new", len(self.mirror.run.tally.new))
        stats.set_value("mirror/events_seen", len(self.mirror.run.tally.seen))
        stats.set_value("mirror/page_errors", self.mirror.run.tally.errors)
        return item

    def _database_failed(self, exc: sqlite3.Error) -> None:
        """Stop the crawl at the first failed write: every later page would fail the same way.

        The page's transaction was rolled back, so the mirror holds whole pages
        only, and the page (still due) is fetched again by the next run.
        """
        self._record_db_error(exc)
        logger.error("cannot write %s: %s; stopping the crawl", self.mirror_path, self.db_error)
        asyncio.get_running_loop().create_task(
            self.crawler.engine.close_spider_async(reason="database_error")
        )

    def flush(self) -> None:
        """Commit the open batch, so that the spider's frontier (another connection) reads it."""
        if not self.db_error:
            self._commit()

    def _commit(self) -> None:
        if self.db.conn.in_transaction:
            self.db.execute("COMMIT")
        self.pending = 0

    def close_spider(self):
        if self.db_error:
            if self.db.conn.in_transaction:
                self.db.conn.rollback()  # the batch's pages are read again by the next run
            return
        try:
            self._commit()
            self.mirror.link_up()
        except sqlite3.Error as exc:
            self._record_db_error(exc)

    def _record_db_error(self, exc: sqlite3.Error) -> None:
        """Remember the failed write; the runner turns it into the command's error."""
        self.db_error = f"{type(exc).__name__}: {exc}"
        self.crawler.stats.set_value("mirror/db_error", self.db_error)

    def spider_closed(self, spider, reason):
        stats = self.crawler.stats
        requests = stats.get_value("downloader/request_count", 0)
        responses = stats.get_value("downloader/response_count", 0)
        costs = {
            "requests": requests,
            "bodies": responses - stats.get_value("downloader/response_status_count/304", 0),
            "bytes_received": stats.get_value("downloader/response_bytes", 0),
            "pages_not_due": getattr(spider, "pages_not_due", len(getattr(spider, "not_due", ()))),
            "covers": getattr(spider, "covers", None),
        }
        try:
            run = self.mirror.finish(reason, costs)
            self.crawler.stats.set_value("mirror/errors_by_reason", self.mirror.run.errors_by_reason())
        except sqlite3.Error as exc:
            self._record_db_error(exc)
        else:
            self.crawler.stats.set_value("mirror/run", run)
        finally:
            self.crawler.stats.set_value("mirror/phase_open", None)
            self.db.close()
