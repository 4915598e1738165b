"""Store pages, events and days in ``mirror.db``.

Each item is written in one transaction (its page row, its event or day, and
the links it queues), so a crash between items leaves a database that holds
whole pages only, and whatever was queued but not fetched is due at the next
run.  Writes are conditional: a page whose content hash is the one already
stored moves ``last_seen`` and its schedule and nothing else, which is what
makes a re-run over an unchanged site cheap and quiet.

Nothing is deleted to follow the site: an event whose page answers 404/410,
or that its day page stops listing, gets ``removed_at`` (and
``superseded_by`` when its page now redirects to another event); a day's
previous listing is kept in ``day_versions``.  A page that comes back clears
the mark.

Slug variants of one event each keep their own snapshot in ``event_urls``;
the ``events`` row shows the *canonical* variant, the one its day page lists
(or, until a day page says, the first one seen).  When the canonical content
changes between runs, the previous content is kept in ``event_versions``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import sqlite3
import time

import sqlite_utils
from scrapy import signals
from scrapy.exceptions import DropItem

from crawler.items import PageItem
from pipeline.clock import Clock, iso
from pipeline.normalise import Day, Event, RelatedRef, SourceRef
from pipeline.related import relate
from pipeline.revalidate import Revalidation, is_transient
from pipeline.runs import run_status, start_run
from pipeline.schema import FIRST_SITE, open_database

logger = logging.getLogger(__name__)

MAX_REDIRECT_CHAIN = 5
GONE = (404, 410)
DAY_EVENT_COLUMNS = ("site", "date", "position", "url", "title", "topic", "contexts", "description")


def event_snapshot(event: Event) -> str:
    return json.dumps(dataclasses.asdict(event), ensure_ascii=False, sort_keys=True)


def event_from_snapshot(snapshot: str) -> Event:
    data = json.loads(snapshot)
    data["sources"] = [SourceRef(**s) for s in data["sources"]]
    data["related"] = [RelatedRef(**r) for r in data["related"]]
    return Event(**data)


class Mirror:
    """The write side of ``mirror.db`` for one sync run."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        run_id: int,
        clock: Clock,
        revalidation: Revalidation | None = None,
        site: str = FIRST_SITE,
    ):
        self.db = db
        self.site = site  # which site this run reads: days and new events are filed under it
        self.run_id = run_id
        self.clock = clock
        self.revalidation = revalidation or Revalidation()
        self.started = time.monotonic()
        self.new: set[str] = set()
        self.changed: set[str] = set()
        self.seen: set[str] = set()
        self.removed: set[str] = set()
        self.restored: set[str] = set()
        self.pages = 0
        self.not_modified = 0
        self.errors = 0

    @classmethod
    def start(
        cls,
        path: str,
        clock: Clock,
        start_urls: list[str],
        site_root: str,
        revalidation: Revalidation | None = None,
        full: bool = False,
        site: str = FIRST_SITE,
    ) -> Mirror:
        db = open_database(path)
        run_id = start_run(
            db,
            clock,
            kind="sync",
            start_urls=json.dumps(start_urls),
            site_root=site_root,
            full=int(full),
            site=site,
        )
        return cls(db, run_id, clock, revalidation, site)

    def store(self, item: PageItem) -> None:
        """Write one page and what it holds, in one transaction."""
        with self.db.atomic():
            if item.unchanged:
                self.touch(item)
            elif item.events or item.day is not None:
                # A portal day holds its events and their listing: events first, so the listing finds them.
                for event_id, event in zip(item.event_ids, item.events, strict=True):
                    self.store_event(event_id, event)
                if item.day is not None:
                    self.store_day(item.day)
            elif item.http_status in GONE:
                self.page_gone(item.url, f"HTTP {item.http_status}")
            self.queue(item.links)
            # Last, so that a page whose content did not land stays due.
            self.record_page(item)

    # -- pages -------------------------------------------------------------

    def record_page(self, item: PageItem) -> None:
        self.pages += 1
        if item.error:
            self.errors += 1
        if item.http_status == 304:
            self.not_modified += 1
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
        for name in ("content_hash", "size", "etag", "last_modified", "date", "revision"):
            if getattr(item, name) is not None:  # a 304 keeps what the last 200 said
                row[name] = getattr(item, name)
        page_date = dt.date.fromisoformat(item.date) if item.date else None
        now = self.clock.now()
        row["unchanged_streak"] = streak or 0
        due = self.revalidation.next_check(page_date, now, streak or 0, transient, item.url)
        row["next_check_at"] = iso(due)
        if before is None:
            row["first_seen"] = iso(now)
        self._upsert_page(row)

    def queue(self, urls: list[str]) -> None:
        """Remember links not seen before as pages due now: the frontier survives a crash."""
        if not urls:
            return
        now = self.clock.iso()
        self.db.conn.executemany(
            "INSERT INTO pages (url, kind, first_seen, unchanged_streak, next_check_at)"
            " VALUES (?, 'queued', ?, 0, ?) ON CONFLICT (url) DO NOTHING",
            [(url, now, now) for url in urls],
        )

    def is_due(self, url: str) -> bool:
        """Never seen, queued, or its ``next_check_at`` has come."""
        row = self.db.execute("SELECT next_check_at FROM pages WHERE url = ?", [url]).fetchone()
        return row is None or row[0] is None or row[0] <= self.clock.iso()

    def due_pages(self, site_root: str, everything: bool = False) -> list[str]:
        """Pages of this site to ask about at the start of a run, newest day first."""
        where = "url >= ? AND url < ?"
        params = [site_root, site_root + "\U0010ffff"]
        if not everything:
            where += " AND (next_check_at IS NULL OR next_check_at <= ?)"
            params.append(self.clock.iso())
        rows = self.db.execute(
            f"SELECT url FROM pages WHERE {where} ORDER BY date DESC, url", params
        ).fetchall()
        return [row[0] for row in rows]

    def known_page(self, url: str) -> dict | None:
        """Kind, validators and hash of a page whose content the mirror holds.

        None for pages that failed, and for an event or day page whose content
        is not stored (as an older version of this code could leave it): those
        are fetched and parsed in full again.
        """
        row = self.db.execute(
            """
            SELECT kind, etag, last_modified, content_hash FROM pages p WHERE url = ? AND (
                (kind = 'event' AND EXISTS (
                    SELECT 1 FROM event_urls WHERE url = p.url AND snapshot IS NOT NULL))
                OR (kind = 'day' AND EXISTS (SELECT 1 FROM days WHERE url = p.url))
                OR (kind IN ('index', 'other') AND content_hash IS NOT NULL))
            """,
            [url],
        ).fetchone()
        return dict(zip(("kind", "etag", "last_modified", "content_hash"), row, strict=True)) if row else None

    def known_revisions(self, urls: list[str]) -> dict[str, int]:
        """The revision of each portal day page whose content the mirror holds."""
        if not urls:
            return {}
        marks = ",".join("?" for _ in urls)
        rows = self.db.execute(
            f"SELECT p.url, p.revision FROM pages p WHERE p.url IN ({marks}) AND p.kind = 'day'"
            " AND p.revision IS NOT NULL AND EXISTS (SELECT 1 FROM days d WHERE d.url = p.url)",
            urls,
        ).fetchall()
        return dict(rows)

    def stored_links(self, url: str, kind: str) -> list[str]:
        """The site links of an unchanged page, from what its last parse stored."""
        if kind == "day":
            day = self.db.execute("SELECT site, date, previous_url FROM days WHERE url = ?", [url]).fetchone()
            if day is None:
                return []
            listed = self.db.execute(
                "SELECT url FROM day_events WHERE site = ? AND date = ? ORDER BY position", day[:2]
            ).fetchall()
            return [row[0] for row in listed] + ([day[2]] if day[2] else [])
        if kind == "event":
            row = self.db.execute("SELECT snapshot FROM event_urls WHERE url = ?", [url]).fetchone()
            if row and row[0]:
                event = event_from_snapshot(row[0])
                return [item.url for item in event.related] + event.versions
        return []

    def touch(self, item: PageItem) -> None:
        """An unchanged page was seen again: its URL's ``last_seen`` moves; the event row stays."""
        now = self.clock.iso()
        if item.kind == "event":
            row = self.db.execute("SELECT event_id FROM event_urls WHERE url = ?", [item.url]).fetchone()
            if row:
                self.seen.add(row[0])
                self.db.execute("UPDATE event_urls SET last_seen = ? WHERE url = ?", [now, item.url])
        elif item.kind == "day":
            self.db.execute("UPDATE days SET fetched_at = ? WHERE url = ?", [now, item.url])

    def _upsert_page(self, row: dict) -> None:
        row.update(fetched_at=self.clock.iso(), sync_run=self.run_id)
        self.db["pages"].upsert(row, pk="url")

    # -- events ------------------------------------------------------------

    def store_event(self, event_id: str, event: Event) -> None:
        now = self.clock.iso()
        self.seen.add(event_id)
        snapshot = event_snapshot(event)
        content_hash = event.content_hash()
        if not self.db.execute("SELECT 1 FROM events WHERE id = ?", [event_id]).fetchone():
            self._insert_event(event_id, event, content_hash, now)
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
        self.db.execute("UPDATE event_urls SET removed_at = NULL WHERE url = ?", [event.url])
        self._elect(event_id, now, overwritten={event.url: before[0] if before else None})
        self.restore(event_id, ("gone", "superseded"))

    # -- removals ----------------------------------------------------------

    def page_gone(self, url: str, reason: str) -> None:
        """An event page answered 404/410: its event is removed once no variant of it is left."""
        row = self.db.execute(
            "SELECT event_id FROM event_urls WHERE url = ? AND removed_at IS NULL", [url]
        ).fetchone()
        if row is None:
            return
        now = self.clock.iso()
        self.db.execute("UPDATE event_urls SET removed_at = ? WHERE url = ?", [now, url])
        if self._live_variants(row[0]):
            self._elect(row[0], now)
        else:
            self.remove(row[0], "gone")

    def _live_variants(self, event_id: str) -> int:
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
            [self.clock.iso(), reason, superseded_by, event_id],
        )
        if cursor.rowcount:
            self.removed.add(event_id)
            self.restored.discard(event_id)

    def restore(self, event_id: str, reasons: tuple[str, ...]) -> None:
        """Clear a removal that the evidence now seen contradicts."""
        marks = ",".join("?" for _ in reasons)
        cursor = self.db.execute(
            "UPDATE events SET removed_at = NULL, removed_reason = NULL, superseded_by = NULL"
            f" WHERE id = ? AND removed_reason IN ({marks})",
            [event_id, *reasons],
        )
        if cursor.rowcount:
            self.restored.add(event_id)
            self.removed.discard(event_id)

    def _insert_event(self, event_id: str, event: Event, content_hash: str, now: str) -> None:
        self.new.add(event_id)
        self.db["events"].insert(
            {
                "id": event_id,
                "url": event.url,
                "date": event.date,
                "title": event.title,
                "text": event.text,
                "first_seen": now,
                "last_seen": now,
                "sync_run": self.run_id,
                "site": self.site,
            }
        )

    def _elect(self, event_id: str, now: str, overwritten: dict[str, str | None] | None = None) -> None:
        """Show the canonical variant's content on the event row.

        The variant a day page lists wins; otherwise the row keeps the variant
        it shows.  Content is rewritten only when it differs.
        """
        current = self.db.execute(
            "SELECT url, content_hash, sync_run FROM events WHERE id = ?", [event_id]
        ).fetchone()
        cur_url, cur_hash, cur_run = current
        chosen = self.db.execute(
            """
            SELECT url, content_hash, snapshot FROM event_urls
            WHERE event_id = ? AND snapshot IS NOT NULL
            ORDER BY removed_at IS NULL DESC, listed DESC, url = ? DESC, first_seen, url
            LIMIT 1
            """,
            [event_id, cur_url],
        ).fetchone()
        if chosen is None:
            return
        url, content_hash, snapshot = chosen
        if url == cur_url and content_hash == cur_hash:
            self.db.execute("UPDATE events SET last_seen = ? WHERE id = ?", [now, event_id])
            return
        if cur_hash is not None and cur_run != self.run_id:
            # Content from an earlier run is about to change: keep it.
            if overwritten and cur_url in overwritten:
                previous = overwritten[cur_url]
            else:
                row = self.db.execute("SELECT snapshot FROM event_urls WHERE url = ?", [cur_url]).fetchone()
                previous = row[0] if row else None
            self.db["event_versions"].insert(
                {
                    "event_id": event_id,
                    "recorded_at": now,
                    "url": cur_url,
                    "content_hash": cur_hash,
                    "snapshot": previous,
                }
            )
            self.changed.add(event_id)
        self._apply(event_id, event_from_snapshot(snapshot), content_hash, now)

    def _apply(self, event_id: str, event: Event, content_hash: str, now: str) -> None:
        db = self.db
        db["events"].update(
            event_id,
            {
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
                "sync_run": self.run_id,
            },
        )
        for table in ("event_sources", "related_events", "event_contexts"):
            db.execute(f"DELETE FROM {table} WHERE event_id = ?", [event_id])
        for position, source in enumerate(event.sources, 1):
            db.execute(
                "INSERT INTO sources (url, domain, first_seen, status, strikes)"
                " VALUES (?, ?, ?, 'unchecked', 0) ON CONFLICT (url) DO NOTHING",
                [source.url, source.domain, now],
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

    # -- days --------------------------------------------------------------

    def store_day(self, day: Day) -> None:
        now = self.clock.iso()
        rows = [
            {
                "site": self.site,
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
        self.db["days"].upsert(
            {
                "site": self.site,
                "date": day.date,
                "url": day.url,
                "event_count": len(rows),
                "previous_url": day.previous_url,
                "fetched_at": now,
            },
            pk=("site", "date"),
        )
        stored = [
            {column: row[column] for column in DAY_EVENT_COLUMNS}
            for row in self.db["day_events"].rows_where(
                "site = ? AND date = ?", [self.site, day.date], order_by="position"
            )
        ]
        if stored != rows:
            if stored:  # the listing changes: keep the one it replaces
                self.db["day_versions"].insert(
                    {
                        "site": self.site,
                        "date": day.date,
                        "recorded_at": now,
                        "url": day.url,
                        "listing": json.dumps(stored, ensure_ascii=False),
                        "sync_run": self.run_id,
                    }
                )
            self.db.execute("DELETE FROM day_events WHERE site = ? AND date = ?", [self.site, day.date])
            self.db["day_events"].insert_all(rows)
            for row in stored:
                self.db.execute("UPDATE event_urls SET listed = 0 WHERE url = ?", [row["url"]])
        listed = set()
        for row in rows:
            self.db.execute("UPDATE event_urls SET listed = 1 WHERE url = ?", [row["url"]])
            found = self.db.execute("SELECT event_id FROM event_urls WHERE url = ?", [row["url"]]).fetchone()
            if found:
                listed.add(found[0])
                self.db.execute(
                    "UPDATE day_events SET event_id = ? WHERE site = ? AND date = ? AND position = ?"
                    " AND event_id IS NOT ?",
                    [found[0], self.site, row["date"], row["position"], found[0]],
                )
        for event_id in sorted(listed):
            self._elect(event_id, now)
            self.restore(event_id, ("unlisted",))
        dropped = {row["url"] for row in stored} - {row["url"] for row in rows}
        for url in sorted(dropped):
            found = self.db.execute("SELECT event_id FROM event_urls WHERE url = ?", [url]).fetchone()
            if found and found[0] not in listed:
                self.remove(found[0], "unlisted")

    # -- end of run --------------------------------------------------------

    def link_up(self) -> None:
        """Point related items and day listings at events that arrived later.

        Old slugs that redirect to an event's page become URLs of that event
        first (following chains of redirects), so links to them resolve too;
        redirects recorded by an interrupted run count as well.  An event page
        that now redirects elsewhere is superseded by the event it leads to.
        """
        now = self.clock.iso()
        with self.db.atomic():
            for _ in range(MAX_REDIRECT_CHAIN):
                added = self.db.execute(
                    """
                    INSERT INTO event_urls (url, event_id, via, date, listed, first_seen, last_seen)
                    SELECT p.url, eu.event_id, 'redirect', eu.date,
                           EXISTS (SELECT 1 FROM day_events WHERE url = p.url), ?, ?
                    FROM pages p JOIN event_urls eu ON eu.url = p.redirect_to
                    WHERE p.kind = 'redirect' AND (p.sync_run = ? OR NOT EXISTS (
                        SELECT 1 FROM event_urls WHERE url = p.url))
                    ON CONFLICT (url) DO UPDATE SET last_seen = excluded.last_seen
                    WHERE event_urls.last_seen IS NOT excluded.last_seen
                    """,
                    [now, now, self.run_id],
                ).rowcount
                if not added:
                    break
            self._supersede(now)
            self._mark_redirect_loops()
            self.db.execute(
                "UPDATE related_events SET related_id ="
                " (SELECT event_id FROM event_urls WHERE url = related_events.related_url)"
                " WHERE related_id IS NULL"
            )
            self.db.execute(
                "UPDATE day_events SET event_id ="
                " (SELECT event_id FROM event_urls WHERE url = day_events.url)"
                " WHERE event_id IS NULL"
            )
            if self.site == "wikipedia":  # the portal lists no related events: compute them
                relate(self.db, sorted(self.new | self.changed))

    def _mark_redirect_loops(self) -> None:
        """Redirects of this run that never reach a page within MAX_REDIRECT_CHAIN hops."""
        self.db.execute(
            f"""
            WITH RECURSIVE chain(start, url, hops) AS (
                SELECT url, redirect_to, 1 FROM pages WHERE kind = 'redirect' AND sync_run = :run
                UNION ALL
                SELECT chain.start, p.redirect_to, hops + 1 FROM chain
                JOIN pages p ON p.url = chain.url AND p.kind = 'redirect'
                WHERE hops <= {MAX_REDIRECT_CHAIN})
            UPDATE pages SET error = 'redirect loop (or a chain over {MAX_REDIRECT_CHAIN} hops)'
            WHERE url IN (SELECT start FROM chain WHERE hops > {MAX_REDIRECT_CHAIN}) AND error IS NULL
            """,
            {"run": self.run_id},
        )

    def _supersede(self, now: str) -> None:
        moved = self.db.execute(
            """
            SELECT eu.url, eu.event_id, target.event_id FROM pages p
            JOIN event_urls eu ON eu.url = p.url AND eu.snapshot IS NOT NULL AND eu.removed_at IS NULL
            LEFT JOIN event_urls target ON target.url = p.redirect_to
            WHERE p.kind = 'redirect'
            """
        ).fetchall()
        for url, event_id, target in moved:
            self.db.execute("UPDATE event_urls SET removed_at = ? WHERE url = ?", [now, url])
            if self._live_variants(event_id):
                self._elect(event_id, now)
            else:
                self.remove(event_id, "superseded", target if target != event_id else None)

    def errors_by_reason(self) -> dict[str, int]:
        rows = self.db.execute(
            "SELECT error, count(*) FROM pages WHERE sync_run = ? AND error IS NOT NULL"
            " GROUP BY error ORDER BY count(*) DESC, error",
            [self.run_id],
        )
        return dict(rows.fetchall())

    def finish(self, reason: str, costs: dict | None = None) -> dict:
        """Close the run's row with what it found and, from Scrapy's stats, what it cost."""
        counts = {
            **(costs or {}),
            "duration_seconds": round(time.monotonic() - self.started, 2),
            "finished_at": self.clock.iso(),
            "status": run_status(reason),
            "finish_reason": reason,
            "pages_fetched": self.pages,
            "pages_not_modified": self.not_modified,
            "events_new": len(self.new),
            "events_changed": len(self.changed - self.new),
            "events_unchanged": len(self.seen - self.new - self.changed),
            "errors": self.errors,
            "events_removed": len(self.removed),
            "events_restored": len(self.restored),
        }
        with self.db.atomic():
            self.db["sync_runs"].update(self.run_id, counts)
        return self.db["sync_runs"].get(self.run_id)


class StorePipeline:
    """The last pipeline: writes each item and closes the run's bookkeeping."""

    def __init__(self, crawler):
        self.crawler = crawler
        spider = crawler.spider
        self.mirror = Mirror.start(
            crawler.settings.get("MIRROR_DB"),
            Clock.from_settings(crawler.settings),
            list(spider.start_urls),
            spider.site.url,
            Revalidation.from_settings(crawler.settings),
            full=getattr(spider, "full", False),
            site=spider.site_name,
        )
        self.db = self.mirror.db
        self.mirror_path = crawler.settings.get("MIRROR_DB")
        self.db_error: str | None = None
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item: PageItem):
        if self.db_error:
            # The error is logged once, below, and ends the run: the pages in flight stay due.
            raise DropItem(f"not stored: the database cannot be written ({self.db_error})", log_level="DEBUG")
        try:
            self.mirror.store(item)
        except sqlite3.Error as exc:  # disk full, locked past busy_timeout, read-only, corrupt
            self._database_failed(exc)
            raise DropItem(f"not stored: {exc}", log_level="DEBUG") from exc
        stats = self.crawler.stats
        stats.set_value("mirror/events_new", len(self.mirror.new))
        stats.set_value("mirror/events_seen", len(self.mirror.seen))
        stats.set_value("mirror/page_errors", self.mirror.errors)
        return item

    def _database_failed(self, exc: sqlite3.Error) -> None:
        """Stop the crawl at the first failed write: every later page would fail the same way.

        The page's transaction was rolled back, so the mirror holds whole pages
        only, and the page (still due) is fetched again by the next run.
        """
        self._record_db_error(exc)
        logger.error("cannot write %s: %s; stopping the crawl", self.mirror_path, self.db_error)
        asyncio.get_running_loop().create_task(
            self.crawler.engine.close_spider_async(reason="database_error")
        )

    def close_spider(self):
        if self.db_error:
            return
        try:
            self.mirror.link_up()
        except sqlite3.Error as exc:
            self._record_db_error(exc)

    def _record_db_error(self, exc: sqlite3.Error) -> None:
        """Remember the failed write; the runner turns it into the command's error."""
        self.db_error = f"{type(exc).__name__}: {exc}"
        self.crawler.stats.set_value("mirror/db_error", self.db_error)

    def spider_closed(self, spider, reason):
        stats = self.crawler.stats
        requests = stats.get_value("downloader/request_count", 0)
        responses = stats.get_value("downloader/response_count", 0)
        costs = {
            "requests": requests,
            "bodies": responses - stats.get_value("downloader/response_status_count/304", 0),
            "bytes_received": stats.get_value("downloader/response_bytes", 0),
            "pages_not_due": len(getattr(spider, "not_due", ())),
        }
        try:
            run = self.mirror.finish(reason, costs)
            self.crawler.stats.set_value("mirror/errors_by_reason", self.mirror.errors_by_reason())
        except sqlite3.Error as exc:
            self._record_db_error(exc)
        else:
            self.crawler.stats.set_value("mirror/run", run)
        finally:
            self.db.close()
