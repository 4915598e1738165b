"""Store source checks, keep what live sources say, and settle liveness.

The pipeline of :class:`crawler.spiders.sources.SourceCheckSpider`:

* each check is classified (:func:`pipeline.liveness.classify`, then the
  host's random-sibling probe for pages that answered 200) and stored in
  ``link_checks``; a good HTML answer keeps its metadata on ``sources`` and
  its text in ``source_texts`` (a new row only when the text changed, so the
  first good copy outlives the source);
* :meth:`SourceCheckPipeline.settle`, once every check of the run is in,
  applies what only the whole run shows: a redirect target shared by many
  cited URLs of a host (soft 404), a host whose checks all failed (an outage:
  no strikes), and then each source's liveness (:func:`pipeline.liveness.advance`);
* archive answers fill ``archive_url``/``archive_timestamp``; an empty or
  failed answer only dates ``archive_checked_at``, so it is asked again later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections import defaultdict
from urllib.parse import urlsplit

from scrapy import signals

from crawler.items import ArchiveItem, CheckItem, ProbeItem
from crawler.middlewares import retry_after_seconds
from pipeline.clock import Clock, iso, parse_instant
from pipeline.extract import extract, is_html, similarity, tokens
from pipeline.liveness import Liveness, Policy, advance, classify
from pipeline.runs import run_status, start_run
from pipeline.schema import open_database
from pipeline.urls import canonical_url


def _instant(text: str | None) -> dt.datetime | None:
    return parse_instant(text) if text else None


class SourceCheckPipeline:
    def __init__(self, crawler):
        self.crawler = crawler
        settings = crawler.settings
        self.clock = Clock.from_settings(settings)
        self.policy = Policy.from_settings(settings)
        self.outage_min = settings.getint("OUTAGE_MIN_CHECKS")
        self.shared_redirects = settings.getint("SOFT404_SHARED_REDIRECTS")
        self.soft404_similarity = settings.getfloat("SOFT404_SIMILARITY")
        self.probe_ttl = dt.timedelta(days=settings.getfloat("PROBE_TTL_DAYS"))
        self.archive_recheck = dt.timedelta(days=settings.getfloat("ARCHIVE_RECHECK_DAYS"))
        self.db = open_database(settings.get("MIRROR_DB"))
        spider = crawler.spider
        self.own_run = spider.run_id is None
        self.run_id = spider.run_id or start_run(self.db, self.clock, kind="check-links")
        self.retry_after: dict[int, dt.timedelta] = {}
        self.probes: dict[str, dict] = {}
        self.checked = 0
        self.started = time.monotonic()
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    # -- what to check -------------------------------------------------------

    def due_sources(self, check_all: bool, only_unchecked: bool, limit: int) -> list[tuple[int, str]]:
        if only_unchecked:
            where, params = "status = 'unchecked'", []
        elif check_all:
            where, params = "1", []
        else:
            where, params = "next_check_at IS NULL OR next_check_at <= ?", [self.clock.iso()]
        sql = f"SELECT id, url FROM sources WHERE {where} ORDER BY status != 'unchecked', next_check_at, id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [tuple(row) for row in self.db.execute(sql, params).fetchall()]

    def hosts_to_probe(self, due: list[tuple[int, str]]) -> dict[str, str]:
        """Hosts whose random-sibling probe is missing or stale, with a cited URL of each."""
        samples: dict[str, str] = {}
        for _, url in due:
            host = urlsplit(url).netloc.lower()
            if urlsplit(url).path not in ("", "/"):
                samples.setdefault(host, url)
        stale_before = iso(self.clock.now() - self.probe_ttl)
        wanted = {}
        for host, url in samples.items():
            row = self.db.execute("SELECT probed_at FROM hosts WHERE host = ?", [host]).fetchone()
            if row is None or row[0] is None or row[0] < stale_before:
                wanted[host] = url
        return wanted

    # -- items ------------------------------------------------------------------

    def process_item(self, item):
        if isinstance(item, CheckItem):
            self._check(item)
        elif isinstance(item, ProbeItem):
            self._probe(item)
        elif isinstance(item, ArchiveItem):
            self._archive(item)
        return item

    def _probe(self, item: ProbeItem) -> None:
        page_tokens = None
        if item.body is not None and is_html(item.content_type, item.body):
            page_tokens = sorted(tokens(item.body.decode("utf-8", "replace")))
        with self.db.conn:
            self.db["hosts"].upsert(
                {
                    "host": item.host,
                    "probe_url": item.probe_url,
                    "probe_status": item.http_status,
                    "probe_final_url": item.final_url,
                    "probe_tokens": json.dumps(page_tokens) if page_tokens is not None else None,
                    "probed_at": self.clock.iso(),
                },
                pk="host",
            )
        self.probes.pop(item.host, None)

    def _host_probe(self, host: str) -> dict | None:
        if host not in self.probes:
            row = self.db.execute(
                "SELECT probe_status, probe_final_url, probe_tokens FROM hosts WHERE host = ?", [host]
            ).fetchone()
            self.probes[host] = (
                {"status": row[0], "final_url": row[1], "tokens": set(json.loads(row[2] or "[]"))}
                if row
                else None
            )
        return self.probes[host]

    def _looks_missing(self, url: str, final_url: str, html: str) -> bool:
        """Does this 200 page look like what its host serves for a page that does not exist?"""
        parts = urlsplit(url)
        if parts.path in ("", "/"):
            return False  # a site's root page is never a soft 404
        probe = self._host_probe(parts.netloc.lower())
        if not probe or probe["status"] is None or not 200 <= probe["status"] < 300:
            return False  # the host answers missing pages honestly (or we cannot tell)
        if probe["final_url"] and canonical_url(probe["final_url"]) == final_url and final_url != url:
            return True
        return similarity(tokens(html), probe["tokens"]) >= self.soft404_similarity

    def _check(self, item: CheckItem) -> None:
        now = self.clock.iso()
        url = item.url
        final_url = canonical_url(item.final_url) if item.final_url else None
        outcome = classify(url, item.http_status, final_url, item.error, item.headers)
        html = None
        if item.body is not None and is_html(item.content_type, item.body):
            html = item.body.decode("utf-8", "replace")
        note = item.detail
        if outcome == "ok" and html is not None and self._looks_missing(url, final_url, html):
            outcome, note = "soft404", "looks like the host's page for a missing URL (random-sibling probe)"
        if outcome == "rate_limited":
            wait = retry_after_seconds(item.headers.get("retry-after"))
            if wait:
                self.retry_after[item.source_id] = dt.timedelta(seconds=wait)
        self.checked += 1
        with self.db.conn:
            self.db["link_checks"].insert(
                {
                    "source_id": item.source_id,
                    "sync_run": self.run_id,
                    "checked_at": now,
                    "url": url,
                    "http_status": item.http_status,
                    "final_url": final_url,
                    "redirects": item.redirects,
                    "content_type": item.content_type,
                    "size": item.size,
                    "error": item.error,
                    "elapsed_ms": item.elapsed_ms,
                    "outcome": outcome,
                    "note": note,
                }
            )
            self.db.execute(
                "UPDATE sources SET last_checked_at = ?, last_outcome = ? WHERE id = ?",
                [now, outcome, item.source_id],
            )
            if outcome == "ok":
                self._keep(item, final_url, html, now)

    def _keep(self, item: CheckItem, final_url: str | None, html: str | None, now: str) -> None:
        """Keep what a live source says: metadata always, its text when it changed."""
        row = {
            "http_status": item.http_status,
            "final_url": final_url,
            "content_type": item.content_type,
            "size": item.size,
            "last_ok_at": now,
        }
        text = digest = None
        if html is not None:
            found = extract(html, final_url or "")
            row.update(
                title=found.title,
                description=found.description,
                published=found.published,
                site_name=found.site_name,
            )
            text, digest = found.text, found.text_hash
        digest = digest or hashlib.sha256(item.body or b"").hexdigest()
        row["content_hash"] = digest
        self.db["sources"].update(item.source_id, row)
        self.db.execute(
            "UPDATE sources SET first_ok_at = ? WHERE id = ? AND first_ok_at IS NULL", [now, item.source_id]
        )
        if text:
            latest = self.db.execute(
                "SELECT content_hash FROM source_texts WHERE source_id = ? ORDER BY id DESC LIMIT 1",
                [item.source_id],
            ).fetchone()
            if latest is None or latest[0] != digest:
                self.db["source_texts"].insert(
                    {"source_id": item.source_id, "fetched_at": now, "content_hash": digest, "text": text}
                )

    # -- the run as a whole ------------------------------------------------------

    def settle(self) -> list[tuple[int, str, str]]:
        """Apply the run-level rules and liveness; return the archive lookups to make."""
        now = self.clock.now()
        with self.db.conn:
            self._shared_redirects()
            excused = self._outages()
            latest = self.db.execute(
                """
                SELECT c.source_id, c.outcome, s.status, s.strikes, s.last_strike_at, s.dead_since,
                       s.first_failed_at
                FROM link_checks c JOIN sources s ON s.id = c.source_id
                WHERE c.sync_run = ? AND c.id = (
                    SELECT max(id) FROM link_checks WHERE source_id = c.source_id AND sync_run = ?)
                """,
                [self.run_id, self.run_id],
            ).fetchall()
            for source_id, outcome, status, strikes, last_strike, dead_since, first_failed in latest:
                state = Liveness(
                    status=status or "unchecked",
                    strikes=strikes or 0,
                    last_strike_at=_instant(last_strike),
                    dead_since=_instant(dead_since),
                )
                effective = "excused" if source_id in excused else outcome
                new = advance(state, effective, now, self.policy, self.retry_after.get(source_id))
                failing = new.status in ("failing", "dead")
                self.db["sources"].update(
                    source_id,
                    {
                        "status": new.status,
                        "strikes": new.strikes,
                        "last_strike_at": iso(new.last_strike_at),
                        "dead_since": iso(new.dead_since),
                        "next_check_at": iso(new.next_check_at),
                        "first_failed_at": (first_failed or iso(now)) if failing else None,
                    },
                )
        return self._archive_lookups(now)

    def _shared_redirects(self) -> None:
        """Many cited URLs of one host redirected to one page: that page means "missing"."""
        rows = self.db.execute(
            """
            SELECT c.final_url, count(DISTINCT c.source_id) AS n, group_concat(c.id) AS ids
            FROM link_checks c
            WHERE c.sync_run = ? AND c.outcome = 'ok' AND c.redirects > 0
            GROUP BY c.final_url HAVING n >= ?
            """,
            [self.run_id, self.shared_redirects],
        ).fetchall()
        for _, count, ids in rows:
            for check_id in (int(i) for i in ids.split(",")):
                self._demote(check_id, f"redirect target shared by {count} cited URLs of the host")

    def _demote(self, check_id: int, note: str) -> None:
        source_id, checked_at = self.db.execute(
            "SELECT source_id, checked_at FROM link_checks WHERE id = ?", [check_id]
        ).fetchone()
        self.db.execute("UPDATE link_checks SET outcome = 'soft404', note = ? WHERE id = ?", [note, check_id])
        self.db.execute("UPDATE sources SET last_outcome = 'soft404' WHERE id = ?", [source_id])
        # What this very check kept as the article was the host's "missing" page: take it back.
        self.db.execute(
            "DELETE FROM source_texts WHERE source_id = ? AND fetched_at = ?", [source_id, checked_at]
        )
        self.db.execute(
            "UPDATE sources SET first_ok_at = NULL, last_ok_at = NULL, title = NULL, description = NULL,"
            " published = NULL, site_name = NULL, content_hash = NULL"
            " WHERE id = ? AND first_ok_at = ?",
            [source_id, checked_at],
        )

    def _outages(self) -> set[int]:
        """Sources excused because their whole host failed in this run."""
        by_host: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        rows = self.db.execute(
            "SELECT id, source_id, url, outcome FROM link_checks WHERE sync_run = ?", [self.run_id]
        ).fetchall()
        for check_id, source_id, url, outcome in rows:
            by_host[urlsplit(url).netloc.lower()].append((check_id, source_id, outcome))
        excused = set()
        for checks in by_host.values():
            if len(checks) >= self.outage_min and all(outcome == "transient" for _, _, outcome in checks):
                for check_id, source_id, _ in checks:
                    excused.add(source_id)
                    self.db.execute(
                        "UPDATE link_checks SET note = 'host outage: every check of the host failed'"
                        " WHERE id = ?",
                        [check_id],
                    )
        return excused

    def _archive_lookups(self, now: dt.datetime) -> list[tuple[int, str, str]]:
        rows = self.db.execute(
            """
            SELECT s.id, s.url, (SELECT min(e.date) FROM event_sources es JOIN events e ON e.id = es.event_id
                                 WHERE es.source_id = s.id)
            FROM sources s
            WHERE s.status IN ('failing', 'dead') AND s.archive_url IS NULL
              AND (s.archive_checked_at IS NULL OR s.archive_checked_at <= ?)
            ORDER BY s.id
            """,
            [iso(now - self.archive_recheck)],
        ).fetchall()
        lookups = []
        for source_id, url, date in rows:
            # The end of the event's day: the closest capture is then one of that day, or before.
            stamp = (date or now.date().isoformat()).replace("-", "") + "235959"
            lookups.append((source_id, url, stamp))
        return lookups

    def _archive(self, item: ArchiveItem) -> None:
        now = self.clock.iso()
        closest = None
        if item.body is not None:
            try:
                closest = json.loads(item.body).get("archived_snapshots", {}).get("closest")
            except (ValueError, AttributeError):
                closest = None
        row = {"archive_checked_at": now}
        if isinstance(closest, dict) and closest.get("available") and closest.get("url"):
            row.update(archive_url=closest["url"], archive_timestamp=str(closest.get("timestamp") or ""))
        with self.db.conn:
            self.db["sources"].update(item.source_id, row)

    # -- end ------------------------------------------------------------------------

    def spider_closed(self, spider, reason):
        """Close the run's row: its own (check-links), or the sync's it continues (run)."""
        fields = {"sources_checked": self.checked, "finished_at": self.clock.iso()}
        if self.own_run or reason != "finished":
            fields.update(status=run_status(reason), finish_reason=reason)
        elapsed = round(time.monotonic() - self.started, 2)
        with self.db.atomic():
            self.db["sync_runs"].update(self.run_id, fields)
            # A sync's row already holds the site crawl's duration: add the checks' to it.
            self.db.execute(
                "UPDATE sync_runs SET duration_seconds = round(coalesce(duration_seconds, 0) + ?, 2)"
                " WHERE id = ?",
                [elapsed, self.run_id],
            )
        self.crawler.stats.set_value("mirror/run", self.db["sync_runs"].get(self.run_id))
        self.crawler.stats.set_value("mirror/source_status", source_counts(self.db))
        self.db.close()


def source_counts(db) -> dict[str, int]:
    rows = db.execute("SELECT status, count(*) FROM sources GROUP BY status ORDER BY status").fetchall()
    return dict(rows)
