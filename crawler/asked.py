"""The URLs one crawl has asked for, kept on disk: memory that does not grow with the record.

A crawl asks for each page once, and counts the known pages it passed over as
not due; the site's whole record is some 300,000 pages, each linked from
several others.  Held in Python sets, those URLs (and Scrapy's request
fingerprints beside them) grew with the record, and so did the crawl's cost
per event (11% from 20k to 100k events; flat since, see BENCHMARKS.md).  Here
they are rows of a private temporary SQLite database (``sqlite3.connect("")``):
its pages are cached in a bounded amount of memory (SQLite's default 2 MB) and
spill to a file that is deleted when the crawl ends.  A lookup costs some 8 µs,
a new URL 17 (measured over 300,000 URLs): under one percent of a crawl that
fetches the page.

The links a crawl follows while Scrapy's scheduler is full wait here too, in
the order they were met (``wait``, ``next_waiting``), and go to the scheduler
as it makes room: its queue is in memory, and a crawl that met links faster
than it fetched them held thousands of requests there (the front page alone
lists every day of the record).

It is not the mirror: what a run asked for means nothing to the next run, and
the mirror's own connections stay as they are (the frontier only reads).
"""

from __future__ import annotations

import sqlite3


class AskedUrls:
    """URL → asked (True) or found not due (False) in this run; counts of each."""

    def __init__(self):
        self.conn = sqlite3.connect("", isolation_level=None)  # a private temporary database
        # Nothing here must survive a crash: no journal, no sync.
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute("CREATE TABLE asked (url TEXT PRIMARY KEY, asked INTEGER NOT NULL) WITHOUT ROWID")
        self.conn.execute("CREATE TABLE waiting (line INTEGER PRIMARY KEY, url TEXT NOT NULL)")
        self.requested = 0  # URLs asked for
        self.not_due = 0  # known URLs passed over because they were not due
        self.waiting = 0  # URLs asked for whose request waits for room in the scheduler
        self.waited = 0  # of which URLs, in all, waited

    def state(self, url: str) -> bool | None:
        """True: asked for; False: passed over as not due; None: not met yet in this run."""
        row = self.conn.execute("SELECT asked FROM asked WHERE url = ?", [url]).fetchone()
        return None if row is None else bool(row[0])

    def __contains__(self, url: str) -> bool:
        return bool(self.state(url))

    def ask(self, url: str) -> None:
        """``url`` is being asked for (a page passed over as not due may be asked for later:
        a start URL, a missing file's check; it stays counted as not due, as it was met so)."""
        self.conn.execute(
            "INSERT INTO asked (url, asked) VALUES (?, 1) ON CONFLICT (url) DO UPDATE SET asked = 1", [url]
        )
        self.requested += 1

    def pass_over(self, url: str) -> None:
        """``url`` is known and not due: counted once, however often it is met."""
        cursor = self.conn.execute(
            "INSERT INTO asked (url, asked) VALUES (?, 0) ON CONFLICT (url) DO NOTHING", [url]
        )
        self.not_due += cursor.rowcount

    def wait(self, url: str) -> None:
        """``url``, asked for, waits for room in the scheduler."""
        self.conn.execute("INSERT INTO waiting (url) VALUES (?)", [url])
        self.waiting += 1
        self.waited += 1

    def next_waiting(self, count: int) -> list[str]:
        """The ``count`` URLs that have waited longest, out of the line."""
        rows = self.conn.execute("SELECT line, url FROM waiting ORDER BY line LIMIT ?", [count]).fetchall()
        if rows:
            self.conn.execute("DELETE FROM waiting WHERE line <= ?", [rows[-1][0]])
            self.waiting -= len(rows)
        return [url for _, url in rows]

    def close(self) -> None:
        self.conn.close()
