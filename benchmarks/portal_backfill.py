"""A whole-record portal backfill and the syncs after it, against the strict MediaWiki stand-in.

    python benchmarks/portal_backfill.py [--years 22] [--edits 5]

Fills the loopback stand-in (``crawler.loopback.mediawiki``) with ``--years``
years of generated day pages (``crawler.testing.portalgen``: the real January
2023 rendered as other days), then runs the real CLI (child processes) into a
fresh mirror.db:

1. ``--dry-run`` of the backfill (the plan: requests counted from the mirror);
2. the backfill (``--since``/``--until`` over every day);
3. the first sync after it (no earlier sync: every held day is asked about once);
4. a sync with nothing changed (recent changes since the last sync);
5. a sync after ``--edits`` old days were edited.

Prints a markdown table: requests, seconds, per simulated year, and the
backfill's time as a ratio of a bare loop that parses the same monthly pages
in one process, with no HTTP and no database (the baseline, measured in the
same run).  Sources are not checked (``CHECK_SOURCES=False``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from run import timed  # benchmarks/run.py, beside this script

from crawler.loopback.mediawiki import MediaWikiServer
from crawler.testing.portalgen import fill
from pipeline.portal import parse_portal

LAST_DAY = dt.date(2026, 11, 21)


def cli(server: MediaWikiServer, db: Path, now: dt.datetime, *args: str) -> tuple[dict, float, int]:
    cmd = [
        sys.executable, "-m", "crawler", "run", "--site", "wikipedia", "--start-url", server.api_url,
        "--db", str(db), "--json", "--now", f"{now:%Y-%m-%dT%H:%M:%SZ}", "-s", "CHECK_SOURCES=False",
        "-s", "LOG_LEVEL=WARNING", *args,
    ]  # fmt: skip
    server.requests.clear()
    proc, wall, rss = timed(cmd)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    summary = json.loads(proc.stdout)
    summary.setdefault("requests", len(server.requests))
    return summary, wall, rss


def bare_parse_seconds(server: MediaWikiServer) -> tuple[float, int]:
    """Render and parse every monthly page in this process: no HTTP, no database."""
    started, days = time.perf_counter(), 0
    for month in server.months:
        days += len(parse_portal(server._render(month)[1]))
    return time.perf_counter() - started, days


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=int, default=22)
    parser.add_argument("--edits", type=int, default=5)
    args = parser.parse_args()
    first = LAST_DAY.replace(year=LAST_DAY.year - args.years) + dt.timedelta(days=1)
    server = MediaWikiServer()
    started = time.perf_counter()
    days = fill(server, first, LAST_DAY)
    filled = time.perf_counter() - started
    server.clock = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
    server.run_jobs()
    bare, parsed_days = bare_parse_seconds(server)
    assert parsed_days == days, (parsed_days, days)
    window = ("--since", first.isoformat(), "--until", LAST_DAY.isoformat())
    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            db = Path(folder) / "mirror.db"
            plan, _, _ = cli(server, db, now, *window, "--dry-run")
            backfill, wall, rss = cli(server, db, now, *window)
            rows.append(("backfill", backfill, wall, rss))
            sweep, wall, rss = cli(server, db, now + dt.timedelta(hours=1))
            rows.append(("first sync after it (every held day asked once)", sweep, wall, rss))
            quiet, wall, rss = cli(server, db, now + dt.timedelta(days=1))
            rows.append(("sync, nothing changed (recent changes)", quiet, wall, rss))
            server.clock = now + dt.timedelta(days=1, hours=2)
            for n in range(args.edits):
                day = first + dt.timedelta(days=365 * n + 40)
                title = f"Portal:Current events/{day.year} {day:%B} {day.day}"
                head, _, tail = server.html(title).rpartition("</ul>")
                server.edit(title, f"{head}<li>Edit {n} of an old day.</li></ul>{tail}")
            edited, wall, rss = cli(server, db, now + dt.timedelta(days=2))
            rows.append((f"sync after {args.edits} old days were edited", edited, wall, rss))
            events = backfill["events_new"]
    finally:
        server.close()
    years = args.years
    print(f"**Portal backfill: {years} simulated years, {days:,} days, {events:,} events** "
          f"(stand-in filled in {filled:.1f} s)\n")  # fmt: skip
    queries, parses = plan["revision_queries"], plan["parses_if_unchanged"]
    total = plan["requests_at_least"]
    print(f"Plan (`--dry-run`): {total:,} requests ({queries} revisions queries, {parses} parses)\n")
    print("| run | requests | seconds (wall) | per simulated year | peak RSS (MB) |")
    print("|---|---:|---:|---:|---:|")
    for name, summary, wall, rss in rows:
        print(
            f"| {name} | {summary['requests']:,} | {wall:.1f} | {summary['requests'] / years:.1f} requests,"
            f" {wall / years:.2f} s | {rss} |"
        )
    print(
        f"\nBaseline: parsing the same {len(server.months)} monthly pages in one process, no HTTP, no"
        f" database: {bare:.1f} s ({bare / years:.2f} s a year). The backfill took"
        f" {rows[0][2] / bare:.2f}× that."
    )


if __name__ == "__main__":
    main()
