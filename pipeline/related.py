"""Related events computed as *the Context* computed them: by the entities two events share.

The Context listed, under each event, up to ten earlier or later events that
link to the same Wikipedia articles, with the shared articles as the item's
``_Context:`` note.  Its pages carry those lists; the portal's do not, so for
portal events the mirror computes them the same way: every other event (of
either site, removed ones excepted) that shares at least one entity
(``event_contexts``), most shared entities first, then nearest in date.

Rows written here say ``via = 'entities'``; rows read from a page say
``via = 'page'``.  A portal event's list is computed when the event is new
or changed; the lists of the events it joins are not rewritten (like the
Context's pages, a list is a snapshot of when its event was written).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import sqlite_utils

RANKED = """
SELECT other.event_id, e.url, e.title, count(*) AS shared,
       json_group_array(c.name) AS names
FROM event_contexts mine
JOIN event_contexts other ON other.context_id = mine.context_id AND other.event_id != mine.event_id
JOIN contexts c ON c.id = mine.context_id
JOIN events e ON e.id = other.event_id AND e.removed_at IS NULL
WHERE mine.event_id = :event
GROUP BY other.event_id
ORDER BY shared DESC, abs(julianday(e.date) - julianday(:date)), other.event_id
LIMIT :limit
"""


def relate(db: sqlite_utils.Database, event_ids: Iterable[str], limit: int = 10) -> int:
    """Write the computed related events of these events; how many rows were written."""
    written = 0
    for event_id in event_ids:
        row = db.execute("SELECT date FROM events WHERE id = ?", [event_id]).fetchone()
        if (
            row is None
            or db.execute(
                "SELECT 1 FROM related_events WHERE event_id = ? AND via = 'page'", [event_id]
            ).fetchone()
        ):
            continue  # an event the Context also published keeps the Context's list
        db.execute("DELETE FROM related_events WHERE event_id = ? AND via = 'entities'", [event_id])
        ranked = db.execute(RANKED, {"event": event_id, "date": row[0], "limit": limit}).fetchall()
        for position, (other, url, title, _shared, names) in enumerate(ranked, 1):
            names = json.dumps(sorted(json.loads(names)), ensure_ascii=False)
            db.execute(
                "INSERT INTO related_events (event_id, position, related_url, related_id, title,"
                " contexts, via) VALUES (?, ?, ?, ?, ?, ?, 'entities')",
                [
                    event_id,
                    position,
                    url,
                    other,
                    title,
                    json.dumps(sorted(json.loads(names)), ensure_ascii=False),
                ],
            )
        written += len(ranked)
    return written
