"""What the spiders may know of the mirror: a read-only view of the frontier.

A spider decides what to ask for (is this page due? what validators do we
hold? which links did an unchanged page have?) from what earlier runs
stored, but it never writes: it yields items, and the store pipeline writes
them.  So the frontier has a connection of its own that cannot write, and
data flows one way: spider → items → pipelines → database.  (WAL readers see
every transaction the store has committed: a crawl commits each page; a checkout import commits
each batch, and flushes the last one before its end-of-walk pass reads the frontier.)
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from pipeline.clock import Clock
from pipeline.schema import open_read_only
from pipeline.snapshots import event_from_snapshot


class Frontier:
    def __init__(self, conn: sqlite3.Connection, clock: Clock):
        self.conn = conn
        self.clock = clock

    @classmethod
    def open(cls, path: str, clock: Clock) -> Frontier:
        """Open the mirror read-only; the store pipeline has created and migrated it already."""
        return cls(open_read_only(path), clock)

    def close(self) -> None:
        self.conn.close()

    def is_due(self, url: str) -> bool:
        """Never seen, queued, or its ``next_check_at`` has come."""
        row = self.conn.execute("SELECT next_check_at FROM pages WHERE url = ?", [url]).fetchone()
        return row is None or row[0] is None or row[0] <= self.clock.iso()

    def due_pages(self, site_root: str, everything: bool = False, lot: int = 5000):
        """Pages of this site to ask about at the start of a run, newest day first (undated last).

        Read ``lot`` rows at a time, each lot a query of its own that starts after the last
        row of the one before: a full run of the whole record holds one lot in memory, not
        300,000 URLs, and no read transaction stays open across the crawl (it would hold
        back the WAL's checkpoints, and hide the store's commits from this connection)."""
        where = "url >= ? AND url < ?"
        params: list = [site_root, site_root + "\U0010ffff"]
        if not everything:
            where += " AND (next_check_at IS NULL OR next_check_at <= ?)"
            params.append(self.clock.iso())
        after: tuple[str, str] | None = None
        while True:
            page_after = ""
            keys = []
            if after is not None:
                page_after = " AND (coalesce(date, '') < ? OR (coalesce(date, '') = ? AND url > ?))"
                keys = [after[0], after[0], after[1]]
            rows = self.conn.execute(
                f"SELECT coalesce(date, ''), url FROM pages WHERE {where}{page_after}"
                " ORDER BY coalesce(date, '') DESC, url LIMIT ?",
                [*params, *keys, lot],
            ).fetchall()
            for _date, url in rows:
                yield url
            if len(rows) < lot:
                return
            after = rows[-1]

    def known_page(self, url: str) -> dict | None:
        """Kind, validators and hash of a page whose content the mirror holds.

        None for pages that failed, and for an event or day page whose content
        is not stored (as an older version of this code could leave it): those
        are fetched and parsed in full again.
        """
        row = self.conn.execute(
            """
            SELECT kind, etag, last_modified, content_hash FROM pages p WHERE url = ? AND (
                (kind = 'event' AND EXISTS (
                    SELECT 1 FROM event_urls WHERE url = p.url AND snapshot LIKE '%"changes":%'))
                OR (kind = 'day' AND EXISTS (SELECT 1 FROM days WHERE url = p.url))
                OR (kind IN ('index', 'other') AND content_hash IS NOT NULL))
            """,
            [url],
        ).fetchone()
        return dict(zip(("kind", "etag", "last_modified", "content_hash"), row, strict=True)) if row else None

    def checkout_states(self, folder_url: str) -> dict[str, tuple]:
        """What the mirror holds of a checkout's folder (``run --checkout``): for each page in
        ``folder_url`` (not in its subfolders), ``(size, file_mtime, content_hash, kind, held)``.
        ``held``: its content is stored as this version stores it (see ``known_page``), or its
        error is the file's own."""
        rows = self.conn.execute(
            """
            SELECT url, size, file_mtime, content_hash, kind,
                (kind = 'event' AND EXISTS (
                    SELECT 1 FROM event_urls WHERE url = p.url AND snapshot LIKE '%"changes":%'))
                OR (kind = 'day' AND EXISTS (SELECT 1 FROM days WHERE url = p.url))
                OR (kind IN ('index', 'other') AND content_hash IS NOT NULL)
                OR (kind = 'error' AND file_mtime IS NOT NULL)
            FROM pages p WHERE url >= ? AND url < ? AND instr(substr(url, ?), '/') = 0
            """,
            [folder_url, folder_url + "\U0010ffff", len(folder_url) + 1],
        ).fetchall()
        return {row[0]: row[1:] for row in rows}

    def pages_below(self, prefix: str, after: str = ""):
        """(url, kind, error) of every page below ``prefix`` (after the URL ``after``), in URL
        order, read as a stream (a checkout's pages may be hundreds of thousands)."""
        yield from self.conn.execute(
            "SELECT url, kind, error FROM pages WHERE url >= ? AND url > ? AND url < ? ORDER BY url",
            [prefix, after, prefix + "\U0010ffff"],
        )

    def known_revisions(self, urls: list[str]) -> dict[str, int]:
        """The revision of each portal day page whose content the mirror holds."""
        if not urls:
            return {}
        marks = ",".join("?" for _ in urls)
        rows = self.conn.execute(
            f"SELECT p.url, p.revision FROM pages p WHERE p.url IN ({marks}) AND p.kind = 'day'"
            " AND p.revision IS NOT NULL AND EXISTS (SELECT 1 FROM days d WHERE d.url = p.url)",
            urls,
        ).fetchall()
        return dict(rows)

    def stored_links(self, url: str, kind: str) -> list[str]:
        """The site links of an unchanged page, from what its last parse stored."""
        if kind == "day":
            day = self.conn.execute(
                "SELECT site, date, previous_url FROM days WHERE url = ?", [url]
            ).fetchone()
            if day is None:
                return []
            listed = self.conn.execute(
                "SELECT url FROM day_events WHERE site = ? AND date = ? ORDER BY position", day[:2]
            ).fetchall()
            return [row[0] for row in listed] + ([day[2]] if day[2] else [])
        if kind == "event":
            row = self.conn.execute("SELECT snapshot FROM event_urls WHERE url = ?", [url]).fetchone()
            if row and row[0]:
                event = event_from_snapshot(row[0])
                return [item.url for item in event.related] + event.versions
        return []

    # -- the portal's days (crawler.portal_plan) -----------------------------

    def portal_days(self) -> set[dt.date]:
        """The portal days whose content the mirror holds."""
        rows = self.conn.execute("SELECT date FROM days WHERE site = 'wikipedia'").fetchall()
        return {dt.date.fromisoformat(row[0]) for row in rows}

    def failed_portal_days(self, prefix: str) -> set[dt.date]:
        """Portal days a run could not read (an error, not "no such page"): the next run asks again."""
        rows = self.conn.execute(
            "SELECT date FROM pages WHERE kind = 'error' AND url >= ? AND url < ? AND date IS NOT NULL"
            " AND error != 'no such page on Wikipedia'",
            [prefix, prefix + "\U0010ffff"],
        ).fetchall()
        return {dt.date.fromisoformat(row[0]) for row in rows}

    def last_portal_sync(self) -> dt.datetime | None:
        """When the last finished portal sync that asked about every held day began."""
        row = self.conn.execute(
            "SELECT max(started_at) FROM sync_runs WHERE site = 'wikipedia' AND status = 'finished'"
            " AND covers IN ('all', 'recent changes', 'sweep')"
        ).fetchone()
        return dt.datetime.fromisoformat(row[0]) if row and row[0] else None
