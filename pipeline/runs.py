"""A run's row in ``sync_runs``: opened at the start, closed with what the run found.

Every job (a sync, a link check) is one row, so that ``status`` and the
scheduler can tell what ran, what it cost and whether a process died
mid-run (its row is still ``running`` when the next one starts).
"""

from __future__ import annotations

import sqlite3
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


class EventIdSet:
    """One of a run's sets of event ids (new, changed, seen...), as rows of the tally's private
    temporary database: a whole record's import meets every one of its 110,000 events."""

    def __init__(self, conn: sqlite3.Connection, name: str):
        self.conn = conn
        self.name = name
        self.size = 0  # counted as it goes: the store reports the counts after every page

    def add(self, event_id: str) -> None:
        cursor = self.conn.execute("INSERT OR IGNORE INTO ids VALUES (?, ?)", [self.name, event_id])
        self.size += cursor.rowcount

    def discard(self, event_id: str) -> None:
        cursor = self.conn.execute("DELETE FROM ids WHERE name = ? AND id = ?", [self.name, event_id])
        self.size -= cursor.rowcount

    def __len__(self) -> int:
        return self.size


class RunTally:
    """What one sync found, counted as it goes, for its ``sync_runs`` row.

    The sets of event ids are kept on disk, in a private temporary SQLite database
    (``sqlite3.connect("")``: its cache is bounded, it spills to a file deleted with the
    connection), as ``crawler.asked`` keeps the URLs a crawl asked for.  In Python sets
    they cost some 0.25 kB an event, and grew with the record."""

    def __init__(self):
        self.conn = sqlite3.connect("", isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")  # nothing here survives the run
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute(
            "CREATE TABLE ids (name TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (name, id)) WITHOUT ROWID"
        )
        self.new = EventIdSet(self.conn, "new")
        self.changed = EventIdSet(self.conn, "changed")
        self.seen = EventIdSet(self.conn, "seen")
        self.removed = EventIdSet(self.conn, "removed")
        self.restored = EventIdSet(self.conn, "restored")
        self.pages = 0
        self.not_modified = 0
        self.errors = 0
        self.misdated = 0  # pages whose heading's date is not their folder's

    def written(self):
        """The ids of the events whose content this run wrote (new or changed), in order."""
        rows = self.conn.execute("SELECT DISTINCT id FROM ids WHERE name IN ('new', 'changed') ORDER BY id")
        return (row[0] for row in rows)

    def _count_outside(self, name: str, *others: str) -> int:
        """How many ids of the set ``name`` are in none of the sets ``others``."""
        marks = ", ".join("?" for _ in others)
        return self.conn.execute(
            f"SELECT count(*) FROM ids i WHERE name = ? AND NOT EXISTS"
            f" (SELECT 1 FROM ids o WHERE o.id = i.id AND o.name IN ({marks}))",
            [name, *others],
        ).fetchone()[0]

    def counts(self) -> dict[str, int]:
        return {
            "pages_fetched": self.pages,
            "pages_not_modified": self.not_modified,
            "events_new": len(self.new),
            "events_changed": self._count_outside("changed", "new"),
            "events_unchanged": self._count_outside("seen", "new", "changed"),
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
