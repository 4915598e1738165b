"""How long settling a run of source checks takes: N synthetic checks, written straight into SQLite.

    python benchmarks/settle.py [--sizes 5000 20000 100000] [--earlier-runs 2] [--batch 5000]

For each N it builds a mirror (the real schema, :func:`pipeline.schema.open_database`) holding N
sources on N/50 hosts, ``--earlier-runs`` older check runs of every source (so ``link_checks`` is
as big as on a mirror checked for a while), and one run of N checks to settle: most answer, some
are 404s, 5xx, blocked or rate limited, some redirect many cited URLs to one page (soft 404s, whose
kept text is taken back), and two hosts fail on every check (outages).  Then it times
:func:`pipeline.settlement.settle_run` (read the run, decide, write in batches) and says how many
sources each status ends with.  The target (issue 13): 100,000 checks settled in under 30 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.clock import iso  # noqa: E402
from pipeline.schema import open_database  # noqa: E402
from pipeline.settle import Rules  # noqa: E402
from pipeline.settlement import settle_run  # noqa: E402

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
TARGET = 30.0  # seconds for 100,000 checks
PER_HOST = 50


def outcome_of(n: int, host: int, hosts: int) -> tuple[str, str | None, int, int | None, str | None]:
    """(outcome, final URL, redirects, status, error) of source ``n`` on ``host``."""
    if host < 2:  # two hosts down as a whole: every check fails transiently
        return "transient", None, 0, None, "timeout"
    bucket = n % 20
    if bucket < 11:
        return "ok", None, 0, 200, None
    if bucket < 14:
        return "gone", None, 0, 404, None
    if bucket == 14:
        return "transient", None, 0, 500, None
    if bucket == 15:
        return "blocked", None, 0, 403, None
    if bucket == 16:
        return "rate_limited", None, 0, 429, None
    if bucket == 17:
        return "ok", f"http://host{host}.example/sorry", 1, 200, None  # shared by many: soft 404
    return "ok", f"http://host{host}.example/moved/{n}", 1, 200, None  # a move


def build(path: Path, n: int, earlier_runs: int) -> int:
    """The mirror with ``n`` checked sources; returns the id of the run to settle."""
    db = open_database(str(path))
    hosts = max(n // PER_HOST, 3)
    conn = db.conn
    seen = iso(NOW - dt.timedelta(days=30))
    with conn:
        runs = [
            conn.execute(
                "INSERT INTO sync_runs (kind, started_at, status) VALUES ('check-links', ?, 'finished')",
                [iso(NOW - dt.timedelta(days=3 * (earlier_runs - r)))],
            ).lastrowid
            for r in range(earlier_runs + 1)
        ]
        sources = []
        for i in range(n):
            host = i % hosts
            failing = i % 7 == 0
            sources.append(
                (
                    i + 1,
                    f"http://host{host}.example/news/{i}.html",
                    f"host{host}.example",
                    seen,
                    "failing" if failing else "alive",
                    1 if failing else 0,
                    iso(NOW - dt.timedelta(days=4)) if failing else None,
                    iso(NOW - dt.timedelta(days=4)) if failing else None,
                    seen,
                )
            )
        conn.executemany(
            "INSERT INTO sources (id, url, domain, first_seen, status, strikes, last_strike_at,"
            " first_failed_at, first_ok_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            sources,
        )
        for r, run in enumerate(runs):
            at = iso(NOW - dt.timedelta(days=3 * (earlier_runs - r), minutes=5))
            rows = []
            for i in range(n):
                host = i % hosts
                outcome, final, redirects, status, error = outcome_of(i, host, hosts)
                if run != runs[-1]:
                    outcome, final, redirects, status, error = "ok", None, 0, 200, None
                url = sources[i][1]
                rows.append((i + 1, run, at, url, status, final or url, redirects, error, outcome, 10))
            conn.executemany(
                "INSERT INTO link_checks (source_id, sync_run, checked_at, url, http_status, final_url,"
                " redirects, error, outcome, elapsed_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        # What the soon-demoted "good" checks kept: taken back by the settlement.
        at = iso(NOW - dt.timedelta(minutes=5))
        conn.executemany(
            "INSERT INTO source_texts (source_id, fetched_at, content_hash, text) VALUES (?, ?, ?, ?)",
            [(i + 1, at, f"h{i}", f"the host's sorry page {i}") for i in range(n) if i % 20 == 17],
        )
    db.close()
    return runs[-1]


def measure(n: int, earlier_runs: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mirror.db"
        started = time.perf_counter()
        run_id = build(path, n, earlier_runs)
        built = time.perf_counter() - started
        db = open_database(str(path))
        started = time.perf_counter()
        settled = settle_run(db, run_id, NOW, Rules(), batch=batch)
        seconds = time.perf_counter() - started
        statuses = dict(db.execute("SELECT status, count(*) FROM sources GROUP BY status").fetchall())
        checks = db.execute("SELECT count(*) FROM link_checks").fetchone()[0]
        db.close()
    return {
        "checks": n,
        "link_checks rows": checks,
        "build s": round(built, 1),
        "settle s": round(seconds, 2),
        "checks/s": round(n / seconds),
        "demoted": len(settled.demoted),
        "outage checks": len(settled.outages),
        "statuses": statuses,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 100000])
    parser.add_argument("--earlier-runs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args(argv)
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, batch {args.batch}")
    print("| checks | link_checks rows | settle s | checks/s | soft 404s (shared redirect) | outage checks |")
    print("|---:|---:|---:|---:|---:|---:|")
    worst = None
    for n in args.sizes:
        r = measure(n, args.earlier_runs, args.batch)
        print(
            f"| {r['checks']} | {r['link_checks rows']} | {r['settle s']} | {r['checks/s']} |"
            f" {r['demoted']} | {r['outage checks']} |",
            flush=True,
        )
        if n >= 100_000:
            worst = r["settle s"] * 100_000 / n
    if worst is not None:
        verdict = "met" if worst < TARGET else "MISSED"
        print(f"\n100,000 checks: {worst:.1f} s (target < {TARGET:.0f} s): {verdict}")


if __name__ == "__main__":
    main()
