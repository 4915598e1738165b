"""The private-address guard, at the connection layer: the address checked is the address connected to.

A crawler that follows links written by others (anyone can edit the portal)
must not become a way to reach the user's own network.  Checking a host name
before the download and letting the connection look it up again is not
enough: a flaky resolver, or a DNS server that answers differently the second
time (DNS rebinding), gets a private address fetched.  So the check sits in
the resolver itself.

:class:`GuardedResolver` is installed on the Twisted reactor in place of
Scrapy's ``CachingThreadedResolver`` (setting ``TWISTED_DNS_RESOLVER``).
Scrapy's HTTP/1.1 download handler connects with ``TCP4ClientEndpoint``, that
is ``reactor.connectTCP(name, port)``, which asks ``reactor.resolver`` for one
IPv4 address and connects to exactly that address.  ``getHostByName`` here
resolves the name once (all address families), checks every address it got,
and returns one of those checked addresses, or fails:

* any address non-public (see :func:`crawler.addresses.non_public`) and the host not chosen by
  the user: :class:`PrivateAddressRefused`, an ``IgnoreRequest`` whose message
  starts with "private address" (``crawler.failures`` names it ``private``,
  the liveness rules call it ``blocked``, never a dead-link strike);
* an address that cannot be classified: refused the same way;
* no answer, or no IPv4 address: ``DNSLookupError`` (a ``dns`` failure), and
  nothing is cached.

Redirects, retries and robots.txt requests all connect through the same
reactor, so they pass the same gate.  What is cached is the list of addresses
a name resolved to; the verdict is computed from those very addresses on
every use, under the policy in force then.

IP literals in URLs never reach a resolver (Twisted connects to them
directly), so :class:`crawler.middlewares.PrivateAddressMiddleware` checks
them, with the same classifier, and registers the hosts the user chose
(:data:`POLICY`).  Special-use names (RFC 6761: ``.invalid``, ``.test``,
``.example``) fail as unresolvable without asking any DNS server.
"""

from __future__ import annotations

import itertools
import logging
import socket
from collections import Counter
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.utils.datatypes import LocalCache
from twisted.internet import abstract, defer, threads
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IHostnameResolver, IHostResolution, IResolverSimple
from zope.interface import implementer

from crawler.addresses import is_special_use, literal_address, refusal

logger = logging.getLogger(__name__)

class PrivateAddressRefused(IgnoreRequest):
    """A request refused because its host is, or resolves to, a non-public address."""


class Policy:
    """Which hosts may be private: the hosts the user chose, per open crawl (a process-wide registry).

    The resolver belongs to the reactor, which all crawls of a process share;
    each crawl's middleware adds its spider's hosts when it opens and takes
    them back when it closes.
    """

    def __init__(self):
        self.hosts: Counter[str] = Counter()
        self.everything = 0  # open crawls with ALLOW_PRIVATE

    def allows(self, host: str) -> bool:
        return self.everything > 0 or self.hosts[host.lower().rstrip(".")] > 0

    def add(self, hosts, everything: bool) -> None:
        self.hosts.update(h.lower().rstrip(".") for h in hosts)
        self.everything += bool(everything)

    def remove(self, hosts, everything: bool) -> None:
        self.hosts.subtract(h.lower().rstrip(".") for h in hosts)
        self.hosts = +self.hosts
        self.everything -= bool(everything)


POLICY = Policy()


def lookup(name: str) -> list[str]:
    """Every address ``name`` resolves to (blocking: runs in the reactor's thread pool)."""
    try:
        infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DNSLookupError(f"{name}: {exc}") from exc
    return list(dict.fromkeys(info[4][0] for info in infos))


def checked_address(name: str, addresses: list[str], allowed: bool = False) -> str:
    """The IPv4 address to connect to for ``name``, after checking every one of ``addresses``."""
    if not allowed:
        why = refusal(name, addresses)
        if why:
            raise PrivateAddressRefused(why)
    ipv4 = [a for a in addresses if abstract.isIPAddress(a)]
    if not ipv4:
        raise DNSLookupError(f"{name}: no IPv4 address")
    return ipv4[0]


@implementer(IHostResolution)
class _Resolution:
    def __init__(self, name: str):
        self.name = name

    def cancel(self) -> None:  # a lookup in a thread cannot be stopped; its answer is dropped
        pass


