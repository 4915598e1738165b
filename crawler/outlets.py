"""Outlets: a source's host reduced to its registered domain, offline.

``edition.cnn.com``, ``money.cnn.com`` and ``cnn.com`` are one outlet,
``cnn.com``; ``news.bbc.co.uk`` is ``bbc.co.uk``.  The public suffix list
decides where the registered part starts (a ``www.`` strip cannot tell
``co.uk`` from ``cnn.com``).  ``tldextract`` reads the snapshot of the list
bundled with it: no suffix-list URL is given, so it never fetches one, and
no cache folder, so it writes nothing.
"""

from __future__ import annotations

from functools import cache, lru_cache
from urllib.parse import urlsplit


@cache
def _extractor():
    import tldextract  # installed with trafilatura (through courlan)

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


@lru_cache(maxsize=4096)
def registered_domain(host: str | None) -> str | None:
    """The registered domain of a host name or URL; the host itself when it has none (an IP, localhost).

    >>> [registered_domain(h) for h in ("edition.cnn.com", "https://money.cnn.com/x", "news.bbc.co.uk")]
    ['cnn.com', 'cnn.com', 'bbc.co.uk']
    """
    if not host:
        return host
    if "/" in host:
        host = urlsplit(host).hostname or ""
    host = host.strip().lower().rstrip(".")
    parts = _extractor()(host)
    # tldextract 5.3 renamed registered_domain to top_domain_under_public_suffix
    found = getattr(parts, "top_domain_under_public_suffix", None)
    if found is None:
        found = parts.registered_domain
    return found or host
