"""What a parsed page is: the typed pages both parsers produce.

``pipeline.parse`` reads the Context's markdown and ``pipeline.portal``
Wikipedia's rendered portal into these; ``pipeline.normalise`` turns them
into the mirror's events and days.  Keeping them apart from either parser
lets each parser change without the other, and says in one place what a
page can hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class PageError(ValueError):
    """The page claims to be an event or day page but cannot be read."""


@dataclass
class Link:
    """A link as the page shows it: its text and its raw target."""

    title: str
    href: str
    contexts: list[str] = field(default_factory=list)
    note: str | None = None  # text after the link that is not a context list


@dataclass
class EventPage:
    date: str
    title: str
    story: str | None
    text: str
    topic: str | None = None
    description: str | None = None
    sources: list[Link] = field(default_factory=list)
    related: list[Link] = field(default_factory=list)
    changes: list[Link] = field(default_factory=list)
    date_href: str | None = None
    # The articles the event's own text links to (the portal; the markdown site has none).
    entities: list[str] = field(default_factory=list)

    kind = "event"

    def links(self) -> list[str]:
        """Site links worth following: related events, earlier versions, and the day page
        the date heading links to (spelled as the site's folders are: the day unpadded), so
        that a crawl started from one event mirrors its day's listing too."""
        links = [link.href for link in self.related + self.changes]
        if self.date_href and self.date_href.rstrip().endswith("index.md"):
            year, month, day = (int(part) for part in self.date.split("-"))
            links.append(f"/news/{year}/{month:02d}/{day}/index.md")
        return links


@dataclass
class DayItem:
    title: str
    href: str
    topic: str | None = None
    contexts: list[str] = field(default_factory=list)
    description: str | None = None


@dataclass
class DayPage:
    date: str
    items: list[DayItem] = field(default_factory=list)
    previous_href: str | None = None

    kind = "day"

    def links(self) -> list[str]:
        links = [item.href for item in self.items]
        if self.previous_href:
            links.append(self.previous_href)
        return links


@dataclass
class IndexPage:
    hrefs: list[str] = field(default_factory=list)

    kind = "index"

    def links(self) -> list[str]:
        return list(self.hrefs)


@dataclass
class OtherPage:
    kind = "other"

    def links(self) -> list[str]:
        return []


@dataclass
class PortalDay:
    """One day of Wikipedia's portal (``pipeline.portal``): its listing and its events,
    each under its own URL, since portal events have no page of their own."""

    date: str
    url: str
    listing: DayPage
    events: list[tuple[str, EventPage]] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)

    kind = "day"


ParsedPage = EventPage | DayPage | IndexPage | OtherPage | PortalDay
