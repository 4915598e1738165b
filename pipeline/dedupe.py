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
   the same event; ``DEDUPE_SIMILARITY`` sets how near;
5. the same date and the same (or near-identical) text once a *known* story
   prefix is taken off either text (``Story. Text``, ``Story, 2015: Text``,
   or no prefix at all), with a shared source or the same description as
   evidence.  A prefix is known when it is the story of one of the two, or
   the name of an entity either's ``Related``/``_Context:`` lists mention.

Two events that name different stories (``stories_differ``) are never the
same event, by any of rules 3 to 5: "Syrian civil war:Protests continue" and
"Venezuelan crisis:Protests continue" of one day are two events.

An event never seen before gets an id made of its date and a hash of its text
key: readable, stable across runs (it is stored, never recomputed), and the
same in two mirrors that first meet the same version of an event.
"""

from __future__ import annotations

import hashlib
import re
from difflib import SequenceMatcher

import sqlite_utils

from pipeline.normalise import Event, text_key
from pipeline.store import StorePipeline


def new_event_id(event: Event, taken=lambda event_id: False) -> str:
    """``date-hash``; when another event already has that id (same date and text under
    another story), the story joins the hash."""
    digest = hashlib.sha1(f"{event.date}|{event.text_key}".encode()).hexdigest()
    event_id = f"{event.date}-{digest[:10]}"
    if taken(event_id):
        story = text_key(event.story or "")
        digest = hashlib.sha1(f"{event.date}|{event.text_key}|{story}".encode()).hexdigest()
        event_id = f"{event.date}-{digest[:10]}"
    return event_id


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
    for event_id, story in db.execute(
        "SELECT u.event_id, e.story FROM event_urls u JOIN events e ON e.id = u.event_id"
        " WHERE u.date = ? AND u.text_key = ? ORDER BY u.first_seen",
        [event.date, event.text_key],
    ).fetchall():
        if not stories_differ(event.story, story):
            return event_id
    if similarity > 1:
        return None
    return _same_sources(db, event, similarity) or _prefixed_variant(db, event, similarity)


def _same_sources(db: sqlite_utils.Database, event: Event, similarity: float) -> str | None:
    if not event.sources:
        return None
    placeholders = ",".join("?" for _ in event.sources)
    candidates = db.execute(
        f"""
        SELECT DISTINCT e.id, e.text_key, e.story FROM events e
        JOIN event_sources es ON es.event_id = e.id
        JOIN sources s ON s.id = es.source_id
        WHERE e.date = ? AND s.url IN ({placeholders})
        """,
        [event.date, *(s.url for s in event.sources)],
    ).fetchall()
    best = None
    best_ratio = similarity
    for event_id, key, story in candidates:
        if stories_differ(event.story, story):
            continue
        ratio = SequenceMatcher(None, event.text_key, key or "", autojunk=False).ratio()
        if ratio >= best_ratio:
            best, best_ratio = event_id, ratio
    return best


def stories_differ(mine: str | None, theirs: str | None) -> bool:
    """Two events that name two different stories are two events, whatever their text.

    Stories are compared as words, one inside the other counting as the same
    story: "Northern Mali conflict" and "Northern Mali conflict (2012–present)",
    or a portal path "Russo-Ukrainian War > 2022 Russian invasion of Ukraine"
    and "2022 Russian invasion of Ukraine".
    """
    if not mine or not theirs:
        return False
    a, b = f" {text_key(mine)} ", f" {text_key(theirs)} "
    return a.strip() != "" and b.strip() != "" and a not in b and b not in a


YEAR = re.compile(r"^(?:19|20)\d\d ")


def strip_prefix(key: str, prefixes: list[str]) -> str:
    """``key`` without the longest known prefix it starts with (and a year after it:
    ``Story, 2015: Text``); ``key`` itself when none fits."""
    for prefix in prefixes:
        if prefix and key.startswith(prefix + " "):
            rest = key[len(prefix) + 1 :]
            return YEAR.sub("", rest, count=1) if YEAR.match(rest) else rest
    return key


def _prefixed_variant(db: sqlite_utils.Database, event: Event, similarity: float) -> str | None:
    """Rule 5: the stored event of this date that this one is once a known story prefix is off.

    Only events with evidence (a shared source, or the same description) can match, so they
    are found first, and the date's entity names are read only when there is one: this runs
    for every new event that rules 1 to 4 did not place (most of them).
    """
    my_description = text_key(event.description or "")
    sharing = _citing_one_of(db, event)
    rows = [
        row
        for row in db.execute(
            "SELECT id, text_key, story, description FROM events WHERE date = ? AND id IS NOT NULL",
            [event.date],
        ).fetchall()
        if row[0] in sharing or (my_description and my_description == text_key(row[3] or ""))
    ]
    if not rows:
        return None
    names = _by_event(
        db,
        "SELECT ec.event_id, c.name FROM event_contexts ec JOIN contexts c ON c.id = ec.context_id"
        " JOIN events e ON e.id = ec.event_id WHERE e.date = ?",
        event.date,
    )
    mine = {event.story, *event.contexts()} - {None}
    best, best_ratio = None, similarity
    for event_id, key, story, _description in rows:
        if stories_differ(event.story, story):
            continue
        known = {text_key(name) for name in mine | names.get(event_id, set()) | {story} if name}
        prefixes = sorted(known, key=len, reverse=True)
        a, b = strip_prefix(event.text_key, prefixes), strip_prefix(key or "", prefixes)
        if a == event.text_key and b == key:
            continue  # no known prefix on either: rules 3 and 4 have decided
        if not a or not b:
            continue
        ratio = 1.0 if a == b else SequenceMatcher(None, a, b, autojunk=False).ratio()
        if ratio >= best_ratio:
            best, best_ratio = event_id, ratio
    return best


def _citing_one_of(db: sqlite_utils.Database, event: Event) -> set[str]:
    """The events of this event's date that cite one of its sources."""
    if not event.sources:
        return set()
    placeholders = ",".join("?" for _ in event.sources)
    rows = db.execute(
        "SELECT DISTINCT es.event_id FROM event_sources es JOIN sources s ON s.id = es.source_id"
        f" JOIN events e ON e.id = es.event_id WHERE e.date = ? AND s.url IN ({placeholders})",
        [event.date, *(source.url for source in event.sources)],
    ).fetchall()
    return {row[0] for row in rows}


def _by_event(db: sqlite_utils.Database, sql: str, date: str) -> dict[str, set[str]]:
    """(event id, value) rows of one date, as each event's set of values."""
    found: dict[str, set[str]] = {}
    for event_id, value in db.execute(sql, [date]):
        found.setdefault(event_id, set()).add(value)
    return found


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
        ids: list[str] = []

        def taken(event_id: str) -> bool:
            return event_id in ids or db.execute("SELECT 1 FROM events WHERE id = ?", [event_id]).fetchone()

        for event in item.events:
            ids.append(find_event(db, event, self.similarity) or new_event_id(event, taken))
        item.event_ids = ids
        return item
