"""Which addresses are public: the classifier the private-address guard and its middleware share.

A news site is on a public unicast address.  Everything else (loopback,
private, link-local, multicast, unspecified, reserved, cloud metadata, and the
IPv6 forms that carry or lead to an IPv4 address) is the user's own network
or nobody's, and a link written by others must not reach it.
"""

from __future__ import annotations

import ipaddress
import socket

from twisted.internet import abstract

SPECIAL_USE_TLDS = (".invalid", ".test", ".example")
CLOUD_METADATA = ipaddress.ip_address("169.254.169.254")
# IPv6 forms that carry (or lead to) an IPv4 address, and deprecated ranges: never a news site.
IPV6_REFUSED = [
    (ipaddress.ip_network("64:ff9b::/96"), "NAT64"),
    (ipaddress.ip_network("64:ff9b:1::/48"), "local-use NAT64"),
    (ipaddress.ip_network("2002::/16"), "6to4"),
    (ipaddress.ip_network("::ffff:0:0:0/96"), "IPv4-translated"),
    (ipaddress.ip_network("::/96"), "IPv4-compatible"),
    (ipaddress.ip_network("fec0::/10"), "site-local"),
]


def is_special_use(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host.endswith(SPECIAL_USE_TLDS) or host in {tld[1:] for tld in SPECIAL_USE_TLDS}


def _embedded_ipv4(ip: ipaddress.IPv6Address, network: ipaddress.IPv6Network) -> ipaddress.IPv4Address:
    packed = ip.packed
    if network.prefixlen == 16:  # 6to4: 2002:AABB:CCDD::/48
        return ipaddress.IPv4Address(packed[2:6])
    return ipaddress.IPv4Address(packed[12:16])  # NAT64, compatible, translated: the last 32 bits


def non_public(address: str) -> str | None:
    """Why ``address`` is not a public unicast address (a short label), or None when it is.

    Raises ``ValueError`` for text that is not an IP address; callers refuse then.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_unspecified:
            return "unspecified"
        if ip.is_loopback:
            return "loopback"
        if ip.ipv4_mapped is not None:
            inner = non_public(str(ip.ipv4_mapped))
            return f"IPv4-mapped {inner} {ip.ipv4_mapped}" if inner else None
        for network, label in IPV6_REFUSED:
            if ip in network:
                if network.prefixlen in (96, 16):
                    embedded = _embedded_ipv4(ip, network)
                    inner = non_public(str(embedded))
                    return f"{label} of {inner + ' ' if inner else ''}{embedded}"
                return label
    if ip == CLOUD_METADATA:
        return "cloud metadata"
    for label in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{label}"):
            return label.replace("_", "-")
    if not ip.is_global:
        return "non-public"
    return None


def literal_address(host: str) -> str | None:
    """The address of a host that is an IP literal, read as Twisted will connect to it; else None."""
    host = host.strip("[]")
    if abstract.isIPAddress(host):
        return str(ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, host)))
    if abstract.isIPv6Address(host):
        return str(ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, host.split("%", 1)[0])))
    return None


def refusal(host: str, addresses: list[str]) -> str | None:
    """The refusal of ``host`` resolved to ``addresses`` (every one checked), or None."""
    for address in addresses:
        try:
            why = non_public(address)
        except ValueError:
            why = "an address that cannot be read"
        if why:
            return f"private address: {host} is {address} ({why}); use --allow-private to fetch it"
    return None
