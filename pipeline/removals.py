"""Marking events removed upstream, and taking the mark back.

Nothing is deleted to follow the site.  Only an answer removes: a page that
answers 404/410 (``gone``, once no variant of the event is left), a day
listing without the event (``unlisted``, see ``pipeline.days``), a page that
now redirects to another event's page (``superseded``, see
``pipeline.linkup``).  Evidence seen later that contradicts a mark clears it.
"""

from __future__ import annotations

from pipeline.canonical import Canonical
from pipeline.runs import SyncRun


class Removals:
    def __init__(self, run: SyncRun, canonical: Canonical):
        self.run = run
        self.db = run.db
        self.canonical = canonical

    def page_gone(self, url: str) -> None:
        """An event page answered 404/410: its event is removed once no variant of it is left."""
        row = self.db.execute(
            "SELECT event_id FROM event_urls WHERE url = ? AND removed_at IS NULL", [url]
        ).fetchone()
        if row is None:
            return
        self.variant_gone(url, row[0], "gone")

    def variant_gone(self, url: str, event_id: str, reason: str, superseded_by: str | None = None) -> None:
        """One URL of an event no longer publishes it: show another variant, or remove the event."""
        now = self.run.clock.iso()
        self.db.execute("UPDATE event_urls SET removed_at = ? WHERE url = ?", [now, url])
        if self.live_variants(event_id):
            self.canonical.elect(event_id, now)
        else:
            self.remove(event_id, reason, superseded_by)

    def live_variants(self, event_id: str) -> int:
        return self.db.execute(
            "SELECT count(*) FROM event_urls WHERE event_id = ? AND snapshot IS NOT NULL"
            " AND removed_at IS NULL",
            [event_id],
        ).fetchone()[0]

    def remove(self, event_id: str, reason: str, superseded_by: str | None = None) -> None:
        """Mark an event removed upstream (never delete it); a first mark wins."""
        cursor = self.db.execute(
            "UPDATE events SET removed_at = ?, removed_reason = ?, superseded_by = ?"
            " WHERE id = ? AND removed_at IS NULL",
            [self.run.clock.iso(), reason, superseded_by, event_id],
        )
        if cursor.rowcount:
            self.run.tally.removed.add(event_id)
            self.run.tally.restored.discard(event_id)

    def restore(self, event_id: str, reasons: tuple[str, ...]) -> None:
        """Clear a removal that the evidence now seen contradicts."""
        marks = ",".join("?" for _ in reasons)
        cursor = self.db.execute(
            "UPDATE events SET removed_at = NULL, removed_reason = NULL, superseded_by = NULL"
            f" WHERE id = ? AND removed_reason IN ({marks})",
            [event_id, *reasons],
        )
        if cursor.rowcount:
            self.run.tally.restored.add(event_id)
            self.run.tally.removed.discard(event_id)
