"""URLs: one canonical spelling per resource, and the site's own link space.

Two jobs, both needed by the spider (to decide what to follow) and by the
pipelines (to store one spelling):

* :func:`canonical_url` turns the many spellings of one URL (fragment, tracking
  parameters, upper-case host, default port, percent-encoding, parameter
  order) into one, on top of w3lib's ``canonicalize_url``;
* :class:`SiteRoot` resolves the site's root-relative links (``/news/...``)
  against the root the mirror lives under: the origin of an HTTP site, a path
  prefix on a raw-file host, or a directory of a local checkout.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from w3lib.url import canonicalize_url, url_query_cleaner

TRACKING_PARAMS = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid"}
DEFAULT_PORTS = {"http": 80, "https": 443}
FOLLOWABLE_SCHEMES = {"http", "https", "file"}
NEWS_PATH = re.compile(r"^news/(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})/[^/]+\.md$")


def _tracking(name: str) -> bool:
    return name.lower().startswith("utm_") or name.lower() in TRACKING_PARAMS


class BadURL(ValueError):
    """A link that cannot be a URL: a port that is not a number, a broken IPv6 host."""


def canonical_url(url: str) -> str:
    """The one spelling under which a URL is stored.

    Drops the fragment, ``utm_*``/``fbclid``/``gclid``-style parameters and a
    default port, lower-cases scheme and host, normalises percent-encoding and
    sorts the query (w3lib).  Paths keep their case: servers treat them as
    case-sensitive.  Raises :class:`BadURL` for a link that is not a URL, so
    that callers can record it instead of losing the page that holds it.
    """
    try:
        return _canonical(url)
    except ValueError as exc:  # urllib's "Invalid IPv6 URL", "Port could not be cast ..."
        raise BadURL(f"malformed URL ({exc})") from None


@functools.lru_cache(maxsize=65536)
def _canonical(url: str) -> str:
    # Cached: a record names the same page many times over (its day's listing, the events that
    # relate to it, its own URL), and w3lib's canonicalisation was a fifth of a page's cost in
    # the crawl process.  Pure, and bounded: 65,536 URLs, about 21 MB when full (measured).
    url = url.strip()
    query = urlsplit(url).query
    if query:
        tracking = [name for name, _ in parse_qsl(query, keep_blank_values=True) if _tracking(name)]
        if tracking:
            url = url_query_cleaner(url, tracking, remove=True, keep_fragments=True)
    url = canonicalize_url(url)
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.port is not None and DEFAULT_PORTS.get(parts.scheme) == parts.port:
        netloc = netloc.rsplit(":", 1)[0]
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def domain_of(url: str) -> str:
    """The host of a URL without a leading ``www.``, for grouping sources."""
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def default_site_root(start_url: str) -> str:
    """The site root to assume when the user names none.

    For HTTP it is the start URL's origin, as on the published site.  A
    ``file://`` URL has no useful origin, so the root is the directory above
    the ``news/`` folder (or the start page's own directory for a front
    page), which is where a checkout of the repository keeps it.
    """
    parts = urlsplit(start_url)
    if parts.scheme == "file":
        path = parts.path
        marker = path.find("/news/")
        base = path[: marker + 1] if marker >= 0 else path.rsplit("/", 1)[0] + "/"
        return urlunsplit(("file", parts.netloc, base, "", ""))
    return urlunsplit((parts.scheme, parts.netloc, "/", "", ""))


@dataclass(frozen=True)
class SiteRoot:
    """The root under which the site's ``/news/...`` tree lives."""

    url: str

    @classmethod
    def of(cls, url: str) -> SiteRoot:
        url = canonical_url(url)
        return cls(url if url.endswith("/") else url + "/")

    def resolve(self, href: str, base: str, rejected: list[dict] | None = None) -> str | None:
        """Absolute canonical URL of a link on a page at ``base``.

        Root-relative links resolve against the site root, not the host root,
        so that a mirror below a path prefix works.  Returns None for links
        that cannot be followed (``mailto:``, ``javascript:``, empty, and
        ``file:`` on a page that is not itself a local file), and for links
        that are not URLs at all; those are added to ``rejected`` with the
        reason, so that the page records them (``pages.bad_links``).
        """
        try:
            return self._resolve(href, base)
        except ValueError as exc:
            if rejected is not None:
                reason = str(exc) if isinstance(exc, BadURL) else f"malformed URL ({exc})"
                rejected.append({"href": href, "reason": reason})
            return None

    def _resolve(self, href: str, base: str) -> str | None:
        href = href.strip()
        if not href or href.startswith("#"):
            return None
        scheme = urlsplit(href).scheme.lower()
        if scheme and scheme not in FOLLOWABLE_SCHEMES:
            return None
        if href.startswith("/") and not href.startswith("//"):
            absolute = self.url + href.lstrip("/")
        else:
            absolute = urljoin(base, href)
        if urlsplit(absolute).scheme not in FOLLOWABLE_SCHEMES:
            return None
        if urlsplit(absolute).scheme == "file" and urlsplit(base).scheme != "file":
            return None  # a web page cannot point into the reader's disk (nor make us read it)
        return canonical_url(absolute)

    def resolve_location(self, location: str, request_url: str) -> str | None:
        """The target of an HTTP redirect: ``Location`` is resolved against the URL that was
        asked (RFC 9110, section 10.2.2), not against the site root as a page's links are,
        so that a server below a path prefix answering ``Location: /prefix/news/...`` is
        followed to that page."""
        location = location.strip()
        if not location:
            return None
        try:
            absolute = urljoin(request_url, location)
        except ValueError:
            return None
        if urlsplit(absolute).scheme not in FOLLOWABLE_SCHEMES:
            return None
        try:
            return canonical_url(absolute)
        except ValueError:
            return None

    def in_news(self, url: str) -> bool:
        """A markdown page of this site's ``news/`` tree, dated or not."""
        path = self.relative(url)
        return path is not None and path.startswith("news/") and path.split("?", 1)[0].endswith(".md")

    def relative(self, url: str) -> str | None:
        """The path of a URL inside the site, or None if it is off-site."""
        if not url.startswith(self.url):
            return None
        return url[len(self.url) :]

    def news_date(self, url: str) -> dt.date | None:
        """The date a ``news/YYYY/MM/D/*.md`` URL of this site belongs to.

        None for any URL that is not such a page of this site: off-site
        links, other folders, other file types, impossible dates.
        """
        path = self.relative(url)
        if path is None:
            return None
        match = NEWS_PATH.match(path.split("?", 1)[0])
        if not match:
            return None
        try:
            return dt.date(int(match["y"]), int(match["m"]), int(match["d"]))
        except ValueError:
            return None
