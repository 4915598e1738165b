"""``python -m crawler status``: what the mirror holds, how it last synced, what is due.

Read-only: it opens ``mirror.db`` with SQLite's read-only URI so that it can
run while a sync writes (WAL readers never block the writer) and never
creates or migrates a file.
"""

from __future__ import annotations

from pipeline.schema import open_read_only, rows_of

RUN_COLUMNS = (
    "id, kind, started_at, finished_at, status, finish_reason, duration_seconds, requests,"
    " pages_not_modified, bodies, bytes_received, pages_fetched, pages_not_due, events_new,"
    " events_changed, events_removed, events_restored, errors, sources_checked, offline"
)


def _one(conn, sql: str, params=()) -> dict | None:
    rows = rows_of(conn, sql, params)
    return rows[0] if rows else None


def _scalar(conn, sql: str, params=()):
    return conn.execute(sql, params).fetchone()[0]


def _counts(conn, sql: str, params=()) -> dict[str, int]:
    return {str(key): count for key, count in conn.execute(sql, params).fetchall()}


def mirror_status(path: str, now: str, conn=None) -> dict:
    """Everything ``status`` shows, as one JSON-ready dict; ``now`` is an ISO moment.

    Read through ``conn`` when given (the caller closes it), else a read-only connection of its own.
    """
    own = conn is None
    conn = open_read_only(path) if own else conn
    try:
        days = _one(conn, "SELECT count(*) AS count, min(date) AS first, max(date) AS last FROM days")
        events = _one(
            conn,
            "SELECT count(*) AS count, count(removed_at) AS removed,"
            " (SELECT count(*) FROM event_versions) AS versions FROM events",
        )
        pages = _counts(
            conn,
            "SELECT CASE WHEN kind = 'queued' THEN 'queued (not fetched yet)'"
            " WHEN error IS NOT NULL THEN 'failed' ELSE 'ok' END, count(*) FROM pages GROUP BY 1",
        )
        sources = _counts(conn, "SELECT status, count(*) FROM sources GROUP BY status ORDER BY status")
        last = {
            kind: _one(
                conn,
                f"SELECT {RUN_COLUMNS} FROM sync_runs WHERE kind = ? ORDER BY id DESC LIMIT 1",
                [kind],
            )
            for kind in ("sync", "check-links")
        }
        due = {}
        # Portal day pages (they have a revision) are not scheduled: every sync asks the API about them.
        scheduled = {"pages": "revision IS NULL", "sources": "1"}
        for table, noun in (("pages", "page"), ("sources", "source")):
            due[f"{table}_due_now"] = _scalar(
                conn,
                f"SELECT count(*) FROM {table} WHERE {scheduled[table]}"
                " AND (next_check_at IS NULL OR next_check_at <= ?)",
                [now],
            )
            due[f"next_{noun}_check_at"] = _scalar(
                conn,
                f"SELECT min(next_check_at) FROM {table} WHERE {scheduled[table]} AND next_check_at > ?",
                [now],
            )
    finally:
        if own:
            conn.close()
    return {
        "db": str(path),
        "now": now,
        "days": days,
        "events": events,
        "pages": pages,
        "sources_by_status": sources,
        "last_sync": last["sync"],
        "last_check_links": last["check-links"],
        "due": due,
    }


def _run_line(run: dict | None) -> str:
    if run is None:
        return "never"
    line = f"#{run['id']} {run['started_at']} → {run['status']} ({run['finish_reason']})"
    if run["duration_seconds"] is not None:
        line += f" in {run['duration_seconds']:.1f}s"
    if run["kind"] == "sync":
        line += (
            f"; {run['requests'] or 0} requests, {run['pages_not_modified'] or 0} not modified,"
            f" {run['bytes_received'] or 0} bytes; events {run['events_new'] or 0} new,"
            f" {run['events_changed'] or 0} changed, {run['events_removed'] or 0} removed"
        )
    if run["sources_checked"] is not None:
        line += f"; {run['sources_checked']} sources checked"
    if run["offline"]:
        line += " (offline: most hosts failed at the network level; nothing was struck)"
    return line


def render_status(s: dict) -> str:
    days, events, due = s["days"], s["events"], s["due"]
    span = f" ({days['first']} … {days['last']})" if days["count"] else ""
    pages = ", ".join(f"{n} {what}" for what, n in sorted(s["pages"].items())) or "none"
    sources = ", ".join(f"{n} {status}" for status, n in s["sources_by_status"].items()) or "none"
    return "\n".join(
        [
            f"Mirror {s['db']}",
            f"  days: {days['count']}{span}",
            f"  events: {events['count']} ({events['removed']} marked removed,"
            f" {events['versions']} earlier versions kept)",
            f"  pages: {pages}",
            f"  sources: {sources}",
            f"  last sync: {_run_line(s['last_sync'])}",
            f"  last link check: {_run_line(s['last_check_links'])}",
            f"  due now: {due['pages_due_now']} pages, {due['sources_due_now']} sources",
            f"  next due: page {due['next_page_check_at'] or '-'},"
            f" source {due['next_source_check_at'] or '-'}",
        ]
    )
