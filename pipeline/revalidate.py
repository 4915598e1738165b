"""When to ask the site about a page again: due-based revalidation.

``wget --mirror -N`` asks about every page on every run; almost all of the
site's pages never change again, so a sync that does the same costs what
exists, not what changed.  Each page instead carries ``pages.next_check_at``:

* pages dated within ``REVALIDATE_EVERY_RUN_DAYS`` of now are due every run
  (the portal is edited for days afterwards and new events land there);
* older pages get an interval by age: ``REVALIDATE_WEEK_DAYS`` while the page's
  day is less than a week old, ``REVALIDATE_MONTH_DAYS`` while it is less than
  a month old, ``REVALIDATE_OLD_DAYS`` after;
* each time a page is found unchanged the interval is multiplied by
  ``REVALIDATE_STRETCH`` (up to ``REVALIDATE_MAX_DAYS``), and a change resets it;
* a fetch that failed for a reason that passes (timeout, 5xx, 429) is due
  again at the next run; a 404 is an answer, and ages like any other;
* intervals are spread by ``REVALIDATE_JITTER`` (±20%), by a hash of the URL:
  pages first mirrored together would otherwise all come due in the same
  sync every month, and a sync would cost the whole site once a month.

Pages without a date in their path (a front page) age as old pages; start
URLs are asked every run whatever their schedule.  This module is pure: the
store computes ``next_check_at`` with it and the spider only compares.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Revalidation:
    every_run_days: int = 2
    week_days: float = 1
    month_days: float = 7
    old_days: float = 30
    stretch: float = 2.0
    max_days: float = 365
    jitter: float = 0.2

    @classmethod
    def from_settings(cls, settings) -> Revalidation:
        return cls(
            every_run_days=settings.getint("REVALIDATE_EVERY_RUN_DAYS"),
            week_days=settings.getfloat("REVALIDATE_WEEK_DAYS"),
            month_days=settings.getfloat("REVALIDATE_MONTH_DAYS"),
            old_days=settings.getfloat("REVALIDATE_OLD_DAYS"),
            stretch=settings.getfloat("REVALIDATE_STRETCH"),
            max_days=settings.getfloat("REVALIDATE_MAX_DAYS"),
            jitter=settings.getfloat("REVALIDATE_JITTER"),
        )

    def base_interval(self, page_date: dt.date | None, now: dt.datetime) -> dt.timedelta:
        """The interval for a page of this age that has just changed."""
        if page_date is None:
            return dt.timedelta(days=self.old_days)
        age = (now.date() - page_date).days
        if age < self.every_run_days:
            return dt.timedelta(0)
        if age < 7:
            return dt.timedelta(days=self.week_days)
        if age < 31:
            return dt.timedelta(days=self.month_days)
        return dt.timedelta(days=self.old_days)

    def next_check(
        self,
        page_date: dt.date | None,
        now: dt.datetime,
        unchanged_streak: int,
        transient: bool = False,
        url: str = "",
    ) -> dt.datetime:
        """When the page at ``url`` is due again, after a fetch at ``now``."""
        if transient:
            return now
        base = self.base_interval(page_date, now)
        if not base:
            return now
        base_days = base / dt.timedelta(days=1)
        stretched = base_days * self.stretch ** min(unchanged_streak, 64)  # floats: no overflow
        days = min(stretched, max(base_days, self.max_days))
        return now + dt.timedelta(days=days * (1 + self.jitter * (2 * _spread(url) - 1)))


def _spread(url: str) -> float:
    """A number in [0, 1) fixed by the URL: the same page always lands at the same place."""
    return int.from_bytes(hashlib.sha1(url.encode()).digest()[:4], "big") / 2**32


def is_transient(http_status: int | None, error: str | None) -> bool:
    """A failure worth asking again soon: no answer at all, a 5xx or a 429."""
    if error is None:
        return False
    if http_status is None:
        return not error.startswith(("robots", "private", "size"))
    return http_status >= 500 or http_status == 429
