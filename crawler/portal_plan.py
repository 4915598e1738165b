"""Which portal days a run asks about, and what that costs in requests.

A backfill (``--since``/``--until``) asks about every day of its window.  A
scheduled sync asks about the last ``WIKIPEDIA_DAYS`` days, but the portal's
older days are edited too (a typo fixed, a source replaced, years later), so a
sync must also find those, at a cost that grows with what changed, not with
the size of the mirror:

* the wiki's recent changes (``list=recentchanges`` in the Portal namespace,
  500 per request) since the last finished sync name every day page edited
  since; those days join the sync's revisions query;
* recent changes reach back ``WIKIPEDIA_RECENT_DAYS`` (30 on Wikipedia): after
  a longer gap, or with no earlier sync, every day the mirror holds is asked
  about once (one revisions query per 50 days: 161 for 22 years), which
  costs little and misses nothing;
* days that a run could not read (an API error, a lost connection) are asked
  about again by the next sync, wherever they are.

The same arithmetic gives ``run --dry-run`` its numbers, from the mirror
alone, without a request.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from pipeline.portal import MONTHS, PORTAL, page_url

BATCH = 50  # titles per revisions query: the API's limit for clients without the bot right
RC_BATCH = 500  # changes per recentchanges answer
RC_MARGIN = dt.timedelta(hours=1)  # changes are read from a little before the last sync began


def day_of_title(title: str) -> dt.date | None:
    """The date of a day page's title (``Portal:Current events/2023 January 5``), or None."""
    prefix = PORTAL.replace("_", " ") + "/"
    title = title.replace("_", " ")
    if not title.startswith(prefix):
        return None
    parts = title[len(prefix) :].split(" ")
    if len(parts) != 3 or parts[1] not in MONTHS or not (parts[0] + parts[2]).isdigit():
        return None
    try:
        return dt.date(int(parts[0]), MONTHS.index(parts[1]) + 1, int(parts[2]))
    except ValueError:
        return None


@dataclass
class SyncPlan:
    """The days a run asks about, and whether recent changes are read first to find more."""

    days: list[dt.date]  # newest first
    recent_since: dt.datetime | None = None  # read recent changes since this moment
    # backfill (its window only), all (no older day is held), recent changes, or sweep (every held day)
    reason: str = "backfill"


def plan(
    window: list[dt.date],
    backfill: bool,
    held: set[dt.date],
    failed: set[dt.date],
    last_sync: dt.datetime | None,
    now: dt.datetime,
    recent_days: int,
) -> SyncPlan:
    """The days of one run; see the module's docstring for the rules."""
    if backfill:
        return SyncPlan(window)
    days = set(window) | failed
    older = held - set(window)
    if not older:
        return SyncPlan(_newest_first(days), reason="all")
    if last_sync is not None and now - last_sync < dt.timedelta(days=recent_days) - RC_MARGIN:
        return SyncPlan(_newest_first(days), recent_since=last_sync - RC_MARGIN, reason="recent changes")
    return SyncPlan(_newest_first(days | older), reason="sweep")


def window(since: dt.date | None, until: dt.date | None, today: dt.date, days: int) -> list[dt.date]:
    """The days a run covers, newest first: ``since``..``until``, by default the last ``days``."""
    last = until or today
    first = since or last - dt.timedelta(days=days - 1)
    return [last - dt.timedelta(days=n) for n in range((last - first).days + 1)]


def plan_for(frontier, since, until, now: dt.datetime, settings) -> tuple[SyncPlan, set[dt.date]]:
    """The plan of a run, from what the mirror holds (``frontier``: a
    :class:`~pipeline.frontier.Frontier`, or None for a mirror not made yet); and the held days."""
    held = frontier.portal_days() if frontier else set()
    failed = frontier.failed_portal_days(page_url(PORTAL)) if frontier else set()
    decided = plan(
        window(since, until, now.date(), settings.getint("WIKIPEDIA_DAYS")),
        since is not None or until is not None,
        held,
        failed,
        frontier.last_portal_sync() if frontier else None,
        now,
        settings.getint("WIKIPEDIA_RECENT_DAYS"),
    )
    return decided, held


def _newest_first(days) -> list[dt.date]:
    return sorted(days, reverse=True)


@dataclass
class Cost:
    """Requests a run will make, counted from the mirror before any is sent."""

    revision_queries: int
    parses_if_unchanged: int  # only the days the mirror does not hold are read
    parses_at_most: int  # every day changed
    recent_changes: int  # at least one when the plan reads recent changes

    @property
    def at_least(self) -> int:
        return self.revision_queries + self.parses_if_unchanged + self.recent_changes


def cost(days: list[dt.date], held: set[dt.date], monthly_after: int, reads_recent: bool) -> Cost:
    """What asking about ``days`` costs: a revisions query per 50 days, then a parse per changed
    day, or per month when more than ``monthly_after`` of its days changed (days a monthly page
    cannot show, or shows from an older cache, cost a parse each more: not counted here)."""
    return Cost(
        revision_queries=math.ceil(len(days) / BATCH),
        parses_if_unchanged=_parses([d for d in days if d not in held], monthly_after),
        parses_at_most=_parses(days, monthly_after),
        recent_changes=1 if reads_recent else 0,
    )


def _parses(days: list[dt.date], monthly_after: int) -> int:
    months: dict[tuple[int, int], int] = {}
    for day in days:
        months[(day.year, day.month)] = months.get((day.year, day.month), 0) + 1
    return sum(1 if n > monthly_after else n for n in months.values())
