"""A phase of a run adds what it did to the run's ``sync_runs`` row.

``run`` is a site crawl, then the source checks, then the archive lookups: three Scrapy
crawls in one process, all on one ``sync_runs`` row.  ``check-links`` is the last two, on
a row of its own that the check phase opens.  Each phase adds its duration, dates the
row's end and, when it did not finish, says why (the runner then starts no further
phase).  A phase that joins a run the site crawl already closed (``run``'s source checks)
opens it again (:func:`open_phase`: ``running`` until the phase closes it), so that a
process killed during the checks leaves a row the next run marks ``abandoned``.  The
phase's crawl stats get the row and the sources by status (``mirror/run``,
``mirror/source_status``): :mod:`crawler.runner` reports them from the last phase that ran.
"""

from __future__ import annotations

import sqlite3

from pipeline.runs import CHECKING, run_status


def open_phase(db, run_id: int) -> tuple[str, str] | None:
    """Mark a closed run ``running`` again for this phase; return the status and reason it had."""
    row = db.execute("SELECT status, finish_reason FROM sync_runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        return None
    with db.atomic():
        db.execute(
            "UPDATE sync_runs SET status = 'running', finish_reason = ? WHERE id = ?", [CHECKING, run_id]
        )
    return row[0], row[1]


def close_phase(
    db,
    stats,
    run_id: int,
    reason: str,
    elapsed: float,
    now: str,
    owns_status: bool,
    reopened: tuple[str, str] | None = None,
    **fields,
):
    """Write ``fields``, the end and the added duration; the status when it is this phase's to say
    (``reopened``: what :func:`open_phase` found, given back when this phase finished)."""
    fields["finished_at"] = now
    if owns_status or reason != "finished":
        fields.update(status=run_status(reason), finish_reason=reason)
    elif reopened is not None:
        fields.update(status=reopened[0], finish_reason=reopened[1])
    with db.atomic():
        db["sync_runs"].update(run_id, fields)
        # The row already holds the earlier phases' durations: add this one's.
        db.execute(
            "UPDATE sync_runs SET duration_seconds = round(coalesce(duration_seconds, 0) + ?, 2)"
            " WHERE id = ?",
            [round(elapsed, 2), run_id],
        )
    stats.set_value("mirror/run", db["sync_runs"].get(run_id))
    stats.set_value("mirror/source_status", source_counts(db))


def interrupt_unclosed(path: str, stats, now: str) -> None:
    """Close the row of a phase that opened but never closed, as ``interrupted``.

    A SIGTERM that lands while Scrapy is still starting a crawl stops it
    without ``spider_closed``: the phase's row would stay ``running`` (and be
    called ``abandoned`` by the next run) although this process stopped it
    cleanly.  The runner calls this for every phase once the reactor is done.
    """
    run_id = stats.get_value("mirror/phase_open")
    if run_id is None:
        return
    from pipeline.schema import open_database

    try:
        db = open_database(path)
    except sqlite3.Error:
        return  # the row stays running; the next run calls it abandoned
    try:
        with db.atomic():
            db.execute(
                "UPDATE sync_runs SET status = 'interrupted', finish_reason = 'shutdown', finished_at = ?"
                " WHERE id = ? AND status = 'running'",
                [now, run_id],
            )
        stats.set_value("mirror/run", db["sync_runs"].get(run_id))
        stats.set_value("mirror/source_status", source_counts(db))
        stats.set_value("mirror/phase_open", None)
    except sqlite3.Error:
        pass  # as above: the next run calls the row abandoned
    finally:
        db.close()


def source_counts(db) -> dict[str, int]:
    rows = db.execute("SELECT status, count(*) FROM sources GROUP BY status ORDER BY status").fetchall()
    return dict(rows)
