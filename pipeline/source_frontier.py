"""What the source spiders should ask for, read from ``mirror.db`` without ever writing it.

The spiders decide what to request; the pipelines decide what to write.  So that data
flows one way (spider → items → pipelines → database), the check and archive spiders
read their work through this object, on a read-only connection of their own
(:func:`pipeline.schema.open_read_only`), and never through a pipeline:

* :meth:`SourceFrontier.due_sources`: the sources to check in this run;
* :meth:`SourceFrontier.hosts_to_probe`: hosts whose random-sibling probe is missing
  or stale (:mod:`pipeline.check_classify`);
* :meth:`SourceFrontier.archive_lookups`: failing and dead sources to look up in the
  Internet Archive, once the check run is settled (the rule: :func:`pipeline.settle.archive_lookups`).
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from pipeline.clock import Clock, iso
from pipeline.schema import open_read_only
from pipeline.settle import ArchiveCandidate, ArchiveLookup, archive_lookups


class SourceFrontier:
    def __init__(self, path, clock: Clock, probe_ttl: dt.timedelta, archive_recheck: dt.timedelta):
        self.conn = open_read_only(path)
        self.clock = clock
        self.probe_ttl = probe_ttl
        self.archive_recheck = archive_recheck

    @classmethod
    def from_settings(cls, settings) -> SourceFrontier:
        return cls(
            settings.get("MIRROR_DB"),
            Clock.from_settings(settings),
            probe_ttl=dt.timedelta(days=settings.getfloat("PROBE_TTL_DAYS")),
            archive_recheck=dt.timedelta(days=settings.getfloat("ARCHIVE_RECHECK_DAYS")),
        )

    def __enter__(self) -> SourceFrontier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def due_sources(self, check_all: bool, only_unchecked: bool, limit: int = 0) -> list[tuple[int, str]]:
        """Never-checked sources first, then by when they came due (at most ``limit``, 0: all)."""
        if only_unchecked:
            where, params = "status = 'unchecked'", []
        elif check_all:
            where, params = "1", []
        else:
            where, params = "next_check_at IS NULL OR next_check_at <= ?", [self.clock.iso()]
        # The URL as cited is what is fetched: old servers answer spellings differently.
        sql = (
            f"SELECT id, coalesce(cited_url, url) FROM sources WHERE {where}"
            " ORDER BY status != 'unchecked', next_check_at, id"
        )
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [tuple(row) for row in self.conn.execute(sql, params).fetchall()]

    def hosts_to_probe(self, due: list[tuple[int, str]]) -> dict[str, str]:
        """Hosts whose random-sibling probe is missing or stale, with a cited URL of each."""
        samples: dict[str, str] = {}
        for _, url in due:
            parts = urlsplit(url)
            if parts.path not in ("", "/"):
                samples.setdefault(parts.netloc.lower(), url)
        stale_before = iso(self.clock.now() - self.probe_ttl)
        wanted = {}
        for host, url in samples.items():
            row = self.conn.execute("SELECT probed_at FROM hosts WHERE host = ?", [host]).fetchone()
            if row is None or row[0] is None or row[0] < stale_before:
                wanted[host] = url
        return wanted

    def soft_hosts(self, due: list[tuple[int, str]], probing) -> set[str]:
        """Hosts of ``due`` not ``probing`` now whose stored probe was answered with a page (2xx):
        their good pages are compared with it (a soft 404?), so their words are taken in the pool.
        (A host probed now is known by its probe's answer.)"""
        soft = set()
        for host in {urlsplit(url).netloc.lower() for _, url in due} - set(probing):
            row = self.conn.execute("SELECT probe_status FROM hosts WHERE host = ?", [host]).fetchone()
            if row and row[0] is not None and 200 <= row[0] < 300:
                soft.add(host)
        return soft

    def archive_lookups(self) -> list[ArchiveLookup]:
        """Failing and dead sources without an archived copy that are due a (new) question."""
        now = self.clock.now()
        # The recheck rule is archive_lookups'; applied here too, the citing events are only
        # looked up for the sources it keeps.
        rows = self.conn.execute(
            """
            SELECT s.id, coalesce(s.cited_url, s.url), s.archive_checked_at,
                   (SELECT min(e.date) FROM event_sources es JOIN events e ON e.id = es.event_id
                    WHERE es.source_id = s.id)
            FROM sources s
            WHERE s.status IN ('failing', 'dead') AND s.archive_url IS NULL
              AND (s.archive_checked_at IS NULL OR s.archive_checked_at <= ?)
            ORDER BY s.id
            """,
            [iso(now - self.archive_recheck)],
        ).fetchall()
        return archive_lookups([ArchiveCandidate(*row) for row in rows], now, self.archive_recheck)
