"""Downloader middlewares: what the mirror refuses to fetch, and how it backs off.

A crawler that follows links written by others must not become a way to
reach a user's own network.  The guard is :mod:`crawler.guard`: a resolver
installed on the reactor that resolves each host name once, checks every
address it got, and hands the connection exactly the checked address.
:class:`PrivateAddressMiddleware` is its part above the download handler: it
refuses URLs whose host is a non-public IP literal (those never reach a
resolver), fails special-use names (RFC 6761: ``.invalid``, ``.test``,
``.example``) as unresolvable without asking any DNS server, and tells the
resolver which hosts the user chose (the start URLs, the site root, the
archive API: the spider's ``allowed_private_hosts``) and whether
``ALLOW_PRIVATE`` is set (``--allow-private``).

:class:`QuietRobotsTxtMiddleware` is Scrapy's robots.txt middleware without
its traceback: an unreachable robots.txt is one line at INFO (the check of
the source itself records why the host failed).

:class:`HostBackoffMiddleware` keeps source checking polite: it honours
``Retry-After`` on 429 and 503 (retrying once within the run when the wait
is short), and widens the delay of a host's download slot on 5xx answers.
:class:`HostSpacingMiddleware` makes the delay hold where it is promised, at the
host: a host's next request leaves a full delay after its last answer ended.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
import urllib.request
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Request
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred
from twisted.internet.error import DNSLookupError

from crawler.addresses import is_special_use, literal_address, refusal
from crawler.guard import POLICY, PrivateAddressRefused

logger = logging.getLogger(__name__)


class PrivateAddressMiddleware:
    def __init__(self, crawler):
        self.crawler = crawler
        self.allow_all = crawler.settings.getbool("ALLOW_PRIVATE")
        self.allowed_hosts: set[str] = set()
        self.registered: tuple[set[str], bool] | None = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def spider_opened(self, spider):
        self.allowed_hosts |= {h.lower() for h in getattr(spider, "allowed_private_hosts", ())}
        # The resolver also lets the connection reach the proxies the environment names (often private).
        self.registered = (self.allowed_hosts | proxy_hosts(self.crawler.settings), self.allow_all)
        POLICY.add(*self.registered)

    def spider_closed(self, spider):
        if self.registered is not None:
            POLICY.remove(*self.registered)
            self.registered = None

    async def process_request(self, request):
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            return None
        host = (parts.hostname or "").lower()
        if is_special_use(host):
            raise DNSLookupError(f"{host}: a special-use name (RFC 6761) never resolves")
        if self.allow_all or host in self.allowed_hosts:
            return None
        try:
            address = literal_address(host)
        except (OSError, ValueError):
            address = host  # not readable as the address Twisted would connect to: refuse
        if address is None:
            return None  # a name: the resolver checks what it resolves to (crawler.guard)
        why = refusal(host, [address])
        if why:
            raise PrivateAddressRefused(why)
        return None


def proxy_hosts(settings) -> set[str]:
    """The hosts of the proxies Scrapy's HttpProxyMiddleware takes from the environment."""
    if not settings.getbool("HTTPPROXY_ENABLED"):
        return set()
    hosts = set()
    for kind, url in urllib.request.getproxies().items():
        if kind == "no":  # no_proxy: a list of hosts, not a proxy
            continue
        host = urlsplit(url if "://" in url else f"http://{url}").hostname
        if host:
            hosts.add(host.lower())
    return hosts


class QuietRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's RobotsTxtMiddleware, logging an unreachable robots.txt in one line, not a traceback.

    A host that cannot be reached fails its robots.txt request first; Scrapy
    logs that at ERROR with the whole traceback, once per host.  The source
    check that follows records the failure (``link_checks.error``), so here it
    is one INFO line and a stat, and the host is crawled as if it had no
    robots.txt (as Scrapy does).
    """

    async def robot_parser(self, request):
        netloc = urlparse_cached(request).netloc
        if netloc not in self._parsers:
            self._parsers[netloc] = Deferred()
            url = urlparse_cached(request)
            robotsreq = Request(
                f"{url.scheme}://{netloc}/robots.txt",
                priority=self.DOWNLOAD_PRIORITY,
                meta={"dont_obey_robotstxt": True},
                callback=NO_CALLBACK,
            )
            try:
                resp = await self.crawler.engine.download_async(robotsreq)
                await self._parse_robots(resp, netloc, request)
            except Exception as exc:  # noqa: BLE001 - any failure: no robots.txt, as in Scrapy
                if not isinstance(exc, IgnoreRequest):
                    logger.info("robots.txt of %s not read: %s: %s", netloc, type(exc).__name__, exc)
                    self._stats.inc_value("robotstxt/unreachable")
                self._robots_error(exc, netloc)
            self._stats.inc_value("robotstxt/request_count")
        parser = self._parsers[netloc]
        if isinstance(parser, Deferred):
            return await maybe_deferred_to_future(parser)
        return parser


def retry_after_seconds(value: bytes | str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now or time.time()))


class HostBackoffMiddleware:
    """Slow a host down when it asks to be left alone, and honour Retry-After."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.max_delay = crawler.settings.getfloat("BACKOFF_MAX_DELAY")
        self.base_delay = crawler.settings.getfloat("DOWNLOAD_DELAY")
        self.max_wait = crawler.settings.getfloat("RETRY_AFTER_MAX")
        self.slot_settings = crawler.settings.getdict("DOWNLOAD_SLOTS")

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _slot(self, request):
        key = request.meta.get("download_slot")
        return self.crawler.engine.downloader.slots.get(key) if key else None

    def process_response(self, request, response):
        slot = self._slot(request)
        status = response.status
        rate_limited = status == 429 or (status == 503 and b"Retry-After" in response.headers)
        if rate_limited:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None and wait <= self.max_wait and not request.meta.get("rate_limit_retried"):
                logger.info("%s asks to wait %.0fs; retrying after that", request.url, wait)
                if slot is not None:
                    slot.delay = max(slot.delay, wait)
                retry = request.replace(dont_filter=True)
                retry.meta["rate_limit_retried"] = True
                return retry
            self._back_off(slot)  # a long wait: the source is deferred to a later run
            request.meta["dont_retry"] = True  # RetryMiddleware would ask again at once
            return response
        if status >= 500:
            self._back_off(slot)
        elif slot is not None and slot.delay > self._base(request):
            slot.delay = max(self._base(request), slot.delay / 2)
        return response

    def _base(self, request) -> float:
        """The slot's own delay (DOWNLOAD_SLOTS: the archive's), or DOWNLOAD_DELAY."""
        own = self.slot_settings.get(request.meta.get("download_slot"), {})
        return float(own.get("delay", self.base_delay))

    def _back_off(self, slot) -> None:
        """Double the host's delay (from DOWNLOAD_DELAY up to BACKOFF_MAX_DELAY); none while it is 0."""
        if slot is not None:
            slot.delay = min(self.max_delay, max(slot.delay * 2, self.base_delay))


class HostSpacingMiddleware:
    """One request at a time per host, the next sent a full delay after the last one's answer ended.

    Scrapy spaces a download slot's requests from when it *sends* them (``Slot.lastseen``,
    taken when a request leaves the slot's queue); what happens between that moment and the
    request reaching the host (the middlewares after the queue, name resolution, the connection,
    a busy event loop) is not counted, so a request that left late and the next that left on
    time reach the host closer than the delay (0.06 s apart for 0.3 s, seen on a loaded
    two-core machine).  A host saw request *n* before it answered it, and this process got the
    answer before it sends request *n + 1*; so spacing *n + 1* a delay after *n*'s answer (or
    failure) ended holds the delay at the host, whatever the load.

    It applies to hosts whose slot allows one request in flight (``SOURCE_CONCURRENCY_PER_HOST``
    1, the default; ``ARCHIVE_CONCURRENCY`` for the archive): with more there is no "previous"
    request, and Scrapy's spacing is kept.  The delay is the slot's current one, so the
    back-off and ``Retry-After`` of :class:`HostBackoffMiddleware` are counted from the answer
    too.  It sits last before the download handler (``process_request`` after every other
    middleware, ``process_response``/``process_exception`` before them), so that every request
    that takes a turn reaches the handler and gives the turn back when it returns or fails.
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.settings = crawler.settings
        self.slot_settings = crawler.settings.getdict("DOWNLOAD_SLOTS")
        self.turns: dict[str, asyncio.Lock] = {}
        self.ended: dict[str, float] = {}
        self.holding: dict[Request, str] = {}

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def _slot(self, request) -> tuple[str, int, float]:
        downloader = self.crawler.engine.downloader
        key = downloader.get_slot_key(request)
        slot = downloader.slots.get(key)
        if slot is not None:
            return key, slot.concurrency, slot.delay
        own = self.slot_settings.get(key, {})
        concurrency = own.get("concurrency", self.settings.getint("CONCURRENT_REQUESTS_PER_DOMAIN"))
        return key, int(concurrency), float(own.get("delay", self.settings.getfloat("DOWNLOAD_DELAY")))

    async def process_request(self, request):
        key, concurrency, _delay = self._slot(request)
        if concurrency != 1:
            return None
        turn = self.turns.setdefault(key, asyncio.Lock())
        await turn.acquire()
        self.holding[request] = key
        _key, _concurrency, delay = self._slot(request)  # the slot's delay now (backed off meanwhile?)
        wait = self.ended.get(key, float("-inf")) + delay - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        return None

    def _give_back(self, request) -> None:
        key = self.holding.pop(request, None)
        if key is not None:
            self.ended[key] = time.monotonic()
            self.turns[key].release()

    def process_response(self, request, response):
        self._give_back(request)
        return response

    def process_exception(self, request, exception):
        self._give_back(request)
        return None
