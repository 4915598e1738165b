"""A loopback server that answers like the MediaWiki Action API, for the portal adapter.

It ships: ``run --site wikipedia --demo`` serves the bundled month through it;
the tests script it the same way.

It knows the two requests the portal spider makes (``shared/docs/FORMAT.md``):

* ``action=query&prop=revisions&titles=A|B|…`` → each title's latest
  revision id and timestamp (``missing`` for pages that do not exist), with
  MediaWiki's ``normalized`` list when a title is spelled with underscores;
* ``action=parse&page=T&prop=text|revid`` → the page's rendered HTML and
  revision id, or the ``missingtitle`` error.

Pages are held as rendered HTML with a revision counter; :meth:`edit`
makes a new revision.  A monthly page is rendered from its daily pages at
request time, as MediaWiki transcludes them, so editing a day changes the
month's HTML but not the month's own revision id.  ``lag`` answers the next
that many requests with the ``maxlag`` error (HTTP 200, ``Retry-After``), as
a lagged Wikimedia cluster does; ``statuses`` scripts plain HTTP failures.
Requests are logged (``requests``) and the chaos of
:class:`~crawler.loopback.site.SiteServer` applies.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from crawler.loopback.site import SiteServer
from pipeline.portal import day_blocks, day_title, month_title


def _title(name: str) -> str:
    return name.replace("_", " ").strip()


class MediaWikiServer(SiteServer):
    def __init__(self, host: str = "127.0.0.1"):
        self.pages: dict[str, tuple[int, str]] = {}  # title -> (revid, html)
        self.months: dict[str, tuple[int, list[str]]] = {}  # month title -> (revid, day titles)
        self.next_revid = 1000
        self.lag = 0  # answer this many more requests with a maxlag error
        self.statuses: list[int] = []  # answer the next requests with these HTTP statuses
        super().__init__(Path("."), host=host)

    @property
    def api_url(self) -> str:
        return self.url("w/api.php")

    # -- content -----------------------------------------------------------

    def add_month(self, html: str) -> list[str]:
        """Serve a real monthly rendering as its daily pages and the month that shows them."""
        blocks = day_blocks(html)
        days = [_title(day_title(day)) for day, _ in blocks]
        for title, (_, block) in zip(days, blocks, strict=True):
            self.edit(title, str(block))
        first = blocks[0][0]
        self.months[_title(month_title(first.year, first.month))] = (self._revid(), days)
        return days

    def edit(self, title: str, html: str) -> int:
        """Save a new revision of a page; its revision id."""
        revid = self._revid()
        self.pages[_title(title)] = (revid, html)
        return revid

    def html(self, title: str) -> str:
        return self.pages[_title(title)][1]

    def _revid(self) -> int:
        self.next_revid += 1
        return self.next_revid

    def _page(self, title: str) -> tuple[int, str] | None:
        if title in self.pages:
            return self.pages[title]
        if title in self.months:
            revid, days = self.months[title]
            blocks = [self.pages[day][1] for day in days if day in self.pages]
            return revid, '<div class="mw-parser-output">' + "\n".join(blocks) + "</div>"
        return None

    # -- the API -----------------------------------------------------------

    def answer(self, path: str) -> tuple[int, dict, bytes]:
        parts = urlsplit(path)
        if parts.path == "/robots.txt":
            return 404, {}, b""
        if parts.path != "/w/api.php":
            return 404, {}, b"not found"
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        if self.statuses:
            return self.statuses.pop(0), {}, b"<html><body>Wikimedia Error</body></html>"
        if self.lag > 0:
            self.lag -= 1
            body = {"error": {"code": "maxlag", "info": "Waiting for db1: 7 seconds lagged", "lag": 7}}
            return (
                200,
                {"Retry-After": "1", "X-Database-Lag": "7", "MediaWiki-API-Error": "maxlag"},
                _json(body),
            )
        if query.get("format") != "json":
            return 200, {"Content-Type": "text/html"}, b"<p>This is the API help page.</p>"
        if query.get("action") == "query" and query.get("prop") == "revisions":
            return 200, {}, _json(self._revisions(query.get("titles", "")))
        if query.get("action") == "parse" and "page" in query:
            return 200, {}, _json(self._parse(query["page"]))
        return 200, {}, _json({"error": {"code": "badvalue", "info": "Unrecognized value."}})

    def _revisions(self, titles: str) -> dict:
        normalized, pages = [], []
        for asked in titles.split("|"):
            title = _title(asked)
            if title != asked:
                normalized.append({"fromencoded": False, "from": asked, "to": title})
            page = self._page(title)
            if page is None:
                pages.append({"ns": 100, "title": title, "missing": True})
            else:
                revid = page[0]
                pages.append(
                    {
                        "pageid": abs(hash(title)) % 10**8,
                        "ns": 100,
                        "title": title,
                        "revisions": [
                            {"revid": revid, "parentid": revid - 1, "timestamp": "2023-02-01T00:00:00Z"}
                        ],
                    }
                )
        result = {"batchcomplete": True, "query": {"pages": pages}}
        if normalized:
            result["query"]["normalized"] = normalized
        return result

    def _parse(self, name: str) -> dict:
        title = _title(name)
        page = self._page(title)
        if page is None:
            return {"error": {"code": "missingtitle", "info": "The page you specified doesn't exist."}}
        revid, html = page
        return {"parse": {"title": title, "pageid": abs(hash(title)) % 10**8, "revid": revid, "text": html}}


def _json(value: dict) -> bytes:
    return json.dumps(value).encode()
