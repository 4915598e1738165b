"""Downloader middlewares: what the mirror refuses to fetch, and how it backs off.

A crawler that follows links written by others must not become a way to
reach a user's own network.  :class:`PrivateAddressMiddleware` refuses
requests to loopback, private, link-local and other non-public addresses,
except for hosts the user chose (the start URLs, the site root, the archive
API: the spider's ``allowed_private_hosts``), unless ``ALLOW_PRIVATE`` is set
(``--allow-private``).  Host names are resolved before the check, so a
public-looking name that points inward is refused too.  Special-use names
(RFC 6761: ``.invalid``, ``.test``, ``.example``) fail as unresolvable
without asking any DNS server.

:class:`HostBackoffMiddleware` keeps source checking polite: it honours
``Retry-After`` on 429 and 503 (retrying once within the run when the wait
is short), and widens the delay of a host's download slot on 5xx answers.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import socket
import time
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import IgnoreRequest
from twisted.internet.error import DNSLookupError

logger = logging.getLogger(__name__)
SPECIAL_USE_TLDS = (".invalid", ".test", ".example")


def is_private(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class PrivateAddressMiddleware:
    def __init__(self, crawler):
        self.crawler = crawler
        self.allow_all = crawler.settings.getbool("ALLOW_PRIVATE")
        self.allowed_hosts: set[str] = set()
        self.verdicts: dict[str, str | None] = {}  # host -> refusal reason or None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def spider_opened(self, spider):
        self.allowed_hosts |= set(getattr(spider, "allowed_private_hosts", ()))

    async def process_request(self, request):
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            return None
        host = (parts.hostname or "").lower()
        if host.endswith(SPECIAL_USE_TLDS) or host in {tld[1:] for tld in SPECIAL_USE_TLDS}:
            raise DNSLookupError(f"{host}: a special-use name (RFC 6761) never resolves")
        if self.allow_all or host in self.allowed_hosts:
            return None
        if host not in self.verdicts:
            self.verdicts[host] = await self._verdict(host)
        if self.verdicts[host]:
            raise IgnoreRequest(self.verdicts[host])
        return None

    async def _verdict(self, host: str) -> str | None:
        try:
            addresses = [host] if _is_ip(host) else await _resolve(host)
        except OSError:
            return None  # let the download fail and record the DNS error
        for address in addresses:
            if is_private(address):
                return f"private address: {host} is {address}; use --allow-private to fetch it"
        return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def _resolve(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


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
        elif slot is not None and slot.delay > self.base_delay:
            slot.delay = max(self.base_delay, slot.delay / 2)
        return response

    def _back_off(self, slot) -> None:
        """Double the host's delay (from DOWNLOAD_DELAY up to BACKOFF_MAX_DELAY); none while it is 0."""
        if slot is not None:
            slot.delay = min(self.max_delay, max(slot.delay * 2, self.base_delay))
