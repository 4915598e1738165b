"""Normalise parsed pages: absolute canonical URLs and comparable text.

The parser reports what a page says; this step turns it into what the mirror
stores: every link absolute and canonical (so that one resource has one
spelling), source labels and contexts cleaned, and a *text key* per event, the
form of its text under which slug variants of one event compare equal.
"""

from __future__ import annotations

import hashlib
import html
import logging
import re
import unicodedata
from dataclasses import dataclass, field

from pipeline.parsed import DayPage, EventPage, PortalDay
from pipeline.urls import SiteRoot, domain_of

logger = logging.getLogger(__name__)

WIKI_QUOTES = re.compile(r"'{2,}")
NOT_WORD = re.compile(r"[^0-9a-z]+")


def text_key(text: str) -> str:
    """Text reduced to lower-case words: the dedupe key of an event.

    Case, punctuation, spacing, accents, wiki quote marks and HTML entities
    differ between versions of one event; the words do not.
    """
    text = html.unescape(text)
    text = WIKI_QUOTES.sub("", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return NOT_WORD.sub(" ", text.lower()).strip()


def tidy(text: str | None) -> str | None:
    """Decode entities that survived markdown (double-escaped ones) and trim."""
    if text is None:
        return None
    text = " ".join(html.unescape(text).split())
    return text or None


@dataclass
class SourceRef:
    url: str  # canonical: the key for "same resource"
    label: str
    domain: str
    cited: str | None = None  # exactly as the page cited it: what is fetched and asked of archives


@dataclass
class ChangeRef:
    """One entry of a page's ``### Changes:`` list: a version of the event, as published."""

    url: str
    title: str
    changed_at: str | None  # "2018-02-06 13:49:31"; the current version has none
    label: str | None  # "First version", "Update", "Current version"


CHANGE_NOTE = re.compile(
    r"^(?P<at>\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(?::\d{2})?)?\s*(?:\((?P<label>[^)]*)\))?$"
)


def change_of(title: str, note: str | None, url: str) -> ChangeRef:
    """``_2018-02-06 13:49:31 (First version)_`` → its timestamp and label."""
    match = CHANGE_NOTE.match((note or "").strip())
    if not match:
        return ChangeRef(url, tidy(title) or "", None, tidy(note))
    return ChangeRef(url, tidy(title) or "", match["at"], tidy(match["label"]))


@dataclass
class RelatedRef:
    url: str
    title: str
    contexts: list[str] = field(default_factory=list)


@dataclass
class Event:
    """One event page, normalised: what the dedupe and store steps consume."""

    url: str
    date: str
    title: str
    story: str | None
    text: str
    topic: str | None
    description: str | None
    text_key: str
    sources: list[SourceRef]
    related: list[RelatedRef]
    versions: list[str]  # URLs its ``### Changes:`` section names
    entities: list[str] = field(default_factory=list)  # articles its text links to (the portal)
    changes: list[ChangeRef] = field(default_factory=list)  # that section's entries, as published

    def contexts(self) -> list[str]:
        """The entities of the event: its own links, then its related items', first seen first."""
        seen: dict[str, None] = dict.fromkeys(self.entities)
        for item in self.related:
            for name in item.contexts:
                seen.setdefault(name, None)
        return list(seen)

    def content_hash(self) -> str:
        """A fingerprint of everything the mirror stores about the event."""
        digest = hashlib.sha256()
        for value in (self.date, self.title, self.story, self.text, self.topic, self.description):
            digest.update((value or "\x00").encode() + b"\x1f")
        for source in self.sources:
            digest.update(f"S{source.url}\x1f{source.label}\x1e".encode())
        for item in self.related:
            digest.update(f"R{item.url}\x1f{item.title}\x1f{'|'.join(item.contexts)}\x1e".encode())
        if self.entities:  # only portal events have them: the site's hashes stay as they were
            digest.update(f"E{'|'.join(self.entities)}".encode())
        return digest.hexdigest()


@dataclass
class DayListing:
    url: str
    title: str
    topic: str | None
    contexts: list[str]
    description: str | None


@dataclass
class Day:
    date: str
    url: str
    listings: list[DayListing]
    previous_url: str | None


def _names(names: list[str]) -> list[str]:
    return [name for name in (tidy(n) for n in names) if name]


def normalise_event(
    page: EventPage, url: str, site: SiteRoot, rejected: list[dict] | None = None, max_sources: int = 0
) -> Event:
    """``rejected`` collects the links that are not URLs, and the sources over ``max_sources``."""
    sources = []
    seen_sources = set()
    for link in page.sources:
        resolved = site.resolve(link.href, url, rejected)
        if resolved is None or resolved in seen_sources:
            continue
        seen_sources.add(resolved)
        if max_sources and len(sources) >= max_sources:
            if rejected is not None:
                rejected.append({"href": link.href, "reason": f"over MAX_SOURCES_PER_EVENT {max_sources}"})
            continue
        raw = link.href.strip()
        cited = raw if raw.lower().startswith(("http://", "https://")) else resolved
        sources.append(SourceRef(resolved, tidy(link.title) or "", domain_of(resolved), cited))
    related = []
    for link in page.related:
        resolved = site.resolve(link.href, url, rejected)
        if resolved is not None:
            related.append(RelatedRef(resolved, tidy(link.title) or "", _names(link.contexts)))
    changes = []
    for link in page.changes:
        resolved = site.resolve(link.href, url, rejected)
        if resolved is not None:
            changes.append(change_of(link.title, link.note, resolved))
    versions = [change.url for change in changes]
    text = tidy(page.text) or ""
    return Event(
        url=url,
        date=page.date,
        title=tidy(page.title) or "",
        story=tidy(page.story),
        text=text,
        topic=tidy(page.topic),
        description=tidy(page.description),
        text_key=text_key(text),
        sources=sources,
        related=related,
        versions=versions,
        entities=_names(page.entities),
        changes=changes,
    )


def normalise_day(page: DayPage, url: str, site: SiteRoot, rejected: list[dict] | None = None) -> Day:
    listings = []
    for item in page.items:
        resolved = site.resolve(item.href, url, rejected)
        if resolved is None:
            continue
        listings.append(
            DayListing(
                url=resolved,
                title=tidy(item.title) or "",
                topic=tidy(item.topic),
                contexts=_names(item.contexts),
                description=tidy(item.description),
            )
        )
    previous = site.resolve(page.previous_href, url, rejected) if page.previous_href else None
    return Day(date=page.date, url=url, listings=listings, previous_url=previous)


@dataclass
class Normalised:
    """What one parsed page holds, in normal form: its events, its day listing, and the links on
    it that are not URLs ({"href", "reason"})."""

    events: list[Event] = field(default_factory=list)
    day: Day | None = None
    bad_links: list[dict] = field(default_factory=list)


def normalise_page(parsed, url: str, site: SiteRoot, max_sources: int = 0) -> Normalised:
    """A pure function of the parse, so it runs where the parse runs: in the parse pool's
    workers for the markdown site (``pipeline.page_reading``), in the pipeline otherwise."""
    rejected: list[dict] = []
    found = Normalised()
    if isinstance(parsed, EventPage):
        found.events = [normalise_event(parsed, url, site, rejected, max_sources)]
    elif isinstance(parsed, DayPage):
        found.day = normalise_day(parsed, url, site, rejected)
    elif isinstance(parsed, PortalDay):
        found.events = [
            normalise_event(page, event_url, site, rejected, max_sources) for event_url, page in parsed.events
        ]
        found.day = normalise_day(parsed.listing, url, site, rejected)
    # One bad link costs that link, not the page: it is recorded on the page's row.
    found.bad_links = list({link["href"]: link for link in rejected}.values())
    return found


class NormalisePipeline:
    """Turn parsed pages into the mirror's normal form (see module docstring).

    A page read in the parse pool arrives normalised already (``item.normalised``)."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.max_sources = crawler.settings.getint("MAX_SOURCES_PER_EVENT")

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def process_item(self, item):
        if item.normalised is None and item.parsed is not None:
            site = self.crawler.spider.site
            item.normalised = normalise_page(item.parsed, item.url, site, self.max_sources)
        if item.normalised is not None:
            item.events, item.day = item.normalised.events, item.normalised.day
            item.bad_links = item.normalised.bad_links
        if item.bad_links:
            logger.warning(
                "%s: %d link(s) not used, listed in pages.bad_links (first: %r, %s)",
                item.url, len(item.bad_links), item.bad_links[0]["href"][:200], item.bad_links[0]["reason"],
            )
        return item
