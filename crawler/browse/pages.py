"""What the browse pages show beyond Datasette's defaults, as plain functions of rows.

The Datasette plugin (``crawler/browse/plugins/mirror_browse.py``) calls
these; they read through Datasette's read-only connections and build no
HTML except the short links of a cell, so the templates hold the layout.

- :func:`event_page`: an event with its sources (label, domain, cited URL,
  status and when it was last checked, preserved title, archived copy), its
  related events, its earlier versions and its entities, for
  ``templates/event.html``.
- :func:`outlet_facet`: the dead-link query's outlets (registered domains)
  with their counts, for ``templates/dead_links.html``.
- :func:`short_url`: a long URL as a cell shows it (the link keeps it whole).
- :func:`hidden_query`: the query string of a table page with its internal
  columns left out (``_nocol``), unless the reader asked for columns.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from urllib.parse import parse_qsl, urlencode, urlsplit

ARCHIVED = re.compile(r"^https?://web\.archive\.org/web/(\d{4})(\d\d)(\d\d)\d*[a-z_]*/", re.I)
SHORT = 60  # characters of a URL a table cell shows

EVENT_SQL = "SELECT * FROM events WHERE id = ?"
SOURCES_SQL = """
SELECT es.position, es.label, s.id, coalesce(s.cited_url, s.url) AS url, s.domain, s.status,
       s.last_checked_at, s.last_outcome,
       s.dead_since, s.first_failed_at, s.title, s.site_name, s.published, s.final_url,
       s.archive_url, s.archive_timestamp
FROM event_sources es JOIN sources s ON s.id = es.source_id
WHERE es.event_id = ? ORDER BY es.position
"""
RELATED_SQL = """
SELECT r.position, r.related_url, r.related_id, r.title, r.via, e.date, e.text
FROM related_events r LEFT JOIN events e ON e.id = r.related_id
WHERE r.event_id = ? ORDER BY r.position
"""
VERSIONS_SQL = """
SELECT rowid, recorded_at, url, snapshot FROM event_versions WHERE event_id = ? ORDER BY recorded_at DESC
"""
CONTEXTS_SQL = """
SELECT c.name FROM event_contexts ec JOIN contexts c ON c.id = ec.context_id
WHERE ec.event_id = ? ORDER BY c.name
"""
STATUSES = ("alive", "failing", "dead", "blocked", "unchecked")


async def event_page(db, event_id: str, row_url) -> dict | None:
    """The event ``event_id`` with what cites, relates and replaced it; None if there is none.

    ``db`` is a Datasette database; ``row_url(table, pk)`` gives a row's page.
    """
    from crawler.outlets import registered_domain

    found = (await db.execute(EVENT_SQL, [event_id])).rows
    if not found:
        return None
    event = dict(found[0])
    sources = []
    for row in (await db.execute(SOURCES_SQL, [event_id])).rows:
        source = dict(row)
        source["outlet"] = registered_domain(source["domain"])
        source["href"] = row_url("sources", source["id"])
        source["archived_on"] = archived_on(source["archive_url"], source["archive_timestamp"])
        sources.append(source)
    related = []
    for row in (await db.execute(RELATED_SQL, [event_id])).rows:
        item = dict(row)
        item["href"] = row_url("events", item["related_id"]) if item["related_id"] else item["related_url"]
        related.append(item)
    versions = []
    for row in (await db.execute(VERSIONS_SQL, [event_id])).rows:
        version = dict(row)
        try:
            earlier = json.loads(version["snapshot"] or "{}")
        except ValueError:
            earlier = {}
        version["text"] = earlier.get("text") if isinstance(earlier, dict) else None
        version["title"] = earlier.get("title") if isinstance(earlier, dict) else None
        version["href"] = row_url("event_versions", version["rowid"])
        versions.append(version)
    contexts = [row[0] for row in (await db.execute(CONTEXTS_SQL, [event_id])).rows]
    if event.get("superseded_by"):
        event["superseded_href"] = row_url("events", event["superseded_by"])
    return {
        "event": event,
        "sources": sources,
        "status_counts": _counts(source["status"] for source in sources),
        "related": related,
        "versions": versions,
        "contexts": contexts,
    }


def _counts(statuses) -> list[tuple[str, int]]:
    """How many sources have each status, in the order of STATUSES."""
    counts = Counter(status or "unchecked" for status in statuses)
    return sorted(counts.items(), key=lambda item: STATUSES.index(item[0]) if item[0] in STATUSES else 9)


def archived_on(archive_url: str | None, timestamp: str | None = None) -> str | None:
    """The day an archived copy was taken (YYYY-MM-DD), from its timestamp or its Wayback URL."""
    if not archive_url:
        return None
    if timestamp and len(timestamp) >= 8 and timestamp[:8].isdigit():
        return f"{timestamp[:4]}-{timestamp[4:6]}-{timestamp[6:8]}"
    match = ARCHIVED.match(archive_url)
    return "-".join(match.groups()) if match else None


def short_url(url: str, limit: int = SHORT) -> str:
    """A URL as a cell shows it: no scheme, and cut in the middle when long (host and end kept).

    >>> short_url("https://www.bbc.co.uk/news/world-africa-21949574")
    'www.bbc.co.uk/news/world-africa-21949574'
    >>> short_url("https://web.archive.org/web/20130328000000/http://www.bbc.co.uk/news/world-21949574")
    'web.archive.org · 2013-03-28'
    >>> short_url("http://example.com/" + "a" * 80, 30)
    'example.com/aaaaaaaa…aaaaaaaaa'
    """
    day = archived_on(url)
    if day:
        return f"web.archive.org · {day}"
    bare = url.split("://", 1)[-1]
    if len(bare) <= limit:
        return bare
    host = urlsplit(url).netloc
    head = max(len(host) + 8, limit * 2 // 3)
    if head >= limit - 4:
        return bare[: limit - 1] + "…"
    return bare[:head] + "…" + bare[-(limit - head - 1) :]


def hidden_query(query_string: str, hidden: list[str], columns: list[str]) -> str | None:
    """The query string with ``_nocol`` for each hidden column, or None to leave it as it is.

    A reader who names columns (``_col``) sees those; ``_internal=1`` shows every column.
    """
    args = parse_qsl(query_string, keep_blank_values=True)
    names = {key for key, _ in args}
    if "_internal" in names:
        return None
    asked = {value for key, value in args if key in ("_col", "_nocol")}
    leave_out = [column for column in hidden if column in columns and column not in asked]
    if not leave_out:
        return None
    return urlencode([*args, *(("_nocol", column) for column in leave_out)])


OUTLETS_SQL = """
SELECT registered_domain(s.domain) AS outlet, count(*) AS n
FROM sources s JOIN event_sources es ON es.source_id = s.id
WHERE s.status = 'dead' GROUP BY outlet ORDER BY n DESC, outlet
"""


async def outlet_facet(db) -> list[dict]:
    """Outlets of the dead sources' citations, most first (the registered_domain SQL function)."""
    return [dict(row) for row in (await db.execute(OUTLETS_SQL)).rows]
