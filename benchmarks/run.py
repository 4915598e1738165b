"""Benchmarks: throughput, peers, scale, source checking.  Writes BENCHMARKS.md.

    python benchmarks/run.py [--pages 20000] [--repeat 3] [--scale 2000,20000,100000] [--hosts 50]

Everything runs on this machine, on loopback, in one go, and every figure is
given next to a baseline measured in the same run:

* throughput: pages/s of ``python -m crawler run`` (site pages only) on a
  generated site, against ``scrapy bench`` (Scrapy's own spider on its own
  local server), medians of ``--repeat`` runs;
* peer: a full mirror and a no-change re-mirror, against ``wget -N`` given
  the same URL list (wget follows links in HTML only, not in markdown, so it
  is handed the list a crawl found; ``-N`` then asks about every page);
* scale: wall time, peak RSS of the crawl process and database size for
  growing sites (the cost per event should not grow);
* source checking: checks/s with the default politeness (one request per
  host at a time, 1 s apart) over sources on ``--hosts`` loopback hosts,
  against that politeness bound (hosts × 1/s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import scrapy

from crawler.loopback.site import SiteServer
from crawler.testing.server import ArticleServer
from crawler.testing.sitegen import generate

NOW = "2019-09-01T00:00:00Z"  # every generated page a month or more old


# Runs a command and reports the peak RSS of that command alone (its wrapper's only child).
PEAK = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]);"
    " print('peak-rss-kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr);"
    " sys.exit(code)"
)


def timed(
    cmd: list[str], cwd: Path | None = None, env: dict | None = None
) -> tuple[subprocess.CompletedProcess, float, int]:
    """Run a command; its output, wall seconds and peak RSS in MB."""
    started = time.monotonic()
    cmd = [sys.executable, "-c", PEAK, *cmd]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    match = re.search(r"peak-rss-kb (\d+)", proc.stderr)
    return proc, wall, int(match[1]) // 1024 if match else 0


def crawl(
    db: Path, *args: str, code: Path | None = None, modules: Path | None = None
) -> tuple[dict, float, int]:
    """``python -m crawler run --json`` into ``db``: its summary, wall seconds and peak RSS (MB).

    With ``code``, the crawler of that checkout (a worktree of an older commit) runs instead;
    ``modules`` is a folder the crawl may import from too (a benchmark's own pipeline)."""
    cmd = [sys.executable, "-m", "crawler", "run", "--db", str(db), "--json", "-s", "CHECK_SOURCES=False"]
    path = os.pathsep.join(str(p) for p in (code, modules) if p)
    env = {**os.environ, "PYTHONPATH": path} if path else None
    proc, wall, rss = timed([*cmd, *args], code, env)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout), wall, rss


def scrapy_bench() -> float:
    """pages/s of ``scrapy bench`` (10 s of crawling its local server)."""
    with tempfile.TemporaryDirectory() as folder:
        proc, _, _ = timed(["scrapy", "bench", "-s", "LOG_LEVEL=INFO"], cwd=Path(folder))
    stats = proc.stderr
    pages = int(re.search(r"'response_received_count': (\d+)", stats)[1])
    seconds = float(re.search(r"'elapsed_time_seconds': ([\d.]+)", stats)[1])
    return pages / seconds


