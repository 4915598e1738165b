"""The mirror's schema, in one place, applied idempotently.

``ensure_schema(db)`` creates what is missing and adds columns that a newer
version of the project declares, so an old ``mirror.db`` is migrated in place
and never dropped.  The README's schema table documents these declarations;
Datasette follows the foreign keys declared here.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils

# table -> (columns, options).  Columns are in the order Datasette shows them.
TABLES: dict[str, tuple[dict[str, type], dict]] = {
    "sync_runs": (
        {
            "id": int,
            "kind": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "finish_reason": str,
            "start_urls": str,
            "site": str,  # thecontext or wikipedia
            "site_root": str,
            "pages_fetched": int,
            "pages_not_modified": int,
            "events_new": int,
            "events_changed": int,
            "events_unchanged": int,
            "errors": int,
            "sources_checked": int,
            # what the sync cost (issue 4): what it asked, what came back, what it skipped
            "full": int,
            "requests": int,
            "bodies": int,
            "bytes_received": int,
            "pages_not_due": int,
            "events_removed": int,
            "events_restored": int,
            "duration_seconds": float,
        },
        {"pk": "id"},
    ),
    "events": (
        {
            "id": str,
            "url": str,
            "date": str,
            "story": str,
            "topic": str,
            "text": str,
            "title": str,
            "description": str,
            "first_seen": str,
            "last_seen": str,
            "updated_at": str,
            "removed_at": str,
            "removed_reason": str,
            "superseded_by": str,
            "text_key": str,
            "content_hash": str,
            "sync_run": int,
            "site": str,  # where the event was first read: thecontext or wikipedia
        },
        {
            "pk": "id",
            "not_null": {"url", "date", "text", "title"},
            "foreign_keys": [("sync_run", "sync_runs", "id")],
        },
    ),
    "event_urls": (
        {
            "url": str,
            "event_id": str,
            "via": str,
            "date": str,
            "text_key": str,
            "title": str,
            "listed": int,
            "content_hash": str,
            "snapshot": str,
            "first_seen": str,
            "last_seen": str,
            "removed_at": str,
        },
        {"pk": "url", "foreign_keys": [("event_id", "events", "id")]},
    ),
    "event_versions": (
        {"event_id": str, "recorded_at": str, "url": str, "content_hash": str, "snapshot": str},
        {"foreign_keys": [("event_id", "events", "id")]},
    ),
    "sources": (
        {
            "id": int,
            "url": str,
            "domain": str,
            "first_seen": str,
            # liveness (pipeline.liveness)
            "status": str,
            "strikes": int,
            "last_strike_at": str,
            "last_checked_at": str,
            "last_outcome": str,
            "next_check_at": str,
            "first_failed_at": str,
            "dead_since": str,
            # what the last good check kept
            "http_status": int,
            "final_url": str,
            "content_type": str,
            "size": int,
            "title": str,
            "description": str,
            "published": str,
            "site_name": str,
            "content_hash": str,
            "first_ok_at": str,
            "last_ok_at": str,
            # the Internet Archive's copy
            "archive_url": str,
            "archive_timestamp": str,
            "archive_checked_at": str,
        },
        {"pk": "id"},
    ),
    "source_texts": (
        {"id": int, "source_id": int, "fetched_at": str, "content_hash": str, "text": str},
        {"pk": "id", "foreign_keys": [("source_id", "sources", "id")]},
    ),
    "link_checks": (
        {
            "id": int,
            "source_id": int,
            "sync_run": int,
            "checked_at": str,
            "url": str,
            "http_status": int,
            "final_url": str,
            "redirects": int,
            "content_type": str,
            "size": int,
            "error": str,
            "elapsed_ms": int,
            "outcome": str,
            "note": str,
        },
        {
            "pk": "id",
            "foreign_keys": [("source_id", "sources", "id"), ("sync_run", "sync_runs", "id")],
        },
    ),
    "hosts": (
        {
            "host": str,
            "probe_url": str,
            "probe_status": int,
            "probe_final_url": str,
            "probe_tokens": str,
            "probed_at": str,
        },
        {"pk": "host"},
    ),
    "event_sources": (
        {"event_id": str, "source_id": int, "label": str, "position": int},
        {
            "pk": ("event_id", "position"),
            "foreign_keys": [("event_id", "events", "id"), ("source_id", "sources", "id")],
        },
    ),
    "related_events": (
        {
            "event_id": str,
            "position": int,
            "related_url": str,
            "related_id": str,
            "title": str,
            "contexts": str,
            "via": str,  # page (listed on the event's page) or entities (computed: pipeline.related)
        },
        {
            "pk": ("event_id", "position"),
            "foreign_keys": [("event_id", "events", "id"), ("related_id", "events", "id")],
        },
    ),
    "contexts": ({"id": int, "name": str}, {"pk": "id"}),
    "event_contexts": (
        {"event_id": str, "context_id": int},
        {
            "pk": ("event_id", "context_id"),
            "foreign_keys": [("event_id", "events", "id"), ("context_id", "contexts", "id")],
        },
    ),
    # Days are per site: the Context and the portal both have a 2018-01-18.
    "days": (
        {"site": str, "date": str, "url": str, "event_count": int, "previous_url": str, "fetched_at": str},
        {"pk": ("site", "date")},
    ),
    "day_events": (
        {
            "site": str,
            "date": str,
            "position": int,
            "url": str,
            "event_id": str,
            "title": str,
            "topic": str,
            "contexts": str,
            "description": str,
        },
        {"pk": ("site", "date", "position"), "foreign_keys": [("event_id", "events", "id")]},
    ),
    "day_versions": (
        {"site": str, "date": str, "recorded_at": str, "url": str, "listing": str, "sync_run": int},
        {"foreign_keys": [("sync_run", "sync_runs", "id")]},
    ),
    "pages": (
        {
            "url": str,
            "http_status": int,
            "kind": str,
            "fetched_at": str,
            "content_hash": str,
            "size": int,
            "error": str,
            "redirect_to": str,
            "sync_run": int,
            "etag": str,
            "last_modified": str,
            "revision": int,  # the portal page's MediaWiki revision id
            # due-based revalidation (pipeline.revalidate)
            "date": str,
            "first_seen": str,
            "unchanged_streak": int,
            "next_check_at": str,
        },
        {"pk": "url", "foreign_keys": [("sync_run", "sync_runs", "id")]},
    ),
}

UNIQUE_INDEXES = [("sources", ["url"]), ("contexts", ["name"])]
INDEXES = [
    ("events", ["date"]),
    ("events", ["date", "text_key"]),
    ("event_urls", ["event_id"]),
    ("event_urls", ["date", "text_key"]),
    ("event_versions", ["event_id"]),
    ("event_sources", ["source_id"]),
    ("related_events", ["related_url"]),
    ("related_events", ["related_id"]),
    ("event_contexts", ["context_id"]),
    ("day_events", ["url"]),
    ("sources", ["domain"]),
    ("sources", ["status"]),
    ("sources", ["next_check_at"]),
    ("source_texts", ["source_id"]),
    ("link_checks", ["source_id"]),
    ("link_checks", ["sync_run"]),
    ("pages", ["kind"]),
    ("pages", ["next_check_at"]),
    ("day_versions", ["site", "date"]),
    ("events", ["site"]),
]
# Mirrors made before the portal adapter hold only the Context's events and days.
FIRST_SITE = "thecontext"
# What the rows of an older mirror hold in a column added since: written once, when it is added.
FILLED_WHEN_ADDED = {("events", "site"): FIRST_SITE, ("related_events", "via"): "page"}
FTS = {"events": ["title", "text", "story"], "source_texts": ["text"]}

# Views that make the common questions one SELECT (Datasette lists them with the tables).
VIEWS = {
    "events_overview": """
        SELECT e.id, e.date, e.story, e.topic, e.text, e.url,
          (SELECT count(*) FROM event_sources es WHERE es.event_id = e.id) AS sources,
          (SELECT count(*) FROM event_sources es JOIN sources s ON s.id = es.source_id
            WHERE es.event_id = e.id AND s.status = 'dead') AS dead_sources,
          (SELECT count(*) FROM related_events r WHERE r.event_id = e.id) AS related,
          (SELECT count(*) FROM event_versions v WHERE v.event_id = e.id) AS versions,
          e.removed_at
        FROM events e""",
    "domains": """
        SELECT domain, count(*) AS sources,
          sum(status = 'alive') AS alive, sum(status = 'failing') AS failing,
          sum(status = 'dead') AS dead, sum(status = 'blocked') AS blocked,
          sum(status = 'unchecked') AS unchecked,
          round(100.0 * sum(status = 'dead') / count(*), 1) AS dead_percent,
          sum(status = 'dead' AND archive_url IS NOT NULL) AS dead_archived
        FROM sources GROUP BY domain""",
}


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create missing tables, columns, indexes and FTS; never drop anything."""
    db.execute("PRAGMA journal_mode=WAL")
    _key_days_by_site(db)
    db.execute("PRAGMA foreign_keys=ON")
    with db.conn:
        for name, (columns, options) in TABLES.items():
            table = db[name]
            if not table.exists():
                table.create(columns, **options)
                continue
            existing = set(table.columns_dict)
            for column, kind in columns.items():
                if column not in existing:
                    table.add_column(column, kind)
                    if (name, column) in FILLED_WHEN_ADDED:
                        db.execute(f"UPDATE {name} SET {column} = ?", [FILLED_WHEN_ADDED[name, column]])
        for name, columns in UNIQUE_INDEXES:
            db[name].create_index(columns, unique=True, if_not_exists=True)
        for name, columns in INDEXES:
            db[name].create_index(columns, if_not_exists=True)
        db.execute("UPDATE sources SET status = 'unchecked' WHERE status IS NULL")
        db.execute("UPDATE sources SET strikes = 0 WHERE strikes IS NULL")
    for name, sql in VIEWS.items():
        create = f"CREATE VIEW {name} AS {sql.strip()}"
        stored = db.execute("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", [name])
        stored = stored.fetchone()
        if stored is None or stored[0] != create:  # a view holds no data: replacing it loses nothing
            with db.conn:
                db.execute(f"DROP VIEW IF EXISTS {name}")
                db.execute(create)
    for name, columns in FTS.items():
        if not db[name].detect_fts():
            db[name].enable_fts(columns, create_triggers=True, tokenize="porter")
            _narrow_update_trigger(db, name, columns)


