"""The spider of Wikipedia's Current Events Portal, read through the MediaWiki API.

The portal is the upstream *the Context* was generated from, and it is still
edited every day.  This spider knows that site; everything after it (the
normalise, dedupe and store pipelines, source checking, sync bookkeeping)
is the one the markdown site uses.

Which days a run asks about is :mod:`crawler.portal_plan`'s call: a backfill's
window, or a sync's last ``WIKIPEDIA_DAYS`` plus the older days the wiki's
recent changes name (or every held day, when they cannot tell).  A run then
costs:

1. one ``action=query&prop=revisions`` request per 50 daily pages
   (``Portal:Current_events/2023_January_2``), which gives each day's latest
   revision id and timestamp;
2. for each day whose revision differs from the one the mirror holds (or
   every day, with ``full``), the rendered HTML (``action=parse``): the day's
   own page when few days of a month changed, the monthly page (which
   transcludes all of them) when more than ``WIKIPEDIA_MONTHLY_AFTER`` did,
   as in a backfill, once every day of the month has been answered;
3. a day's own page again for every day the monthly page cannot vouch for:
   edited after the month's parser-cache render, or cut by the include limit.

Each day becomes one :class:`~crawler.items.PageItem` holding the day's
listing and its events, stored in one transaction with the revision its text
belongs to, so that a killed run leaves the day to be read again.

Wikimedia's API etiquette (https://www.mediawiki.org/wiki/API:Etiquette): a
User-Agent naming the project and a contact (``WIKIPEDIA_USER_AGENT``; the CLI
refuses the placeholder for Wikimedia hosts), one request at a time,
``maxlag=5``, gzip; answers that mean "not now" are waited out
(:mod:`crawler.wikiapi`).  robots.txt is not asked: it governs the reader's
pages, which this spider does not fetch; API clients follow the etiquette
instead.

The spider is one class over the house's 200 lines, on purpose: its callbacks
share one crawl's state (the plan, the months waiting for their answers, the
days not due) as Scrapy's spiders do; the API's rules (``crawler.wikiapi``),
the plan (``crawler.portal_plan``), parsing (``pipeline.portal``), storing
(``pipeline.store``) and reading the mirror (``pipeline.frontier``) live
elsewhere.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
from collections import Counter, defaultdict
from urllib.parse import urlencode, urlsplit

from scrapy import Request, Spider
from scrapy.spidermiddlewares.httperror import HttpError

from crawler import portal_plan
from crawler.failures import error_kind
from crawler.items import PageItem
from crawler.parse_pool import PoolBroken, UsesParsePool
from crawler.portal_plan import BATCH
from crawler.progress import site_progress
from crawler.spiders import ReadsFrontier, arguments
from crawler.wikiapi import (
    BACK_OFF_STATUSES,
    ApiError,
    api_time,
    cached_time,
    latest_revisions,
    read_answer,
    wait_for,
    warnings_of,
)
from pipeline.clock import Clock
from pipeline.parsed import PageError
from pipeline.portal import PortalSite, day_title, month_title, page_url, parse_portal


class PortalSpider(UsesParsePool, ReadsFrontier, Spider):
    name = "wikipedia"
    site_name = "wikipedia"
    custom_settings = {
        "CONCURRENT_REQUESTS": 1,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 1,
        "ROBOTSTXT_OBEY": False,
        # 50 encoded titles make a URL of about 2,300 characters: past Scrapy's default limit
        # (2,083), which would drop the request without a word.  Wikimedia takes URLs of 8 KB.
        "URLLENGTH_LIMIT": 8192,
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
        self.unanswered: Counter[tuple[int, int]] = Counter()  # per month: days asked, not yet answered
        self.changed: dict[tuple[int, int], dict[str, tuple[int, str]]] = defaultdict(dict)

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

    def _answer(self, response) -> dict:
        data = read_answer(response.status, response.body)
        for warning in warnings_of(data):
            self.logger.warning("Wikipedia API warning for %s: %s", response.url, warning)
            self.crawler.stats.inc_value("wikipedia/api_warnings")
        return data

    async def _read(self, response) -> tuple[dict | None, Request | None, ApiError | None]:
        """The answer's data; else the same request again after a wait; else the error that stays."""
        try:
            return self._answer(response), None, None
        except ApiError as exc:
            again = await self._retry_later(response, exc)
            return None, again, None if again is not None else exc

    async def _retry_later(self, response, exc: ApiError) -> Request | None:
        """The same request again after a wait, while tries remain; None when it should not be.

        One request at a time already, and slower still while the server says
        it is struggling (``crawler.wikiapi.wait_for``).
        """
        tries = response.meta["tries"] + 1
        if not exc.passing or tries > self.settings.getint("WIKIPEDIA_RETRIES"):
            return None
        wait = wait_for(response.headers.get("Retry-After"), tries, self.settings.getfloat("RETRY_AFTER_MAX"))
        self.logger.info("Wikipedia answered %s; asking again in %.0f s", exc, wait)
        await asyncio.sleep(wait)
        return response.request.replace(meta={**response.meta, "tries": tries})

    async def start(self):
        self.parse_pool.start()  # the workers start while the API is asked what changed
        clock = Clock.from_settings(self.settings)
        self.plan, self.held_days = portal_plan.plan_for(
            self.frontier, self.since, self.until, clock.now(), self.settings
        )
        self.covers = self.plan.reason  # sync_runs.covers
        if self.plan.recent_since is not None:
            yield self._recent_request(set(self.plan.days), clock.now())
        else:
            for request in self._revision_requests(self.plan.days):
                yield request

    def _revision_requests(self, days: list[dt.date]):
        for day in days:
            self.unanswered[(day.year, day.month)] += 1
        for first in range(0, len(days), BATCH):
            batch = days[first : first + BATCH]
            yield self._api(
                self.revisions,
                {"days": batch},
                action="query",
                prop="revisions",
                rvprop="ids|timestamp",
                redirects="1",
                titles="|".join(day_title(day) for day in batch),
            )

    def _recent_request(self, days: set[dt.date], start: dt.datetime, more: str | None = None) -> Request:
        """Edits to the Portal namespace, newest first, back to just before the last sync."""
        params = {
            "action": "query",
            "list": "recentchanges",
            "rcnamespace": "100",
            "rctype": "edit|new",
            "rcprop": "title|timestamp|ids",
            "rclimit": str(portal_plan.RC_BATCH),
            "rcstart": f"{start:%Y-%m-%dT%H:%M:%SZ}",
            "rcend": f"{self.plan.recent_since:%Y-%m-%dT%H:%M:%SZ}",
        }
        if more:
            params["rccontinue"] = more
        return self._api(self.recent_changes, {"rc_days": days, "rc_start": start}, **params)

    def _sweep(self, days: set[dt.date], why) -> list[Request]:
        """Recent changes could not be read: ask about every held day instead, missing nothing."""
        self.logger.warning("Recent changes unreadable (%s): asking about every held day", why)
        self.covers = "sweep"
        return list(self._revision_requests(sorted(days | self.held_days, reverse=True)))

    async def recent_changes(self, response):
        """Days edited since the last sync join this run's days; the API unsure, every held day does."""
        days: set[dt.date] = response.meta["rc_days"]
        data, again, error = await self._read(response)
        if again is not None:
            yield again
            return
        if error is not None:
            for request in self._sweep(days, error):
                yield request
            return
        for change in data.get("query", {}).get("recentchanges", []):
            day = portal_plan.day_of_title(change.get("title", ""))
            if day is not None:
                days.add(day)
        more = (data.get("continue") or {}).get("rccontinue")
        if more:
            yield self._recent_request(days, response.meta["rc_start"], more)
            return
        self.crawler.stats.set_value("wikipedia/days_asked", len(days))
        for request in self._revision_requests(sorted(days, reverse=True)):
            yield request

    async def revisions(self, response):
        days: list[dt.date] = response.meta["days"]
        data, again, error = await self._read(response)
        if again is not None:
            yield again
            return
        if error is not None:
            self.start_results.setdefault(self.api_url, f"API error {error}")
            for item in self._failed_days(days, f"API error {error}"):
                yield item
            for request in self._answered(days, {}):
                yield request
            return
        self.start_results[self.api_url] = "ok"
        current = latest_revisions(data)
        held = self.frontier.known_revisions([page_url(day_title(day)) for day in days])
        changed: dict[dt.date, tuple[int, str]] = {}
        for day in days:
            url = page_url(day_title(day))
            revision = current.get(day_title(day).replace("_", " "))
            if revision is None:
                # No page for the day (yet): nothing to store, said once in pages.
                yield PageItem(url=url, kind="error", error="no such page on Wikipedia", date=day.isoformat())
            elif not self.full and held.get(url) == revision[0]:
                self.not_due.add(url)
                yield PageItem(
                    url=url, kind="day", unchanged=True, revision=revision[0], date=day.isoformat()
                )
            else:
                changed[day] = revision
        for request in self._answered(days, changed):
            yield request

    def _answered(self, days: list[dt.date], changed: dict[dt.date, tuple[int, str]]):
        """Parse requests for the changed days of every month whose asked days are all answered.

        A month split between two revisions queries (50 days each) waits for
        both, so that it is read once: as its monthly page when more than
        ``WIKIPEDIA_MONTHLY_AFTER`` of its days changed, else day by day.
        """
        for day in days:
            self.unanswered[(day.year, day.month)] -= 1
        for day, revision in changed.items():
            self.changed[(day.year, day.month)][day.isoformat()] = revision
        for year, month in sorted({(day.year, day.month) for day in days}, reverse=True):
            if self.unanswered[(year, month)] > 0 or (year, month) not in self.changed:
                continue
            wanted = self.changed.pop((year, month))
            if len(wanted) > self.settings.getint("WIKIPEDIA_MONTHLY_AFTER"):
                yield self._parse_request(month_title(year, month), wanted)
            else:
                for day in sorted(wanted, reverse=True):
                    yield self._parse_request(day_title(dt.date.fromisoformat(day)), {day: wanted[day]})

    def _parse_request(self, title: str, wanted: dict[str, tuple[int, str]]) -> Request:
        return self._api(
            self.parsed,
            {"wanted": wanted, "title": title},
            action="parse",
            page=title,
            prop="text|revid",
            redirects="1",
        )

    async def parsed(self, response):
        """A day's own page, or a monthly page: each wanted day stored with the revision it shows.

        A day's own page is rendered from its latest revision, which the answer
        names (``revid``).  A monthly page comes from the parser cache, rendered
        when its ``Cached time`` says: a day edited after that (less the
        replicas' ``maxlag``) may still show older text there, and a day past
        the include limit is not there at all, so those days are read from
        their own pages in this run.
        """
        wanted: dict[str, tuple[int, str]] = response.meta["wanted"]
        days = [dt.date.fromisoformat(d) for d in wanted]
        title = response.meta["title"]
        data, again, error = await self._read(response)
        if again is not None:
            yield again
            return
        if error is not None:
            for item in self._failed_days(days, f"API error {error}"):
                yield item
            return
        try:
            html = data["parse"]["text"]
            if isinstance(html, dict):  # formatversion=1 shape
                html = html.get("*", "")
            # A monthly page is megabytes of HTML: parsed in the pool (``crawler.parse_pool``), the
            # event loop stays free meanwhile (the next request can leave, timeouts fire on time).
            portal_days = await self.parse_pool.run(parse_portal, html)
        except (PageError, KeyError, TypeError, PoolBroken) as exc:
            for item in self._failed_days(days, f"unreadable portal page {title}: {exc}"):
                yield item
            return
        own_page = title != month_title(days[0].year, days[0].month)
        if own_page and not isinstance(data["parse"].get("revid"), int):
            for item in self._failed_days(days, f"the API's answer for {title} names no revision"):
                yield item
            return
        rendered = None if own_page else cached_time(html)
        stored = set()
        for day in portal_days:
            if day.date not in wanted or day.date in stored:
                continue  # a monthly page holds days this run does not need
            revid, timestamp = wanted[day.date]
            if not own_page and not self._month_is_newer(rendered, timestamp):
                continue  # the month may show an older revision of this day: read below
            stored.add(day.date)
            block = json.dumps([[url, repr(event)] for url, event in day.events]).encode()
            yield PageItem(
                url=day.url,
                kind="day",
                http_status=response.status,
                content_hash=hashlib.sha256(block).hexdigest(),
                size=len(response.body) if own_page else None,
                revision=data["parse"]["revid"] if own_page else revid,
                date=day.date,
                parsed=day,
            )
        on_page = {day.date for day in portal_days}
        for day in days:
            if day.isoformat() in stored:
                continue
            if own_page:
                for item in self._failed_days([day], f"the day is not on {title}"):
                    yield item
            else:
                why = "stale" if day.isoformat() in on_page else "missing"
                self.crawler.stats.inc_value(f"wikipedia/days_reread_{why}")
                yield self._parse_request(day_title(day), {day.isoformat(): wanted[day.isoformat()]})

    def _month_is_newer(self, rendered: dt.datetime | None, timestamp: str) -> bool:
        """Was the monthly page rendered after this revision of the day was saved (and replicated)?"""
        if rendered is None or not timestamp:
            return False
        slack = dt.timedelta(seconds=self.settings.getfloat("WIKIPEDIA_MAXLAG"))
        return api_time(timestamp) <= rendered - slack

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
        self.logger.warning("Wikipedia API request failed: %s (%s)", request.url, reason)
        if "rc_days" in request.meta:
            yield from self._sweep(request.meta["rc_days"], reason)
            return
        self.start_results.setdefault(self.api_url, reason)
        if "days" in request.meta:  # a revisions query
            yield from self._failed_days(request.meta["days"], reason)
            yield from self._answered(request.meta["days"], {})
            return
        yield from self._failed_days([dt.date.fromisoformat(d) for d in request.meta["wanted"]], reason)
