"""Settling a run of source checks in the database: read once, decide, write in batches.

The rules are pure functions in :mod:`pipeline.settle`; this is the thin part around
them.  A run's checks and its sources' liveness are read in one pass each, the rules
decide, and the decisions are written in batches of sources, checking between two batches
whether the process was asked to stop (SIGTERM): what was written is then whole per
source, and the sources not reached stay due.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import threading
from collections import defaultdict

from pipeline.settle import OUTAGE_NOTE, Check, Rules, Settlement, SourceLiveness, settle
from pipeline.source_texts import take_back

LIVENESS_COLUMNS = ("status", "strikes", "last_strike_at", "dead_since", "next_check_at", "first_failed_at")


def settle_run(db, run_id: int, now: dt.datetime, rules: Rules, batch: int = 5000, stop=None) -> Settlement:
    """Read the run's checks and its sources' liveness in one pass each, settle, write.

    A rate-limited check's wait (``Retry-After``) is read from its row too, so that a run
    whose checks were stored by more than one process (a Redis writer restarted) keeps it.

    The decisions are written ``batch`` sources per transaction, each source's in one piece
    (its demoted checks, its outage notes, its liveness).  Before each batch ``stop()`` is
    asked: when it says yes the settlement ends there, ``stopped`` set; the sources not
    reached keep their liveness and stay due, so the next run checks them again.
    """
    rows = db.execute(
        "SELECT id, source_id, url, outcome, final_url, coalesce(redirects, 0), checked_at, error"
        " FROM link_checks WHERE sync_run = ? ORDER BY id",
        [run_id],
    )
    checks = [Check(*row) for row in rows]
    waits = db.execute(
        "SELECT source_id, retry_after_s FROM link_checks WHERE sync_run = ? AND retry_after_s > 0", [run_id]
    )
    retry_after = {source_id: dt.timedelta(seconds=seconds) for source_id, seconds in waits}
    settlement = settle(checks, _liveness_of_checked(db, run_id), now, rules, retry_after)
    by_source: dict[int, list[Check]] = defaultdict(list)
    for check in checks:
        if check.id in settlement.demoted or check.id in settlement.outages:
            by_source[check.source_id].append(check)
    source_ids = sorted(set(settlement.liveness) | set(by_source))
    update = f"UPDATE sources SET {', '.join(f'{c} = ?' for c in LIVENESS_COLUMNS)} WHERE id = ?"
    for start in range(0, len(source_ids), max(batch, 1)):
        if stop is not None and stop():
            settlement.stopped = True
            break
        chunk = source_ids[start : start + max(batch, 1)]
        with db.atomic():
            for source_id in chunk:
                for check in by_source.get(source_id, ()):
                    _write_check(db, check, settlement)
            db.conn.executemany(
                update,
                [
                    [settlement.liveness[s][c] for c in LIVENESS_COLUMNS] + [s]
                    for s in chunk
                    if s in settlement.liveness
                ],
            )
        settlement.settled += len(chunk)
    return settlement


@contextlib.contextmanager
def stop_on_signals(signums=(signal.SIGTERM, signal.SIGINT)):
    """While settling, SIGTERM or SIGINT asks :func:`settle_run` to stop after its current batch.

    Yields the ``stop`` callable.  A handler installed before (Scrapy's, which schedules the
    graceful shutdown) is still called, so the process ends once the settlement returns; the
    interpreter's own Ctrl-C handler is not, so that no KeyboardInterrupt cuts a batch short.
    Outside the main thread no handler can be installed, and nothing asks to stop.
    """
    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    previous = {}

    def handler(signum, frame):
        asked.append(signum)
        before = previous.get(signum)
        if callable(before) and before is not signal.default_int_handler:
            before(signum, frame)

    for signum in signums:
        previous[signum] = signal.signal(signum, handler)
    try:
        yield lambda: bool(asked)
    finally:
        for signum, before in previous.items():
            if signal.getsignal(signum) is handler:  # else the chained handler installed its own
                signal.signal(signum, before)


def _write_check(db, check: Check, settlement: Settlement) -> None:
    if check.id in settlement.demoted:
        note = settlement.demoted[check.id]
        db.execute("UPDATE link_checks SET outcome = 'soft404', note = ? WHERE id = ?", [note, check.id])
        db.execute("UPDATE sources SET last_outcome = 'soft404' WHERE id = ?", [check.source_id])
        take_back(db, check.source_id, check.checked_at)  # what it kept was the "missing" page
    if check.id in settlement.outages:
        db.execute("UPDATE link_checks SET note = ? WHERE id = ?", [OUTAGE_NOTE, check.id])


def _liveness_of_checked(db, run_id: int) -> dict[int, SourceLiveness]:
    rows = db.execute(
        "SELECT id, status, strikes, last_strike_at, dead_since, first_failed_at FROM sources"
        " WHERE id IN (SELECT source_id FROM link_checks WHERE sync_run = ?)",
        [run_id],
    )
    return {row[0]: SourceLiveness.from_row(*row[1:]) for row in rows}
