"""One writer per mirror: an advisory lock next to the database.

SQLite would serialise two writers statement by statement, but two syncs
interleaving their runs, frontiers and link checks would make a mess that no
single transaction shows.  ``run`` and ``check-links`` therefore hold an
exclusive ``flock`` on ``<db>.lock`` for their whole run.  The kernel drops
the lock when the process ends, however it ends (even ``kill -9``), so a
stale lock file never blocks anyone; its text only says who held it last.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class MirrorLocked(Exception):
    """Another process is writing this mirror."""


def lock_path(db_path: str) -> Path:
    path = Path(db_path)
    return path.with_name(path.name + ".lock")


@contextmanager
def writer_lock(db_path: str, timeout: float, job: str) -> Iterator[None]:
    """Hold the mirror's writer lock, waiting up to ``timeout`` seconds for it."""
    path = lock_path(db_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = path.read_text(encoding="utf-8", errors="replace").strip() or "another process"
                    raise MirrorLocked(
                        f"{db_path} is being written by {holder}; gave up after {timeout:g}s"
                    ) from None
                time.sleep(0.1)
        started = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({job}, since {started})\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
