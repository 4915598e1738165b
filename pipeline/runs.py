"""A run's row in ``sync_runs``: opened at the start, closed with what the run found.

Every job (a sync, a link check) is one row, so that ``status`` and the
scheduler can tell what ran, what it cost and whether a process died
mid-run (its row is still ``running`` when the next one starts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sqlite_utils

from pipeline.clock import Clock

#: ``finish_reason`` of a ``run`` whose site crawl finished while its source checks go on
#: (:func:`pipeline.run_phase.open_phase`): its ``status`` is ``running`` again meanwhile.
CHECKING = "checking sources"


def start_run(db: sqlite_utils.Database, clock: Clock, **fields) -> int:
    """Open a ``sync_runs`` row; a row still "running" was left by a killed process (the writer
    lock lets one process write at a time), also when it died during a later phase."""
    with db.atomic():
        db.execute(
            "UPDATE sync_runs SET status = 'abandoned', finish_reason = CASE finish_reason"
            f" WHEN '{CHECKING}' THEN 'process died during the source checks' ELSE 'process died' END"
            " WHERE status = 'running'"
        )
        return db["sync_runs"].insert({"started_at": clock.iso(), "status": "running", **fields}).last_pk


def run_status(reason: str) -> str:
    """The ``sync_runs.status`` for Scrapy's finish reason."""
    if reason in ("finished", "closespider_pagecount"):
        return "finished"
    return "interrupted" if reason == "shutdown" else "failed"


@dataclass
class RunTally:
    """What one sync found, counted as it goes, for its ``sync_runs`` row."""

    new: set[str] = field(default_factory=set)  # event ids
    changed: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    restored: set[str] = field(default_factory=set)
    pages: int = 0
    not_modified: int = 0
    errors: int = 0
    misdated: int = 0  # pages whose heading's date is not their folder's

    def counts(self) -> dict[str, int]:
        return {
            "pages_fetched": self.pages,
            "pages_not_modified": self.not_modified,
            "events_new": len(self.new),
            "events_changed": len(self.changed - self.new),
            "events_unchanged": len(self.seen - self.new - self.changed),
            "errors": self.errors,
            "pages_misdated": self.misdated,
            "events_removed": len(self.removed),
            "events_restored": len(self.restored),
        }


@dataclass
class SyncRun:
    """One sync's handle on the database: every writer of the store shares it.

    ``site`` is the site this run reads: its days and new events are filed
    under it.
    """

    db: sqlite_utils.Database
    id: int
    clock: Clock
    site: str
    tally: RunTally = field(default_factory=RunTally)
    started: float = field(default_factory=time.monotonic)

    def errors_by_reason(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT error, count(*) FROM pages WHERE sync_run = ? AND error IS NOT NULL"
            " GROUP BY error ORDER BY count(*) DESC, error",
            [self.id],
        )
        return dict(rows.fetchall())

    def finish(self, reason: str, costs: dict | None = None) -> dict:
        """Close the run's row with what it found and, from Scrapy's stats, what it cost."""
        counts = {
            **(costs or {}),
            "duration_seconds": round(time.monotonic() - self.started, 2),
            "finished_at": self.clock.iso(),
            "status": run_status(reason),
            "finish_reason": reason,
            **self.tally.counts(),
        }
        with self.db.atomic():
            self.db["sync_runs"].update(self.id, counts)
        return self.db["sync_runs"].get(self.id)
