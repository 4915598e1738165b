"""``python -m crawler export``: one record per event, for people building datasets.

Each record carries what a dataset needs without joins: the event's fields,
its sources (the URL as cited, label, domain and outlet, liveness status and
when it was last checked, archived copy), its related events and its
entities.  The README's export section names every field written (a test
holds them to it).  JSON Lines keeps the nesting; CSV has one row per
event with the lists as JSON in their cells, so nothing is lost in either.
Records are streamed, so a mirror of any size exports in constant memory.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator

from pipeline.schema import rows_of

EVENT_COLUMNS = (
    "id",
    "date",
    "story",
    "topic",
    "title",
    "text",
    "description",
    "url",
    "first_seen",
    "updated_at",
    "removed_at",
    "removed_reason",
    "site",
)
LIST_COLUMNS = ("sources", "related", "contexts")

SOURCES_SQL = """
SELECT coalesce(s.cited_url, s.url) AS url, s.url AS canonical_url, es.label, s.domain, s.status,
       s.last_checked_at, s.archive_url, s.archive_timestamp
FROM event_sources es JOIN sources s ON s.id = es.source_id
WHERE es.event_id = ? ORDER BY es.position
"""
RELATED_SQL = """
SELECT related_url AS url, related_id AS event_id, title, via
FROM related_events WHERE event_id = ? ORDER BY position
"""
CONTEXTS_SQL = """
SELECT c.name FROM event_contexts ec JOIN contexts c ON c.id = ec.context_id
WHERE ec.event_id = ? ORDER BY c.name
"""


def event_records(
    conn: sqlite3.Connection, since: str | None = None, until: str | None = None
) -> Iterator[dict]:
    """Every event in the date window, oldest first, with its sources, related events and entities.

    ``conn`` may be read-only: nothing is written.
    """
    where, params = [], []
    if since:
        where.append("date >= ?")
        params.append(since)
    if until:
        where.append("date <= ?")
        params.append(until)
    sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
    if where:
        sql += " WHERE " + " AND ".join(where)
    events = conn.execute(sql + " ORDER BY date, id", params)
    names = [d[0] for d in events.description]
    for row in events:
        event = dict(zip(names, row, strict=True))
        event["sources"] = [_with_outlet(source) for source in rows_of(conn, SOURCES_SQL, [event["id"]])]
        event["related"] = rows_of(conn, RELATED_SQL, [event["id"]])
        event["contexts"] = [row["name"] for row in rows_of(conn, CONTEXTS_SQL, [event["id"]])]
        yield event


def _with_outlet(source: dict) -> dict:
    """The source with its outlet (registered domain: edition.cnn.com is cnn.com) after its domain."""
    from crawler.outlets import registered_domain

    keys = list(source)
    at = keys.index("domain") + 1
    outlet = {"outlet": registered_domain(source["domain"])}
    return {**{k: source[k] for k in keys[:at]}, **outlet, **{k: source[k] for k in keys[at:]}}


def write_jsonl(records, out) -> int:
    count = 0
    for record in records:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_csv(records, out) -> int:
    writer = csv.DictWriter(out, fieldnames=[*EVENT_COLUMNS, *LIST_COLUMNS])
    writer.writeheader()
    count = 0
    for record in records:
        for column in LIST_COLUMNS:
            record[column] = json.dumps(record[column], ensure_ascii=False)
        writer.writerow(record)
        count += 1
    return count
