"""The ``pages`` table: every URL of the site fetched or found, and when it is due.

A page's row is written last in its item's transaction, so a page whose
content did not land stays due.  The links a parsed page holds are queued as
``pages`` rows in the same transaction: the frontier is in the database, and
a run killed at any moment leaves nothing it found unremembered.  When each
page is due again is ``pipeline.revalidate``'s decision.
"""

from __future__ import annotations

import datetime as dt
import json

from crawler.items import PageItem
from pipeline import rows
from pipeline.clock import iso
from pipeline.revalidate import Revalidation, is_transient
from pipeline.runs import SyncRun


class Pages:
    def __init__(self, run: SyncRun, revalidation: Revalidation):
        self.run = run
        self.db = run.db
        self.revalidation = revalidation

    def queue(self, urls: list[str]) -> None:
        """Remember links not seen before as pages due now: the frontier survives a crash."""
        if not urls:
            return
        now = self.run.clock.iso()
        self.db.conn.executemany(
            "INSERT INTO pages (url, kind, first_seen, unchanged_streak, next_check_at)"
            " VALUES (?, 'queued', ?, 0, ?) ON CONFLICT (url) DO NOTHING",
            [(url, now, now) for url in urls],
        )

    def record(self, item: PageItem) -> None:
        """The page's answer, its validators and its next check."""
        tally = self.run.tally
        tally.pages += 1
        if item.error:
            tally.errors += 1
        if item.http_status == 304:
            tally.not_modified += 1
        heading = getattr(item.parsed, "date", None)
        misdated = bool(item.date and heading and heading != item.date)
        if misdated:  # the folder says one day, the page's own heading another (docs/FORMAT.md)
            tally.misdated += 1
        before = self.db.execute(
            "SELECT kind, http_status, error, unchanged_streak FROM pages WHERE url = ?", [item.url]
        ).fetchone()
        kind, status, error, streak = before or (None, None, None, 0)
        transient = is_transient(item.http_status, item.error)
        same_answer = item.unchanged or (
            item.error is not None and (item.http_status, item.error) == (status, error)
        )
        if not transient:
            streak = (streak or 0) + 1 if same_answer else 0
        row = {"url": item.url, "http_status": item.http_status, "kind": item.kind, "error": item.error}
        if transient and kind not in (None, "queued", "error"):
            row["kind"] = kind  # a timeout does not make an event page anything else
        row["redirect_to"] = item.redirect_to
        if item.parsed is not None:  # what this parse found; other answers keep the last parse's
            row["bad_links"] = json.dumps(item.bad_links, ensure_ascii=False) if item.bad_links else None
            row["heading_date"] = heading if misdated else None
        for name in ("content_hash", "size", "etag", "last_modified", "date", "revision", "file_mtime"):
            if getattr(item, name) is not None:  # a 304 keeps what the last 200 said
                row[name] = getattr(item, name)
        page_date = dt.date.fromisoformat(item.date) if item.date else None
        now = self.run.clock.now()
        row["unchanged_streak"] = streak or 0
        due = self.revalidation.next_check(page_date, now, streak or 0, transient, item.url)
        row["next_check_at"] = iso(due)
        if before is None:
            row["first_seen"] = iso(now)
        row.update(fetched_at=self.run.clock.iso(), sync_run=self.run.id)
        rows.upsert(self.db, "pages", row, ("url",))
