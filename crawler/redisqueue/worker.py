"""A source-check worker on the Redis queue (``python -m crawler worker --redis URL``).

It is :class:`crawler.spiders.sources.SourceCheckSpider` (the same requests, the same
politeness, the same facts in each :class:`CheckItem`) fed from Redis instead of
``mirror.db``: ``async def start()`` takes shards (one worker per shard at a time: a
lease), reads their tasks in batches with ``XREADGROUP``, takes over the tasks a dead
worker left pending (``XPENDING``, ``XCLAIM``), and yields the requests.  Its pipeline
(:class:`ResultPipeline`) pushes the facts to the results stream, with what the spider
extracted from a good page in its parse pool (the CPU-heavy part, off the event loop:
``PARSE_PROCESSES``), acknowledging the task in the same transaction.  The worker holds
no database: the writer (``check-links --redis``) judges, stores and settles.

Archive lookups have a stream of their own (``{prefix}:archive``), read by one worker at a
time (a lease, as a shard's) with a budget of their own: at most ``REDIS_BATCH`` in flight,
apart from the checks' ``REDIS_MAX_INFLIGHT``, and the archive host's own delay and
concurrency (:func:`crawler.spiders.archive.polite_to_archive`).  They are asked and answered
by the ArchiveSpider's code (:func:`crawler.spiders.archive.lookup_request`).

Shards are shared by the live workers: each holds at most ``ceil(shards / workers)``; one
holding more stops reading the extra ones and gives them up once their checks are done.
A worker that dies stops renewing its leases; after ``REDIS_LEASE_SECONDS`` another takes
its shards and, after ``REDIS_CLAIM_IDLE_SECONDS``, its pending tasks.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import socket
import time
from collections import defaultdict, deque
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from crawler import redisqueue as redisq
from crawler.items import ArchiveItem, CheckItem, ProbeItem
from crawler.spiders.archive import answered, archive_host, lookup_request, not_answered, polite_to_archive
from crawler.spiders.sources import SourceCheckSpider


@dataclass(frozen=True)
class Task:
    stream: str
    id: bytes
    round: int


class RedisWorkerSpider(SourceCheckSpider):
    name = "redis-worker"

    def __init__(self, redis_url=None, worker_name=None, idle_exit=0, **kwargs):
        super().__init__(**kwargs)
        self.redis_url = redis_url
        self.worker_name = worker_name or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.idle_exit = float(idle_exit or 0)
        self.probing: set[str] = set()
        self.task_of_source: dict[int, deque[Task]] = defaultdict(deque)
        self.task_of_host: dict[str, deque[Task]] = defaultdict(deque)
        self.task_of_lookup: dict[int, deque[Task]] = defaultdict(deque)
        self.archive_held = False
        self.allowed_private_hosts: set[str] = set()
        self.inflight_ids: set[tuple[str, bytes]] = set()  # entry ids are per stream
        self.inflight_by_stream: dict[str, int] = defaultdict(int)
        self.owned: set[int] = set()
        self.draining: set[int] = set()
        self.claim_cursor: dict[str, bytes] = {}
        self.ready_at: dict[int, float] = {}  # a shard just taken is read after one SOURCE_DELAY
        self.suspect: tuple[str, bytes] | None = None  # the task taken over more than once, in flight

    @classmethod
    def update_settings(cls, settings):
        super().update_settings(settings)
        pipelines = {"crawler.redisqueue.worker.ResultPipeline": 400}
        settings.set("ITEM_PIPELINES", pipelines, priority="spider")
        polite_to_archive(settings)

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        wayback = archive_host(crawler.settings)
        if wayback:  # as the ArchiveSpider: the archive's host is the user's choice
            spider.allowed_private_hosts.add(wayback)
        return spider

    def progress(self, stats) -> str:
        return f"checks pushed {stats.get_value('mirror/results_pushed', 0)}, shards held {len(self.owned)}"

    # -- the queue -------------------------------------------------------------------

    @property
    def inflight(self) -> int:
        """Checks and probes in flight (archive lookups have their own budget)."""
        return len(self.inflight_ids) - self.inflight_by_stream[self.keys.archive]

    async def start(self):
        settings = self.settings
        self.keys = redisq.Keys.from_settings(settings)
        self.redis = aioredis.Redis.from_url(self.redis_url)
        self.lease_ms = int(settings.getfloat("REDIS_LEASE_SECONDS") * 1000)
        self.claim_idle_ms = int(settings.getfloat("REDIS_CLAIM_IDLE_SECONDS") * 1000)
        self.max_deliveries = max(settings.getint("REDIS_MAX_DELIVERIES"), 2)
        batch = settings.getint("REDIS_BATCH")
        most = settings.getint("REDIS_MAX_INFLIGHT")
        await self.warm_up()  # the spider extracts good pages' texts in its parse pool
        idle_since = leased_at = 0.0
        while True:
            try:
                if time.monotonic() - leased_at > self.lease_ms / 6000:  # renewed well before it ends
                    await self._leases()
                    leased_at = time.monotonic()
                tasks = []
                if self.inflight < most:
                    tasks = await self._claim(most - self.inflight)
                    tasks += await self._read(min(batch, most - self.inflight - len(tasks)))
                tasks += await self._archive_tasks(batch - self.inflight_by_stream[self.keys.archive])
            except (RedisError, OSError) as exc:
                self.logger.warning("redis: %s; trying again", exc)
                await asyncio.sleep(0.5)
                continue
            for task, fields in tasks:
                for request in self._accept(task, fields):
                    yield request
            if tasks or self.inflight_ids or not idle_since:
                idle_since = time.monotonic()
            elif self.idle_exit and time.monotonic() - idle_since > self.idle_exit:
                await self._give_up_all()
                return
            if not tasks:
                await asyncio.sleep(0.05)

    async def _leases(self) -> None:
        """Heartbeat; renew our leases; take free shards up to our share, give extra ones up."""
        r, keys = self.redis, self.keys
        await r.set(keys.worker(self.worker_name), 1, px=self.lease_ms)
        live = len([k async for k in r.scan_iter(match=keys.workers_pattern, count=1000)])
        share = math.ceil(keys.shards / max(live, 1))
        for shard in sorted(self.owned):
            if not await r.eval(redisq.RENEW, 1, keys.lease(shard), self.worker_name, self.lease_ms):
                self.logger.warning("lost the lease of shard %d", shard)
                self.owned.discard(shard)
                self.draining.discard(shard)
        reading = self.owned - self.draining
        if len(reading) > share:  # stop reading the extra shards with the fewest checks in flight
            extra = sorted(reading, key=lambda s: self.inflight_by_stream[keys.checks(s)])
            self.draining |= set(extra[: len(reading) - share])
        for shard in sorted(self.draining):
            if not self.inflight_by_stream[keys.checks(shard)]:
                await r.eval(redisq.RELEASE, 1, keys.lease(shard), self.worker_name)
                self.owned.discard(shard)
                self.draining.discard(shard)
        await self._archive_lease()
        if len(self.owned) < share:
            free = [s for s in range(keys.shards) if s not in self.owned]
            free.sort(key=lambda s: redisq.shard_of(f"{self.worker_name}/{s}", 1 << 30))  # spread the picks
            for shard in free:
                if len(self.owned) >= share:
                    break
                if await r.set(keys.lease(shard), self.worker_name, nx=True, px=self.lease_ms):
                    await self._group(keys.checks(shard))
                    self.owned.add(shard)
                    # Its last reader sent its last request before its lease ran out: one delay
                    # from now, no host of the shard has had two requests closer than the delay.
                    self.ready_at[shard] = time.monotonic() + self.settings.getfloat("SOURCE_DELAY")
                    self.claim_cursor[keys.checks(shard)] = b"-"

    async def _archive_lease(self) -> None:
        """The archive stream has one reader at a time too: the archive host's budget is one process's."""
        r, lease = self.redis, self.keys.lease("archive")
        if self.archive_held:
            if not await r.eval(redisq.RENEW, 1, lease, self.worker_name, self.lease_ms):
                self.logger.warning("lost the lease of the archive stream")
                self.archive_held = False
        elif await r.set(lease, self.worker_name, nx=True, px=self.lease_ms):
            await self._group(self.keys.archive)
            self.archive_held = True
            slot = self.settings.getdict("DOWNLOAD_SLOTS").get(archive_host(self.settings) or "", {})
            self.archive_ready_at = time.monotonic() + float(slot.get("delay", 0))
            self.claim_cursor[self.keys.archive] = b"-"

    async def _archive_tasks(self, count: int) -> list:
        """Lookups a dead reader left pending, then new ones, up to the archive's own budget."""
        stream = self.keys.archive
        if not self.archive_held or count <= 0 or time.monotonic() < self.archive_ready_at:
            return []
        found = await self._claim_from([stream], count)
        if len(found) >= count:
            return found  # (a COUNT of 0 would read them all)
        try:
            answer = await self.redis.xreadgroup(
                redisq.WORKERS_GROUP, self.worker_name, {stream: ">"}, count=count - len(found)
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self._group(stream)
            return found
        return found + [
            (Task(stream, entry_id, 0), fields)
            for _s, entries in answer or []
            for entry_id, fields in entries
        ]

    async def _group(self, stream: str) -> None:
        try:
            await self.redis.xgroup_create(stream, redisq.WORKERS_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _claim(self, most: int) -> list:
        """Tasks a dead worker left pending on our shards (ours, already in flight, are skipped)."""
        return await self._claim_from([self.keys.checks(shard) for shard in self._readable()], most)

    async def _claim_from(self, streams: list[str], most: int) -> list:
        """Take over what is pending too long on these streams with a worker that is gone.

        ``XPENDING`` says how often each task was handed out.  Handed out once (its worker
        died or stalled), it is taken with the others; more than once (it was taken over
        already, and that worker is gone too), it is taken alone: one such task in flight
        at a time, so that a task that kills its worker takes no other task's count up with
        it; handed out ``REDIS_MAX_DELIVERIES`` times, it goes to the dead-letter stream
        (:meth:`_dead_letter`) instead of killing another worker.
        """
        found = []
        for stream in streams:
            start = self.claim_cursor.get(stream, b"-")
            try:
                pending = await self.redis.xpending_range(
                    stream, redisq.WORKERS_GROUP, min=start, max="+", count=100, idle=self.claim_idle_ms
                )
            except ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                await self._group(stream)  # Redis lost it (restarted): the writer refills the stream
                continue
            self.claim_cursor[stream] = b"(" + pending[-1]["message_id"] if len(pending) == 100 else b"-"
            fresh = []
            for entry in pending:
                entry_id, handed = entry["message_id"], entry["times_delivered"]
                if (stream, entry_id) in self.inflight_ids:
                    continue  # ours, in flight: slow (a host's delay), not lost
                if handed >= self.max_deliveries:
                    await self._dead_letter(stream, entry_id, handed)
                elif handed > 1:
                    if self.suspect is None:
                        alone = await self._xclaim(stream, [entry_id])
                        if alone:
                            self.suspect = (stream, entry_id)
                            found += alone
                elif len(found) + len(fresh) < most:
                    fresh.append(entry_id)
            found += await self._xclaim(stream, fresh)
            if len(found) >= most:
                break
        if found:
            self.crawler.stats.inc_value("mirror/tasks_taken_over", len(found))
        return found

    async def _xclaim(self, stream: str, ids: list[bytes]) -> list:
        if not ids:
            return []
        claimed = await self.redis.xclaim(
            stream, redisq.WORKERS_GROUP, self.worker_name, self.claim_idle_ms, ids
        )  # fmt: skip
        return [(Task(stream, entry_id, 0), fields) for entry_id, fields in claimed if fields]

    async def _dead_letter(self, stream: str, entry_id: bytes, handed: int) -> None:
        """A task no worker lived to answer: kept on the dead-letter stream, and the writer told.

        The writer stores what it is told as it stores any check: a check that could not be
        made (``error`` ``worker_lost``, outcome ``unknown``: no strike, due again after
        ``RETRY_LATER_DAYS``), a probe with no answer, a lookup that failed.  The result, the
        dead letter and the acknowledgement are one transaction.
        """
        entries = await self.redis.xrange(stream, min=entry_id, max=entry_id)
        if not entries:  # trimmed away (its round ended): nothing to answer
            await self.redis.xack(stream, redisq.WORKERS_GROUP, entry_id)
            return
        fields = entries[0][1]
        task = redisq.read_task(fields)
        why = (
            f"handed to workers {handed} times and none lived to report it (each died or stalled"
            " while it was in flight): not checked, no verdict on the source"
        )
        if task["kind"] == "check":
            item = CheckItem(source_id=task["source_id"], url=task["url"], error="worker_lost", detail=why)
        elif task["kind"] == "probe":
            item = ProbeItem(host=task["host"], probe_url=task["url"])
        else:
            item = ArchiveItem(source_id=task["source_id"], error=f"worker_lost: {why}")
        letter = {**fields, b"stream": stream, b"entry": entry_id, b"deliveries": handed, b"why": why}
        pipe = self.redis.pipeline(transaction=True)
        pipe.xadd(self.keys.dead, letter, maxlen=100_000, approximate=True)
        pipe.xadd(self.keys.results, redisq.result_fields(task["round"], item))
        pipe.xack(stream, redisq.WORKERS_GROUP, entry_id)
        await pipe.execute()
        self.logger.warning("dead-lettered %s %s: %s", task["kind"], task["url"], why)
        self.crawler.stats.inc_value("mirror/dead_lettered")

    async def _read(self, count: int) -> list:
        reading = self._readable()
        if not reading or count <= 0:
            return []
        streams = {self.keys.checks(s): ">" for s in reading}
        try:
            answer = await self.redis.xreadgroup(
                redisq.WORKERS_GROUP, self.worker_name, streams, count=count, block=200
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            for stream in streams:
                await self._group(stream)
            return []
        return [
            (Task(stream.decode(), entry_id, 0), fields)
            for stream, entries in answer or []
            for entry_id, fields in entries
        ]

    def _readable(self) -> list[int]:
        now = time.monotonic()
        return sorted(s for s in self.owned - self.draining if self.ready_at.get(s, 0) <= now)

    async def _give_up_all(self) -> None:
        for shard in sorted(self.owned):
            await self.redis.eval(redisq.RELEASE, 1, self.keys.lease(shard), self.worker_name)
        self.owned.clear()
        if self.archive_held:
            await self.redis.eval(redisq.RELEASE, 1, self.keys.lease("archive"), self.worker_name)
            self.archive_held = False
        await self.redis.delete(self.keys.worker(self.worker_name))

    def _accept(self, task: Task, fields: dict):
        """A task becomes a request (a check waits for its host's probe, as in one process)."""
        data = redisq.read_task(fields)
        task = Task(task.stream, task.id, data["round"])
        self.inflight_ids.add((task.stream, task.id))
        self.inflight_by_stream[task.stream] += 1
        if data["kind"] == "archive":
            self.task_of_lookup[data["source_id"]].append(task)
            api = self.settings.get("WAYBACK_API_URL")
            yield lookup_request(
                api, data["source_id"], data["url"], data["timestamp"], self.archived, self.archive_failed
            )
            return
        if data["kind"] == "probe":
            self.probing.add(data["host"])
            self.task_of_host[data["host"]].append(task)
            yield self._probe(data["host"], data["url"])
            return
        self.task_of_source[data["source_id"]].append(task)
        host = redisq.host_of(data["url"])
        if data["soft_host"]:
            self.soft_hosts.add(host)
        if host in self.probing:
            self.waiting.setdefault(host, []).append((data["source_id"], data["url"]))
        else:
            yield self._check(data["source_id"], data["url"])

    def _release(self, host: str):
        self.probing.discard(host)
        yield from super()._release(host)

    def archived(self, response):
        yield answered(response)

    def archive_failed(self, failure):
        yield not_answered(failure)

    def task_of(self, item) -> Task | None:
        """The task an item answers (the pipeline pushes it with the task's round and acks it)."""
        if isinstance(item, ArchiveItem):
            tasks, key = self.task_of_lookup, item.source_id
        elif isinstance(item, CheckItem):
            tasks, key = self.task_of_source, item.source_id
        else:
            tasks, key = self.task_of_host, item.host
        queue = tasks.get(key)
        if not queue:
            return None
        task = queue.popleft()
        if not queue:
            del tasks[key]
        return task

    def done(self, task: Task) -> None:
        if self.suspect == (task.stream, task.id):
            self.suspect = None
        self.inflight_ids.discard((task.stream, task.id))
        self.inflight_by_stream[task.stream] -= 1


class ResultPipeline:
    """Push the check's facts (with what the spider extracted in its parse pool) and ack the task:
    one Redis transaction."""

    def __init__(self, crawler):
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    async def process_item(self, item):
        spider = self.crawler.spider
        task = spider.task_of(item)
        if task is None:
            return item
        # Extracted already, in the parse pool, by the spider (SourceCheckSpider.checked).
        extracted = item.extracted if isinstance(item, CheckItem) else None
        fields = redisq.result_fields(task.round, item, extracted)
        while True:
            try:
                pipe = spider.redis.pipeline(transaction=True)
                pipe.xadd(spider.keys.results, fields)
                pipe.xack(task.stream, redisq.WORKERS_GROUP, task.id)
                await pipe.execute(raise_on_error=False)  # an ack on a stream Redis lost: nothing to ack
                break
            except (RedisError, OSError) as exc:
                spider.logger.warning("redis: %s; pushing the result again", exc)
                await asyncio.sleep(0.5)
        spider.done(task)
        self.crawler.stats.inc_value("mirror/results_pushed")
        return item


__all__ = ["RedisWorkerSpider", "ResultPipeline", "ProbeItem"]
