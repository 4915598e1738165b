"""Loopback news hosts for the tests and the benchmarks.

The scripted site server itself ships (the demo's MediaWiki stand-in is one):
it is :class:`crawler.loopback.site.SiteServer`; this is a test host built on it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from crawler.loopback.site import SiteServer


class ArticleServer(SiteServer):
    """A news host where every path is an article of its own, with words no other page has
    (so that the random-sibling probe never takes one for a soft 404); no robots.txt."""

    def __init__(self, root: Path, host: str = "127.0.0.2", words: int = 300):
        self.words = words
        super().__init__(root, host=host)

    def answer(self, path: str) -> tuple[int, dict, bytes]:
        if path == "/robots.txt":
            return 404, {}, b""
        text = " ".join(hashlib.sha1(f"{path}{n}".encode()).hexdigest()[:10] for n in range(self.words))
        page = f"<html><head><title>Article {path}</title></head><body><article><p>{text}</p></article>"
        return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
