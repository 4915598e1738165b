"""Fill the MediaWiki stand-in with years of portal days, for backfill tests and benchmarks.

The bundled month (January 2023, 31 days, 334 events) is the only real
rendering we ship; a backfill of 2004 to today needs thousands of days.  Each
generated day is the real day of the same number (the 31st falls back to the
1st in shorter months) with its date rewritten everywhere a rendering carries
it (``span.bday``, the block's ``id`` and ``aria-label``, the edit links),
its event texts marked with the date (so no two days hold the same text), and
its article links suffixed with the year, so that related events (shared
entities) stay within a year, as news topics mostly do, instead of linking
every clone of an event across 22 years.
"""

from __future__ import annotations

import datetime as dt
import re

from crawler.demo import PORTAL_MONTH
from crawler.loopback.mediawiki import MediaWikiServer
from pipeline.portal import MONTHS, day_blocks, day_title, month_title

EVENT_END = re.compile(r"(<li>)(?!<a href=\"/wiki/)")  # a leaf event's text starts after its <li>


def january_days() -> dict[int, str]:
    """The real January 2023 day blocks, by day of the month."""
    return {day.day: str(block) for day, block in day_blocks(PORTAL_MONTH.read_text(encoding="utf-8"))}


def rewrite(block: str, source: int, day: dt.date) -> str:
    """January ``source``'s block as if it were ``day``'s."""
    month = MONTHS[day.month - 1]
    text = block.replace(f"2023_January_{source}", f"{day.year}_{month}_{day.day}")
    text = text.replace(f"2023-01-{source:02d}", day.isoformat())
    text = re.sub(rf"January {source}\b", f"{month} {day.day}", text)
    text = re.sub(r'href="/wiki/(?!Portal:)([^"#]+)"', rf'href="/wiki/\1_({day.year})"', text)
    return EVENT_END.sub(rf"\1[{day.isoformat()}] ", text)


def fill(server: MediaWikiServer, first: dt.date, last: dt.date) -> int:
    """Add a day page for every day from ``first`` to ``last`` and their monthly pages; days added."""
    blocks = january_days()
    months: dict[str, list[str]] = {}
    day = first
    while day <= last:
        source = day.day if day.day in blocks else 1
        title = day_title(day).replace("_", " ")
        server.edit(title, rewrite(blocks[source], source, day))
        months.setdefault(month_title(day.year, day.month).replace("_", " "), []).append(title)
        day += dt.timedelta(days=1)
    for month, titles in months.items():
        server.months[month] = titles
        server.edit(month, "")
    return sum(len(titles) for titles in months.values())
