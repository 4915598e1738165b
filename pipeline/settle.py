"""Settle a run of source checks: what only the whole run shows, as pure functions over rows.

Each check's outcome is decided when it arrives (:mod:`pipeline.check_classify`), but some
facts need every check of the run first:

* many cited URLs redirected to one page: that page means "missing" (a soft 404);
* every check of a host failed transiently: the host is down, not its pages (an outage:
  its sources are excused, no strikes);
* most hosts of the run failed at the network level (no name, nothing listening, no
  answer in time): the checking machine is offline, not the web (an *offline run*: no
  strikes for anyone; :func:`network_of`);
* then each checked source's liveness moves one step (:func:`pipeline.liveness.advance`);
* failing and dead sources without an archived copy are looked up in the Internet Archive
  for the end of the day of the earliest event citing them, and its JSON answer is read.

The rules take plain rows and return decisions (no sqlite, no Scrapy), so that each is
unit-tested alone (``tests/test_settle.py``).  :mod:`pipeline.settlement` is the thin part
that reads a run's rows, applies these rules and writes the decisions in batches.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from pipeline.clock import iso, parse_instant
from pipeline.liveness import NETWORK_ERRORS, STRIKING, Liveness, Policy, advance

OUTAGE_NOTE = "host outage: every check of the host failed"


@dataclass(frozen=True)
class Rules:
    """The run-level thresholds; each is a setting (see crawler/settings.py)."""

    policy: Policy = Policy()
    outage_min_checks: int = 2
    shared_redirects: int = 3
    offline_min_hosts: int = 5
    offline_share: float = 0.5

    @classmethod
    def from_settings(cls, settings) -> Rules:
        return cls(
            policy=Policy.from_settings(settings),
            outage_min_checks=settings.getint("OUTAGE_MIN_CHECKS"),
            shared_redirects=settings.getint("SOFT404_SHARED_REDIRECTS"),
            offline_min_hosts=settings.getint("OFFLINE_MIN_HOSTS", cls.offline_min_hosts),
            offline_share=settings.getfloat("OFFLINE_SHARE", cls.offline_share),
        )


@dataclass(frozen=True)
class Check:
    """A ``link_checks`` row of the run."""

    id: int
    source_id: int
    url: str
    outcome: str
    final_url: str | None = None
    redirects: int = 0
    checked_at: str | None = None
    error: str | None = None  # the fetch's failure (crawler.failures.error_kind), if it failed


@dataclass(frozen=True)
class SourceLiveness:
    """A ``sources`` row's liveness, before the run."""

    state: Liveness = Liveness()
    first_failed_at: str | None = None

    @classmethod
    def from_row(cls, status, strikes, last_strike_at, dead_since, first_failed_at) -> SourceLiveness:
        instant = lambda text: parse_instant(text) if text else None  # noqa: E731
        state = Liveness(status or "unchecked", strikes or 0, instant(last_strike_at), instant(dead_since))
        return cls(state, first_failed_at)


@dataclass(frozen=True)
class Network:
    """How the run's hosts answered: ``unreachable`` of ``hosts`` failed at the network level."""

    hosts: int = 0
    unreachable: int = 0
    errors: tuple[tuple[str, int], ...] = ()  # the network errors of the unreachable hosts, most first
    offline: bool = False

    def describe(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in self.errors)
        return f"{self.unreachable} of {self.hosts} hosts failed at the network level ({kinds})"


@dataclass
class Settlement:
    demoted: dict[int, str] = field(default_factory=dict)  # check id -> why its "ok" is a soft 404
    outages: set[int] = field(default_factory=set)  # ids of the checks of hosts that were down
    excused: set[int] = field(default_factory=set)  # source ids
    liveness: dict[int, dict] = field(default_factory=dict)  # source id -> its new ``sources`` columns
    network: Network = field(default_factory=Network)
    settled: int = 0  # sources whose decisions are written (settle_run)
    stopped: bool = False  # settle_run was asked to stop before it wrote every decision

    @property
    def offline(self) -> bool:
        return self.network.offline


def shared_redirect_targets(checks: Iterable[Check], threshold: int) -> dict[int, str]:
    """Good checks redirected to a page that at least ``threshold`` cited URLs end on: soft 404s."""
    sources, ids = defaultdict(set), defaultdict(list)
    for check in checks:
        if check.outcome == "ok" and check.redirects > 0:
            sources[check.final_url].add(check.source_id)
            ids[check.final_url].append(check.id)
    return {
        check_id: f"redirect target shared by {len(cited)} cited URLs of the host"
        for target, cited in sources.items()
        if len(cited) >= threshold
        for check_id in ids[target]
    }


def host_outages(checks: Iterable[Check], min_checks: int) -> set[int]:
    """The checks of hosts where every check (at least ``min_checks``) failed transiently."""
    by_host: dict[str, list[Check]] = defaultdict(list)
    for check in checks:
        by_host[urlsplit(check.url).netloc.lower()].append(check)
    return {
        check.id
        for host_checks in by_host.values()
        if len(host_checks) >= min_checks and all(c.outcome == "transient" for c in host_checks)
        for check in host_checks
    }