def _key_days_by_site(db: sqlite_utils.Database) -> None:
    """Bring a mirror whose days are keyed by date alone to (site, date).

    The rows are copied into the new tables by sqlite-utils' ``transform``
    (nothing is lost), in one transaction, with foreign keys off while the
    tables are swapped, as SQLite's ALTER TABLE procedure asks.
    """
    if not db["days"].exists() or db["days"].pks != ["date"]:
        return
    db.execute("PRAGMA foreign_keys=OFF")
    try:
        with db.conn:
            for name, pk in (("days", ("site", "date")), ("day_events", ("site", "date", "position"))):
                db[name].add_column("site", str)
                db.execute(f"UPDATE {name} SET site = ?", [FIRST_SITE])
                db[name].transform(pk=pk, drop_foreign_keys=["date"])
            if db["day_versions"].exists():
                db["day_versions"].add_column("site", str)
                db.execute("UPDATE day_versions SET site = ?", [FIRST_SITE])
                db["day_versions"].transform(drop_foreign_keys=["date"])
    finally:
        db.execute("PRAGMA foreign_keys=ON")


def _narrow_update_trigger(db: sqlite_utils.Database, table: str, columns: list[str]) -> None:
    """Re-index a row only when an indexed column changes.

    sqlite-utils' trigger fires on every UPDATE; a sync that only moves
    ``last_seen`` would then rewrite the whole full-text index.
    """
    trigger = f"{table}_au"
    body = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", [trigger]
    ).fetchone()
    if body is None:
        return
    listed = ", ".join(f'"{c}"' for c in columns)
    narrowed = body[0].replace(f'AFTER UPDATE ON "{table}"', f'AFTER UPDATE OF {listed} ON "{table}"', 1)
    with db.conn:
        db.execute(f'DROP TRIGGER "{trigger}"')
        db.execute(narrowed)


def open_read_only(path, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection that can only read: for reports and checks that must not create,
    migrate or lock a mirror another process may be writing (WAL readers never block it)."""
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=timeout)


def rows_of(conn: sqlite3.Connection, sql: str, params=()) -> list[dict]:
    """Rows of a query as dicts, by the column names the query gives."""
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def open_database(path: str) -> sqlite_utils.Database:
    """Open (creating if needed) a mirror database with its schema in place."""
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA busy_timeout=5000")
    ensure_schema(db)
    db.execute("PRAGMA synchronous=NORMAL")
    return db
