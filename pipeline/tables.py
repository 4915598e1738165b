"""The mirror's tables, indexes, full-text indexes and views, declared as data.

The README's schema table documents these declarations (a test compares
them); Datasette follows the foreign keys declared here.  How they are
applied to a database, old or new, is ``pipeline.schema``'s job.
"""

from __future__ import annotations

# table -> (columns, options).  Columns are in the order Datasette shows them.
TABLES: dict[str, tuple[dict[str, type], dict]] = {
    "sync_runs": (
        {
            "id": int,
            "kind": str,
            "started_at": str,
            "finished_at": str,
            "status": str,
            "finish_reason": str,
            "start_urls": str,
            "site": str,  # thecontext or wikipedia
            "site_root": str,
            "pages_fetched": int,
            "pages_not_modified": int,
            "events_new": int,
            "events_changed": int,
            "events_unchanged": int,
            "errors": int,
            # pages whose own date heading names another day than their folder (pages.heading_date)
            "pages_misdated": int,
            "sources_checked": int,
            # 1: most hosts failed at the network level, nothing was struck (pipeline.settle.network_of)
            "offline": int,
            # what the sync cost (issue 4): what it asked, what came back, what it skipped
            "full": int,
            # portal runs: what the run asked about (crawler.portal_plan): backfill (its window),
            # all (nothing older held), recent changes, sweep (every held day)
            "covers": str,
            "requests": int,
            "bodies": int,
            "bytes_received": int,
            "pages_not_due": int,
            "events_removed": int,
            "events_restored": int,
            "duration_seconds": float,
        },
        {"pk": "id"},
    ),
    "events": (
        {
            "id": str,
            "url": str,
            "date": str,
            "story": str,
            "topic": str,
            "text": str,
            "title": str,
            "description": str,
            "first_seen": str,
            "last_seen": str,
            "updated_at": str,
            "removed_at": str,
            "removed_reason": str,
            "superseded_by": str,
            "text_key": str,
            "content_hash": str,
            "sync_run": int,
            "site": str,  # where the event was first read: thecontext or wikipedia
        },
        {
            "pk": "id",
            "not_null": {"url", "date", "text", "title"},
            "foreign_keys": [("sync_run", "sync_runs", "id")],
        },
    ),
    "event_urls": (
        {
            "url": str,
            "event_id": str,
            "via": str,
            "date": str,
            "text_key": str,
            "title": str,
            "listed": int,
            "content_hash": str,
            "snapshot": str,
            "first_seen": str,
            "last_seen": str,
            "removed_at": str,
        },
        {"pk": "url", "foreign_keys": [("event_id", "events", "id")]},
    ),
    "event_versions": (
        {"event_id": str, "recorded_at": str, "url": str, "content_hash": str, "snapshot": str},
        {"foreign_keys": [("event_id", "events", "id")]},
    ),
    # A ``### Changes:`` list as each page published it (pipeline.events): the event's versions
    # with their timestamps and labels; the view event_history gives one list per event.
    "event_changes": (
        {
            "listed_on": str,  # the event page whose Changes section lists the entry
            "url": str,  # the version's page
            "event_id": str,
            "position": int,
            "title": str,
            "changed_at": str,  # "2018-02-06 13:49:31"; none for the current version
            "label": str,  # First version, Update, Current version
            "first_seen": str,
        },
        {"pk": ("listed_on", "url"), "foreign_keys": [("event_id", "events", "id")]},
    ),
    "sources": (
        {
            "id": int,
            "url": str,
            # the URL exactly as first cited (url is its canonical form, the key for "same resource");
            # fetched and asked of archives; other spellings are in source_aliases
            "cited_url": str,
            "domain": str,
            "first_seen": str,
            # liveness (pipeline.liveness)
            "status": str,
            "strikes": int,
            "last_strike_at": str,
            "last_checked_at": str,
            "last_outcome": str,
            "next_check_at": str,
            "first_failed_at": str,
            "dead_since": str,
            # what the last good check kept
            "http_status": int,
            "final_url": str,
            "content_type": str,
            "size": int,
            "title": str,
            "description": str,
            "published": str,
            "site_name": str,
            "content_hash": str,
            "first_ok_at": str,
            "last_ok_at": str,
            # the Internet Archive's copy
            "archive_url": str,
            "archive_timestamp": str,
            "archive_checked_at": str,
        },
        {"pk": "id"},
    ),
    "source_texts": (
        {"id": int, "source_id": int, "fetched_at": str, "content_hash": str, "text": str},
        {"pk": "id", "foreign_keys": [("source_id", "sources", "id")]},
    ),
    "link_checks": (
        {
            "id": int,
            "source_id": int,
            "sync_run": int,
            "checked_at": str,
            "url": str,
            "http_status": int,
            "final_url": str,
            "redirects": int,
            "content_type": str,
            "size": int,
            "error": str,
            "elapsed_ms": int,
            "outcome": str,
            "note": str,
            # The wait a rate-limited host asked for (Retry-After, seconds): the settlement reads it
            # from the row, so a check round resumed by another process keeps it.
            "retry_after_s": float,
        },
        {
            "pk": "id",
            "foreign_keys": [("source_id", "sources", "id"), ("sync_run", "sync_runs", "id")],
        },
    ),
    "hosts": (
        {
            "host": str,
            "probe_url": str,
            "probe_status": int,
            "probe_final_url": str,
            "probe_tokens": str,
            "probed_at": str,
        },
        {"pk": "host"},
    ),
    "event_sources": (
        {"event_id": str, "source_id": int, "label": str, "position": int},
        {
            "pk": ("event_id", "position"),
            "foreign_keys": [("event_id", "events", "id"), ("source_id", "sources", "id")],
        },
    ),
    "related_events": (
        {
            "event_id": str,
            "position": int,
            "related_url": str,
            "related_id": str,
            "title": str,
            "contexts": str,
            "via": str,  # page (listed on the event's page) or entities (computed: pipeline.related)
        },
        {
            "pk": ("event_id", "position"),
            "foreign_keys": [("event_id", "events", "id"), ("related_id", "events", "id")],
        },
    ),
    "contexts": ({"id": int, "name": str}, {"pk": "id"}),
    "event_contexts": (
        {"event_id": str, "context_id": int},
        {
            "pk": ("event_id", "context_id"),
            "foreign_keys": [("event_id", "events", "id"), ("context_id", "contexts", "id")],
        },
    ),
    # Days are per site: the Context and the portal both have a 2018-01-18.
    "days": (
        {"site": str, "date": str, "url": str, "event_count": int, "previous_url": str, "fetched_at": str},
        {"pk": ("site", "date")},
    ),
    "day_events": (
        {
            "site": str,
            "date": str,
            "position": int,
            "url": str,
            "event_id": str,
            "title": str,
            "topic": str,
            "contexts": str,
            "description": str,
        },
        {"pk": ("site", "date", "position"), "foreign_keys": [("event_id", "events", "id")]},
    ),
    "day_versions": (
        {"site": str, "date": str, "recorded_at": str, "url": str, "listing": str, "sync_run": int},
        {"foreign_keys": [("sync_run", "sync_runs", "id")]},
    ),
    # Other spellings a source was cited under (same canonical URL, other query order or escapes).
    "source_aliases": (
        {"source_id": int, "cited_url": str, "first_seen": str},
        {"pk": ("source_id", "cited_url"), "foreign_keys": [("source_id", "sources", "id")]},
    ),
    "pages": (
        {
            "url": str,
            "http_status": int,
            "kind": str,
            "fetched_at": str,
            "content_hash": str,
            "size": int,
            "error": str,
            "redirect_to": str,
            "sync_run": int,
            "etag": str,
            "last_modified": str,
            "revision": int,  # the portal page's MediaWiki revision id
            # due-based revalidation (pipeline.revalidate)
            "date": str,
            "first_seen": str,
            "unchanged_streak": int,
            "next_check_at": str,
            "bad_links": str,  # JSON [{"href", "reason"}]: links of the page that are not URLs
            # the date the page's own heading gives, when its folder (``date``) says another day
            "heading_date": str,
            # a checkout's file (run --checkout): its mtime in ns when last read; with ``size``,
            # an unchanged file is not read again
            "file_mtime": int,
        },
        {"pk": "url", "foreign_keys": [("sync_run", "sync_runs", "id")]},
    ),
}

