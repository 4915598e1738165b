"""What is kept from a live source: metadata and the article's text.

trafilatura finds the main text (the field's best extractor) and most
metadata; beautifulsoup4 fills what it leaves empty from ``<title>``,
OpenGraph and JSON-LD.  Only HTML is read: a PDF or an image is alive or not
like any other source, and the mirror records its type and size only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import trafilatura
from bs4 import BeautifulSoup

HTML_TYPES = ("text/html", "application/xhtml+xml")
WORD = re.compile(r"\w+", re.U)


@dataclass
class Extracted:
    title: str | None = None
    description: str | None = None
    published: str | None = None
    site_name: str | None = None
    text: str | None = None
    # Why nothing was extracted (the parse pool's worker died): the page's text and metadata
    # are not known this time, and what the mirror kept before is left as it is.
    failed: str | None = None
    # The page's words (``page_words``), when its host answers a made-up URL with a page: what
    # the soft-404 comparison reads, taken in the worker with the text.  Taken on the event loop,
    # a 430 kB page held it 0.4 s (html.parser).  None: not taken (the pipeline takes them).
    words: list[str] | None = None

    @property
    def text_hash(self) -> str | None:
        return hashlib.sha256(self.text.encode()).hexdigest() if self.text else None


def is_html(content_type: str | None, body: bytes) -> bool:
    if content_type:
        return content_type.split(";")[0].strip().lower() in HTML_TYPES
    return body[:512].lstrip().lower().startswith((b"<!doctype html", b"<html"))


def tokens(html: str, limit: int = 2000) -> set[str]:
    """Lower-cased words of a page's visible text: enough to compare two pages."""
    text = BeautifulSoup(html, "html.parser").get_text(" ")
    return set(WORD.findall(text.lower())[:limit])


def similarity(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _meta(soup: BeautifulSoup, *names: str) -> str | None:
    for name in names:
        tag = soup.find("meta", attrs={"property": name}) or soup.find("meta", attrs={"name": name})
        if tag and tag.get("content", "").strip():
            return tag["content"].strip()
    return None


def _json_ld_date(soup: BeautifulSoup) -> str | None:
    for script in soup.find_all("script", attrs={"type": "application/ld+json"}):
        try:
            data = json.loads(script.string or "")
        except ValueError:
            continue
        for item in data if isinstance(data, list) else [data]:
            if isinstance(item, dict) and item.get("datePublished"):
                return str(item["datePublished"])
    return None


def extract_page(body: bytes, url: str, words: bool = False) -> Extracted:
    """:func:`extract` of a page's bytes, decoded as the check pipeline decodes them, with its
    ``words`` if asked (a soft-404 host's page, see :class:`Extracted`).

    What the source checker runs in its parse pool (:mod:`crawler.parse_pool`): the
    bytes go to the worker process, the small :class:`Extracted` comes back."""
    found = extract(body.decode("utf-8", "replace"), url)
    if words:
        found.words = page_words(body)
    return found


def page_words(body: bytes) -> list[str]:
    """A page's :func:`tokens`, sorted, from its bytes: what the soft-404 comparison reads of a
    host's probe answer and of its pages."""
    return sorted(tokens(body.decode("utf-8", "replace")))


def extract(html: str, url: str) -> Extracted:
    """Text and metadata in one trafilatura pass; beautifulsoup4 fills the gaps."""
    doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, favor_precision=True)
    found = Extracted(
        title=getattr(doc, "title", None),
        description=getattr(doc, "description", None),
        published=getattr(doc, "date", None),
        site_name=getattr(doc, "sitename", None),
        text=getattr(doc, "text", None) or None,
    )
    if found.title and found.description and found.published and found.site_name:
        return found
    soup = BeautifulSoup(html, "html.parser")
    title_tag = soup.title.string.strip() if soup.title and soup.title.string else None
    found.title = found.title or _meta(soup, "og:title") or title_tag
    found.description = found.description or _meta(soup, "og:description", "description")
    found.published = found.published or _meta(soup, "article:published_time", "datePublished")
    found.published = found.published or _json_ld_date(soup)
    found.site_name = found.site_name or _meta(soup, "og:site_name")
    return found
