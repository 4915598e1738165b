"""Event identity: which stored event a freshly parsed event page is.

The site wrote a new file for every edit of an event and kept the old ones,
so one event appears under several URLs with slightly different titles.  The
rules, tried in order (cheapest and surest first):

1. a URL already known for an event (``event_urls``: an earlier fetch, an
   old slug redirecting to it, or a ``### Changes:`` list) is that event;
2. a URL this page's own ``### Changes:`` section names is that event;
3. the same date and the same *text key* (story prefix, case, spacing and
   punctuation removed) is the same event;
4. the same date, a shared source URL and near-identical text (an edit) is
   the same event; ``DEDUPE_SIMILARITY`` sets how near.

An event never seen before gets an id made of its date and a hash of its text
key: readable, stable across runs (it is stored, never recomputed), and the
same in two mirrors that first meet the same version of an event.
"""

from __future__ import annotations

import hashlib
from difflib import SequenceMatcher

import sqlite_utils

from pipeline.normalise import Event
from pipeline.store import StorePipeline


def new_event_id(event: Event) -> str:
    digest = hashlib.sha1(f"{event.date}|{event.text_key}".encode()).hexdigest()
    return f"{event.date}-{digest[:10]}"


def _known(db: sqlite_utils.Database, urls: list[str]) -> str | None:
    for url in urls:
        row = db.execute("SELECT event_id FROM event_urls WHERE url = ?", [url]).fetchone()
        if row:
            return row[0]
    return None


def find_event(db: sqlite_utils.Database, event: Event, similarity: float) -> str | None:
    """The id of the stored event this page is a version of, if any."""
    found = _known(db, [event.url, *event.versions])
    if found:
        return found
    row = db.execute(
        "SELECT event_id FROM event_urls WHERE date = ? AND text_key = ? LIMIT 1",
        [event.date, event.text_key],
    ).fetchone()
    if row:
        return row[0]
    if not event.sources or similarity > 1:
        return None
    placeholders = ",".join("?" for _ in event.sources)
    candidates = db.execute(
        f"""
        SELECT DISTINCT e.id, e.text_key FROM events e
        JOIN event_sources es ON es.event_id = e.id
        JOIN sources s ON s.id = es.source_id
        WHERE e.date = ? AND s.url IN ({placeholders})
        """,
        [event.date, *(s.url for s in event.sources)],
    ).fetchall()
    best = None
    best_ratio = similarity
    for event_id, key in candidates:
        ratio = SequenceMatcher(None, event.text_key, key or "", autojunk=False).ratio()
        if ratio >= best_ratio:
            best, best_ratio = event_id, ratio
    return best


class DedupePipeline:
    """Give each event item the id of the event it belongs to."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.similarity = crawler.settings.getfloat("DEDUPE_SIMILARITY")

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        db = self.crawler.get_item_pipeline(StorePipeline).db
        item.event_ids = [
            find_event(db, event, self.similarity) or new_event_id(event) for event in item.events
        ]
        return item