UNIQUE_INDEXES = [("sources", ["url"]), ("contexts", ["name"])]
INDEXES = [
    ("events", ["date"]),
    ("events", ["date", "text_key"]),
    ("event_urls", ["event_id"]),
    ("event_urls", ["date", "text_key"]),
    ("event_versions", ["event_id"]),
    ("event_changes", ["event_id"]),
    ("event_changes", ["url"]),
    ("event_sources", ["source_id"]),
    ("related_events", ["related_url"]),
    ("related_events", ["related_id"]),
    ("event_contexts", ["context_id"]),
    ("day_events", ["url"]),
    ("sources", ["domain"]),
    ("sources", ["status"]),
    ("sources", ["next_check_at"]),
    ("source_texts", ["source_id"]),
    ("link_checks", ["source_id"]),
    ("link_checks", ["sync_run"]),
    ("pages", ["kind"]),
    ("pages", ["next_check_at"]),
    ("day_versions", ["site", "date"]),
    ("events", ["site"]),
]
# Mirrors made before the portal adapter hold only the Context's events and days.
FIRST_SITE = "thecontext"
# What the rows of an older mirror hold in a column added since: written once, when it is added.
FILLED_WHEN_ADDED = {("events", "site"): FIRST_SITE, ("related_events", "via"): "page"}
FTS = {"events": ["title", "text", "story"], "source_texts": ["text"]}