def network_of(checks: Iterable[Check], min_hosts: int, share: float) -> Network:
    """Is the checking machine offline?  A host is unreachable when every check of it failed at
    the network level (:data:`pipeline.liveness.NETWORK_ERRORS`); the run is offline when at
    least ``min_hosts`` hosts were checked and at least ``share`` of them were unreachable.

    One host among many that resolve and answer is the host's fault (an NXDOMAIN stays a
    strike); most hosts at once is ours: a resolver down, a cable out, a firewall.
    """
    errors: dict[str, list[str | None]] = defaultdict(list)
    for check in checks:
        errors[urlsplit(check.url).netloc.lower()].append(check.error)
    unreachable = [kinds for kinds in errors.values() if all(kind in NETWORK_ERRORS for kind in kinds)]
    counts: dict[str, int] = defaultdict(int)
    for kinds in unreachable:
        for kind in set(kinds):
            counts[kind] += 1
    offline = len(errors) >= max(min_hosts, 1) and len(unreachable) >= share * len(errors)
    ordered = tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return Network(len(errors), len(unreachable), ordered, offline)


def next_liveness(
    source: SourceLiveness, outcome: str, now: dt.datetime, policy: Policy, retry_after=None
) -> dict:
    """The ``sources`` liveness columns after a run whose (last) check of it had ``outcome``."""
    new = advance(source.state, outcome, now, policy, retry_after)
    failing = new.status in ("failing", "dead")
    return {
        "status": new.status,
        "strikes": new.strikes,
        "last_strike_at": iso(new.last_strike_at),
        "dead_since": iso(new.dead_since),
        "next_check_at": iso(new.next_check_at),
        "first_failed_at": (source.first_failed_at or iso(now)) if failing else None,
    }


def settle(
    checks: list[Check],
    sources: Mapping[int, SourceLiveness],
    now: dt.datetime,
    rules: Rules,
    retry_after: Mapping[int, dt.timedelta] | None = None,
) -> Settlement:
    """Every decision of the run: soft 404s by shared redirect, outages, an offline run, then liveness."""
    retry_after = retry_after or {}
    demoted = shared_redirect_targets(checks, rules.shared_redirects)
    checks = [replace(c, outcome="soft404") if c.id in demoted else c for c in checks]
    outages = host_outages(checks, rules.outage_min_checks)
    excused = {c.source_id for c in checks if c.id in outages}
    network = network_of(checks, rules.offline_min_hosts, rules.offline_share)
    latest: dict[int, Check] = {}
    for check in checks:
        if check.source_id not in latest or check.id > latest[check.source_id].id:
            latest[check.source_id] = check
    if network.offline:  # our outage, not the web's: nothing this run saw strikes
        excused |= {source_id for source_id, check in latest.items() if check.outcome in STRIKING}
    liveness = {
        source_id: next_liveness(
            sources[source_id],
            "excused" if source_id in excused else check.outcome,
            now,
            rules.policy,
            retry_after.get(source_id),
        )
        for source_id, check in latest.items()
        if source_id in sources
    }
    return Settlement(demoted=demoted, outages=outages, excused=excused, liveness=liveness, network=network)


# -- the Internet Archive --------------------------------------------------------


@dataclass(frozen=True)
class ArchiveCandidate:
    """A failing or dead source without an archived copy, with the day of its earliest citing event."""

    source_id: int
    url: str
    archive_checked_at: str | None = None
    first_cited: str | None = None  # YYYY-MM-DD


@dataclass(frozen=True)
class ArchiveLookup:
    source_id: int
    url: str
    timestamp: str  # YYYYMMDDhhmmss, as the availability API takes it


def archive_lookups(
    candidates: Iterable[ArchiveCandidate], now: dt.datetime, recheck: dt.timedelta
) -> list[ArchiveLookup]:
    """Who to ask about: never asked, or asked longer than ``recheck`` ago (an empty answer then)."""
    asked_before = iso(now - recheck)  # stored instants are the clock's UTC ISO text: they sort as text
    return [
        ArchiveLookup(c.source_id, c.url, wayback_timestamp(c.first_cited, now))
        for c in candidates
        if c.archive_checked_at is None or c.archive_checked_at <= asked_before
    ]


def wayback_timestamp(day: str | None, now: dt.datetime) -> str:
    """The end of the citing event's day (or today's): the closest capture is then of that day or before."""
    return (day or now.date().isoformat()).replace("-", "") + "235959"


def read_archive_answer(body: bytes | None) -> tuple[str, str] | None:
    """The closest capture's URL and timestamp from the availability API's JSON, if it has one."""
    if body is None:
        return None
    try:
        closest = json.loads(body).get("archived_snapshots", {}).get("closest")
    except (ValueError, AttributeError):
        return None
    if isinstance(closest, dict) and closest.get("available") and closest.get("url"):
        return closest["url"], str(closest.get("timestamp") or "")
    return None
