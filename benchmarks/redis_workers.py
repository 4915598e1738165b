"""Checks per second with 1, 2 and 4 Redis worker processes, as ratios against one, in one run.

    python benchmarks/redis_workers.py [--hosts 40] [--per-host 10] [--workers 1,2,4] [--delay 0.2]

A world where extraction dominates: ``--hosts`` news hosts on loopback (127.0.1.x), each
citing ``--per-host`` real-sized article pages (``--kb`` of HTML, a thousand-odd words of
text, which trafilatura reads); a mirror holding those sources, written straight into
SQLite.  For each worker count: a fresh redis-server (no persistence), the workers
(``python -m crawler worker --redis``), then one writer (``check-links --redis``) on a copy
of the mirror.  Checks per second are counted from the writer's first stored check to its
last (process start-up and settlement left out), and the politeness bound is read from
the servers: the least gap between two requests to one host by one worker, and by two.
Also the one-process check (no Redis) of the same world, for reference.  Needs
``redis-server`` on the PATH; sends nothing off loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.loopback.site import SiteServer  # noqa: E402
from pipeline.schema import open_database  # noqa: E402

NOW = "2026-03-01T12:00:00+00:00"
HTML = {"Content-Type": "text/html; charset=utf-8"}
WORDS = (
    "government minister said report election police city council court official people year week "
    "country president party vote army border trade market price bank crisis talks peace state "
    "health hospital school water storm flood rescue fire protest union strike company energy oil"
).split()


def article(rng: random.Random, title: str, kb: int) -> bytes:
    paragraphs, size = [], 0
    while size < kb * 1024 * 0.6:  # the rest is the page around the article
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 90))).capitalize() + "."
        paragraphs.append(f"<p>{text}</p>")
        size += len(text) + 7
    chrome = "".join(
        f'<li><a href="/section/{n}">Section {n} {rng.choice(WORDS)}</a></li>' for n in range(150)
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title} | Bench News</title>
<meta property="og:title" content="{title}"><meta name="description" content="About {title}">
<meta property="article:published_time" content="2013-03-27T08:00:00Z"></head>
<body><nav><ul>{chrome}</ul></nav><article><h1>{title}</h1>{"".join(paragraphs)}</article>
<footer><ul>{chrome}</ul></footer></body></html>""".encode()


class World:
    def __init__(self, folder: Path, hosts: int, per_host: int, kb: int):
        rng = random.Random(7)
        self.hosts = [SiteServer(folder, host=f"127.0.1.{1 + i}") for i in range(hosts)]
        self.sources = []
        for i, host in enumerate(self.hosts):
            host.seen = []
            host.answer_request = self._noting(host)
            for n in range(per_host):
                path = f"/news/{i}/story-{n}.html"
                host.routes[path] = [(200, HTML, article(rng, f"Story {i}-{n}", kb))]
                self.sources.append(host.url(path))
        self.db = folder / "mirror.db"
        db = open_database(str(self.db))
        with db.atomic():
            for url in self.sources:
                db["sources"].insert(
                    {"url": url, "domain": url.split("/")[2], "first_seen": NOW, "status": "unchecked"}
                )
        db.close()

    @staticmethod
    def _noting(host):
        def answer_request(path, headers):
            host.seen.append((headers.get("User-Agent", ""), time.monotonic()))
            return host.answer(path)

        return answer_request

    def politeness(self) -> tuple[float, float]:
        """The least gap between two requests to one host: by one worker, and by two."""
        same = other = float("inf")
        for host in self.hosts:
            seen = sorted(host.seen, key=lambda e: e[1])
            for (ua_a, a), (ua_b, b) in zip(seen, seen[1:], strict=False):
                if ua_a == ua_b:
                    same = min(same, b - a)
                else:
                    other = min(other, b - a)
            host.seen.clear()
        return same, other

    def close(self):
        for host in self.hosts:
            host.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server(folder: Path) -> tuple[subprocess.Popen, str]:
    import redis

    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return proc, f"redis://127.0.0.1:{port}/0"


