"""An HTTP crawl's peak memory and cost per event as the record grows, this code against another.

    python benchmarks/crawl_memory.py [--sizes 4000,24000] [--code /path/to/older/checkout]

For each size, a generated record (``crawler/testing/sitegen.py``, 40 events a
day) is served by the loopback site server and mirrored twice by each code: a
first crawl from the front page into a new mirror, then a ``--full`` resync
(every known page asked again, the run that reads the whole frontier at its
start).  Reported: wall seconds, ms per event and the crawl process's peak RSS
(``RUSAGE_CHILDREN``: the largest process the run waited for; the parse workers, about 29 MB
each, are smaller than the crawl process).
With ``--code``, the same runs are made with that checkout's code (e.g. a
``git worktree`` of an older commit), alternated with this code's, on the
same record and server: memory that grows with the record shows as a slope.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from run import NOW, crawl  # benchmarks/run.py, beside this script

from crawler.loopback.site import SiteServer
from crawler.testing.sitegen import generate

PER_DAY = 40
LATER = "2019-09-02T00:00:00Z"


def mirror(db: Path, start: str, code: Path | None, *args: str) -> dict:
    summary, wall, rss = crawl(db, "--start-url", start, *args, code=code)
    return {"seconds": wall, "rss_mb": rss, "requests": summary["requests"], "new": summary["events_new"]}


def measure(work: Path, sizes: list[int], code: Path | None) -> list[dict]:
    rows = []
    for events in sizes:
        site = generate(work / f"site-{events}", days=max(1, events // PER_DAY), events_per_day=PER_DAY)
        server = SiteServer(site.root)
        try:
            for label, where in [("this", None), ("other", code)] if code else [("this", None)]:
                db = work / f"{label}-{events}.db"
                first = mirror(db, server.url("index.md"), where, "--now", NOW)
                full = mirror(db, server.url("index.md"), where, "--now", LATER, "--full")
                row = {"code": label, "events": site.events, "first": first, "full": full}
                row["ms_per_event"] = 1000 * first["seconds"] / site.events
                print(json.dumps(row), file=sys.stderr, flush=True)
                rows.append(row)
                db.unlink()
        finally:
            server.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4000,24000")
    parser.add_argument("--code", type=Path, help="Also run this checkout's code (an older commit).")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",") if n]
    with tempfile.TemporaryDirectory() as folder:
        rows = measure(Path(folder), sizes, args.code)
    print("| code | events | first crawl s | ms/event | peak RSS | --full resync s | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        first, full = row["first"], row["full"]
        print(
            f"| {row['code']} | {row['events']} | {first['seconds']:.1f} | {row['ms_per_event']:.2f}"
            f" | {first['rss_mb']} MB | {full['seconds']:.1f} | {full['rss_mb']} MB |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