def throughput(work: Path, pages: int, repeat: int) -> dict:
    per_day = 40
    site = generate(work / "tp-site", days=max(1, pages // (per_day + 1)), events_per_day=per_day)
    server = SiteServer(site.root)
    server.etags = True
    ours, bench, runs = [], [], []
    try:
        for n in range(repeat):
            summary, wall, rss = crawl(
                work / f"tp-{n}.db", "--start-url", server.url("index.md"), "--now", NOW
            )
            runs.append((summary, wall, rss))
            ours.append(summary["requests"] / summary["duration_seconds"])
            bench.append(scrapy_bench())
        urls = [server.origin + path for path in dict.fromkeys(server.requests) if path != "/robots.txt"]
        peers = wget_peer(work, server, urls, runs[0], site)
    finally:
        server.close()
    return {
        "site_pages": site.pages,
        "site_events": site.events,
        "ours_pages_per_s": statistics.median(ours),
        "bench_pages_per_s": statistics.median(bench),
        "ours_all": ours,
        "bench_all": bench,
        "first_run": runs[0],
        "peers": peers,
    }


def wget_peer(work: Path, server: SiteServer, urls: list[str], first_run, site) -> dict:
    listing = work / "urls.txt"
    listing.write_text("\n".join(urls) + "\n")
    target = work / "wget"
    cmd = ["wget", "-q", "-N", "-x", "-P", str(target), "-i", str(listing)]
    server.requests.clear()
    _, wget_full, _ = timed(cmd)
    wget_full_requests = len(server.requests)
    server.requests.clear()
    _, wget_again, _ = timed(cmd)
    wget_again_requests = len(server.requests)
    db = work / "peer.db"
    full, full_wall, _ = crawl(db, "--start-url", server.url("index.md"), "--now", NOW)
    again, again_wall, _ = crawl(db, "--start-url", server.url("index.md"), "--now", "2019-09-01T02:00:00Z")
    return {
        "urls": len(urls),
        "wget_full": (wget_full_requests, wget_full),
        "wget_again": (wget_again_requests, wget_again),
        "ours_full": (full["requests"], full_wall),
        "ours_again": (again["requests"], again_wall),
    }


def scale(work: Path, sizes: list[int]) -> list[dict]:
    rows = []
    for events in sizes:
        per_day = 40
        site = generate(work / f"scale-{events}", days=max(1, events // per_day), events_per_day=per_day)
        server = SiteServer(site.root)
        db = work / f"scale-{events}.db"
        try:
            summary, wall, rss = crawl(db, "--start-url", server.url("index.md"), "--now", NOW)
        finally:
            server.close()
        rows.append(
            {
                "events": site.events,
                "pages": summary["requests"],
                "wall": wall,
                "crawl_seconds": summary["duration_seconds"],
                "rss_mb": rss,
                "db_mb": db.stat().st_size / 1e6,
            }
        )
        print(f"scale {events}: {rows[-1]}", file=sys.stderr)
    return rows


def source_checking(work: Path, hosts: int) -> dict:
    servers = [ArticleServer(work, host=f"127.0.0.{10 + n}", words=200) for n in range(hosts)]
    site = generate(
        work / "src-site", days=40, events_per_day=25, source_origins=tuple(s.origin for s in servers)
    )
    server = SiteServer(site.root)
    db = work / "sources.db"
    try:
        crawl(db, "--start-url", server.url("index.md"), "--now", NOW)
        cmd = [sys.executable, "-m", "crawler", "check-links", "--db", str(db), "--json", "--all"]
        cmd += ["--allow-private", "--now", NOW, "-s", f"WAYBACK_API_URL={server.origin}/wayback"]
        proc, wall, _ = timed(cmd)
    finally:
        server.close()
        for s in servers:
            s.close()
    summary = json.loads(proc.stdout)
    checks = summary["sources_checked"]
    # Politeness allows one request per host per second, so the run can be no shorter than the
    # busiest host's requests (its checks, robots.txt and the soft-404 probe) × 1 s.
    busiest = max(len(s.requests) for s in servers)
    return {
        "hosts": hosts,
        "sources": checks,
        "seconds": summary["duration_seconds"],
        "wall": wall,
        "checks_per_s": checks / summary["duration_seconds"],
        "bound": checks / busiest,
        "busiest": busiest,
    }


def machine() -> str:
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?"
    )
    wget = subprocess.run(["wget", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    wget = wget.rstrip(".")
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, Scrapy {scrapy.__version__}, {wget}"
    )


def _each(values: list[float]) -> str:
    return ", ".join(f"{v:.0f}" for v in values)


def _peer_row(name: str, run: tuple, full: tuple) -> str:
    """requests and seconds of a run, each with its share of the full mirror's."""
    return f"| {name} | {run[0]} ({run[0] / full[0]:.2%} of full) | {run[1]:.1f} ({run[1] / full[1]:.1%}) |"


def report(tp: dict, sc: list[dict], src: dict) -> str:
    p = tp["peers"]
    ratio = tp["ours_pages_per_s"] / tp["bench_pages_per_s"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `python benchmarks/run.py` on {time.strftime('%Y-%m-%d')}: {machine()}.",
        "Every figure is on loopback, with the generated site of `crawler/testing/sitegen.py` served by",
        "`crawler/loopback/site.py` (Python's threading HTTP server, ETags on), and is a ratio against a",
        "baseline measured in the same run.",
        "",
        "## Crawl throughput (site pages only)",
        "",
        f"Site: {tp['site_pages']} files ({tp['site_events']} events, some also under a first-version"
        " slug, and their day pages), plus the dangling related links the crawl asks for.",
        "",
        "| | pages/s (median of runs) | runs |",
        "|---|---:|---|",
        f"| `python -m crawler run` | {tp['ours_pages_per_s']:.0f} | {_each(tp['ours_all'])} |",
        f"| `scrapy bench` | {tp['bench_pages_per_s']:.0f} | {_each(tp['bench_all'])} |",
        f"| **ratio** | **{ratio:.2f}×** | target ≥ 0.8× |",
        "",
        "## Against wget",
        "",
        f"The same site; wget is given the {p['urls']} URLs the crawl found"
        " (it cannot follow markdown links).",
        "",
        "| | requests | seconds |",
        "|---|---:|---:|",
        f"| full mirror, `python -m crawler run` | {p['ours_full'][0]} | {p['ours_full'][1]:.1f} |",
        f"| full mirror, `wget -N -i urls` | {p['wget_full'][0]} | {p['wget_full'][1]:.1f} |",
        _peer_row("no-change sync 2 h later, ours", p["ours_again"], p["ours_full"]),
        _peer_row("no-change re-mirror, `wget -N`", p["wget_again"], p["wget_full"]),
        "",
        "## Scale",
        "",
        "| events | pages fetched | wall s | crawl s | s per 1k events | peak RSS (MB) | db MB"
        " | db kB/event |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sc:
        lines.append(
            f"| {row['events']} | {row['pages']} | {row['wall']:.1f} | {row['crawl_seconds']:.1f}"
            f" | {1000 * row['crawl_seconds'] / row['events']:.2f} | {row['rss_mb']} | {row['db_mb']:.1f}"
            f" | {1000 * row['db_mb'] / row['events']:.2f} |"
        )
    lines += [
        "",
        "## Source checking",
        "",
        f"{src['sources']} sources on {src['hosts']} loopback hosts, default politeness",
        f"(1 request in flight per host, 1 s apart). The busiest host had {src['busiest']} requests",
        "(checks, robots.txt, probe), so no polite run can be shorter than that many seconds:",
        "the bound is checks / that.",
        "",
        "| checks | seconds | checks/s | bound | **ratio** |",
        "|---:|---:|---:|---:|---:|",
        f"| {src['sources']} | {src['seconds']:.1f} | {src['checks_per_s']:.1f} | {src['bound']:.0f}"
        f" | **{src['checks_per_s'] / src['bound']:.2f}** |",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scale", default="2000,20000,100000")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--json", type=Path, help="Also write the raw figures here, as JSON.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tp = throughput(work, args.pages, args.repeat)
        print(
            f"throughput: {tp['ours_all']} vs bench {tp['bench_all']}; peers {tp['peers']}", file=sys.stderr
        )
        src = source_checking(work, args.hosts)
        print(f"sources: {src}", file=sys.stderr)
        sc = scale(work, [int(n) for n in args.scale.split(",") if n])
    args.out.write_text(report(tp, sc, src), encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps({"throughput": tp, "scale": sc, "sources": src}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