@implementer(IHostnameResolver, IResolverSimple)
class GuardedResolver:
    """The reactor's resolver: resolve once, check every address, hand over only checked ones.

    Installed as both of the reactor's resolvers.  As ``nameResolver``
    (``IHostnameResolver``) it serves ``HostnameEndpoint``, which is what
    Twisted's ``Agent`` (Scrapy's HTTP/1.1 handler) connects with: the
    endpoint connects to the addresses delivered here, as IP literals, and
    looks nothing up again.  As ``resolver`` (``IResolverSimple``) it serves
    ``reactor.connectTCP(name, ...)`` (Scrapy's proxy tunnel), which connects
    to the one address returned.

    A refusal cannot travel through ``IHostnameResolver`` (it has no error
    channel: no address would read as a DNS failure), so a refused name is
    delivered as one address whose host is a marker name under ``.invalid``;
    connecting to it asks ``reactor.resolver``, which is this object again,
    and fails with the :class:`PrivateAddressRefused` recorded for the marker.
    Nothing can connect to a marker: ``.invalid`` never resolves anywhere.
    """

    def __init__(
        self, reactor, cache_size: int, timeout: float, allowed=(), allow_all=False, policy: Policy = POLICY
    ):
        self.reactor = reactor
        self.timeout = timeout
        self.policy = policy
        self.allowed = {h.lower() for h in allowed if h}
        self.allow_all = allow_all
        self.cache: LocalCache[str, list[str]] = LocalCache(cache_size)
        self.refusals: LocalCache[str, str] = LocalCache(1000)  # marker name -> refusal
        self.markers = itertools.count(1)

    @classmethod
    def from_crawler(cls, crawler, reactor):
        # ``crawler`` is the CrawlerProcess: its settings are the command's (``--allow-private``),
        # and the demo's server, where the demo's routing handler sends every request on purpose.
        settings = crawler.settings
        size = settings.getint("DNSCACHE_SIZE") if settings.getbool("DNSCACHE_ENABLED") else 0
        demo = urlsplit(settings.get("DEMO_SERVER") or "").hostname
        return cls(
            reactor, size, settings.getfloat("DNS_TIMEOUT"), {demo}, settings.getbool("ALLOW_PRIVATE")
        )

    def install_on_reactor(self) -> None:
        self.reactor.installNameResolver(self)
        self.reactor.resolver = self  # not the simplifier installNameResolver puts there: it drops errors

    def allows(self, name: str) -> bool:
        return self.allow_all or name in self.allowed or self.policy.allows(name)

    def addresses(self, name: str) -> defer.Deferred:
        """Every address of ``name``: one lookup (or the cached answer of one), nothing checked yet."""
        literal = literal_address(name)
        if literal is not None:
            return defer.succeed([literal])
        if is_special_use(name):
            return defer.fail(DNSLookupError(f"{name}: a special-use name (RFC 6761) never resolves"))
        if name in self.cache:
            return defer.succeed(self.cache[name])
        d = threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), lookup, name)
        if self.timeout:
            d.addTimeout(self.timeout, self.reactor, onTimeoutCancel=_timed_out(name))
        if self.cache.limit:
            d.addCallback(self._remember, name)  # a failed lookup is never cached
        return d

    def _remember(self, addresses: list[str], name: str) -> list[str]:
        self.cache[name] = addresses
        return addresses

    # IHostnameResolver
    def resolveHostName(
        self, resolutionReceiver, hostName: str, portNumber=0, addressTypes=None, transportSemantics="TCP"
    ):
        name = hostName.lower().rstrip(".")
        resolution = _Resolution(hostName)
        resolutionReceiver.resolutionBegan(resolution)
        types = tuple(addressTypes) if addressTypes else (IPv4Address, IPv6Address)

        def refuse(why: str) -> None:
            marker = f"private-address-refused-{next(self.markers)}.invalid"
            self.refusals[marker] = why
            resolutionReceiver.addressResolved(IPv4Address("TCP", marker, portNumber))

        def deliver(addresses: list[str]) -> None:
            why = None if self.allows(name) else refusal(name, addresses)
            if why:
                return refuse(why)
            checked = [(IPv4Address if abstract.isIPAddress(a) else IPv6Address, a) for a in addresses]
            for kind, address in checked:
                if kind in types:
                    resolutionReceiver.addressResolved(kind("TCP", address, portNumber))

        def unresolved(failure) -> None:
            logger.debug("%s does not resolve: %s", hostName, failure.getErrorMessage())

        def check_failed(failure) -> None:  # a fault in the check is a refusal, never a pass
            refuse(f"private address: {name} could not be checked ({failure.getErrorMessage()})")

        d = self.addresses(name)
        d.addCallbacks(deliver, unresolved)
        d.addErrback(check_failed)
        d.addBoth(lambda _: resolutionReceiver.resolutionComplete())
        return resolution

    # IResolverSimple
    def getHostByName(self, name: str, timeout=()) -> defer.Deferred:
        name = name.lower().rstrip(".")
        if name in self.refusals:
            return defer.fail(PrivateAddressRefused(self.refusals.pop(name)))
        d = self.addresses(name)
        d.addCallback(lambda addresses: checked_address(name, addresses, self.allows(name)))
        d.addErrback(_as_refusal, name)
        return d


def _as_refusal(failure, name: str):
    """A fault in the check is a refusal, never a pass (a DNS failure or a refusal stays what it is)."""
    if failure.check(DNSLookupError, PrivateAddressRefused):
        return failure
    raise PrivateAddressRefused(f"private address: {name} could not be checked ({failure.getErrorMessage()})")


def _timed_out(name: str):
    def fail(result, timeout):
        raise DNSLookupError(f"{name}: no answer in {timeout:g}s")

    return fail
