"""Name why a download failed, in the words ``pages.error`` and ``link_checks.error`` use.

Scrapy 2.13+ wraps Twisted's errors in its own exceptions; both are mapped,
so the names stay the same whichever layer raised.
"""

from __future__ import annotations

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from twisted.internet.defer import CancelledError
from twisted.internet.error import (
    ConnectionLost,
    ConnectionRefusedError,
    DNSLookupError,
    SSLError,
    TCPTimedOutError,
    TimeoutError,
)
from twisted.web.client import ResponseFailed, ResponseNeverReceived

from crawler.guard import PrivateAddressRefused

# A file:// page that is not there: the 404 of a local copy (and, like a 404, it marks the page gone).
FILE_NOT_FOUND = "file not found"

KINDS = [
    ((DNSLookupError, CannotResolveHostError), "dns"),
    ((TimeoutError, TCPTimedOutError, DownloadTimeoutError), "timeout"),
    ((ConnectionRefusedError, DownloadConnectionRefusedError), "refused"),
    ((SSLError,), "tls"),
    ((ConnectionLost, ResponseFailed, ResponseNeverReceived, DownloadFailedError), "reset"),
    ((ResponseDataLossError,), "reset"),
]


def error_kind(failure) -> tuple[str, str]:
    """The short name of a failed download, and its detail."""
    detail = str(failure.value)[:300]
    if failure.check(CancelledError, DownloadCancelledError):
        return ("size" if "max size" in detail or "maxsize" in detail else "cancelled"), detail
    if failure.check(PrivateAddressRefused):  # the guard refused the address (crawler.guard)
        return "private", detail
    if failure.check(IgnoreRequest):
        if "robots.txt" in detail:
            return "robots", detail
        if detail.startswith("private address"):
            return "private", detail
        if "max redirections" in detail.lower():
            return "too_many_redirects", detail
        if "DOWNLOAD_MAXSIZE" in detail:  # a compressed body that grows past the limit: a gzip bomb
            return "size", detail
        return "ignored", detail
    for kinds, name in KINDS:
        if failure.check(*kinds):
            if name == "reset" and ("SSL" in detail or "certificate" in detail):
                return "tls", detail
            return name, detail
    return failure.type.__name__, detail
