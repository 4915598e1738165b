"""Reading a mirror without changing it, and without loading sqlite-utils.

``status`` and ``dead-links`` read through these so that they answer at once:
sqlite-utils (which imports numpy) costs more than the rest of such a command,
and :mod:`pipeline.schema` imports it at the top.  They are the two helpers of
that module, ``open_read_only`` and ``rows_of``, over the standard library only;
once ``pipeline.schema`` loads sqlite-utils inside ``open_database`` alone, the
readers can import them from there again and this module can go.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_read_only(path, timeout: float = 5.0) -> sqlite3.Connection:
    """A connection that can only read: it never creates, migrates or locks a mirror
    another process may be writing (WAL readers never block it)."""
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=timeout)


def rows_of(conn: sqlite3.Connection, sql: str, params=()) -> list[dict]:
    """Rows of a query as dicts, by the column names the query gives."""
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
