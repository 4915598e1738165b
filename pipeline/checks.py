"""The pipeline of the source checks: store each check, and settle the run when it finished.

It composes the parts of the check run (:class:`crawler.spiders.sources.SourceCheckSpider`):

* each :class:`CheckItem` is judged (:mod:`pipeline.check_classify`: its own facts, then
  its host's random-sibling probe) and stored in ``link_checks``; a good check keeps
  what the source says (:mod:`pipeline.source_texts`); each :class:`ProbeItem` is kept
  in ``hosts``;
* when the check spider closes with reason ``finished``, the pipeline settles the run
  (:mod:`pipeline.settle`: shared redirect targets, host outages, an offline run,
  liveness) in committed batches of ``SETTLE_BATCH`` sources.  The spider never asks
  for this: it only yields items, and data flows one way.  An interrupted run is not
  settled (its checks are kept, its liveness does not move), as before.  SIGTERM or
  SIGINT during the settlement stops it after the current batch: the run is then
  ``interrupted`` and the sources not reached stay due.  A run settled to the end sets
  the ``mirror/settled`` stat, on which :mod:`crawler.runner` starts the archive
  lookups (:mod:`pipeline.archive`), a crawl of their own that reads what the
  settlement wrote;
* an offline run (most hosts failed at the network level) strikes nothing, warns, and
  sets ``sync_runs.offline`` (and the ``mirror/offline`` stat: the runner then does not
  ask the archive, which an offline machine cannot reach either);
* the run's row gets the checks' count and duration (:mod:`pipeline.run_phase`); the
  checks of a ``run`` (whose site crawl closed the row) keep it ``running`` until they
  end, so that a process killed meanwhile leaves a row the next run marks ``abandoned``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from scrapy import signals

from crawler.items import CheckItem, ProbeItem
from pipeline.check_classify import HostProbes, judge
from pipeline.clock import Clock
from pipeline.run_phase import close_phase, open_phase
from pipeline.runs import start_run
from pipeline.schema import open_database
from pipeline.settle import Rules
from pipeline.settlement import settle_run, stop_on_signals
from pipeline.source_texts import keep

logger = logging.getLogger(__name__)


class SourceCheckPipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        settings = crawler.settings
        self.clock = Clock.from_settings(settings)
        self.rules = Rules.from_settings(settings)
        self.soft404_similarity = settings.getfloat("SOFT404_SIMILARITY")
        self.db = open_database(settings.get("MIRROR_DB"))
        self.run_id: int | None = crawler.spider.run_id
        self.own_run = self.run_id is None
        self.reopened: tuple[str, str] | None = None
        self.settle_batch = settings.getint("SETTLE_BATCH", 5000)
        self.probes = HostProbes(self.db, self.clock)
        self.started = time.monotonic()
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def open_spider(self):
        """Take the run's row when the checks really start, not when the crawler is built:
        a process stopped in between (SIGTERM) leaves the row as the site crawl closed it."""
        if self.own_run:
            self.run_id = start_run(self.db, self.clock, kind="check-links")
        else:
            # A run's checks: its row is ours again until they end (killed meanwhile, it is abandoned).
            self.reopened = open_phase(self.db, self.run_id)
        # Until spider_closed closes it; a crawl stopped before that is closed by the runner.
        self.crawler.stats.set_value("mirror/phase_open", self.run_id)

    def process_item(self, item):
        if isinstance(item, CheckItem):
            self._check(item)
        elif isinstance(item, ProbeItem):
            self.probes.keep(item)
        return item

    def _check(self, item: CheckItem) -> None:
        now = self.clock.iso()
        verdict = judge(item, self.probes, self.soft404_similarity)
        self.crawler.stats.inc_value("mirror/sources_checked")
        with self.db.atomic():
            self.db["link_checks"].insert(
                {
                    "source_id": item.source_id,
                    "sync_run": self.run_id,
                    "checked_at": now,
                    "url": item.url,
                    "http_status": item.http_status,
                    "final_url": verdict.final_url,
                    "redirects": item.redirects,
                    "content_type": item.content_type,
                    "size": item.size,
                    "error": item.error,
                    "elapsed_ms": item.elapsed_ms,
                    "outcome": verdict.outcome,
                    "note": verdict.note,
                    # Stored, not kept in memory: a resumed round (a Redis writer restarted) settles it.
                    "retry_after_s": verdict.retry_after.total_seconds() if verdict.retry_after else None,
                }
            )
            self.db.execute(
                "UPDATE sources SET last_checked_at = ?, last_outcome = ? WHERE id = ?",
                [now, verdict.outcome, item.source_id],
            )
            if verdict.outcome == "ok":
                keep(self.db, item, verdict.final_url, verdict.html, now)

    def spider_closed(self, spider, reason):
        """Settle a finished run, then close the run's row: its own (check-links), or the sync's."""
        fields = {"sources_checked": self.crawler.stats.get_value("mirror/sources_checked", 0)}
        if reason == "finished":
            with stop_on_signals() as asked_to_stop:
                settlement = settle_run(
                    self.db,
                    self.run_id,
                    self.clock.now(),
                    self.rules,
                    batch=self.settle_batch,
                    stop=asked_to_stop,
                )
            fields["offline"] = int(settlement.offline)
            self.crawler.stats.set_value("mirror/offline", settlement.offline)
            if settlement.offline:
                logger.warning(
                    "offline run: %s; this machine's network, not the web, is failing:"
                    " no source was struck, and they are due again in %g day(s) (RETRY_LATER_DAYS)",
                    settlement.network.describe(),
                    self.rules.policy.retry_later / dt.timedelta(days=1),
                )
            if settlement.stopped:
                reason = "shutdown"
                logger.warning(
                    "stopped while settling the checks: %d of %d checked sources settled;"
                    " the others stay due",
                    settlement.settled,
                    len(settlement.liveness),
                )
            else:
                self.crawler.stats.set_value("mirror/settled", True)
        close_phase(
            self.db,
            self.crawler.stats,
            self.run_id,
            reason,
            time.monotonic() - self.started,
            self.clock.iso(),
            owns_status=self.own_run,
            reopened=self.reopened,
            **fields,
        )
        self.crawler.stats.set_value("mirror/phase_open", None)
        self.db.close()
