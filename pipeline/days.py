"""Storing a day page: the day, what it lists, and the listing it replaced.

A day page's listing decides two things about the events it names: which
variant of each is canonical (the listed one, see ``pipeline.canonical``) and
which events the site dropped (listed before, not now: ``unlisted``, see
``pipeline.removals``).  A changed listing keeps the one it replaces in
``day_versions``.  Days are keyed by ``(site, date)``: both sites have days.
"""

from __future__ import annotations

import json

from pipeline import rows
from pipeline.canonical import Canonical
from pipeline.normalise import Day
from pipeline.removals import Removals
from pipeline.runs import SyncRun

DAY_EVENT_COLUMNS = ("site", "date", "position", "url", "title", "topic", "contexts", "description")


class Days:
    def __init__(self, run: SyncRun, canonical: Canonical, removals: Removals):
        self.run = run
        self.db = run.db
        self.canonical = canonical
        self.removals = removals

    def store(self, day: Day) -> None:
        now = self.run.clock.iso()
        site = self.run.site
        listing_rows = [
            {
                "site": site,
                "date": day.date,
                "position": position,
                "url": listing.url,
                "title": listing.title,
                "topic": listing.topic,
                "contexts": json.dumps(listing.contexts, ensure_ascii=False),
                "description": listing.description,
            }
            for position, listing in enumerate(day.listings, 1)
        ]
        rows.upsert(
            self.db,
            "days",
            {
                "site": site,
                "date": day.date,
                "url": day.url,
                "event_count": len(listing_rows),
                "previous_url": day.previous_url,
                "fetched_at": now,
            },
            ("site", "date"),
        )
        stored = [
            dict(zip(DAY_EVENT_COLUMNS, row, strict=True))
            for row in self.db.execute(
                f"SELECT {', '.join(DAY_EVENT_COLUMNS)} FROM day_events WHERE site = ? AND date = ?"
                " ORDER BY position",
                [site, day.date],
            )
        ]
        if stored != listing_rows:
            self._replace_listing(day, stored, listing_rows, now)
        listed = self._mark_listed(listing_rows)
        for event_id in sorted(listed):
            self.canonical.elect(event_id, now)
            self.removals.restore(event_id, ("unlisted",))
        dropped = {row["url"] for row in stored} - {row["url"] for row in listing_rows}
        for url in sorted(dropped):
            found = self.db.execute("SELECT event_id FROM event_urls WHERE url = ?", [url]).fetchone()
            if found and found[0] not in listed:
                self.removals.remove(found[0], "unlisted")

    def seen_unchanged(self, url: str) -> None:
        """An unchanged day page was seen again."""
        self.db.execute("UPDATE days SET fetched_at = ? WHERE url = ?", [self.run.clock.iso(), url])

    def _replace_listing(self, day: Day, stored: list[dict], listing: list[dict], now: str) -> None:
        site = self.run.site
        if stored:  # the listing changes: keep the one it replaces
            rows.insert(
                self.db,
                "day_versions",
                {
                    "site": site,
                    "date": day.date,
                    "recorded_at": now,
                    "url": day.url,
                    "listing": json.dumps(stored, ensure_ascii=False),
                    "sync_run": self.run.id,
                }
            )
        self.db.execute("DELETE FROM day_events WHERE site = ? AND date = ?", [site, day.date])
        rows.insert_all(self.db, "day_events", listing)
        for row in stored:
            self.db.execute("UPDATE event_urls SET listed = 0 WHERE url = ?", [row["url"]])

    def _mark_listed(self, listing: list[dict]) -> set[str]:
        """Flag the listed URLs and tie each listing row to its event; return the events listed."""
        listed = set()
        for row in listing:
            self.db.execute("UPDATE event_urls SET listed = 1 WHERE url = ?", [row["url"]])
            found = self.db.execute("SELECT event_id FROM event_urls WHERE url = ?", [row["url"]]).fetchone()
            if found:
                listed.add(found[0])
                self.db.execute(
                    "UPDATE day_events SET event_id = ? WHERE site = ? AND date = ? AND position = ?"
                    " AND event_id IS NOT ?",
                    [found[0], self.run.site, row["date"], row["position"], found[0]],
                )
        return listed