# Views that make the common questions one SELECT (Datasette lists them with the tables).
VIEWS = {
    "events_overview": """
        SELECT e.id, e.date, e.story, e.topic, e.text, e.url,
          (SELECT count(*) FROM event_sources es WHERE es.event_id = e.id) AS sources,
          (SELECT count(*) FROM event_sources es JOIN sources s ON s.id = es.source_id
            WHERE es.event_id = e.id AND s.status = 'dead') AS dead_sources,
          (SELECT count(*) FROM related_events r WHERE r.event_id = e.id) AS related,
          (SELECT count(*) FROM event_versions v WHERE v.event_id = e.id) AS versions,
          e.removed_at
        FROM events e""",
    # An event's change history: the Changes list its current page publishes, else its longest
    # (then newest) one; in time order with ORDER BY changed_at (the current version has none).
    "event_history": """
        SELECT c.event_id, c.position, c.url, c.title, c.changed_at, c.label, c.listed_on
        FROM event_changes c JOIN events e ON e.id = c.event_id
        WHERE c.listed_on = coalesce(
          (SELECT listed_on FROM event_changes WHERE event_id = c.event_id AND listed_on = e.url LIMIT 1),
          (SELECT listed_on FROM event_changes WHERE event_id = c.event_id GROUP BY listed_on
            ORDER BY count(*) DESC, max(changed_at) DESC, listed_on LIMIT 1))""",
    "domains": """
        SELECT domain, count(*) AS sources,
          sum(status = 'alive') AS alive, sum(status = 'failing') AS failing,
          sum(status = 'dead') AS dead, sum(status = 'blocked') AS blocked,
          sum(status = 'unchecked') AS unchecked,
          round(100.0 * sum(status = 'dead') / count(*), 1) AS dead_percent,
          sum(status = 'dead' AND archive_url IS NOT NULL) AS dead_archived
        FROM sources GROUP BY domain""",
}
