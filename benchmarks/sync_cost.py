"""What a sync costs next to a full crawl: requests, bodies, bytes, seconds.

    python benchmarks/sync_cost.py [--days 150] [--events-per-day 20] [--daily-syncs 60]

Runs the real CLI (child processes) against the bundled demo and against a
generated site served on 127.0.0.1 with ETags, and prints one markdown table
per site.  Every figure is also given as a share of the full crawl measured in
the same run.  Sources are not checked (``CHECK_SOURCES=False``): this is the
cost of keeping the site's pages current.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

from run import crawl as timed_crawl  # benchmarks/run.py, beside this script

from crawler.loopback.site import SiteServer
from crawler.testing.sitegen import add_day, generate

FIELDS = ("requests", "bodies", "bytes_received", "pages_not_modified", "pages_not_due", "events_new")


def crawl(db: Path, *args: str) -> dict:
    summary, wall, _ = timed_crawl(db, *args)
    summary["wall_seconds"] = round(wall, 2)
    return summary


def table(title: str, rows: list[tuple[str, dict]]) -> str:
    full = rows[0][1]
    lines = [
        f"**{title}**",
        "",
        "| run | requests | bodies | bytes | 304s | not due | new events | seconds (wall) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run in rows:
        share = f" ({run['requests'] / full['requests']:.1%})" if run is not full else ""
        byte_share = f" ({run['bytes_received'] / full['bytes_received']:.1%})" if run is not full else ""
        lines.append(
            f"| {name} | {run['requests']}{share} | {run['bodies']} | {run['bytes_received']}{byte_share}"
            f" | {run['pages_not_modified']} | {run['pages_not_due']} | {run['events_new']}"
            f" | {run['wall_seconds']} |"
        )
    return "\n".join(lines) + "\n"


def demo(work: Path) -> str:
    db = work / "demo.db"
    rows = [
        ("full crawl (empty mirror)", crawl(db)),
        ("sync, nothing changed", crawl(db)),
        ("sync `--full` (every page asked, conditionally)", crawl(db, "--full")),
    ]
    return table("Bundled demo (85 pages + front page; 554 dangling related links answer 404)", rows)


def generated(work: Path, days: int, per_day: int, daily: int) -> str:
    site = generate(work / "site", days=days, events_per_day=per_day)
    title = f"Generated site: {days} days × {per_day} events ({site.pages} pages, {site.events} events)"
    server = SiteServer(site.root)
    server.etags = True
    start = ("--start-url", server.url("index.md"))
    first = dt.datetime(2019, 7, 1, 12, tzinfo=dt.UTC)  # the newest day is yesterday

    def at(moment: dt.datetime) -> tuple[str, str]:
        return ("--now", moment.isoformat())

    try:
        db = work / "gen.db"
        rows = [("full crawl (empty mirror)", crawl(db, *start, *at(first)))]
        rows.append(
            ("sync 2 h later, nothing changed", crawl(db, *start, *at(first + dt.timedelta(hours=2))))
        )
        add_day(site, events=per_day)
        rows.append(
            ("sync after a new day of events", crawl(db, *start, *at(first + dt.timedelta(hours=22))))
        )
        later = [crawl(db, *start, *at(first + dt.timedelta(days=n))) for n in range(2, 2 + daily)]
        rows.append((f"{daily} daily syncs after it, nothing changed: mean", _mean(later)))
        rows.append((f"… the busiest of those {daily} syncs", max(later, key=lambda run: run["requests"])))
        rows.append(
            (
                "sync `--full`, nothing changed",
                crawl(db, *start, *at(first + dt.timedelta(days=daily + 2)), "--full"),
            )
        )
    finally:
        server.close()
    total = sum(run["requests"] for run in later)
    note = (
        f"Over the {daily} daily syncs: {total} requests in all, {total / rows[0][1]['requests']:.2f}× one"
        f" full crawl; `wget --mirror -N` would ask every page each time ({daily}× a full crawl)."
    )
    return table(title, rows) + "\n" + note + "\n"


def _mean(runs: list[dict]) -> dict:
    mean = {name: round(sum(run[name] for run in runs) / len(runs)) for name in [*FIELDS, "wall_seconds"]}
    mean["wall_seconds"] = round(sum(run["wall_seconds"] for run in runs) / len(runs), 2)
    return mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=150)
    parser.add_argument("--events-per-day", type=int, default=20)
    parser.add_argument("--daily-syncs", type=int, default=60, help="days of no-change syncs to simulate")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print(demo(work))
        print(generated(work, args.days, args.events_per_day, args.daily_syncs))


if __name__ == "__main__":
    main()
