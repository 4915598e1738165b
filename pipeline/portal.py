"""Parse Wikipedia's Current Events Portal (rendered HTML) into the parser's dataclasses.

The portal is the record *the Context* was generated from.  Its rendered HTML
gives the same facts the markdown site gave, in another shape, so this module
returns the markdown parser's :class:`~pipeline.parse.DayPage` and
:class:`~pipeline.parse.EventPage` and everything after the parse step
(normalise, dedupe, store) is shared by both sites.

What the HTML looks like (``shared/docs/FORMAT.md``, upstream section), in
every rendering the portal has used:

* a day is a ``div.current-events-main.vevent`` (older: ``table.vevent``);
  its date is in ``span.bday`` (``2023-01-02``), its events in
  ``.description``;
* a category is a ``<p><b>`` line, a ``div[role=heading]`` /
  ``div.current-events-content-heading``, or a ``dl/dt``; it names the topic
  of the lists after it;
* an event is a leaf ``li``; the ``li``s around it are the stories it belongs
  to, outermost first (one story line may name several stories);
* a source is an ``a[rel=nofollow].external`` inside the event, its text the
  outlet in parentheses (``(AFP via <i>Barron's</i>)``, sometimes with a
  parenthesis missing or doubled); the day's edit/history/watch links are
  external too but carry no ``rel=nofollow`` and sit outside the events;
* or a source is a footnote (``<sup class="reference">``, mostly 2005–2015)
  whose link is in a references list somewhere on the page
  (:mod:`pipeline.portal_refs`); a references list's items are not events and
  its heading is not a category;
* categories may be missing altogether (the oldest days): events then sit
  directly in ``.description``.

The eras of wikitext behind these (``docs/FORMAT.md``): ``{{Current events
header|Y|MM|D}}`` with ``;Category`` lines renders a ``table.vevent`` with a
``td.description`` and ``dl/dt`` categories; ``{{Current events|...|content=}}``
with ``'''Category'''`` lines renders a ``div.current-events-main`` with
``<p><b>`` categories.  ``tests/fixtures/portal/`` has a day and a monthly page
of each.

A portal event has no page of its own.  Its identity is the day page's URL
plus a fragment made of its text key, so the same event read from a daily
and from a monthly page has one URL (footnote markers, numbered per rendered
page, are kept out of the text), and an edit gives a new URL that the
dedupe step ties to the event (shared source, near-identical text).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin

from bs4 import BeautifulSoup, Tag

from pipeline.normalise import text_key
from pipeline.parsed import DayItem, DayPage, EventPage, Link, PageError, PortalDay
from pipeline.portal_refs import REFERENCE_HEADINGS, in_reference_lists, label, references, take_footnotes
from pipeline.urls import SiteRoot

WIKI = "https://en.wikipedia.org"
PORTAL = "Portal:Current_events"
# Spelled out, not strftime("%B"): page titles are English whatever the reader's locale.
MONTHS = "January February March April May June July August September October November December".split()
# Links to these namespaces are not the entities an event is about.
NOT_ENTITIES = re.compile(
    r"^(File|Image|Category|Template|Help|Wikipedia|Portal|Special|Talk|User|Module|MediaWiki|Draft)"
    r"( talk)?:",
    re.I,
)
EMPTY_PARENS = re.compile(r"\(\s*\)")
SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")


@dataclass(frozen=True)
class PortalSite:
    """The portal's link space, for the normalise step (the markdown site's is ``SiteRoot``).

    An event's URL (a day page and an ``#event-…`` fragment) is its identity and
    is kept whole; every other link is canonicalised as on the markdown site.
    """

    url: str = WIKI + "/"

    def resolve(self, href: str, base: str, rejected: list[dict] | None = None) -> str | None:
        if "#event-" in href:  # an event's own URL, kept whole (it is already canonical)
            absolute = urljoin(base, href.strip())
            if absolute.startswith(page_url(PORTAL)):
                return absolute
        return SiteRoot(self.url).resolve(href, base, rejected)


def day_title(day: dt.date) -> str:
    """``Portal:Current_events/2023_January_2``: the day's page (day unpadded)."""
    return f"{PORTAL}/{day.year}_{MONTHS[day.month - 1]}_{day.day}"


def month_title(year: int, month: int) -> str:
    """``Portal:Current_events/January_2023``: the month's page (transcludes its days)."""
    return f"{PORTAL}/{MONTHS[month - 1]}_{year}"


def page_url(title: str) -> str:
    """The reader's URL of a wiki page, spelled as the mirror stores it."""
    return f"{WIKI}/wiki/{quote(title.replace(' ', '_'), safe=':/(),_-.')}"


def event_url(day: dt.date, key: str) -> str:
    """The identity of a portal event: its day page and a fragment of its text key."""
    return f"{page_url(day_title(day))}#event-{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def parse_portal(html: str) -> list[PortalDay]:
    """Every day of a rendered daily or monthly portal page, in page order.

    Raises :class:`PageError` when the page holds no day block at all (not
    a portal page, or a rendering this parser does not know).
    """
    soup = BeautifulSoup(html, "lxml")
    notes = references(soup)  # resolved across the page: a references list may follow the days
    return [_day(day, block, notes) for day, block in _blocks(soup)]


