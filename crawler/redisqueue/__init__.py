"""The Redis work queue of source checks: keys, shards, leases, and what travels on the streams.

``check-links --redis URL`` (one writer, :mod:`crawler.redisqueue.writer`) puts each due
source on one of ``REDIS_SHARDS`` check streams, chosen by its host's hash, and drains
the results stream into ``mirror.db``; ``worker --redis URL`` processes
(:mod:`crawler.redisqueue.worker`) check and push results.  Everything here is plain
data and key names, shared by both sides:

* ``{prefix}:checks:{k}``: the check stream of shard ``k`` (consumer group ``workers``).
  Its entries are probes (a host's random-sibling probe) and checks (one source), each
  tagged with the round (the ``sync_runs`` row) it belongs to;
* ``{prefix}:archive``: the round's archive lookups (consumer group ``workers``), put there
  once the round is settled; one worker at a time reads it (``{prefix}:lease:archive``), with
  the archive's own politeness (``ARCHIVE_DELAY``, ``ARCHIVE_CONCURRENCY``) and its own
  in-flight budget, apart from the checks';
* ``{prefix}:results``: what the workers found, checks and lookups (consumer group ``writer``);
* ``{prefix}:dead``: the dead-letter stream: tasks handed out ``REDIS_MAX_DELIVERIES`` times
  without a result (every worker that took one died or stalled), kept for a person to read;
  the writer is told through the results stream and stores each as a check that could not
  be made (never a dead link);
* ``{prefix}:lease:{k}``: the worker that reads shard ``k`` now (``SET NX PX``, renewed
  while it lives): one reader per shard, so that one process sends every request to a
  host and Scrapy's per-host delay, concurrency and ``Retry-After`` hold across workers;
* ``{prefix}:worker:{name}``: a live worker's heartbeat (workers share the shards by it);
* ``{prefix}:round``: the round being checked; ``{prefix}:queued:{round}``: the sources
  put on the streams for it, ``{prefix}:enqueued:{round}``: set once all were (and
  ``archive-queued``, ``archive-enqueued``: the same for its lookups).  Redis
  restarted without persistence loses all of these: the writer notices the missing
  round key and puts what is still due (read from ``mirror.db``) on the streams again.

Nothing here counts checks or strikes: the writer reads what was done from the rows it
stored.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from urllib.parse import urlsplit

from crawler.items import ArchiveItem, CheckItem, ProbeItem
from pipeline.extract import Extracted

WORKERS_GROUP = "workers"
WRITER_GROUP = "writer"
WRITER_NAME = "writer"

# Renew a lease only when it is still ours; give it up only when it is ours.
RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end"
    " return 0"
)
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def host_of(url: str) -> str:
    """The host as Scrapy's per-host slot and the probe cache name it."""
    return urlsplit(url).netloc.lower()


def shard_of(host: str, shards: int) -> int:
    """The shard a host's work goes to: a stable hash, the same on every machine."""
    return int.from_bytes(hashlib.sha1(host.encode()).digest()[:8], "big") % shards


def demo_queue(settings) -> None:
    """A demo round (``check-links --demo --redis``, ``worker --redis --demo``) has keys of its own.

    A demo worker delivers every request to its own copy of the bundled demo server: its answers
    must never be stored for a real round, nor a real worker's for a demo one, so the two never
    share a stream, whatever else they share (``{prefix}:demo:...``).
    """
    settings.set("REDIS_PREFIX", f"{settings.get('REDIS_PREFIX')}:demo", priority="cmdline")


class Keys:
    def __init__(self, prefix: str, shards: int):
        self.prefix = prefix
        self.shards = shards

    @classmethod
    def from_settings(cls, settings) -> Keys:
        return cls(settings.get("REDIS_PREFIX"), settings.getint("REDIS_SHARDS"))

    def checks(self, shard: int) -> str:
        return f"{self.prefix}:checks:{shard}"

    def all_checks(self) -> list[str]:
        return [self.checks(k) for k in range(self.shards)]

    def shard_of_stream(self, stream: str) -> int:
        return int(stream.rsplit(":", 1)[1])

    @property
    def results(self) -> str:
        return f"{self.prefix}:results"

    @property
    def archive(self) -> str:
        return f"{self.prefix}:archive"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    def lease(self, shard: int | str) -> str:
        return f"{self.prefix}:lease:{shard}"

    def worker(self, name: str) -> str:
        return f"{self.prefix}:worker:{name}"

    @property
    def workers_pattern(self) -> str:
        return f"{self.prefix}:worker:*"

    @property
    def round(self) -> str:
        return f"{self.prefix}:round"

    def queued(self, round_id: int) -> str:
        return f"{self.prefix}:queued:{round_id}"

    def enqueued(self, round_id: int) -> str:
        return f"{self.prefix}:enqueued:{round_id}"

    def archive_queued(self, round_id: int) -> str:
        return f"{self.prefix}:archive-queued:{round_id}"

    def archive_enqueued(self, round_id: int) -> str:
        return f"{self.prefix}:archive-enqueued:{round_id}"


# -- tasks: writer → workers ------------------------------------------------------


def check_task(round_id: int, source_id: int, url: str, soft_host: bool = False) -> dict:
    """``soft_host``: the mirror's probe says the host answers made-up URLs with a page, so the
    worker takes a good page's words in its pool (the probe is not on the stream to tell it)."""
    task = {"kind": "check", "round": round_id, "source_id": source_id, "url": url}
    return {**task, "soft_host": 1} if soft_host else task


def probe_task(round_id: int, host: str, sample_url: str) -> dict:
    return {"kind": "probe", "round": round_id, "host": host, "url": sample_url}


def archive_task(round_id: int, source_id: int, url: str, timestamp: str) -> dict:
    return {"kind": "archive", "round": round_id, "source_id": source_id, "url": url, "timestamp": timestamp}


def read_task(fields: dict) -> dict:
    task = {k.decode(): v.decode() for k, v in fields.items()}
    task["round"] = int(task["round"])
    if "source_id" in task:
        task["source_id"] = int(task["source_id"])
    task["soft_host"] = task.get("soft_host") == "1"
    return task


# -- results: workers → writer -----------------------------------------------------


KIND_OF = {CheckItem: "check", ProbeItem: "probe", ArchiveItem: "archive"}
ITEM_OF = {kind.encode(): cls for cls, kind in KIND_OF.items()}


def result_fields(round_id: int, item, extracted: Extracted | None = None) -> dict:
    """A CheckItem, ProbeItem or ArchiveItem as stream fields; the body compressed, the extraction
    alongside."""
    facts = dataclasses.asdict(item)
    body = facts.pop("body")
    facts.pop("extracted", None)
    fields = {
        "kind": KIND_OF[type(item)],
        "round": round_id,
        "facts": json.dumps(facts),
    }
    if body is not None:
        fields["body"] = zlib.compress(body, 1)
    if extracted is not None:
        fields["extracted"] = json.dumps(dataclasses.asdict(extracted))
    return fields


def read_result(fields: dict) -> tuple[int, CheckItem | ProbeItem | ArchiveItem]:
    facts = json.loads(fields[b"facts"])
    body = zlib.decompress(fields[b"body"]) if b"body" in fields else None
    item = ITEM_OF[fields[b"kind"]](**facts, body=body)
    if b"extracted" in fields:
        item.extracted = Extracted(**json.loads(fields[b"extracted"]))
    return int(fields[b"round"]), item
