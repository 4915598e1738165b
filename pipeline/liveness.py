"""When is a cited source dead?  The policy of ``shared/docs/DEADLINKS.md``.

Two pure steps, kept apart from I/O so that every rule is testable alone:

1. :func:`classify` turns the facts of one check (status, final URL, error)
   into an *outcome*: ``ok``, ``gone``, ``soft404``, ``blocked``,
   ``rate_limited``, ``transient`` or ``unknown``.  Facts that need the whole
   run (the per-host random-sibling probe, redirect targets shared by many
   URLs, a host failing as a whole) refine outcomes later, in
   :mod:`pipeline.check_classify` and :mod:`pipeline.settle`.
2. :func:`advance` moves a source's liveness state with one outcome:
   three strikes, each at least ``STRIKE_INTERVAL`` after the previous one,
   make a source dead; any good check makes it alive at once; blocked,
   rate-limited and unknown checks never strike.

Like InternetArchiveBot, and unlike one-run checkers, a single bad answer
never makes a source dead: that is what keeps false alarms rare.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

OUTCOMES = ("ok", "gone", "soft404", "blocked", "rate_limited", "transient", "unknown")
STRIKING = {"gone", "soft404", "transient"}
GONE_STATUSES = {404, 410}
BLOCKED_STATUSES = {401, 402, 403, 407, 451, 999}
NOT_FOUND_URL = re.compile(r"(/404(\.\w+)?(/|$)|not[-_]?found|/error(\.\w+)?(/|$)|/404/)", re.I)
# Errors of the fetch itself (see crawler.spiders.sources.error_kind).
TRANSIENT_ERRORS = {"timeout", "refused", "reset", "tls", "empty", "too_many_redirects", "server"}
GONE_ERRORS = {"dns"}
BLOCKED_ERRORS = {"robots", "private"}
# Failures before any answer from the host: the name did not resolve, nothing listened, nothing came
# back in time, no route.  When most hosts of a run fail so, the checking machine is offline
# (pipeline.settle.network_of), and a host's NXDOMAIN is no longer evidence.
NETWORK_ERRORS = frozenset(
    {"dns", "refused", "timeout", "NoRouteError", "ConnectError", "ConnectingCancelledError"}
)


@dataclass(frozen=True)
class Policy:
    """Every threshold of the policy; each is a setting (see crawler/settings.py)."""

    dead_strikes: int = 3
    strike_interval: dt.timedelta = dt.timedelta(days=3)
    alive_recheck: dt.timedelta = dt.timedelta(days=7)
    blocked_recheck: dt.timedelta = dt.timedelta(days=7)
    dead_recheck: dt.timedelta = dt.timedelta(days=30)
    retry_later: dt.timedelta = dt.timedelta(days=1)

    @classmethod
    def from_settings(cls, settings) -> Policy:
        days = lambda name: dt.timedelta(days=settings.getfloat(name))  # noqa: E731
        return cls(
            dead_strikes=settings.getint("DEAD_STRIKES"),
            strike_interval=days("STRIKE_INTERVAL_DAYS"),
            alive_recheck=days("ALIVE_RECHECK_DAYS"),
            blocked_recheck=days("BLOCKED_RECHECK_DAYS"),
            dead_recheck=days("DEAD_RECHECK_DAYS"),
            retry_later=days("RETRY_LATER_DAYS"),
        )


def redirected_home(url: str, final_url: str | None) -> bool:
    """A page that redirects to its site's root page: the classic soft 404."""
    if not final_url or final_url == url:
        return False
    final = urlsplit(final_url)
    return final.path in ("", "/") and not final.query and urlsplit(url).path not in ("", "/")


def classify(
    url: str,
    status: int | None,
    final_url: str | None,
    error: str | None,
    headers: dict[str, str] | None = None,
) -> str:
    """The outcome of one check, from its own facts only."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    if error:
        if error in GONE_ERRORS:
            return "gone"
        if error in BLOCKED_ERRORS:
            return "blocked"
        if error in TRANSIENT_ERRORS:
            return "transient"
        return "unknown"
    if status is None:
        return "unknown"
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return "blocked"
    if status == 429 or (status == 503 and "retry-after" in headers):
        return "rate_limited"
    if status in BLOCKED_STATUSES:
        return "blocked"
    if status in GONE_STATUSES:
        return "gone"
    if status >= 500 or status == 408:
        return "transient"
    if 200 <= status < 300:
        if redirected_home(url, final_url):
            return "soft404"
        if final_url and final_url != url and NOT_FOUND_URL.search(urlsplit(final_url).path):
            return "soft404"
        return "ok"
    return "unknown"


@dataclass(frozen=True)
class Liveness:
    """A source's liveness state, as stored on its ``sources`` row."""

    status: str = "unchecked"  # unchecked, alive, failing, dead, blocked
    strikes: int = 0
    last_strike_at: dt.datetime | None = None
    dead_since: dt.datetime | None = None
    next_check_at: dt.datetime | None = None


def advance(
    state: Liveness, outcome: str, now: dt.datetime, policy: Policy, retry_after: dt.timedelta | None = None
) -> Liveness:
    """The state after one check with ``outcome`` at ``now``."""
    if outcome == "ok":
        return Liveness(status="alive", next_check_at=now + policy.alive_recheck)
    if outcome == "blocked":
        return replace(state, status="blocked", next_check_at=now + policy.blocked_recheck)
    if outcome == "rate_limited":
        return replace(state, next_check_at=now + (retry_after or policy.retry_later))
    if outcome not in STRIKING:  # unknown, or a failure the run excused (an outage)
        return replace(state, next_check_at=now + policy.retry_later)
    counts = state.last_strike_at is None or now - state.last_strike_at >= policy.strike_interval
    strikes = state.strikes + 1 if counts else state.strikes
    last_strike_at = now if counts else state.last_strike_at
    strikes = max(strikes, 1)
    if strikes >= policy.dead_strikes:
        return Liveness(
            status="dead",
            strikes=strikes,
            last_strike_at=last_strike_at,
            dead_since=state.dead_since or now,
            next_check_at=now + policy.dead_recheck,
        )
    return Liveness(
        status="failing",
        strikes=strikes,
        last_strike_at=last_strike_at,
        next_check_at=last_strike_at + policy.strike_interval,
    )
