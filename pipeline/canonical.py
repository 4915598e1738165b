"""Where an event's canonical version is chosen and shown.

One event can be published under several URLs (slug variants, edits under a
new slug); each keeps its own content in ``event_urls.snapshot``.  The
``events`` row shows one of them, the *canonical* variant:

1. a variant still published (not ``removed_at``) before one that is gone;
2. the variant its day page lists;
3. the variant the event's fullest ``### Changes:`` list names "Current
   version" (``event_changes``), then the one with the newest timestamp there;
4. the variant the row already shows (so a row does not flip between
   equally good variants from run to run);
5. the first one seen, then the URL, to break ties.

The row's content (and its ``event_sources``, ``related_events`` and
``event_contexts``) is rewritten only when the chosen content differs; the
content it replaces, when an earlier run that finished wrote it, is kept in
``event_versions`` first (content a killed run showed was provisional).
"""

from __future__ import annotations

import json

from pipeline import rows
from pipeline.normalise import Event
from pipeline.runs import SyncRun
from pipeline.snapshots import event_from_snapshot


class Canonical:
    """Elects and writes the variant each ``events`` row shows."""

    def __init__(self, run: SyncRun):
        self.run = run
        self.db = run.db
        self._finished: dict[int | None, bool] = {}  # run id -> did it finish (fixed once it ended)

    def elect(self, event_id: str, now: str, overwritten: dict[str, str | None] | None = None) -> None:
        """Show the canonical variant's content on the event row.

        ``overwritten`` holds a URL's snapshot as it was before this
        transaction replaced it (an edit in place), for the version row.
        """
        cur_url, cur_hash, cur_run = self.db.execute(
            "SELECT url, content_hash, sync_run FROM events WHERE id = ?", [event_id]
        ).fetchone()
        chosen = self.db.execute(
            """
            SELECT url, content_hash, snapshot FROM event_urls u
            WHERE event_id = ? AND snapshot IS NOT NULL
            ORDER BY removed_at IS NULL DESC, listed DESC, url IS ? DESC,
              (SELECT max(changed_at) FROM event_changes c WHERE c.url = u.url) DESC NULLS LAST,
              url = ? DESC, first_seen, url
            LIMIT 1
            """,
            [event_id, self._current_by_changes(event_id), cur_url],
        ).fetchone()
        if chosen is None:
            return
        url, content_hash, snapshot = chosen
        if url == cur_url and content_hash == cur_hash:
            self.db.execute("UPDATE events SET last_seen = ? WHERE id = ?", [now, event_id])
            return
        if cur_hash is not None and cur_run != self.run.id and (url == cur_url or self._settled(cur_run)):
            # Content an earlier run showed is about to change: keep it (see _settled).
            if overwritten and cur_url in overwritten:
                previous = overwritten[cur_url]
            else:
                row = self.db.execute("SELECT snapshot FROM event_urls WHERE url = ?", [cur_url]).fetchone()
                previous = row[0] if row else None
            rows.insert(
                self.db,
                "event_versions",
                {
                    "event_id": event_id,
                    "recorded_at": now,
                    "url": cur_url,
                    "content_hash": cur_hash,
                    "snapshot": previous,
                }
            )
            self.run.tally.changed.add(event_id)
        self._show(event_id, event_from_snapshot(snapshot), content_hash, now)

    def _current_by_changes(self, event_id: str) -> str | None:
        """The version the event's fullest ``### Changes:`` list names "Current version".

        Each version page published the history as it stood when it was
        written, so an older page names itself current; the list with the
        most entries (then the newest timestamp) is the latest word.
        """
        row = self.db.execute(
            """
            SELECT url FROM event_changes WHERE event_id = ? AND label = 'Current version'
              AND listed_on = (SELECT listed_on FROM event_changes WHERE event_id = ?
                               GROUP BY listed_on ORDER BY count(*) DESC, max(changed_at) DESC, listed_on
                               LIMIT 1)
            """,
            [event_id, event_id],
        ).fetchone()
        return row[0] if row else None

    def _settled(self, run_id: int | None) -> bool:
        """Did the run that wrote the row's content finish?

        A run that was killed or stopped may have shown a variant only because
        the page that would have outvoted it (its day listing) was not fetched
        yet.  Electing another variant over that provisional choice is
        finishing the crawl, not a change upstream, so it leaves no version (the
        variant keeps its own snapshot in ``event_urls``): a resumed crawl ends
        with the same history as an uninterrupted one.  A URL whose own content
        changed is always a version, whichever run showed it.
        """
        if run_id not in self._finished:
            row = self.db.execute("SELECT status FROM sync_runs WHERE id = ?", [run_id]).fetchone()
            self._finished[run_id] = row is None or row[0] == "finished"
        return self._finished[run_id]

    def show_new(self, event_id: str, event: Event, content_hash: str, now: str) -> None:
        """Write a new event's row and child tables whole: one full-text index write, where an
        insert followed by ``_show``'s update indexed the row's text twice more."""
        self._show(event_id, event, content_hash, now, new=True)

    def _show(self, event_id: str, event: Event, content_hash: str, now: str, new: bool = False) -> None:
        """Write a variant's content on the event row and its child tables."""
        db = self.db
        content = {
            "url": event.url,
            "date": event.date,
            "story": event.story,
            "topic": event.topic,
            "text": event.text,
            "title": event.title,
            "description": event.description,
            "text_key": event.text_key,
            "content_hash": content_hash,
            "last_seen": now,
            "updated_at": now,
            "sync_run": self.run.id,
        }
        if new:
            rows.insert(db, "events", {"id": event_id, **content, "first_seen": now, "site": self.run.site})
        else:
            rows.update(db, "events", "id", event_id, content)
            # Its child rows are written again below (a new event has none yet).
            for table in ("event_sources", "related_events", "event_contexts"):
                db.execute(f"DELETE FROM {table} WHERE event_id = ?", [event_id])
        for position, source in enumerate(event.sources, 1):
            db.execute(
                "INSERT INTO sources (url, cited_url, domain, first_seen, status, strikes)"
                " VALUES (?, ?, ?, ?, 'unchecked', 0) ON CONFLICT (url) DO NOTHING",
                [source.url, source.cited or source.url, source.domain, now],
            )
            db.execute(
                "INSERT INTO event_sources (event_id, source_id, label, position)"
                " SELECT ?, id, ?, ? FROM sources WHERE url = ?",
                [event_id, source.label, position, source.url],
            )
        for position, item in enumerate(event.related, 1):
            db.execute(
                "INSERT INTO related_events (event_id, position, related_url, related_id,"
                " title, contexts, via) VALUES (?, ?, ?,"
                " (SELECT event_id FROM event_urls WHERE url = ?), ?, ?, 'page')",
                [
                    event_id,
                    position,
                    item.url,
                    item.url,
                    item.title,
                    json.dumps(item.contexts, ensure_ascii=False),
                ],
            )
        for name in event.contexts():
            db.execute("INSERT INTO contexts (name) VALUES (?) ON CONFLICT (name) DO NOTHING", [name])
            db.execute(
                "INSERT OR IGNORE INTO event_contexts (event_id, context_id)"
                " SELECT ?, id FROM contexts WHERE name = ?",
                [event_id, name],
            )
