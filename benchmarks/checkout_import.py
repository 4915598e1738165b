"""Import a checkout at the parse limit: ``run --checkout`` against a bare parse loop and a file:// crawl.

    python benchmarks/checkout_import.py [--events 3000] [--scale 10000,50000,110000 [--scale-bare]]
        [--crawl] [--ceiling]

Everything is measured in the same run on the same generated record
(``crawler/testing/sitegen.py``: 10% of events also under a first-version
slug, dangling related links), as ratios:

* **bare loop**: the same files read and parsed (``pipeline.page_reading.read_page``)
  by a pool of as many processes as the import's parse pool, storing nothing:
  the parse limit;
* **checkout import**: ``python -m crawler run --checkout DIR`` into a new mirror;
* **file:// crawl** (``--crawl``): ``python -m crawler run --start-url file://DIR/index.md``,
  the way a checkout was mirrored before ``--checkout``; with ``--crawl-code DIR``, run
  from another checkout of this project (e.g. a worktree of an older commit);
* **ceiling** (``--ceiling``): the same import with a store that writes nothing
  (``no_store.py``, no dedupe either): what the walk, the pool and Scrapy's engine
  allow before a row is written.

Files/s count the record's files (``*.md``), so the three rates compare.
With ``--scale``, each size is imported into a new mirror and the cost per
event and the import process's peak RSS are reported; with ``--scale-bare``,
the bare loop is timed on each size's record too (the whole record's ratio, where
starting Python, Scrapy and the pool is a small share).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from no_store import CEILING_PIPELINES
from run import NOW, crawl  # benchmarks/run.py, beside this script

from crawler.parse_pool import default_processes
from crawler.testing.sitegen import generate
from pipeline.page_reading import ReadingRules, read_page
from pipeline.urls import SiteRoot, canonical_url

PER_DAY = 40
HERE = Path(__file__).resolve().parent


def _parse_files(paths: list[str], root_url: str) -> int:
    rules = ReadingRules(SiteRoot.of(root_url), 5 * 1024 * 1024, 1000)
    for path in paths:
        with open(path, "rb") as file:
            read_page(file.read(), canonical_url(Path(path).as_uri()), rules)
    return len(paths)


def bare_loop(root: Path, processes: int) -> tuple[int, float]:
    """Files and seconds to read and parse every file of the record in ``processes`` processes."""
    paths = sorted(str(p) for p in root.rglob("*.md"))
    root_url = canonical_url(root.as_uri() + "/")
    chunks = [paths[n : n + 200] for n in range(0, len(paths), 200)]
    started = time.monotonic()
    if processes <= 1:
        done = sum(_parse_files(chunk, root_url) for chunk in chunks)
    else:
        with ProcessPoolExecutor(processes) as pool:
            done = sum(pool.map(_parse_files, chunks, [root_url] * len(chunks)))
    return done, time.monotonic() - started


def run(
    db: Path, *args: str, code: Path | None = None, modules: Path | None = None
) -> tuple[dict, float, int]:
    """A crawl's JSON summary, its wall seconds and its process's peak RSS (MB), at ``NOW``."""
    return crawl(db, "--now", NOW, *args, code=code, modules=modules)


def ceiling(db: Path, root: Path) -> float:
    """Wall seconds of the import of ``root`` with a store that writes nothing."""
    pipelines = ("-s", f"ITEM_PIPELINES={CEILING_PIPELINES}")
    return run(db, "--checkout", str(root), *pipelines, modules=HERE)[1]


def compare(
    work: Path, events: int, with_crawl: bool, crawl_code: Path | None, with_ceiling: bool = False
) -> dict:
    site = generate(work / "site", days=max(1, events // PER_DAY), events_per_day=PER_DAY)
    files = len(list(site.root.rglob("*.md")))
    processes = default_processes()
    figures = {"events": site.events, "files": files, "processes": processes}
    _, seconds = bare_loop(site.root, 1)
    figures["bare_1"] = files / seconds
    _, seconds = bare_loop(site.root, processes)
    figures["bare_n"] = files / seconds
    summary, wall, rss = run(work / "import.db", "--checkout", str(site.root))
    figures["import"] = files / wall
    figures["import_seconds"], figures["import_rss"] = wall, rss
    figures["import_events"] = summary["events_new"]
    _, wall, _ = run(work / "import.db", "--checkout", str(site.root))
    figures["reimport_seconds"] = wall
    if with_ceiling:
        figures["ceiling"] = files / ceiling(work / "ceiling.db", site.root)
    if with_crawl:
        start = (site.root / "index.md").as_uri()
        summary, wall, rss = run(work / "crawl.db", "--start-url", start, code=crawl_code)
        figures["crawl"] = files / wall
        figures["crawl_seconds"], figures["crawl_rss"] = wall, rss
        figures["crawl_events"] = summary["events_new"]
    return figures


def scale(work: Path, sizes: list[int], with_bare: bool = False, with_ceiling: bool = False) -> list[dict]:
    rows = []
    for events in sizes:
        folder = work / f"scale-{events}"
        site = generate(folder / "site", days=max(1, events // PER_DAY), events_per_day=PER_DAY)
        summary, wall, rss = run(folder / "mirror.db", "--checkout", str(site.root))
        files = len(list(site.root.rglob("*.md")))
        rows.append(
            {
                "events": site.events,
                "files": files,
                "seconds": wall,
                "ms_per_event": 1000 * wall / site.events,
                "rss_mb": rss,
                "db_mb": (folder / "mirror.db").stat().st_size / 2**20,
                "stored": summary["events_new"],
            }
        )
        if with_bare:  # the parse limit on this record: the start-up costs are a smaller share
            _, seconds = bare_loop(site.root, default_processes())
            rows[-1]["bare_n"], rows[-1]["import_vs_bare"] = files / seconds, seconds / wall
        if with_ceiling:  # nothing stored: the share of the import's time that is the store's
            rows[-1]["ceiling_seconds"] = ceiling(folder / "ceiling.db", site.root)
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--crawl", action="store_true", help="Also time the file:// crawl.")
    parser.add_argument("--crawl-code", type=Path, help="Run the file:// crawl from this checkout.")
    parser.add_argument("--scale", default="", help="Comma-separated record sizes (events) to import.")
    parser.add_argument("--scale-bare", action="store_true", help="Also time the bare loop at each size.")
    parser.add_argument("--ceiling", action="store_true", help="Also time the import storing nothing.")
    parser.add_argument("--json", type=Path, help="Write the figures here too.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        figures = {"compare": compare(work, args.events, args.crawl, args.crawl_code, args.ceiling)}
        f = figures["compare"]
        print(
            f"{f['events']} events, {f['files']} files, {f['processes']} processes\n"
            f"bare loop, 1 process: {f['bare_1']:.0f} files/s; {f['processes']} processes:"
            f" {f['bare_n']:.0f} files/s\n"
            f"checkout import: {f['import']:.0f} files/s ({f['import_seconds']:.1f} s,"
            f" peak RSS {f['import_rss']} MB) = {f['import'] / f['bare_n']:.2f}x the bare loop;"
            f" re-import with nothing changed {f['reimport_seconds']:.1f} s"
        )
        if args.ceiling:
            print(
                f"import storing nothing: {f['ceiling']:.0f} files/s = {f['ceiling'] / f['bare_n']:.2f}x"
                " the bare loop"
            )
        if args.crawl:
            print(
                f"file:// crawl: {f['crawl']:.0f} files/s ({f['crawl_seconds']:.1f} s); import ="
                f" {f['import'] / f['crawl']:.2f}x the crawl"
            )
        sizes = [int(n) for n in args.scale.split(",") if n]
        if sizes:
            figures["scale"] = scale(work, sizes, args.scale_bare, args.ceiling)
            for row in figures["scale"]:
                bare = (
                    f"; bare loop {row['bare_n']:.0f} files/s, import = {row['import_vs_bare']:.2f}x"
                    if "bare_n" in row
                    else ""
                )
                if "ceiling_seconds" in row:
                    bare += f"; storing nothing {row['ceiling_seconds']:.1f} s"
                print(
                    f"{row['events']} events ({row['files']} files): {row['seconds']:.1f} s,"
                    f" {row['ms_per_event']:.2f} ms/event, peak RSS {row['rss_mb']} MB,"
                    f" db {row['db_mb']:.0f} MB{bare}"
                )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
