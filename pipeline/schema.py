"""Applying the mirror's schema to a database, old or new, idempotently; opening it.

``ensure_schema(db)`` creates what is missing and adds columns that a newer
version of the project declares, so an old ``mirror.db`` is migrated in place
and never dropped.  The declarations themselves are in ``pipeline.tables``.

The file's ``PRAGMA user_version`` says which version of the schema last
ensured it (:data:`SCHEMA_VERSION`).  A file of a higher version was written by
a newer release of the project, which may have given its tables a meaning this
one does not know: it is refused (:class:`SchemaTooNew`) before anything is
written to it.  Raise :data:`SCHEMA_VERSION` when a change to the tables is one
that an older release must not write over (a column whose meaning changed, a
table rebuilt); columns that are merely added need no new version, since
every open adds what is missing.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from pipeline.tables import FILLED_WHEN_ADDED, FIRST_SITE, FTS, INDEXES, TABLES, UNIQUE_INDEXES, VIEWS

if TYPE_CHECKING:  # sqlite-utils loads numpy: readers (status, dead-links) never need it
    import sqlite_utils

#: The version of the schema this release writes, kept in the file's ``PRAGMA user_version``.
SCHEMA_VERSION = 1


class SchemaTooNew(sqlite3.DatabaseError):
    """The file was written by a newer release of the project: this one must not write it."""

    def __init__(self, path, version: int):
        self.path, self.version = str(path), version
        super().__init__(
            f"{path} was written by a newer version of news-event-mirror (schema version {version};"
            f" this version knows up to {SCHEMA_VERSION}): upgrade news-event-mirror to use it"
        )


def schema_version(conn: sqlite3.Connection) -> int:
    """The file's ``PRAGMA user_version`` (0 for a mirror made before versions were kept).

    Raises ``sqlite3.DatabaseError`` ("file is not a database") for a file that is not SQLite.
    """
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _file_of(conn: sqlite3.Connection) -> str:
    row = conn.execute("PRAGMA database_list").fetchone()
    return (row[2] if row else "") or "the database"


def refuse_newer(conn: sqlite3.Connection, path=None) -> int:
    """The file's schema version; raise :class:`SchemaTooNew` if it is newer than this release's."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise SchemaTooNew(path or _file_of(conn), version)
    return version


def schema_current(conn: sqlite3.Connection) -> bool:
    """Is the file at this release's version, with every table, column, view and search index?

    Only reads: a reader asks this to decide whether the file needs ``ensure_schema`` first.
    """
    if schema_version(conn) != SCHEMA_VERSION:
        return False
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    wanted = set(TABLES) | set(VIEWS) | {f"{table}_fts" for table in FTS}
    if not wanted <= names:
        return False
    for name, (columns, _) in TABLES.items():
        have = {row[1] for row in conn.execute(f"PRAGMA table_info([{name}])")}
        if not set(columns) <= have:
            return False
    return True


def writable(path) -> bool:
    """Can this process write the file and create its journal beside it (root included)?"""
    path = Path(path)
    return os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK)


def ensure_schema(db: sqlite_utils.Database) -> None:
    """Create missing tables, columns, indexes and FTS; never drop anything.

    A file of a newer schema version is refused (:class:`SchemaTooNew`) before any write.
    """
    version = refuse_newer(db.conn)
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
    if version < SCHEMA_VERSION:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


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
    migrate or lock a mirror another process may be writing (WAL readers never block it).

    In a folder nobody can write (a read-only mount, an immutable copy), a WAL file
    cannot be read in the usual way, which needs to create its ``-shm`` beside it;
    there no process can be writing it either, so it is opened as immutable.
    """
    path = Path(path).resolve()
    mode = "mode=ro&immutable=1" if frozen(path) else "mode=ro"
    return sqlite3.connect(f"file:{quote(str(path))}?{mode}", uri=True, timeout=timeout)


def frozen(path) -> bool:
    """Can nobody write this file now: its folder cannot be written (no journal can be made),
    and it has no write-ahead log to be read?  Then it may be opened as immutable."""
    path = Path(path).resolve()
    wal = path.with_name(path.name + "-wal")
    return path.exists() and not os.access(path.parent, os.W_OK) and not wal.exists()


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
