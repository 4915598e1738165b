"""The items the spiders yield.

``PageItem``: one fetched (or failed) page of a site: an event or day page of
the Context, or one day of Wikipedia's portal (which holds the day's events).
``CheckItem``, ``ProbeItem``, ``ArchiveItem``: the facts of one source check,
of a host's random-sibling probe (the source spider), and of an archive
lookup (the archive spider).

The event spider parses each page once, because it must know the page's links to
follow them; the item carries that parse downstream so that no pipeline
parses again.  Pipelines fill in the later fields in order:
normalise (``event``/``day``) → dedupe (``event_id``) → store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.normalise import Day, Event, Normalised
from pipeline.parsed import ParsedPage


@dataclass
class PageItem:
    url: str  # canonical URL the content was served under (after redirects)
    kind: str  # event, day, index, other, redirect, error
    http_status: int | None = None
    content_hash: str | None = None
    size: int | None = None
    error: str | None = None  # why the page is unusable, when it is
    redirect_to: str | None = None  # where a redirect (kind "redirect") points
    etag: str | None = None
    last_modified: str | None = None
    date: str | None = None  # the day in the page's /news/Y/M/D/ path, which sets its schedule
    # The site links the page holds: queued in ``pages`` with the page, so that
    # an interrupted run's frontier is not lost.
    links: list[str] = field(default_factory=list)
    # True when the page is what the mirror already holds (a 304, or the same bytes):
    # nothing is parsed or rewritten, only "seen" moves.
    unchanged: bool = False
    parsed: ParsedPage | None = None
    # The parse in normal form, when the parse pool made it beside the parse (else the
    # normalise pipeline makes it).
    normalised: Normalised | None = None
    revision: int | None = None  # the portal page's revision id, which says when it changed
    file_mtime: int | None = None  # a checkout's file: its mtime (ns) when it was read
    # Links on the page that are not URLs ({"href", "reason"}): recorded, not followed or stored.
    bad_links: list[dict] = field(default_factory=list)
    # Filled by the pipelines
    events: list[Event] = field(default_factory=list)
    day: Day | None = None
    event_ids: list[str] = field(default_factory=list)


@dataclass
class CheckItem:
    source_id: int
    url: str  # the source's canonical URL, as stored
    http_status: int | None = None
    final_url: str | None = None
    redirects: int = 0
    content_type: str | None = None
    size: int | None = None
    error: str | None = None
    detail: str | None = None
    elapsed_ms: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    # What a Redis worker already extracted from the body (pipeline.extract.Extracted): the
    # writer keeps it instead of extracting again (crawler.redisqueue).  None: extract when kept.
    extracted: object | None = None


@dataclass
class ProbeItem:
    host: str
    probe_url: str
    http_status: int | None = None
    final_url: str | None = None
    content_type: str | None = None
    body: bytes | None = None
    # The answer's words (pipeline.extract.page_words), taken in the parse pool; None: the
    # pipeline takes them.
    words: list[str] | None = None


@dataclass
class ArchiveItem:
    source_id: int
    body: bytes | None = None
    error: str | None = None
