"""Writing a row as plain SQL, for the store's hot path.

sqlite-utils' ``insert``, ``upsert`` and ``update`` read the schema before each
write (``sqlite_master`` and ``PRAGMA table_info``), check the row exists
before an update, and wrap each call in a savepoint: measured on a 3,400-page
import, 64,000 of the store's 320,000 statements and 9 s of its 37 s
(profiled) were that bookkeeping.  The schema is ensured once when the mirror
opens (``pipeline.schema``), so the store writes with these instead; the
statements are built once per (table, columns) and SQLite caches them.
sqlite-utils keeps everything else: creating and migrating the schema, the
CLI's reads, tests.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence


@functools.lru_cache(maxsize=256)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"


@functools.lru_cache(maxsize=256)
def _upsert_sql(table: str, columns: tuple[str, ...], keys: tuple[str, ...]) -> str:
    sets = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in keys)
    action = f"DO UPDATE SET {sets}" if sets else "DO NOTHING"
    return f"{_insert_sql(table, columns)} ON CONFLICT ({', '.join(keys)}) {action}"


@functools.lru_cache(maxsize=256)
def _update_sql(table: str, columns: tuple[str, ...], key: str) -> str:
    return f"UPDATE {table} SET {', '.join(f'{column} = ?' for column in columns)} WHERE {key} = ?"


def insert(db, table: str, row: dict) -> None:
    db.conn.execute(_insert_sql(table, tuple(row)), list(row.values()))


def insert_all(db, table: str, rows: Sequence[dict]) -> None:
    if rows:
        db.conn.executemany(_insert_sql(table, tuple(rows[0])), [list(row.values()) for row in rows])


def upsert(db, table: str, row: dict, keys: tuple[str, ...]) -> None:
    """Insert the row, or set the columns it names on the row with the same ``keys``."""
    db.conn.execute(_upsert_sql(table, tuple(row), keys), list(row.values()))


def update(db, table: str, key: str, value, fields: dict) -> None:
    db.conn.execute(_update_sql(table, tuple(fields), key), [*fields.values(), value])