def rate(db: Path, total: int, proc: subprocess.Popen) -> tuple[float, float]:
    """Checks per second from the first stored check to the last, and the seconds that took."""
    first = last = None
    while True:
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
            count = conn.execute("SELECT count(*) FROM link_checks").fetchone()[0]
            conn.close()
        except sqlite3.Error:
            count = 0
        now = time.monotonic()
        if count and first is None:
            first = (now, count)
        if count >= total:
            last = (now, count)
            break
        if proc.poll() is not None:
            raise SystemExit(f"the checking process ended early ({proc.returncode})")
        time.sleep(0.02)
    seconds = last[0] - first[0]
    return (last[1] - first[1]) / seconds if seconds else float("inf"), seconds


def crawler_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "crawler", *args]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=40)
    ap.add_argument("--per-host", type=int, default=10)
    ap.add_argument("--kb", type=int, default=80, help="size of an article page")
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--delay", type=float, default=0.2, help="SOURCE_DELAY")
    ap.add_argument("--json", metavar="PATH")
    args = ap.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    folder = Path(tempfile.mkdtemp(prefix="redis-bench-"))
    world = World(folder, args.hosts, args.per_host, args.kb)
    total = len(world.sources)
    settings = ["--allow-private", "-s", f"SOURCE_DELAY={args.delay}", "-s", "LOG_LEVEL=ERROR"]
    settings += ["-s", "WAYBACK_API_URL=http://127.0.0.1:9/wayback/available"]  # nothing fails: never asked
    settings += ["-s", "REDIS_LEASE_SECONDS=5", "-s", "CONCURRENT_REQUESTS=32"]
    figures: dict = {"sources": total, "hosts": args.hosts, "kb": args.kb, "delay": args.delay, "runs": []}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    db = folder / "alone.db"
    shutil.copy(world.db, db)
    started = time.monotonic()
    proc = subprocess.Popen(crawler_cmd("check-links", "--db", str(db), "--now", NOW, "--json", *settings),
                            stdout=subprocess.DEVNULL, env=env)  # fmt: skip
    per_s, seconds = rate(db, total, proc)
    proc.wait()
    same, _ = world.politeness()
    figures["one_process"] = {
        "checks_per_s": round(per_s, 1),
        "seconds": round(seconds, 1),
        "wall_seconds": round(time.monotonic() - started, 1),
        "least_gap": round(same, 3),
    }
    print(f"one process, no Redis: {per_s:.1f} checks/s", flush=True)

    for n in [int(x) for x in args.workers.split(",")]:
        server, url = redis_server(folder)
        db = folder / f"workers-{n}.db"
        shutil.copy(world.db, db)
        workers = [
            subprocess.Popen(
                crawler_cmd(
                    "worker",
                    "--redis",
                    url,
                    "--name",
                    f"w{i}",
                    *settings,
                    "-s",
                    f"USER_AGENT=bench-worker-{i}",
                ),
                stdout=subprocess.DEVNULL,
                env=env,
            )  # fmt: skip
            for i in range(n)
        ]
        import redis

        client = redis.Redis.from_url(url)
        while len(list(client.scan_iter(match="mirror:worker:*"))) < n:
            time.sleep(0.1)
        cmd = crawler_cmd("check-links", "--redis", url, "--db", str(db), "--now", NOW, "--json", *settings)
        writer = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
        per_s, seconds = rate(db, total, writer)
        writer.wait()
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait()
        server.terminate()
        server.wait()
        same, other = world.politeness()
        run = {"workers": n, "checks_per_s": round(per_s, 1), "seconds": round(seconds, 1),
               "least_gap_same_worker": round(same, 3),
               "least_gap_two_workers": None if other == float("inf") else round(other, 3)}  # fmt: skip
        figures["runs"].append(run)
        print(f"{n} worker(s): {per_s:.1f} checks/s", flush=True)
    base = figures["runs"][0]["checks_per_s"]
    for run in figures["runs"]:
        run["ratio"] = round(run["checks_per_s"] / base, 2)
    figures["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    world.close()
    shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
