"""The spider of the event site: day pages, their chain, events, related events.

It starts from one or more start URLs (a front page, a day page or an event
page), parses each page once, yields a :class:`~crawler.items.PageItem` for
the pipelines, and follows the page's site links: a day page's events and its
"Previous Day..." link, an event page's related events and earlier versions,
a front page's days.  Only ``news/YYYY/MM/D/*.md`` pages of the same site are
followed; what a page *is* comes from its content (see ``pipeline.parse``).

Every run is a sync.  The start URLs are asked every run; every other page
is asked only when it is due (``pages.next_check_at``, see
``pipeline.revalidate``) or never seen, and ``full`` asks for every known
page.  Pages are asked conditionally (``If-None-Match``/``If-Modified-Since``);
a 304, or a 200 with the stored bytes, is not parsed.  The links of every
parsed page are queued in ``pages`` with it, and the pages that are due are
asked for at the start, so a run that was killed is resumed by the next.

``since``/``until`` bound the crawl by the date in the URL path.  With
``until`` the spider also asks for every day page of the window directly
(the path scheme is fixed), so a one-year crawl never walks the
"Previous Day" chain through the years after it.

The spider is one class of about 210 lines, over the house's 200, on
purpose: its callbacks share one crawl's state (what was requested, what was
not due, how each start URL answered), as Scrapy's spiders do; parsing
(``pipeline.parse``), storing (``pipeline.store``) and reading the mirror
(``pipeline.frontier``) live elsewhere.  Pages are parsed in worker processes
(``crawler.parse_pool``, ``pipeline.page_reading``): a heavy page never holds
up the event loop, so other requests' timeouts fire on time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
from urllib.parse import urlsplit

from scrapy import Request, Spider, signals
from scrapy.exceptions import DontCloseSpider
from scrapy.spidermiddlewares.httperror import HttpError

from crawler.asked import AskedUrls
from crawler.failures import FILE_NOT_FOUND, error_kind
from crawler.items import PageItem
from crawler.parse_pool import PoolBroken, UsesParsePool
from crawler.progress import site_progress
from crawler.spiders import ReadsFrontier, arguments
from pipeline.page_reading import PageReading, ReadingRules, read_page
from pipeline.urls import SiteRoot, canonical_url, default_site_root

REDIRECTS = [301, 302, 303, 307, 308]


def _header(response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


class EventSiteSpider(UsesParsePool, ReadsFrontier, Spider):
    name = "eventsite"
    site_name = "thecontext"  # what the mirror files this site's days and events under
    # Each URL is asked once a run by ``_request`` (``self.asked``, on disk): Scrapy's duplicate
    # filter would keep a second, in-memory set of every request's fingerprint.
    custom_settings = {"DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter"}

    def __init__(
        self,
        start_urls: list[str] | str | None = None,
        site_root: str | None = None,
        since=None,
        until=None,
        max_pages=0,
        full=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(start_urls, str):  # "scrapy crawl eventsite -a start_urls='a b'"
            start_urls = start_urls.split()
        if not start_urls:
            raise ValueError("the spider needs at least one start URL")
        self.start_urls = [canonical_url(url) for url in start_urls]
        self.site = SiteRoot.of(site_root or default_site_root(self.start_urls[0]))
        self.since, self.until = arguments.window(since, until)
        self.max_pages = int(max_pages or 0)
        self.full = arguments.flag(full)
        self.asked = AskedUrls()  # what this run asked for, and the known pages it found not due
        self.start_results: dict[str, str] = {}  # start URL -> "ok" or the failure

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.release_waiting, signal=signals.spider_idle)
        return spider

    def progress(self, stats) -> str:
        return site_progress(stats, "pages")

    @property
    def pages_not_due(self) -> int:
        return self.asked.not_due

    def closed(self, reason: str) -> None:
        if self.asked.waited:
            self.logger.info(
                "%d followed links waited on disk for room in the scheduler (REQUESTS_AHEAD)",
                self.asked.waited,
            )
        self.asked.close()
        super().closed(reason)

    @functools.cached_property
    def reading_rules(self) -> ReadingRules:
        return ReadingRules.from_settings(self.site, self.settings)

    @property
    def allowed_private_hosts(self) -> set[str]:
        """Hosts the user chose: fetched even when private (see the middleware)."""
        hosts = {urlsplit(url).hostname for url in [*self.start_urls, self.site.url]}
        return {host.lower() for host in hosts if host}

    async def start(self):
        self.parse_pool.start()  # the workers start while the first pages download
        for url in self.start_urls:
            request = self._request(url, start=True)
            if request is not None:
                yield request
        for day in self._window_days():
            request = self._request(self.site.url + f"news/{day:%Y/%m}/{day.day}/index.md")
            if request is not None:
                await self._room_in_queue()
                yield request
        for url in self.frontier.due_pages(self.site.url, everything=self.full):
            request = self._request(url)
            if request is not None:
                await self._room_in_queue()
                yield request

    async def _room_in_queue(self) -> None:
        """Wait while the scheduler is full (``REQUESTS_AHEAD``).

        Scrapy reads ``start()`` as fast as it yields, whether or not the downloader has room,
        so a ``--full`` resync of the whole record queued all its requests (each with its
        validators) in memory at once.  Read this way, the queue holds a few seconds of work."""
        while self._room() <= 0:
            await asyncio.sleep(0.05)

    @functools.cached_property
    def requests_ahead(self) -> int:
        return self.settings.getint("REQUESTS_AHEAD")

    def _room(self) -> int:
        """How many more requests the scheduler may hold (``REQUESTS_AHEAD``; 0: no limit).
        Asked for every followed link: the setting is read once."""
        most = self.requests_ahead
        scheduler = self.crawler.engine.scheduler if self.crawler.engine else None
        if not most or scheduler is None or not hasattr(scheduler, "__len__"):  # cannot say
            return 1
        return most - len(scheduler)

    def _released(self) -> list[Request]:
        """Requests for the links that waited, as many as the scheduler has room for."""
        room = self._room()
        if not self.asked.waiting or room <= 0:
            return []
        return [self._build(url) for url in self.asked.next_waiting(room)]

    def release_waiting(self) -> None:
        """When the crawl is idle, the links that still wait are asked for (``spider_idle``)."""
        released = self._released()
        for request in released:
            self.crawler.engine.crawl(request)
        if released:
            raise DontCloseSpider

    def _window_days(self) -> list[dt.date]:
        """Day pages to ask for directly: the window's, newest first.

        Without a lower bound only the last day is asked for and its
        "Previous Day" chain leads the way back.
        """
        if self.until is None:
            return []
        if self.since is None:
            return [self.until]
        count = (self.until - self.since).days + 1
        return [self.until - dt.timedelta(days=n) for n in range(count)]

    # -- requests ----------------------------------------------------------

    def in_window(self, url: str) -> bool:
        date = self.site.news_date(url)
        if date is None:
            # An undated page of the news tree (an about page, a README) is fetched once.
            return self.site.in_news(url) and self.frontier.known_page(url) is None
        return not ((self.since and date < self.since) or (self.until and date > self.until))

    @functools.cached_property
    def url_length_limit(self) -> int:
        return self.settings.getint("URLLENGTH_LIMIT")

    def _request(
        self, url: str, start: bool = False, always: bool = False, wait: bool = False
    ) -> Request | PageItem | None:
        """The request for a page that is due (or ``always``); a page that cannot be asked is an
        error item.  With ``wait`` (a followed link), the URL waits on disk while the scheduler is
        full (see ``crawler.asked``): the links a crawl meets outrun the pages it fetches."""
        met = self.asked.state(url)
        if met:
            return None
        if self.max_pages and self.asked.requested >= self.max_pages:
            return None
        if not start and not self.in_window(url):
            return None
        if not (start or always or self.full or self.frontier.is_due(url)):
            if met is None:
                self.asked.pass_over(url)
            return None
        self.asked.ask(url)
        limit = self.url_length_limit
        if limit and len(url) > limit:
            # Scrapy's UrlLengthMiddleware would drop the request without a word, and the
            # queued page would be asked again at every run: record why it is not fetched.
            error = f"size: URL of {len(url)} characters, over URLLENGTH_LIMIT {limit}; not fetched"
            return PageItem(url=url, kind="error", error=error, date=self._date_of(url))
        if wait and self._room() <= 0:
            self.asked.wait(url)
            return None
        return self._build(url, start)

    def _build(self, url: str, start: bool = False) -> Request:
        """The request for a page that was asked for, with the validators the mirror holds."""
        known = self.frontier.known_page(url)
        headers = {}
        if known and known["etag"]:
            headers["If-None-Match"] = known["etag"]
        if known and known["last_modified"]:
            headers["If-Modified-Since"] = known["last_modified"]
        return Request(
            url,
            callback=self.parse,
            errback=self.failed,
            headers=headers,
            # Redirects are handled here, not by RedirectMiddleware, so that an
            # old slug is recorded (and aliased to its event) even when its
            # target was already fetched.
            meta={
                "start_url": start,
                "known": known,
                "dont_redirect": True,
                "handle_httpstatus_list": [*REDIRECTS, 304],
                # Scrapy retries every OSError; a local file that is missing is not coming back
                # within the second (it cost a file:// crawl three reads of every dangling link).
                "dont_retry": url.startswith("file:"),
            },
            # Finish a day's events before walking on to older days.
            priority=0 if url.endswith("/index.md") else 1,
        )

    # -- responses ---------------------------------------------------------

    async def parse(self, response):
        request = response.request
        if request.meta.get("start_url"):
            self.start_results[canonical_url(request.url)] = "ok"
        body = response.body
        known = request.meta.get("known")
        item = PageItem(
            url=canonical_url(response.url),
            kind="error",
            http_status=response.status,
            content_hash=hashlib.sha256(body).hexdigest() if response.status != 304 else None,
            size=len(body) if response.status != 304 else None,
            etag=_header(response, "ETag"),
            last_modified=_header(response, "Last-Modified"),
            date=self._date_of(canonical_url(response.url)),
        )
        if known and (response.status == 304 or item.content_hash == known["content_hash"]):
            # What the mirror holds already: no parse, no writes; follow the stored links.
            item.kind, item.unchanged = known["kind"], True
            yield item
            for url in self.frontier.stored_links(item.url, item.kind):
                follow = self._request(url, wait=True)
                if follow is not None:
                    yield follow
            for request in self._released():
                yield request
            return
        if 300 <= response.status < 400:
            for output in self._redirect(item, response):
                yield output
            return
        try:
            reading = await self.parse_pool.run(read_page, body, response.url, self.reading_rules, item.url)
        except PoolBroken as exc:
            reading = PageReading(error=str(exc))
        if reading.error:
            item.error = reading.error
            yield item
            return
        item.parsed, item.kind, item.links = reading.parsed, reading.parsed.kind, reading.links
        item.normalised = reading.normalised
        yield item
        for url in item.links:
            follow = self._request(url, wait=True)
            if follow is not None:
                yield follow
        for request in self._released():
            yield request

    def _date_of(self, url: str) -> str | None:
        date = self.site.news_date(url)
        return date.isoformat() if date else None

    def _redirect(self, item: PageItem, response):
        item.kind = "redirect"
        location = response.headers.get("Location")
        target = self.site.resolve_location(location.decode("latin-1"), response.url) if location else None
        if target is None:
            item.kind = "error"
            item.error = "redirect without a usable Location"
            yield item
            return
        item.redirect_to = target
        item.links = [target] if self.site.in_news(target) else []
        if target == item.url:
            item.error = "redirect loop: redirects to itself"
        follow = self._request(target)
        if follow is None and target not in self.asked:
            item.error = "redirect leaves the site or the date window; not followed"
        yield item
        if follow is not None:
            yield follow

    def failed(self, failure):
        request = failure.request
        status = None
        if failure.check(HttpError):
            status = failure.value.response.status
            reason = f"HTTP {status}"
        elif failure.check(FileNotFoundError):
            reason = FILE_NOT_FOUND
        else:
            kind, detail = error_kind(failure)
            reason = f"{kind}: {detail}" if detail else kind
            if kind == "robots":
                reason = "robots: forbidden by robots.txt"
        url = canonical_url(request.url)
        if request.meta.get("start_url"):
            self.start_results[url] = reason
        self.logger.info("page failed: %s (%s)", url, reason)
        yield PageItem(url=url, kind="error", http_status=status, error=reason, date=self._date_of(url))
