"""The spider of Wikipedia's Current Events Portal, read through the MediaWiki API.

The portal is the upstream *the Context* was generated from, and it is still
edited every day.  This spider knows that site; everything after it (the
normalise, dedupe and store pipelines, source checking, sync bookkeeping)
is the one the markdown site uses.

A run covers a window of days: by default the last ``WIKIPEDIA_DAYS`` (7) up
to today, or ``since``/``until`` for a backfill.  It costs:

1. one ``action=query&prop=revisions`` request per 50 daily pages
   (``Portal:Current_events/2023_January_2``), which gives each day's latest
   revision id;
2. for each day whose revision differs from the one the mirror holds (or
   every day, with ``full``), the rendered HTML (``action=parse``): the day's
   own page when few days of a month changed, the monthly page (which
   transcludes all of them) when more than ``WIKIPEDIA_MONTHLY_AFTER`` did,
   as in a backfill.

So a sync of an unchanged week is one request, and an edited day costs one
more.  Each day becomes one :class:`~crawler.items.PageItem` holding the
day's listing and its events, stored in one transaction with the day's
revision, so that a killed run leaves the day to be read again.

Wikimedia's API etiquette (https://www.mediawiki.org/wiki/API:Etiquette): a
User-Agent naming the project and a contact (``WIKIPEDIA_USER_AGENT``), one
request at a time, ``maxlag=5``; a lagged cluster, a 429 or a 5xx is asked
again after its ``Retry-After`` or 1, 2, 4, … seconds, at most
``WIKIPEDIA_RETRIES`` times.  robots.txt is not asked: it governs the reader's pages,
which this spider does not fetch; API clients follow the etiquette instead.

The spider is one class of about 210 lines, over the house's 200, on
purpose: its callbacks share one crawl's state (the window, the days not
due, how the API answered) and the API's etiquette, as Scrapy's spiders do; parsing
(``pipeline.portal``), storing (``pipeline.store``) and reading the mirror
(``pipeline.frontier``) live elsewhere.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections import defaultdict
from urllib.parse import urlencode, urlsplit

from scrapy import Request, Spider
from scrapy.spidermiddlewares.httperror import HttpError

from crawler.failures import error_kind
from crawler.items import PageItem
from crawler.progress import site_progress
from crawler.spiders import ReadsFrontier, arguments
from pipeline.clock import Clock
from pipeline.parsed import PageError
from pipeline.portal import PortalSite, day_title, month_title, page_url, parse_portal

BATCH = 50  # titles per revisions query: the API's limit for clients without the bot right
# Answers that mean "not now": waited out with a growing delay (or Retry-After), never hammered.
BACK_OFF_STATUSES = [429, 500, 502, 503, 504]


class ApiError(Exception):
    """The API answered with an error object (``{"error": {"code": …}}``)."""

    def __init__(self, code: str, info: str):
        super().__init__(f"{code}: {info}")
        self.code = code

    @property
    def passing(self) -> bool:
        """A lagged cluster or an overloaded server: asking again later may succeed."""
        return self.code in ("maxlag", "http")


class PortalSpider(ReadsFrontier, Spider):
    name = "wikipedia"
    site_name = "wikipedia"
    custom_settings = {
        "CONCURRENT_REQUESTS": 1,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "ROBOTSTXT_OBEY": False,
        # Failed connections are retried by Scrapy; 429/5xx answers by the spider, with back-off.
        "RETRY_HTTP_CODES": [],
    }

    def __init__(self, api_url: str | None = None, since=None, until=None, full=False, **kwargs):
        super().__init__(**kwargs)
        self.api_url = api_url
        self.since, self.until = arguments.window(since, until)
        self.full = arguments.flag(full)
        self.site = PortalSite()
        self.start_results: dict[str, str] = {}
        self.not_due: set[str] = set()  # days whose revision the mirror already holds

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        settings = crawler.settings
        spider.api_url = spider.api_url or settings.get("WIKIPEDIA_API_URL")
        spider.start_urls = [spider.api_url]
        return spider

    @property
    def allowed_private_hosts(self) -> set[str]:
        """The API host is the site the user chose (a loopback one in tests)."""
        return {(urlsplit(self.api_url).hostname or "").lower()}

    def progress(self, stats) -> str:
        return site_progress(stats, "days")


    def window(self) -> list[dt.date]:
        """The days this run covers, newest first."""
        until = self.until or Clock.from_settings(self.settings).now().date()
        since = self.since or until - dt.timedelta(days=self.settings.getint("WIKIPEDIA_DAYS") - 1)
        return [until - dt.timedelta(days=n) for n in range((until - since).days + 1)]

    # -- the API -----------------------------------------------------------

    def _api(self, callback, meta: dict, **params) -> Request:
        params.update(format="json", formatversion="2", maxlag=self.settings.get("WIKIPEDIA_MAXLAG"))
        return Request(
            f"{self.api_url}?{urlencode(params)}",
            headers={"User-Agent": self.settings.get("WIKIPEDIA_USER_AGENT")},
            callback=callback,
            errback=self.failed,
            meta={"tries": 0, "handle_httpstatus_list": BACK_OFF_STATUSES, **meta},
            dont_filter=True,
        )

    @staticmethod
    def _answer(response) -> dict:
        """The API's JSON; :class:`ApiError` when it is an error object, not JSON, or a 429/5xx."""
        if response.status in BACK_OFF_STATUSES:
            raise ApiError("http", f"HTTP {response.status}")
        try:
            data = json.loads(response.body)
        except ValueError:
            raise ApiError("badjson", f"not JSON ({len(response.body)} bytes)") from None
        if not isinstance(data, dict):
            raise ApiError("badjson", f"a JSON {type(data).__name__}, not an object")
        error = data.get("error")
        if error:
            raise ApiError(error.get("code", "unknown"), error.get("info", ""))
        return data

    async def _retry_later(self, response, exc: ApiError) -> Request | None:
        """The same request again after a wait, while tries remain; None when it should not be.

        The wait is the answer's ``Retry-After`` when it gives one in seconds, else
        1, 2, 4, … seconds (``RETRY_AFTER_MAX`` at most): one request at a time
        already, and slower still while the server says it is struggling.
        """
        tries = response.meta["tries"] + 1
        if not exc.passing or tries > self.settings.getint("WIKIPEDIA_RETRIES"):
            return None
        try:
            wait = float(response.headers.get("Retry-After") or 2 ** (tries - 1))
        except ValueError:  # an HTTP date: MediaWiki sends seconds, a proxy might not
            wait = 2.0 ** (tries - 1)
        wait = min(wait, self.settings.getfloat("RETRY_AFTER_MAX"))
        self.logger.info("Wikipedia answered %s; asking again in %.0f s", exc, wait)
        await asyncio.sleep(wait)
        return response.request.replace(meta={**response.meta, "tries": tries})

    async def start(self):
        days = self.window()
        for first in range(0, len(days), BATCH):
            batch = days[first : first + BATCH]
            titles = [day_title(day) for day in batch]
            yield self._api(
                self.revisions,
                {"days": batch},
                action="query",
                prop="revisions",
                rvprop="ids|timestamp",
                titles="|".join(titles),
            )

    async def revisions(self, response):
        days: list[dt.date] = response.meta["days"]
        try:
            data = self._answer(response)
        except ApiError as exc:
            again = await self._retry_later(response, exc)
            if again is not None:
                yield again
                return
            self.start_results.setdefault(self.api_url, f"API error {exc}")
            for item in self._failed_days(days, f"API error {exc}"):
                yield item
            return
        self.start_results[self.api_url] = "ok"
        query = data.get("query", {})
        spelled = {n["to"]: n["from"] for n in query.get("normalized", [])}
        current: dict[str, int | None] = {}
        for page in query.get("pages", []):
            title = spelled.get(page.get("title"), page.get("title"))
            revisions = page.get("revisions") or [{}]
            current[title] = None if page.get("missing") else revisions[0].get("revid")
        held = self.frontier.known_revisions([page_url(day_title(day)) for day in days])
        changed: dict[tuple[int, int], list[dt.date]] = defaultdict(list)
        for day in days:
            url = page_url(day_title(day))
            revid = current.get(day_title(day))
            if revid is None:
                # No page for the day (yet): nothing to store, said once in pages.
                yield PageItem(url=url, kind="error", error="no such page on Wikipedia", date=day.isoformat())
            elif not self.full and held.get(url) == revid:
                self.not_due.add(url)
                yield PageItem(url=url, kind="day", unchanged=True, revision=revid, date=day.isoformat())
            else:
                changed[(day.year, day.month)].append(day)
        for (year, month), month_days in sorted(changed.items(), reverse=True):
            wanted = {day.isoformat(): current[day_title(day)] for day in month_days}
            if len(month_days) > self.settings.getint("WIKIPEDIA_MONTHLY_AFTER"):
                yield self._parse_request(month_title(year, month), wanted)
            else:
                for day in month_days:
                    yield self._parse_request(day_title(day), {day.isoformat(): wanted[day.isoformat()]})

    def _parse_request(self, title: str, wanted: dict[str, int]) -> Request:
        return self._api(
            self.parsed, {"wanted": wanted, "title": title}, action="parse", page=title, prop="text|revid"
        )

    async def parsed(self, response):
        wanted: dict[str, int] = response.meta["wanted"]
        days = [dt.date.fromisoformat(d) for d in wanted]
        try:
            data = self._answer(response)
            html = data["parse"]["text"]
            if isinstance(html, dict):  # formatversion=1 shape
                html = html.get("*", "")
            portal_days = parse_portal(html)
        except ApiError as exc:
            again = await self._retry_later(response, exc)
            if again is not None:
                yield again
                return
            for item in self._failed_days(days, f"API error {exc}"):
                yield item
            return
        except (PageError, KeyError, TypeError) as exc:
            for item in self._failed_days(days, f"unreadable portal page {response.meta['title']}: {exc}"):
                yield item
            return
        single = len(wanted) == 1 and response.meta["title"] == day_title(days[0])
        found = set()
        for day in portal_days:
            if day.date not in wanted or day.date in found:
                continue  # a monthly page holds days this run does not need
            found.add(day.date)
            block = json.dumps([[url, repr(event)] for url, event in day.events]).encode()
            yield PageItem(
                url=day.url,
                kind="day",
                http_status=response.status,
                content_hash=hashlib.sha256(block).hexdigest(),
                size=len(response.body) if single else None,
                # The day's own page says its revision; a monthly page says the month's, so the
                # one the revisions query gave is kept.
                revision=data["parse"].get("revid") if single else wanted[day.date],
                date=day.date,
                parsed=day,
            )
        missing = [day for day in days if day.isoformat() not in found]
        for item in self._failed_days(missing, f"the day is not on {response.meta['title']}"):
            yield item

    def _failed_days(self, days: list[dt.date], reason: str):
        for day in days:
            yield PageItem(url=page_url(day_title(day)), kind="error", error=reason, date=day.isoformat())

    def failed(self, failure):
        request = failure.request
        if failure.check(HttpError):
            reason = f"HTTP {failure.value.response.status}"
        else:
            kind, detail = error_kind(failure)
            reason = f"{kind}: {detail}" if detail else kind
        self.start_results.setdefault(self.api_url, reason)
        self.logger.warning("Wikipedia API request failed: %s (%s)", request.url, reason)
        days = request.meta.get("days") or [dt.date.fromisoformat(d) for d in request.meta.get("wanted", {})]
        yield from self._failed_days(days, reason)