def day_blocks(html: str) -> list[tuple[dt.date, Tag]]:
    """The day blocks of a page with their dates (a monthly page transcludes one per day)."""
    return _blocks(BeautifulSoup(html, "lxml"))


def _blocks(soup: BeautifulSoup) -> list[tuple[dt.date, Tag]]:
    blocks = [b for b in soup.select("div.vevent, table.vevent") if not b.find_parent(class_="vevent")]
    if not blocks:
        raise PageError("no day block (div.current-events-main.vevent or table.vevent) in the page")
    return [(_date_of(block), block) for block in blocks]


def _date_of(block: Tag) -> dt.date:
    bday = block.select_one("span.bday")
    candidates = [bday.get_text(strip=True)] if bday else []
    candidates += [block.get("id") or "", block.get("aria-label") or ""]
    for text in candidates:
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            pass
        match = re.match(r"^(\d{4})_([A-Z][a-z]+)_(\d{1,2})$", text)
        if match and match[2] in MONTHS:
            try:
                return dt.date(int(match[1]), MONTHS.index(match[2]) + 1, int(match[3]))
            except ValueError:
                continue
    raise PageError("a day block without a readable date (span.bday)")


def _day(day: dt.date, block: Tag, notes: dict[str, list[Link]]) -> PortalDay:
    url = page_url(day_title(day))
    description = block.select_one(".description") or block
    portal_day = PortalDay(date=day.isoformat(), url=url, listing=DayPage(date=day.isoformat()))
    topic = None
    reference_lists = in_reference_lists(description)
    for element in description.descendants:
        if not isinstance(element, Tag) or id(element) in reference_lists:
            continue
        heading = _category(element)
        if heading is not None:
            topic = heading
            if heading not in portal_day.categories:
                portal_day.categories.append(heading)
            continue
        if element.name == "li" and element.find("li") is None:
            _event(element, day, topic, portal_day, notes)
    return portal_day


def _category(element: Tag) -> str | None:
    """The category a heading element names, or None if it is not one (or heads a references list)."""
    name = _heading(element)
    return None if name is None or name.lower() in REFERENCE_HEADINGS else name


def _heading(element: Tag) -> str | None:
    if element.name == "p" and element.find("b") is not None and element.find_parent("li") is None:
        text = element.get_text(" ", strip=True)
        bold = element.find("b").get_text(" ", strip=True)
        return bold or None if text == bold else None
    if element.name == "div" and (
        element.get("role") == "heading" or "current-events-content-heading" in element.get("class", [])
    ):
        return element.get_text(" ", strip=True) or None
    if element.name == "dt":
        return element.get_text(" ", strip=True) or None
    return None


def _is_source(link: Tag) -> bool:
    return "external" in link.get("class", []) and "nofollow" in (link.get("rel") or [])


def _entity(link: Tag) -> str | None:
    """The article a wiki link names (its title, without section), if it is an article."""
    href = link.get("href") or ""
    if not href.startswith("/wiki/"):
        return None
    title = unquote(href[len("/wiki/") :]).split("#", 1)[0].replace("_", " ").strip()
    if not title or NOT_ENTITIES.match(title):
        return None
    return title


def _own_text(li: Tag) -> Tag:
    """A copy of a story ``li`` without its nested lists: the story line itself."""
    copy = BeautifulSoup(str(li), "lxml").li
    for nested in copy.find_all(["ul", "ol", "dl"]):
        nested.decompose()
    take_footnotes(copy, {})  # a story line's footnote markers are no part of its text
    return copy


def _stories(li: Tag) -> tuple[list[str], list[str]]:
    """The story lines around an event (outermost first) and the articles they name."""
    lines, names = [], []
    for ancestor in reversed(li.find_parents("li")):
        line = _own_text(ancestor)
        text = " ".join(line.get_text().split())
        if text:
            lines.append(text)
        names += [name for name in (_entity(a) for a in line.find_all("a")) if name]
    return lines, names


def _event(
    li: Tag, day: dt.date, topic: str | None, portal_day: PortalDay, notes: dict[str, list[Link]]
) -> None:
    copy = BeautifulSoup(str(li), "lxml").li
    sources = []
    for link in copy.find_all("a"):
        if _is_source(link):
            sources.append(Link(title=label(link), href=link.get("href") or ""))
            link.decompose()
    inline = {source.href for source in sources}
    sources += [source for source in take_footnotes(copy, notes) if source.href not in inline]
    text = EMPTY_PARENS.sub("", copy.get_text())
    text = SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split())).strip()
    if not text:
        return  # a bullet holding only sources (or nothing): not an event
    stories, story_entities = _stories(li)
    entities = [name for name in (_entity(a) for a in li.find_all("a")) if name]
    entities = list(dict.fromkeys(entities + story_entities))
    url = event_url(day, text_key(text))
    page = EventPage(
        date=day.isoformat(),
        title=text,
        story=" > ".join(stories) or None,
        text=text,
        topic=topic,
        sources=sources,
        entities=entities,
    )
    portal_day.events.append((url, page))
    portal_day.listing.items.append(DayItem(title=text, href=url, topic=topic, contexts=entities))
