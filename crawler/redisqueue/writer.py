"""The one writer of a Redis check round (``python -m crawler check-links --redis URL``).

The round is a ``sync_runs`` row (made or resumed by :func:`crawler.runner.check_sources_redis`).
The spider sends no request: its ``async def start()`` puts what is due on the check
streams (:func:`enqueue_due`), then reads the results stream and yields each result as the
:class:`CheckItem` or :class:`ProbeItem` the one-process spider would have yielded.  So
:class:`RedisWriterPipeline` is :class:`pipeline.checks.SourceCheckPipeline`: the same
verdicts, rows and settlement; it only skips a check whose (source, round) row is already
stored (a result pushed twice: a task taken over from a worker that had in fact pushed it,
or a writer restarted before its ack).  :class:`AckPipeline`, after it, acknowledges the
result once its row is committed.

The round ends when every source put on the streams has a check row of the round, as
read from ``mirror.db``.  When Redis loses the round (restarted without persistence), the
writer puts on the streams again what is due and has no row of the round yet.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from scrapy import Spider

from crawler import redisqueue as redisq
from crawler.items import ArchiveItem, CheckItem, ProbeItem
from crawler.spiders.sources import demo_plays
from pipeline.archive import ArchivePipeline
from pipeline.checks import SourceCheckPipeline
from pipeline.schema import open_read_only
from pipeline.source_frontier import SourceFrontier


class ResultsReader(Spider):
    """A writer's phase: put tasks on a stream, then store the results until none is missing.

    :class:`RedisWriterSpider` (the checks) and :class:`RedisArchiveWriterSpider` (the archive
    lookups, once the round is settled) differ in what they queue (``_begin``), what they
    store (``stores``, through ``store_pipeline``), the key that says their tasks are queued
    (``_enqueued_key``) and how they read from ``mirror.db`` what is still missing (``_missing``).
    """

    stores: tuple[type, ...] = ()
    store_pipeline = ""  # the pipeline that stores a result; AckPipeline acknowledges it after

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        settings.set(
            "ITEM_PIPELINES",
            {cls.store_pipeline: 400, "crawler.redisqueue.writer.AckPipeline": 500},
            priority="spider",
        )

    def _enqueued_key(self) -> str:
        raise NotImplementedError

    async def _held(self) -> bool:
        """Does Redis still hold this phase's round, with its tasks queued (not lost in a restart)?"""
        held = await self.redis.get(self.keys.round) == str(self.run_id).encode()
        return held and bool(await self.redis.exists(self._enqueued_key()))

    def __init__(self, redis_url=None, run_id=None, **kw):
        super().__init__(**kw)
        self.redis_url = redis_url
        self.run_id = int(run_id)
        self.ack_ids: list[bytes] = []
        self.result_of: dict[int, bytes] = {}  # id(item) -> its result's entry id

    async def start(self):
        self.keys = redisq.Keys.from_settings(self.settings)
        self.redis = aioredis.Redis.from_url(self.redis_url)
        self.db_path = self.settings.get("MIRROR_DB")
        expected: set[int] = set()
        backlog = True  # first our own pending results (a writer restarted), then new ones
        backlog_from = b"0"
        checked_at = 0.0
        begun = False
        while True:
            try:
                if not begun or not await self._held():
                    if begun:
                        self.logger.warning("redis lost round %d (restarted?): queueing again", self.run_id)
                    expected |= await self._begin()
                    begun = backlog = True
                    backlog_from = b"0"
                await self._ack()
                answer = await self.redis.xreadgroup(
                    redisq.WRITER_GROUP,
                    redisq.WRITER_NAME,
                    {self.keys.results: backlog_from if backlog else ">"},
                    count=200,
                    block=None if backlog else 200,
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._results_group()
                continue
            except (RedisError, OSError) as exc:
                self.logger.warning("redis: %s; trying again", exc)
                await asyncio.sleep(0.5)
                continue
            entries = [e for _stream, batch in answer or [] for e in batch]
            if backlog and not entries:
                backlog = False
            elif backlog:
                backlog_from = entries[-1][0]  # the pending list again, after what was read
            for entry_id, fields in entries:
                if not fields:  # trimmed away while pending
                    self.ack_ids.append(entry_id)
                    continue
                round_id, item = redisq.read_result(fields)
                if round_id != self.run_id or not isinstance(item, self.stores):
                    # Another round's (an old writer's), or a late copy of a phase that ended: not ours.
                    self.ack_ids.append(entry_id)
                    continue
                self.result_of[id(item)] = entry_id
                yield item
            if backlog and entries:
                continue
            if not entries or time.monotonic() - checked_at > 2:
                checked_at = time.monotonic()
                if not self._missing(expected):
                    self.logger.info("round %d: all %d %s stored", self.run_id, len(expected), self.what)
                    await self._ack()
                    return

    async def _group(self, stream: str, group: str) -> None:
        try:
            await self.redis.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _results_group(self) -> None:
        await self._group(self.keys.results, redisq.WRITER_GROUP)

    async def _ack(self) -> None:
        if self.ack_ids:
            ids, self.ack_ids = self.ack_ids, []
            await self.redis.xack(self.keys.results, redisq.WRITER_GROUP, *ids)


class RedisWriterSpider(ResultsReader):
    name = "redis-writer"
    stores = (CheckItem, ProbeItem)
    store_pipeline = "crawler.redisqueue.writer.RedisWriterPipeline"
    what = "sources checked"

    def __init__(self, redis_url=None, run_id=None, check_all=False, limit=0, only_unchecked=False, **kw):
        super().__init__(redis_url, run_id, **kw)
        self.check_all = bool(check_all)
        self.only_unchecked = bool(only_unchecked)
        self.limit = int(limit or 0)

    def progress(self, stats) -> str:
        return f"sources checked {stats.get_value('mirror/sources_checked', 0)} (round {self.run_id})"

    def _enqueued_key(self) -> str:
        return self.keys.enqueued(self.run_id)

    async def _begin(self) -> set[int]:
        """Make sure the round is on the streams; the sources it expects a check row for."""
        await self._results_group()
        for stream in self.keys.all_checks():
            await self._group(stream, redisq.WORKERS_GROUP)
        added = await enqueue_due(self, self.redis, self.keys)
        await self.redis.set(self.keys.round, self.run_id)
        await self.redis.set(self.keys.enqueued(self.run_id), 1)
        if added:
            self.logger.info("round %d: %d tasks put on the streams", self.run_id, added)
        return {int(s) for s in await self.redis.smembers(self.keys.queued(self.run_id))}

    def _missing(self, expected: set[int]) -> set[int]:
        return expected - self._stored()

    def _stored(self) -> set[int]:
        conn = open_read_only(self.db_path)
        try:
            rows = conn.execute("SELECT source_id FROM link_checks WHERE sync_run = ?", [self.run_id])
            return {row[0] for row in rows}
        finally:
            conn.close()


class RedisArchiveWriterSpider(ResultsReader):
    """The settled round's archive lookups: on ``{prefix}:archive``, answered by the workers.

    What a lookup stores is :class:`pipeline.archive.ArchivePipeline`'s, as in one process; a
    lookup is missing while its source is still due one, as read from ``mirror.db``
    (:meth:`SourceFrontier.archive_lookups`): a stored answer, empty or failed included, dates
    ``archive_checked_at`` and takes the source off that list.
    """

    name = "redis-archive-writer"
    stores = (ArchiveItem,)
    store_pipeline = "crawler.redisqueue.writer.RedisArchivePipeline"
    what = "archive lookups"

    def __init__(self, redis_url=None, run_id=None, lookups=None, **kw):
        super().__init__(redis_url, run_id, **kw)
        self.lookups = lookups

    def progress(self, stats) -> str:
        return f"archive lookups {stats.get_value('mirror/archive_answers', 0)} (round {self.run_id})"

    def _enqueued_key(self) -> str:
        return self.keys.archive_enqueued(self.run_id)

    def _due(self):
        lookups = self.lookups
        self.lookups = None  # the runner's list, read before this phase: only the first time
        if lookups is None:
            with SourceFrontier.from_settings(self.settings) as frontier:
                lookups = frontier.archive_lookups()
        keep = demo_plays(self.settings)
        return [lookup for lookup in lookups if keep is None or keep(lookup.url)]

    async def _begin(self) -> set[int]:
        await self._results_group()
        await self._group(self.keys.archive, redisq.WORKERS_GROUP)
        keys, round_id = self.keys, self.run_id
        queued = {int(s) for s in await self.redis.smembers(keys.archive_queued(round_id))}
        todo = [lookup for lookup in self._due() if lookup.source_id not in queued]
        for start in range(0, len(todo), 500):
            pipe = self.redis.pipeline(transaction=True)
            for lookup in todo[start : start + 500]:
                task = redisq.archive_task(round_id, lookup.source_id, lookup.url, lookup.timestamp)
                pipe.xadd(keys.archive, task)
                pipe.sadd(keys.archive_queued(round_id), lookup.source_id)
            await pipe.execute()
        await self.redis.set(keys.round, round_id)
        await self.redis.set(keys.archive_enqueued(round_id), 1)
        if todo:
            self.logger.info("round %d: %d archive lookups put on their stream", round_id, len(todo))
        return {int(s) for s in await self.redis.smembers(keys.archive_queued(round_id))}

    def _missing(self, expected: set[int]) -> set[int]:
        with SourceFrontier.from_settings(self.settings) as frontier:
            due = {lookup.source_id for lookup in frontier.archive_lookups()}
        return expected & due


async def enqueue_due(spider, redis, keys) -> int:
    """Put on the streams what is due and neither stored for this round nor queued already.

    Read from ``mirror.db`` as the one-process spider reads it (due sources, hosts whose probe
    is stale); a host's probe goes first on its stream, so its worker judges it before its checks.
    """
    keep = demo_plays(spider.settings)
    with SourceFrontier.from_settings(spider.settings) as frontier:
        if keep is None:
            due = frontier.due_sources(spider.check_all, spider.only_unchecked, spider.limit)
        else:  # the demo's sources only, as the one-process spider checks them (the others stay due)
            played = [
                row for row in frontier.due_sources(spider.check_all, spider.only_unchecked) if keep(row[1])
            ]
            due = played[: spider.limit] if spider.limit else played
        to_probe = frontier.hosts_to_probe(due)
        # A probed host's worker learns from the probe; the others are told with each check.
        soft = frontier.soft_hosts(due, to_probe)
    stored = spider._stored()
    queued = {int(s) for s in await redis.smembers(keys.queued(spider.run_id))}
    todo = [(s, url) for s, url in due if s not in stored and s not in queued]
    by_host: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for source_id, url in todo:
        by_host[redisq.host_of(url)].append((source_id, url))
    added = 0
    hosts = list(by_host.items())
    for start in range(0, len(hosts), 200):
        pipe = redis.pipeline(transaction=True)
        for host, sources in hosts[start : start + 200]:
            stream = keys.checks(redisq.shard_of(host, keys.shards))
            if host in to_probe:
                pipe.xadd(stream, redisq.probe_task(spider.run_id, host, to_probe[host]))
            for source_id, url in sources:
                pipe.xadd(stream, redisq.check_task(spider.run_id, source_id, url, host in soft))
                pipe.sadd(keys.queued(spider.run_id), source_id)
                added += 1
        await pipe.execute()
    return added


class RedisWriterPipeline(SourceCheckPipeline):
    """The one-process pipeline on the writer's round: idempotent per (source, round)."""

    def __init__(self, crawler):
        super().__init__(crawler)
        self.own_run = True  # the round's row is this job's (made or resumed by the runner)

    def open_spider(self):
        self.crawler.stats.set_value("mirror/phase_open", self.run_id)

    def _check(self, item: CheckItem) -> None:
        stored = self.db.execute(
            "SELECT 1 FROM link_checks WHERE sync_run = ? AND source_id = ?", [self.run_id, item.source_id]
        ).fetchone()
        if stored:
            self.crawler.stats.inc_value("mirror/duplicate_results")
            return
        super()._check(item)

    def spider_closed(self, spider, reason):
        # Checks stored by an earlier writer of the round count too (read from the rows).
        count = self.db.execute("SELECT count(*) FROM link_checks WHERE sync_run = ?", [self.run_id])
        self.crawler.stats.set_value("mirror/sources_checked", count.fetchone()[0])
        super().spider_closed(spider, reason)


class RedisArchivePipeline(ArchivePipeline):
    """The one-process archive pipeline, idempotent: an answer stored once per source and phase.

    A source whose answer this phase already stored (its ``archive_checked_at`` at or after the
    phase began: before it, the source was due a lookup, so it was older) is skipped: a lookup
    answered twice (taken over from a worker that had in fact pushed it) is stored once.
    """

    def __init__(self, crawler):
        super().__init__(crawler)
        self.began = self.clock.iso()

    def process_item(self, item):
        if isinstance(item, ArchiveItem):
            stored = self.db.execute(
                "SELECT 1 FROM sources WHERE id = ? AND archive_checked_at >= ?", [item.source_id, self.began]
            ).fetchone()
            if stored:
                self.crawler.stats.inc_value("mirror/duplicate_results")
                return item
        return super().process_item(item)


class AckPipeline:
    """After the row is committed (the pipeline before this one), the result may be acknowledged."""

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        spider = self.crawler.spider
        entry_id = spider.result_of.pop(id(item), None)
        if entry_id is not None:
            spider.ack_ids.append(entry_id)
        return item
