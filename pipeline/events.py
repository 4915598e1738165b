"""Storing a parsed event page: the event, and the URL variant it came from.

Every URL an event is published under is a row of ``event_urls``: fetched
pages (``via = 'page'``, with their own snapshot), the earlier versions a
``### Changes:`` section names (``'changes'``) and old slugs that redirect to
it (``'redirect'``, see ``pipeline.linkup``).  Which variant the ``events``
row shows is decided in ``pipeline.canonical``.
"""

from __future__ import annotations

from pipeline.canonical import Canonical
from pipeline.normalise import Event
from pipeline.removals import Removals
from pipeline.runs import SyncRun
from pipeline.snapshots import event_snapshot


class Events:
    def __init__(self, run: SyncRun, canonical: Canonical, removals: Removals):
        self.run = run
        self.db = run.db
        self.canonical = canonical
        self.removals = removals

    def store(self, event_id: str, event: Event) -> None:
        """File one parsed event under ``event_id`` (the dedupe pipeline's answer)."""
        now = self.run.clock.iso()
        self.run.tally.seen.add(event_id)
        snapshot = event_snapshot(event)
        content_hash = event.content_hash()
        new = not self.db.execute("SELECT 1 FROM events WHERE id = ?", [event_id]).fetchone()
        if new:
            # Shown whole at once: see show_new.
            self.run.tally.new.add(event_id)
            self.canonical.show_new(event_id, event, content_hash, now)
            before = None
        else:
            # An edit in place overwrites this URL's snapshot: keep the old one for the version row.
            before = self.db.execute("SELECT snapshot FROM event_urls WHERE url = ?", [event.url]).fetchone()
        self.db.execute(
            """
            INSERT INTO event_urls (url, event_id, via, date, text_key, title, listed,
                                    content_hash, snapshot, first_seen, last_seen)
            VALUES (?, ?, 'page', ?, ?, ?,
                    EXISTS (SELECT 1 FROM day_events WHERE url = ?), ?, ?, ?, ?)
            ON CONFLICT (url) DO UPDATE SET
                event_id = excluded.event_id, via = 'page', date = excluded.date,
                text_key = excluded.text_key, title = excluded.title, listed = excluded.listed,
                content_hash = excluded.content_hash, snapshot = excluded.snapshot,
                last_seen = excluded.last_seen
            WHERE event_urls.content_hash IS NOT excluded.content_hash
               OR event_urls.event_id IS NOT excluded.event_id
               OR event_urls.snapshot IS NOT excluded.snapshot
            """,
            [
                event.url,
                event_id,
                event.date,
                event.text_key,
                event.title,
                event.url,
                content_hash,
                snapshot,
                now,
                now,
            ],
        )
        self.db.execute("UPDATE event_urls SET last_seen = ? WHERE url = ?", [now, event.url])
        for url in event.versions:
            self.db.execute(
                """
                INSERT INTO event_urls (url, event_id, via, date, listed, first_seen, last_seen)
                VALUES (?, ?, 'changes', ?, EXISTS (SELECT 1 FROM day_events WHERE url = ?), ?, ?)
                ON CONFLICT (url) DO UPDATE SET last_seen = excluded.last_seen
                """,
                [url, event_id, event.date, url, now, now],
            )
        for position, change in enumerate(event.changes, 1):
            # As the page published it; an entry it no longer lists keeps its row (nothing lost).
            self.db.execute(
                """
                INSERT INTO event_changes (listed_on, url, event_id, position, title, changed_at,
                                           label, first_seen)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (listed_on, url) DO UPDATE SET
                    event_id = excluded.event_id, position = excluded.position, title = excluded.title,
                    changed_at = excluded.changed_at, label = excluded.label
                """,
                [
                    event.url,
                    change.url,
                    event_id,
                    position,
                    change.title,
                    change.changed_at,
                    change.label,
                    now,
                ],
            )
        self.db.execute("UPDATE event_urls SET removed_at = NULL WHERE url = ?", [event.url])
        if not new:
            # A new event has one variant, this page, and show_new has shown it: no election
            # (event_urls.event_id is a foreign key, so no other variant can name the new id).
            self.canonical.elect(event_id, now, overwritten={event.url: before[0] if before else None})
        self._spellings(event, now)
        self.removals.restore(event_id, ("gone", "superseded"))

    def _spellings(self, event: Event, now: str) -> None:
        """Keep each source's URL as cited: the first spelling on the source row (a mirror made
        before ``cited_url`` existed gets it here), every other one in ``source_aliases``."""
        for source in event.sources:
            if not source.cited:
                continue
            row = self.db.execute("SELECT id, cited_url FROM sources WHERE url = ?", [source.url]).fetchone()
            if row is None:
                continue  # a variant that is not shown: its sources are not the event's
            if row[1] is None:
                self.db.execute("UPDATE sources SET cited_url = ? WHERE id = ?", [source.cited, row[0]])
            elif row[1] != source.cited:
                self.db.execute(
                    "INSERT OR IGNORE INTO source_aliases (source_id, cited_url, first_seen)"
                    " VALUES (?, ?, ?)",
                    [row[0], source.cited, now],
                )

    def seen_unchanged(self, url: str) -> None:
        """An unchanged event page was seen again: its URL's ``last_seen`` moves; the event row stays."""
        row = self.db.execute("SELECT event_id FROM event_urls WHERE url = ?", [url]).fetchone()
        if row:
            self.run.tally.seen.add(row[0])
            self.db.execute("UPDATE event_urls SET last_seen = ? WHERE url = ?", [self.run.clock.iso(), url])
