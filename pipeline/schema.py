"""Applying the mirror's schema to a database, old or new, idempotently; opening it.

``ensure_schema(db)`` creates what is missing and adds columns that a newer
version of the project declares, so an old ``mirror.db`` is migrated in place
and never dropped.  The declarations themselves are in ``pipeline.tables``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.tables import FILLED_WHEN_ADDED, FIRST_SITE, FTS, INDEXES, TABLES, UNIQUE_INDEXES, VIEWS

if TYPE_CHECKING:  # sqlite-utils loads numpy: readers (status, dead-links) never need it
    import sqlite_utils


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
    import sqlite_utils

    db = sqlite_utils.Database(path)
    db.execute("PRAGMA busy_timeout=5000")
    ensure_schema(db)
    db.execute("PRAGMA synchronous=NORMAL")
    return db
