"""Classify one source check: its own facts, then its host's answer for a page that does not exist.

:func:`pipeline.liveness.classify` judges a check by what it saw (status, final URL,
error).  Many hosts answer 200 with a "sorry, not found" page instead of a 404 (a soft
404), which those facts cannot show.  So each host is asked, once per ``PROBE_TTL_DAYS``,
for a random sibling of a cited page (the spider's probe; kept in ``hosts`` by
:class:`HostProbes`), and a 200 page that looks like that answer (same final URL, or
nearly the same words) is a soft 404.  Deciding this per check, as it arrives, means
the check's row is right when it is written; only what needs the whole run is left to
:mod:`pipeline.settle`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from crawler.items import CheckItem, ProbeItem
from crawler.middlewares import retry_after_seconds
from pipeline.extract import is_html, page_words, similarity, tokens
from pipeline.liveness import classify
from pipeline.urls import canonical_url

PROBE_NOTE = "looks like the host's page for a missing URL (random-sibling probe)"


@dataclass(frozen=True)
class HostProbe:
    """How a host answered for a page that does not exist."""

    status: int | None
    final_url: str | None
    tokens: frozenset[str]


@dataclass(frozen=True)
class Verdict:
    """What a check found, ready to store."""

    outcome: str
    note: str | None
    final_url: str | None  # canonical
    html: str | None  # the page's text, when it is HTML
    retry_after: dt.timedelta | None = None  # the wait a rate-limited host asked for


def looks_missing(
    url: str,
    final_url: str | None,
    html: str,
    probe: HostProbe | None,
    threshold: float,
    words: list[str] | None = None,
) -> bool:
    """Does this 200 page look like what its host serves for a page that does not exist?
    (``words``: the page's, when the parse pool took them; else they are taken here.)"""
    if urlsplit(url).path in ("", "/"):
        return False  # a site's root page is never a soft 404
    if not probe or probe.status is None or not 200 <= probe.status < 300:
        return False  # the host answers missing pages honestly (or we cannot tell)
    if probe.final_url and canonical_url(probe.final_url) == final_url and final_url != url:
        return True
    page = set(words) if words is not None else tokens(html)
    return similarity(page, probe.tokens) >= threshold


def judge(item: CheckItem, probe_of, threshold: float) -> Verdict:
    """The verdict on one check; ``probe_of(host)`` gives the host's :class:`HostProbe` (or None)."""
    final_url = canonical_url(item.final_url) if item.final_url else None
    outcome = classify(item.url, item.http_status, final_url, item.error, item.headers)
    html = None
    if item.body is not None and is_html(item.content_type, item.body):
        html = item.body.decode("utf-8", "replace")
    note = item.detail
    if outcome == "ok" and html is not None:
        probe = probe_of(urlsplit(item.url).netloc.lower())
        words = getattr(item.extracted, "words", None)
        if looks_missing(item.url, final_url, html, probe, threshold, words):
            outcome, note = "soft404", PROBE_NOTE
    wait = None
    if outcome == "rate_limited":
        seconds = retry_after_seconds(item.headers.get("retry-after"))
        wait = dt.timedelta(seconds=seconds) if seconds else None
    return Verdict(outcome, note, final_url, html, wait)


class HostProbes:
    """The probe columns of ``hosts``: written when a probe answers, read once per host per run."""

    def __init__(self, db, clock):
        self.db = db
        self.clock = clock
        self.cache: dict[str, HostProbe | None] = {}

    def keep(self, item: ProbeItem) -> None:
        page_tokens = item.words
        if page_tokens is None and item.body is not None and is_html(item.content_type, item.body):
            page_tokens = page_words(item.body)
        with self.db.atomic():
            self.db["hosts"].upsert(
                {
                    "host": item.host,
                    "probe_url": item.probe_url,
                    "probe_status": item.http_status,
                    "probe_final_url": item.final_url,
                    "probe_tokens": json.dumps(page_tokens) if page_tokens is not None else None,
                    "probed_at": self.clock.iso(),
                },
                pk="host",
            )
        self.cache.pop(item.host, None)

    def __call__(self, host: str) -> HostProbe | None:
        if host not in self.cache:
            row = self.db.execute(
                "SELECT probe_status, probe_final_url, probe_tokens FROM hosts WHERE host = ?", [host]
            ).fetchone()
            self.cache[host] = (
                HostProbe(row[0], row[1], frozenset(json.loads(row[2] or "[]"))) if row else None
            )
        return self.cache[host]
