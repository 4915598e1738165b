"""A run's row in ``sync_runs``: opened at the start, closed with what the run found.

Every job (a sync, a link check) is one row, so that ``status`` and the
scheduler can tell what ran, what it cost and whether a process died
mid-run (its row is still ``running`` when the next one starts).
"""

from __future__ import annotations

import sqlite_utils

from pipeline.clock import Clock


def start_run(db: sqlite_utils.Database, clock: Clock, **fields) -> int:
    """Open a ``sync_runs`` row; a row still "running" was left by a killed process."""
    with db.atomic():
        db.execute(
            "UPDATE sync_runs SET status = 'abandoned', finish_reason = 'process died'"
            " WHERE status = 'running'"
        )
        return db["sync_runs"].insert({"started_at": clock.iso(), "status": "running", **fields}).last_pk


def run_status(reason: str) -> str:
    """The ``sync_runs.status`` for Scrapy's finish reason."""
    if reason in ("finished", "closespider_pagecount"):
        return "finished"
    return "interrupted" if reason == "shutdown" else "failed"
