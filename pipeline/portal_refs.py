"""Footnote sources of the portal: ``<ref>`` markers and the references lists they point to.

Some days (mostly 2005–2015) cite their sources as footnotes instead of inline
``(Outlet)`` links.  MediaWiki's Cite extension renders ``<ref>…</ref>`` as a
marker and ``<references/>`` / ``{{reflist}}`` (or, when the page has neither,
the end of the page) as a numbered list::

    <sup id="cite_ref-1" class="reference"><a href="#cite_note-1">[1]</a></sup>

    <div class="mw-references-wrap"><ol class="references">
    <li id="cite_note-1"><span class="mw-cite-backlink">…</span> <span class="reference-text">
      <a rel="nofollow" class="external text" href="…">(BBC)</a></span></li></ol></div>

The number shown restarts at each references list and the ``cite_note-…``
ids count per rendered page, so a monthly page that transcludes thirty days
numbers a day's footnotes differently from the day's own page.  A marker is
therefore resolved by its id across the whole page, and neither the number nor
the id reaches an event's text (which is its identity).
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from bs4 import Tag

from pipeline.parsed import Link

REFERENCE_LISTS = "ol.references"
# Editorial markers that are not part of an event's text: footnotes, [citation needed], [dead link].
MARKERS = "sup.reference, sup.Inline-Template"
# A heading over a references list (``'''References'''``, ``;Notes``) is no category.
REFERENCE_HEADINGS = {"references", "notes", "sources", "footnotes", "citations"}
LABEL_TRIM = "()[]\"“”' \u00a0"


def references(page: Tag) -> dict[str, list[Link]]:
    """The sources of every references-list item of a rendered page, by the item's id."""
    notes = {}
    for item in page.select(f"{REFERENCE_LISTS} > li[id]"):
        body = item.select_one(".reference-text") or item
        notes[item["id"]] = _sources(body)
    return notes


def in_reference_lists(container: Tag) -> set[int]:
    """The ids (``id()``) of every node inside a references list: never events nor categories."""
    return {id(node) for ol in container.select(REFERENCE_LISTS) for node in ol.descendants}


def take_footnotes(copy: Tag, notes: dict[str, list[Link]]) -> list[Link]:
    """The sources the footnote markers in ``copy`` point to; the markers leave ``copy``."""
    found = []
    for sup in copy.select(MARKERS):
        link = sup.find("a", href=True) if "reference" in sup.get("class", []) else None
        if link is not None and "#" in link["href"]:
            fragment = link["href"].rsplit("#", 1)[1]
            for source in notes.get(fragment) or notes.get(unquote(fragment)) or []:
                _add(found, Link(title=source.title, href=source.href))  # a copy: events edit theirs
        sup.decompose()
    return found


def label(link: Tag) -> str:
    """What a source link names: ``(AFP via <i>Barron's</i>)`` → ``AFP via Barron's``.

    Stray or doubled parentheses and a citation title's quotes go; a bare URL
    (``external free``) or a numbered ``[1]`` link (``external autonumber``) is
    named by its host.
    """
    classes = link.get("class", [])
    if "free" in classes or "autonumber" in classes:
        return urlsplit(link.get("href") or "").hostname or ""
    return " ".join(link.get_text().split()).strip(LABEL_TRIM)


def _sources(body: Tag) -> list[Link]:
    """The sources one reference cites: a citation's link, or each external link."""
    sources: list[Link] = []
    citations = body.select("cite")
    for cite in citations:
        links = [a for a in cite.find_all("a", href=True) if "external" in a.get("class", [])]
        if links:  # the title link; archive, DOI and print-only links after it are the same source
            _add(sources, Link(title=_outlet(cite) or label(links[0]), href=links[0]["href"]))
    for link in body.find_all("a", href=True):
        if "external" in link.get("class", []) and not link.find_parent("cite"):
            _add(sources, Link(title=label(link), href=link["href"]))
    return sources


def _add(sources: list[Link], source: Link) -> None:
    if source.href and source.href not in {s.href for s in sources}:
        sources.append(source)


def _outlet(cite: Tag) -> str | None:
    """A citation template's work or publisher (``{{cite news|work=…|publisher=…}}``).

    The CS1 templates put both in the COinS span after the citation
    (``rft.jtitle``, ``rft.pub``) and show the work in italics.
    """
    coins = cite.find_next_sibling()
    if coins is not None and coins.name == "span" and "Z3988" in coins.get("class", []):
        fields = parse_qs(coins.get("title") or "")
        for name in ("rft.jtitle", "rft.pub"):
            if fields.get(name) and fields[name][0].strip():
                return " ".join(fields[name][0].split())
    for italic in cite.find_all("i"):
        if italic.find_parent("a") is None and italic.get_text(strip=True):
            return " ".join(italic.get_text().split())
    return None
