"""From a page's bytes to what the spider needs: the parse and the links to follow, or why not.

This is the CPU-heavy part of a crawl, and it runs in the parse pool's worker
processes (``crawler.parse_pool``), so it takes and returns only plain,
picklable values and touches neither the network nor the database.  The
checks come cheapest first: size, encoding, emptiness, HTML, then the link
cap, counted on the raw markdown before any parse, so that a hostile page of
100,000 links costs a regular-expression scan, not a markdown parse.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field

from pipeline.normalise import Normalised, normalise_page
from pipeline.parse import parse_page
from pipeline.parsed import PageError, ParsedPage
from pipeline.urls import SiteRoot

# The target of an inline markdown link, "[text](target ...)": every link the parser can follow is
# one (reference-style links are not, and are counted after the parse).
LINK_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)")


@dataclass
class PageReading:
    parsed: ParsedPage | None = None
    links: list[str] = field(default_factory=list)  # the news tree's pages it links to, in order
    error: str | None = None
    normalised: Normalised | None = None  # with ``canonical``: the parse in normal form


@dataclass(frozen=True)
class ReadingRules:
    """How a run reads its pages: the site their links resolve in, and its limits.  The same
    for every page of a run, and sent with each one to a worker (small and picklable)."""

    site: SiteRoot
    max_size: int = 0  # DOWNLOAD_MAXSIZE: file:// answers are read whole, so it is checked here
    max_links: int = 0  # MAX_LINKS_PER_PAGE
    max_sources: int = 0  # MAX_SOURCES_PER_EVENT, for the normalisation

    @classmethod
    def from_settings(cls, site: SiteRoot, settings) -> ReadingRules:
        return cls(
            site,
            settings.getint("DOWNLOAD_MAXSIZE"),
            settings.getint("MAX_LINKS_PER_PAGE"),
            settings.getint("MAX_SOURCES_PER_EVENT"),
        )


def read_page(body: bytes, url: str, rules: ReadingRules, canonical: str | None = None) -> PageReading:
    """Decode, check and parse a page served at ``url``; never raises for what a page holds.

    With ``canonical`` (the page's canonical URL, the one it is stored under), the parse is
    normalised here too: the normalise pipeline's work, a pure function of the parse, moved off
    the crawl process, which is a checkout import's limit (it stores every page)."""
    site, max_size, max_links = rules.site, rules.max_size, rules.max_links
    try:
        if max_size and len(body) > max_size:
            # file:// responses are read whole: DOWNLOAD_MAXSIZE only stops HTTP ones.
            raise PageError(f"size: {len(body)} bytes, over DOWNLOAD_MAXSIZE")
        text = body.decode("utf-8-sig")
        if "\x00" in text:
            raise PageError("NUL bytes in page: binary content, not markdown")
        if not text.strip():
            raise PageError("empty page")
        if text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
            raise PageError("HTML, not markdown (an error page?)")
        if max_links:
            found = _news_links(LINK_TARGET.findall(text), url, site, stop_after=max_links)
            if len(found) > max_links:
                raise PageError(f"too many links (over {max_links}, MAX_LINKS_PER_PAGE)")
        parsed = parse_page(text)
    except UnicodeDecodeError as exc:
        return PageReading(error=f"invalid UTF-8 at byte {exc.start}")
    except PageError as exc:
        return PageReading(error=str(exc))
    except RecursionError:
        return PageReading(error="markdown nested too deeply")
    links = _news_links(parsed.links(), url, site)
    if max_links and len(links) > max_links:
        # No page of the site links to more than a few dozen: this one is broken or hostile.
        return PageReading(error=f"too many links ({len(links)} > MAX_LINKS_PER_PAGE {max_links})")
    reading = PageReading(parsed=parsed, links=links)
    if canonical is not None:
        reading.normalised = normalise_page(parsed, canonical, site, rules.max_sources)
    return reading


def _news_links(hrefs, url: str, site: SiteRoot, stop_after: int = 0) -> list[str]:
    """The distinct pages of the news tree that ``hrefs`` name (only they are followed and
    queued: an undated one, an about page, once); with ``stop_after``, stop one past it."""
    links: dict[str, None] = {}
    for href in hrefs:
        resolved = site.resolve(href, url)
        if resolved and site.in_news(resolved):
            links[resolved] = None
            if stop_after and len(links) > stop_after:
                break
    return list(links)


@dataclass
class FileReading:
    """A file of a checkout, read and hashed in a worker; ``reading`` is None when its bytes are
    the ones the mirror holds (``known_hash``): they are not parsed again."""

    size: int
    content_hash: str | None
    reading: PageReading | None


def read_file(path: str, url: str, rules: ReadingRules, known_hash: str | None = None) -> FileReading:
    """Read, parse and normalise a checkout's file (``url``, canonical) in the worker: the crawl
    process only gets the result back."""
    max_size = rules.max_size
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            if max_size and size > max_size:  # not kept: the size is the reason
                # Hashed a megabyte at a time, as a file:// crawl hashes what it read: the
                # same row, and the file is not read again until it changes.
                digest = hashlib.sha256()
                for chunk in iter(lambda: file.read(1 << 20), b""):
                    digest.update(chunk)
                error = f"size: {size} bytes, over DOWNLOAD_MAXSIZE"
                return FileReading(size, digest.hexdigest(), PageReading(error=error))
            body = file.read()
    except OSError as exc:  # gone since the walk saw it, unreadable, a directory named *.md
        return FileReading(0, None, PageReading(error=f"cannot read the file: {exc.strerror or exc}"))
    content_hash = hashlib.sha256(body).hexdigest()
    if content_hash == known_hash:
        return FileReading(len(body), content_hash, None)
    return FileReading(len(body), content_hash, read_page(body, url, rules, canonical=url))


def read_files(jobs: list[tuple[str, str, str | None]], rules: ReadingRules) -> list[FileReading]:
    """:func:`read_file` for each ``(path, url, known_hash)``, in one trip to a worker.

    A trip costs the crawl process a submission, a pickled answer and a wake-up of the
    pool's manager thread (0.2 ms, profiled, about a tenth of what storing a page costs):
    a checkout's files go a few at a time."""
    return [read_file(path, url, rules, known_hash) for path, url, known_hash in jobs]
