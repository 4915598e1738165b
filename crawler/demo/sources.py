"""How the demo plays the news articles that its pages cite.

The real articles are out of reach offline (and many are gone), so the demo
server answers for them with small synthetic pages.  Which fate a URL gets is
decided by a hash of the URL, so it is the same on every run and on every
machine: most articles are alive, some gone (404 or 410), some moved (301 to
a live copy), some redirect to their site's home page (a "soft 404"), some
refuse bots (403), some ask to come back later (429), and a few fail with a
server error.  One host (``SOFT_404_HOST``) answers 200 with the same "page not
found" page for every URL, as some real sites do: only the random-sibling probe
tells its dead links apart.  Any other URL a page does not cite answers an honest
404.  The Internet Archive's availability API is played too: most failing
articles have a capture, some do not.  The answers are made up; only the URLs
are the real ones cited by the pages.

So the demo's answers say something only about the URLs the demo plays
(:func:`plays`); a mirror may also hold real sources (the portal's, a real
site's), and a demo answer written over one of those would be a false alarm.
The check and archive spiders ask the demo only about what it plays, and the
routing handler delivers only the demo's own hosts (:func:`demo_hosts`).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
from urllib.parse import parse_qsl, urlsplit

from crawler.demo.bundle import SITE_DIR, SITE_ORIGIN
from pipeline.urls import canonical_url

# (fate, share in percent); the shares add up to 100.
FATES = [
    ("alive", 55),
    ("gone", 12),
    ("removed", 6),
    ("moved", 8),
    ("home", 6),
    ("blocked", 5),
    ("rate_limited", 3),
    ("error", 5),
]
ARCHIVE_ORIGIN = "https://archive.org"
SOFT_404_HOST = "www.dailymail.co.uk"
SOURCE_LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


@functools.cache
def cited_urls() -> frozenset[str]:
    """The source URLs the demo pages cite, canonical: the URLs the demo plays."""
    found = set()
    for page in SITE_DIR.glob("news/**/*.md"):
        found.update(canonical_url(url) for url in SOURCE_LINK.findall(page.read_text(encoding="utf-8")))
    return frozenset(found)


@functools.cache
def demo_hosts() -> frozenset[str]:
    """The hosts the demo server plays: the demo site's, the cited articles', the archive's."""
    hosts = {urlsplit(url).netloc.lower() for url in cited_urls()}
    hosts.update(urlsplit(origin).netloc.lower() for origin in (SITE_ORIGIN, ARCHIVE_ORIGIN))
    return frozenset(hosts)


def plays(url: str) -> bool:
    """Is ``url`` one of the cited articles the demo server plays?  (No other source is its to answer.)"""
    try:
        return canonical_url(url) in cited_urls()
    except ValueError:  # not a URL the demo pages could cite
        return False


def fate_of(url: str) -> str:
    """The demo fate of a cited URL: one of the names in ``FATES``."""
    bucket = int(hashlib.sha256(url.encode()).hexdigest()[:8], 16) % 100
    for fate, share in FATES:
        if bucket < share:
            return fate
        bucket -= share
    return FATES[0][0]


def _article(url: str) -> bytes:
    parts = urlsplit(url)
    words = [w for w in parts.path.replace("-", "/").replace("_", "/").split("/") if w.isalpha()]
    title = " ".join(words[-8:]).capitalize() or parts.hostname or "Article"
    site = parts.hostname or ""
    text = (
        f"This is the demo server's stand-in for an article of {site}. "
        "The real article cannot be reached offline; this page plays it so that "
        "source checking can be seen working. " * 3
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)} | {html.escape(site)}</title>
<meta property="og:title" content="{html.escape(title)}">
<meta property="og:site_name" content="{html.escape(site)}">
<meta name="description" content="Demo stand-in for {html.escape(url)}">
<meta property="article:published_time" content="2013-03-27T12:00:00Z">
</head><body><article><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></article></body></html>
"""
    return page.encode()


def answer_source(url: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body with which the demo answers a cited URL."""
    html_type = {"Content-Type": "text/html; charset=utf-8"}
    if url.startswith(ARCHIVE_ORIGIN + "/wayback/available"):
        return _wayback(url)
    path = urlsplit(url).path
    if path == "/robots.txt":
        return 404, {"Content-Type": "text/plain"}, b"no robots.txt\n"
    if urlsplit(url).hostname == SOFT_404_HOST and path not in ("", "/"):
        page = b"<html><title>Page not found</title><h1>Sorry, we could not find that page</h1></html>"
        return 200, html_type, page
    if path in ("", "/") or path.startswith("/moved/"):
        return 200, html_type, _article(url)
    if canonical_url(url) not in cited_urls():
        return 404, html_type, b"<html><title>404 Not Found</title><h1>Not Found</h1></html>"
    fate = fate_of(canonical_url(url))  # one resource, one fate, however it is spelled
    if fate == "alive":
        return 200, html_type, _article(url)
    if fate == "gone":
        return 404, html_type, b"<html><title>404 Not Found</title><h1>Not Found</h1></html>"
    if fate == "removed":
        return 410, html_type, b"<html><title>410 Gone</title><h1>Gone</h1></html>"
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    if fate == "moved":
        return 301, {"Location": f"{origin}/moved{path}", **html_type}, b""
    if fate == "home":
        return 302, {"Location": f"{origin}/", **html_type}, b""
    if fate == "blocked":
        return 403, html_type, b"<html><title>Access denied</title><h1>Forbidden</h1></html>"
    if fate == "rate_limited":
        return 429, {"Retry-After": "3600", **html_type}, b"<html><h1>Too Many Requests</h1></html>"
    return 500, html_type, b"<html><h1>Internal Server Error</h1></html>"


def _wayback(url: str) -> tuple[int, dict[str, str], bytes]:
    """Answer like ``archive.org/wayback/available``: a capture for 4 URLs in 5."""
    query = dict(parse_qsl(urlsplit(url).query))
    wanted = query.get("url", "")
    stamp = (query.get("timestamp", "") + "00000000000000")[:8] + "093000"
    snapshots = {}
    try:
        key = canonical_url(wanted)  # the archive holds a resource, whatever spelling is asked
    except ValueError:
        key = wanted
    if int(hashlib.sha256(key.encode()).hexdigest()[8:12], 16) % 5:
        snapshots["closest"] = {
            "available": True,
            "url": f"http://web.archive.org/web/{stamp}/{wanted}",
            "timestamp": stamp,
            "status": "200",
        }
    body = json.dumps({"url": wanted, "archived_snapshots": snapshots}).encode()
    return 200, {"Content-Type": "application/json"}, body
