"""Downloader middlewares: what the mirror refuses to fetch.

A crawler that follows links written by others must not become a way to
reach a user's own network.  :class:`PrivateAddressMiddleware` refuses
requests to loopback, private, link-local and other non-public addresses,
except for the hosts of the start URLs and the site root (which the user
chose), unless ``ALLOW_PRIVATE`` is set (``--allow-private``).  Host names are
resolved before the check, so a public-looking name that points inward is
refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import IgnoreRequest


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
        for url in [*getattr(spider, "start_urls", []), getattr(getattr(spider, "site", None), "url", "")]:
            host = urlsplit(url).hostname
            if host:
                self.allowed_hosts.add(host.lower())

    async def process_request(self, request):
        if self.allow_all:
            return None
        parts = urlsplit(request.url)
        if parts.scheme not in ("http", "https"):
            return None
        host = (parts.hostname or "").lower()
        if host in self.allowed_hosts:
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
