"""Reports read from mirror.db: dead sources with their events."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

from pipeline.schema import rows_of

DEAD_LINKS_SQL = """
SELECT s.id, s.url, s.domain, s.first_failed_at, s.dead_since, s.strikes, s.last_outcome,
       c.http_status AS last_http_status, c.error AS last_error, c.checked_at AS last_checked_at,
       s.archive_url, s.archive_timestamp
FROM sources s
LEFT JOIN link_checks c ON c.id = (SELECT max(id) FROM link_checks WHERE source_id = s.id)
WHERE s.status = 'dead'
ORDER BY s.dead_since, s.url
"""

EVENTS_SQL = """
SELECT e.id AS event_id, e.date, es.label, e.text, e.url AS event_url
FROM event_sources es JOIN events e ON e.id = es.event_id
WHERE es.source_id = ? ORDER BY e.date, e.id
"""


def dead_links(conn: sqlite3.Connection) -> list[dict]:
    """Every dead source, each with the events that cite it."""
    sources = []
    for row in rows_of(conn, DEAD_LINKS_SQL):
        row["events"] = rows_of(conn, EVENTS_SQL, [row["id"]])
        sources.append(row)
    return sources


def _last_status(source: dict) -> str:
    if source["last_http_status"]:
        return f"HTTP {source['last_http_status']} ({source['last_outcome']})"
    return f"{source['last_error'] or '?'} ({source['last_outcome']})"


def render(sources: list[dict], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(sources, indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        columns = [
            "url",
            "domain",
            "first_failed_at",
            "dead_since",
            "last_status",
            "archive_url",
            "event_date",
            "label",
            "event_id",
            "event_text",
        ]
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        for source in sources:
            for event in source["events"] or [{}]:
                writer.writerow(
                    {
                        "url": source["url"],
                        "domain": source["domain"],
                        "first_failed_at": source["first_failed_at"],
                        "dead_since": source["dead_since"],
                        "last_status": _last_status(source),
                        "archive_url": source["archive_url"],
                        "event_date": event.get("date"),
                        "label": event.get("label"),
                        "event_id": event.get("event_id"),
                        "event_text": event.get("text"),
                    }
                )
        return out.getvalue()
    if not sources:
        return "No dead sources.\n"
    lines = [f"{len(sources)} dead sources\n"]
    for source in sources:
        lines.append(source["url"])
        lines.append(
            f"  dead since {source['dead_since']}, failing since {source['first_failed_at']},"
            f" last check: {_last_status(source)}"
        )
        lines.append(f"  archived copy: {source['archive_url'] or 'none found yet'}")
        for event in source["events"]:
            lines.append(f"  cited by {event['date']} [{event['label']}] {event['text'][:90]}")
        lines.append("")
    return "\n".join(lines)
