"""A loopback server that answers like the MediaWiki Action API, as strictly as the real one.

It ships: ``run --site wikipedia --demo`` serves the bundled month through it;
every test of the portal adapter runs against it.  A stand-in kinder than the
API would let a sync that loses data on Wikipedia pass here, so it keeps the
API's rules and its awkward corners (``shared/docs/FORMAT.md``, the API's help
pages and recorded answers):

* ``action=query&prop=revisions&titles=A|B|…`` → each title's latest
  revision, with only the ``rvprop`` fields asked (``ids``, ``timestamp``);
  ``missing: true`` for pages that do not exist; MediaWiki's ``normalized``
  list when a title is spelled with underscores; a redirect page is reported
  as itself unless ``redirects=1`` is given (then a ``redirects`` list and
  the target).  More than 50 titles is the ``toomanyvalues`` error.
* ``action=parse&page=T&prop=…`` → only the props asked (no ``revid``
  without ``prop=revid``), ``missingtitle`` for a missing page, redirects
  followed only with ``redirects=1``.  The HTML ends with the parser's
  limit report (``Cached time: YYYYMMDDHHMMSS``).
* ``action=query&list=recentchanges`` → edits, newest first, 500 at most per
  answer with ``continue``, kept ``rc_days`` (30) days.
* A monthly page transcludes its daily pages and is served from a parser
  cache: an edit to a day does not reach the cached month until the jobs
  run (:meth:`run_jobs`), as on Wikipedia, where the refresh job can lag.
  Past ``include_limit`` bytes (MediaWiki's post-expand include size, 2 MB)
  a day is not transcluded: the month shows a plain link to it and the
  parser's warning comment instead.
* Unknown parameters are ignored with a warning, as the API does.
* ``lag`` answers the next that many requests that send ``maxlag`` with the
  ``maxlag`` error (HTTP 200, ``Retry-After: 5``); ``errors`` scripts other
  error objects (``readonly``, ``ratelimited``, ``internal_api_error_…``);
  ``statuses`` scripts plain HTTP failures.
* Answers are gzipped when the client accepts it (``gzipped`` counts them).

Time is the server's own ``clock`` (an edit is stamped with it, then it moves
on a minute), so tests can say when things happened.  Requests are logged
(``requests``) and the chaos of :class:`~crawler.loopback.site.SiteServer`
applies.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from bs4 import BeautifulSoup

from crawler.loopback.site import SiteServer
from pipeline.portal import day_blocks, day_title, month_title

MAX_TITLES = 50  # per query, for clients without the apihighlimits right
MAX_RC = 500
COMMON = {"action", "format", "formatversion", "maxlag", "errorformat", "utf8"}
KNOWN = {
    "query": COMMON
    | {"prop", "titles", "rvprop", "redirects", "list", "continue"}
    | {"rcnamespace", "rcprop", "rclimit", "rcstart", "rcend", "rcdir", "rctype", "rccontinue"},
    "parse": COMMON | {"page", "prop", "redirects", "disablelimitreport"},
}
REVISION_FIELDS = {"ids": ("revid", "parentid"), "timestamp": ("timestamp",)}
INCLUDE_WARNING = "<!-- WARNING: template omitted, post-expand include size too large -->"


def _title(name: str) -> str:
    return name.replace("_", " ").strip()


def _stamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Revision:
    revid: int
    parentid: int
    html: str
    timestamp: dt.datetime


class MediaWikiServer(SiteServer):
    def __init__(self, host: str = "127.0.0.1"):
        self.pages: dict[str, Revision] = {}  # title -> latest revision
        self.redirects: dict[str, str] = {}  # redirect page title -> target title
        self.months: dict[str, list[str]] = {}  # month title -> the day titles it transcludes
        self.cache: dict[str, tuple[dt.datetime, str]] = {}  # month title -> (cached time, html)
        self.changes: list[dict] = []  # recent changes, oldest first
        self.clock = dt.datetime(2023, 2, 1, tzinfo=dt.UTC)
        self.include_limit = 2 * 1024 * 1024
        self.rc_days = 30
        self.next_revid = 1000
        self.lag = 0  # answer this many more maxlag requests with a maxlag error
        self.errors: list[tuple[str, str]] = []  # answer the next requests with these (code, info)
        self.statuses: list[int] = []  # answer the next requests with these HTTP statuses
        self.gzipped = 0
        super().__init__(Path("."), host=host)

    @property
    def api_url(self) -> str:
        return self.url("w/api.php")

    # -- content -----------------------------------------------------------

    def add_month(self, html: str) -> list[str]:
        """Serve a real monthly rendering as its daily pages and the month that transcludes them.

        A day that cites footnotes gets the references list items it points to,
        as its own page renders them.
        """
        soup = BeautifulSoup(html, "lxml")
        notes = {li["id"]: str(li) for li in soup.select("ol.references > li[id]")}
        blocks = day_blocks(html)
        days = [_title(day_title(day)) for day, _ in blocks]
        for title, (_, block) in zip(days, blocks, strict=True):
            cited = [
                notes[a["href"].rsplit("#", 1)[1]]
                for a in block.select("sup.reference a[href*='#']")
                if a["href"].rsplit("#", 1)[1] in notes
            ]
            own = "" if not cited else '<ol class="references">' + "".join(dict.fromkeys(cited)) + "</ol>"
            self.edit(title, str(block) + own)
        first = blocks[0][0]
        month = _title(month_title(first.year, first.month))
        self.months[month] = days
        self.edit(month, "")  # the month's own wikitext: transclusions only
        return days

    def edit(self, title: str, html: str) -> int:
        """Save a new revision of a page (stamped with ``clock``, which then moves on); its id."""
        title = _title(title)
        self.next_revid += 1
        previous = self.pages.get(title)
        self.pages[title] = Revision(self.next_revid, previous.revid if previous else 0, html, self.clock)
        self.changes.append(
            {
                "type": "edit" if previous else "new",
                "ns": 100,
                "title": title,
                "revid": self.next_revid,
                "old_revid": previous.revid if previous else 0,
                "rcid": len(self.changes) + 1,
                "timestamp": _stamp(self.clock),
            }
        )
        self.clock += dt.timedelta(minutes=1)
        return self.next_revid

    def redirect(self, title: str, target: str) -> int:
        """Make ``title`` a redirect page to ``target``."""
        self.redirects[_title(title)] = _title(target)
        link = f'<a href="/wiki/{quote(_title(target).replace(" ", "_"))}">{_title(target)}</a>'
        return self.edit(title, f'<div class="redirectMsg"><p>Redirect to:</p><ul><li>{link}</li></ul></div>')

    def html(self, title: str) -> str:
        return self.pages[_title(title)].html

    def run_jobs(self) -> None:
        """The refresh jobs ran: cached monthly pages are rendered again on their next request."""
        self.cache.clear()

    def _render(self, title: str) -> tuple[dt.datetime, str]:
        """A page's HTML as the parser (cache) gives it, limit report included."""
        if title not in self.months:
            return self.clock, self._with_report(
                self.pages[title].html, self.clock, len(self.pages[title].html)
            )
        if title not in self.cache:
            parts, size = [], 0
            for day in self.months[title]:
                block = self.pages[day].html if day in self.pages else ""
                if size + len(block.encode()) > self.include_limit:
                    href = quote(day.replace(" ", "_"), safe=":/")
                    parts.append(f'<a href="/wiki/{href}" title="{day}">{day}</a>{INCLUDE_WARNING}')
                    continue
                size += len(block.encode())
                parts.append(block)
            self.cache[title] = (self.clock, self._with_report("\n".join(parts), self.clock, size))
        return self.cache[title]

    def _with_report(self, body: str, cached: dt.datetime, size: int) -> str:
        report = (
            f"<!-- \nNewPP limit report\nCached time: {cached:%Y%m%d%H%M%S}\nCache expiry: 86400\n"
            f"Post\u2010expand include size: {size}/{self.include_limit} bytes\n-->\n"
        )
        return f'<div class="mw-parser-output">{body}\n{report}</div>'

    # -- the API -----------------------------------------------------------

    def answer_request(self, path: str, headers) -> tuple[int, dict, bytes]:
        status, answer_headers, body = self.answer(path)
        if status == 200 and "gzip" in (headers.get("Accept-Encoding") or ""):
            self.gzipped += 1
            return status, {**answer_headers, "Content-Encoding": "gzip"}, gzip.compress(body)
        return status, answer_headers, body

    def answer(self, path: str) -> tuple[int, dict, bytes]:
        parts = urlsplit(path)
        if parts.path == "/robots.txt":
            return 404, {}, b""
        if parts.path != "/w/api.php":
            return 404, {}, b"not found"
        query = {name: values[-1] for name, values in parse_qs(parts.query, keep_blank_values=True).items()}
        if self.statuses:
            return self.statuses.pop(0), {}, b"<html><body>Wikimedia Error</body></html>"
        if query.get("format") != "json":
            return 200, {"Content-Type": "text/html"}, b"<p>This is the API help page.</p>"
        if self.lag > 0 and "maxlag" in query:
            self.lag -= 1
            body = {
                "error": {"code": "maxlag", "info": "Waiting for 10.64.48.35: 7 seconds lagged.", "lag": 7}
            }
            return _error(body, {"Retry-After": "5", "X-Database-Lag": "7"})
        if self.errors:
            code, info = self.errors.pop(0)
            return _error({"error": {"code": code, "info": info}})
        action = query.get("action")
        if action not in KNOWN:
            return _error(
                {
                    "error": {
                        "code": "badvalue",
                        "info": f'Unrecognized value for parameter "action": {action}.',
                    }
                }
            )
        unknown = sorted(set(query) - KNOWN[action])
        if action == "parse":
            result = self._parse(query)
        elif query.get("list") == "recentchanges":
            result = self._recent_changes(query)
        elif query.get("prop") == "revisions":
            result = self._revisions(query)
        else:
            result = {"batchcomplete": True}
        if "error" in result:
            return _error(result)
        if unknown:
            names = ", ".join(unknown)
            result["warnings"] = {"main": {"warnings": f"Unrecognized parameters: {names}."}}
        return 200, {"Content-Type": "application/json"}, _json(result)

    def _resolve(self, titles: list[str], follow: bool) -> tuple[list[dict], list[dict], list[str]]:
        """MediaWiki's title handling: the ``normalized`` and ``redirects`` lists, and the final titles."""
        normalized, redirects, final = [], [], []
        for asked in titles:
            title = _title(asked)
            if title != asked:
                normalized.append({"fromencoded": False, "from": asked, "to": title})
            if follow and title in self.redirects:
                redirects.append({"from": title, "to": self.redirects[title]})
                title = self.redirects[title]
            final.append(title)
        return normalized, redirects, final

    def _revisions(self, query: dict) -> dict:
        titles = query.get("titles", "").split("|")
        if len(titles) > MAX_TITLES:
            return {
                "error": {
                    "code": "toomanyvalues",
                    "info": f'Too many values supplied for parameter "titles". The limit is {MAX_TITLES}.',
                }
            }
        fields = [
            f
            for prop in query.get("rvprop", "ids|timestamp|flags|comment|user").split("|")
            for f in REVISION_FIELDS.get(prop, ())
        ]
        normalized, redirects, final = self._resolve(titles, query.get("redirects") is not None)
        pages = []
        for title in dict.fromkeys(final):
            revision = self.pages.get(title)
            if revision is None:
                pages.append({"ns": 100, "title": title, "missing": True})
                continue
            shown = {
                "revid": revision.revid,
                "parentid": revision.parentid,
                "timestamp": _stamp(revision.timestamp),
            }
            pages.append(
                {
                    "pageid": abs(hash(title)) % 10**8,
                    "ns": 100,
                    "title": title,
                    "revisions": [{name: shown[name] for name in fields}],
                }
            )
        result = {"batchcomplete": True, "query": {"pages": pages}}
        if normalized:
            result["query"]["normalized"] = normalized
        if redirects:
            result["query"]["redirects"] = redirects
        return result

    def _parse(self, query: dict) -> dict:
        normalized, redirects, (title,) = self._resolve(
            [query.get("page", "")], query.get("redirects") is not None
        )
        if title not in self.pages:
            return {"error": {"code": "missingtitle", "info": "The page you specified doesn't exist."}}
        props = set(query.get("prop", "text|revid|displaytitle").split("|"))
        cached, html = self._render(title)
        parsed = {"title": title, "pageid": abs(hash(title)) % 10**8}
        if redirects:
            parsed["redirects"] = redirects
        if "revid" in props:
            parsed["revid"] = self.pages[title].revid
        if "text" in props:
            parsed["text"] = html
        if "limitreportdata" in props:
            parsed["limitreportdata"] = [{"name": "cachereport-timestamp", "0": f"{cached:%Y%m%d%H%M%S}"}]
        return {"parse": parsed}

    def _recent_changes(self, query: dict) -> dict:
        """Newest first (``rcdir=older``), from ``rcstart`` back to ``rcend``, ``rclimit`` at a time."""
        limit = min(int(query.get("rclimit", 10) if query.get("rclimit") != "max" else MAX_RC), MAX_RC)
        oldest_kept = _stamp(self.clock - dt.timedelta(days=self.rc_days))
        start, end = query.get("rcstart", "9999"), query.get("rcend", "0000")
        namespaces = {int(n) for n in query["rcnamespace"].split("|")} if query.get("rcnamespace") else None
        types = set(query.get("rctype", "edit|new|log|categorize").split("|"))
        after = int(query["rccontinue"].split("|")[1]) if query.get("rccontinue") else None
        rows = [
            change
            for change in reversed(self.changes)
            if change["timestamp"] >= max(oldest_kept, end)
            and change["timestamp"] <= start
            and (namespaces is None or change["ns"] in namespaces)
            and change["type"] in types
            and (after is None or change["rcid"] <= after)
        ]
        result: dict = {"batchcomplete": True, "query": {"recentchanges": rows[:limit]}}
        if len(rows) > limit:
            following = rows[limit]
            result["continue"] = {
                "rccontinue": f"{following['timestamp']}|{following['rcid']}",
                "continue": "-||",
            }
        return result


def _error(body: dict, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """An error object: HTTP 200 and the ``MediaWiki-API-Error`` header, as the API answers them."""
    code = body["error"]["code"]
    return (
        200,
        {"Content-Type": "application/json", "MediaWiki-API-Error": code, **(headers or {})},
        _json(body),
    )


def _json(value: dict) -> bytes:
    return json.dumps(value).encode()
