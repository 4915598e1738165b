"""Source checking on a Redis work queue: worker processes, one writer, a real redis-server.

A world of 20 news hosts on loopback (127.0.0.10 to .29, a few cited pages each, one host
answering 200 for everything: soft 404s) is mirrored once by ``run``; each test checks a
copy of that mirror with ``worker --redis`` processes and one ``check-links --redis`` writer
against a redis-server of its own (the ``redis_server`` fixture), kills some of them, and
reads the rows.
"""

from __future__ import annotations

import collections
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import STALL, SiteServer, crawler_in, read_count

pytestmark = pytest.mark.xdist_group("redis-world")

NOW = "2026-03-01T12:00:00+00:00"
HOSTS = 20
DELAY = 0.3
ARCHIVE_DELAY = 0.1  # the archive's own budget, not SOURCE_DELAY
HTML = {"Content-Type": "text/html; charset=utf-8"}
# A lease outlives any stall of a worker's reactor on a loaded CI machine (a lost lease means a
# shard changes hands mid-round: its tasks then run twice, their rows are still written once).
SETTINGS = [
    *("-s", f"SOURCE_DELAY={DELAY}", "-s", "DOWNLOAD_TIMEOUT=3", "-s", "RETRY_TIMES=1"),
    *("-s", f"ARCHIVE_DELAY={ARCHIVE_DELAY}"),
    *("-s", "REDIS_SHARDS=8", "-s", "REDIS_LEASE_SECONDS=4", "-s", "REDIS_CLAIM_IDLE_SECONDS=4"),
]
SOFT = 0  # the host that answers 200 for every path


def article(title: str) -> bytes:
    text = " ".join(f"{title} paragraph word{n}" for n in range(120))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title} | Example News</title>
<meta property="og:title" content="{title}"><meta name="description" content="About {title}">
<meta property="article:published_time" content="2013-03-27T08:00:00Z"></head>
<body><article><h1>{title}</h1><p>{text}</p></article></body></html>""".encode()


class RedisWorld:
    def __init__(self, folder: Path):
        self.folder = folder
        self.hosts = [SiteServer(folder, host=f"127.0.0.{10 + i}") for i in range(HOSTS)]
        for host in self.hosts:
            host.seen = []  # (path, User-Agent, when)
            host.answer_request = self._noting(host)
        self.archive = SiteServer(folder, host="127.0.0.9")
        self.archive.answer = self._archive_answer
        self.sources = []
        self.fatal: dict = {}  # path -> what the request for it does to the worker that sent it
        for i, host in enumerate(self.hosts):
            r = host.routes
            r[f"/news/{i}/a.html"] = [(200, HTML, article(f"Story {i} alpha"))]
            r[f"/news/{i}/b.html"] = [(404, HTML, b"not found")]
            r[f"/news/{i}/c.html"] = [(301, {"Location": host.url(f"news/{i}/c2.html")}, b"")]
            r[f"/news/{i}/c2.html"] = [(200, HTML, article(f"Story {i} moved"))]
            r[f"/news/{i}/d.html"] = [
                [(403, {"cf-mitigated": "challenge", **HTML}, b"<html>Just a moment</html>")],
                [(410, HTML, b"gone")],
            ][i % 2] if i % 3 == 0 else [(200, HTML, article(f"Story {i} delta"))]  # fmt: skip
            self.sources += [host.url(f"news/{i}/{p}.html") for p in "abcd"]
        soft = self.hosts[SOFT]
        soft.answer = lambda path: (200, HTML, b"<html><body><h1>Sorry, nothing here</h1></body></html>")
        root = folder / "site"
        day = root / "news/2013/03/27"
        day.mkdir(parents=True)
        cited = "\n".join(f"{n}. [Outlet {n}]({url})" for n, url in enumerate(self.sources, 1))
        (day / "event.md").write_text(
            f"### [2013-03-27](/news/2013/03/27/index.md)\n\n# Many hosts.\n\n### Sources:\n\n{cited}\n"
        )
        (day / "index.md").write_text(
            "## [2013-03-27](/news/2013/03/27/index.md)\n\n### [Many hosts. ](/news/2013/03/27/event.md)\n"
        )
        self.site = SiteServer(root, host="127.0.0.1")

    @staticmethod
    def _archive_answer(path: str) -> tuple[int, dict, bytes]:
        """A capture of every missing page (b.html), nothing for the others, an error for one host."""
        query = parse_qs(urlsplit(path).query)
        url, when = query["url"][0], query["timestamp"][0]
        if url.endswith("/news/1/b.html"):
            return 500, {}, b"busy"
        closest = {"available": True, "url": f"http://web.archive.invalid/{when}/{url}", "timestamp": when}
        answer = {"archived_snapshots": {"closest": closest} if url.endswith("/b.html") else {}}
        return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()

    def _noting(self, host):
        def answer_request(path, headers):
            host.seen.append((path, headers.get("User-Agent", ""), time.monotonic()))
            if path in self.fatal:  # a page no worker lives through: it dies asking for it
                self.fatal[path](headers.get("User-Agent", ""))
                return 200, HTML, b"too late"
            return host.answer(path)

        return answer_request

    @property
    def settings(self) -> list[str]:
        return [
            *SETTINGS,
            "-s",
            f"WAYBACK_API_URL={self.archive.origin}/wayback/available",
            "--allow-private",
        ]

    def forget_requests(self) -> None:
        self.archive.requests.clear()
        self.archive.times.clear()
        self.archive.user_agents.clear()
        for host in self.hosts:
            host.requests.clear()
            host.times.clear()
            host.seen.clear()

    def close(self) -> None:
        for server in (*self.hosts, self.archive, self.site):
            server.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = RedisWorld(tmp_path_factory.mktemp("redis-world"))
    mirror = crawler_in(w.folder)(
        "--start-url", w.site.url("news/2013/03/27/index.md"), "--now", NOW, *w.settings
    )
    assert mirror.scalar("SELECT count(*) FROM sources") == 4 * HOSTS
    w.mirror = mirror.db
    yield w
    w.close()


@pytest.fixture
def mirror(world, tmp_path) -> Path:
    world.forget_requests()
    db = tmp_path / "mirror.db"
    shutil.copy(world.mirror, db)
    return db


class Processes:
    """Workers and writers of one test, stopped at its end."""

    def __init__(self, folder: Path, redis_url: str, world: RedisWorld):
        self.folder, self.url, self.world = folder, redis_url, world
        self.procs: list[subprocess.Popen] = []
        self.named: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen([sys.executable, "-m", "crawler", *args], stdout=log, stderr=log,
                                cwd=self.folder)  # fmt: skip
        proc.log_path = log.name
        self.procs.append(proc)
        return proc

    def worker(self, name: str) -> subprocess.Popen:
        args = ["worker", "--redis", self.url, "--name", name, "-s", f"USER_AGENT=test-worker {name}"]
        self.named[name] = self._start(name, [*args, *self.world.settings])
        return self.named[name]

    def writer(self, db: Path, name: str = "writer", *more: str) -> subprocess.Popen:
        args = ["check-links", "--redis", self.url, "--db", str(db), "--now", NOW, "--json", *more]
        return self._start(name, [*args, *self.world.settings])

    def wait_for_workers(self, client, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while len(list(client.scan_iter(match="mirror:worker:*"))) < n:
            assert time.monotonic() < deadline, "the workers did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def procs(tmp_path, redis_server, world):
    p = Processes(tmp_path, redis_server.url, world)
    yield p
    p.stop()


def finished(proc: subprocess.Popen, timeout: float = 60) -> None:
    proc.wait(timeout=timeout)
    assert proc.returncode == 0, Path(proc.log_path).read_text()[-3000:]


def wait_rows(db: Path, at_least: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while read_count(db, "SELECT count(*) FROM link_checks") < at_least:
        assert time.monotonic() < deadline, "no checks stored"
        time.sleep(0.05)


def checks_per_source(db: Path) -> collections.Counter:
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return collections.Counter(
            row[0]
            for row in conn.execute(
                "SELECT s.url FROM link_checks c JOIN sources s ON s.id = c.source_id"
                " WHERE c.sync_run = (SELECT max(sync_run) FROM link_checks)"
            )
        )
    finally:
        conn.close()


def outcome_of(db: Path) -> dict:
    """What a round decided, per source: its check, liveness and what was kept (not timings)."""
    import sqlite3

    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute(
            "SELECT s.url, c.outcome, c.http_status, c.final_url, c.redirects, c.content_type, c.size,"
            " c.error, c.note, c.checked_at, s.status, s.strikes, s.next_check_at, s.title, s.description,"
            " s.published, s.site_name, s.content_hash, s.first_ok_at, s.archive_checked_at,"
            " s.archive_url, s.archive_timestamp,"
            " (SELECT group_concat(t.text, '|') FROM source_texts t WHERE t.source_id = s.id) AS texts"
            " FROM sources s JOIN link_checks c ON c.source_id = s.id ORDER BY s.url"
        )
        return {row["url"]: dict(row) for row in rows}
    finally:
        conn.close()


def assert_exactly_once(world: RedisWorld, db: Path) -> None:
    assert checks_per_source(db) == collections.Counter({url: 1 for url in world.sources})


def assert_polite(world: RedisWorld) -> None:
    """Every two requests to one host at least SOURCE_DELAY apart, as the host saw them.

    Whoever sent them: one worker, or two where a shard changed hands.  The times are those at
    which the host's server (a thread of the test process) read each request, strictly: a
    worker sends a host's next request a delay after its last answer ended, and the host read
    the request before it answered.  The archive: ARCHIVE_DELAY apart, its own budget.
    """
    for host in world.hosts:
        seen = sorted(host.seen, key=lambda entry: entry[2])
        for (path_a, ua_a, a), (path_b, ua_b, b) in zip(seen, seen[1:], strict=False):
            assert b - a >= DELAY, (host.origin, path_a, ua_a, path_b, ua_b, round(b - a, 3))
    asked = sorted(when for _path, when in world.archive.times)
    assert all(b - a >= ARCHIVE_DELAY for a, b in zip(asked, asked[1:], strict=False)), asked


def test_three_workers_check_each_source_once_politely_as_one_process_would(
    world, mirror, procs, redis_server, tmp_path
):
    for n in range(3):
        procs.worker(f"w{n}")
    procs.wait_for_workers(redis_server.client(), 3)
    finished(procs.writer(mirror))
    assert_exactly_once(world, mirror)
    # Each cited page was asked for once (a redirect's target once more), by one worker per host.
    for i, host in enumerate(world.hosts):
        asked = collections.Counter(host.requests)
        for page in "abcd":
            assert asked[f"/news/{i}/{page}.html"] == 1, (host.origin, asked)
    assert_polite(world)
    # The archive lookups went on their own stream: the workers asked the archive, not the writer.
    assert world.archive.requests and all(ua.startswith("test-worker") for ua in world.archive.user_agents)
    owners = redis_server.client()
    assert not owners.exists("mirror:round")  # the round is over: Redis holds nothing of it
    assert not owners.xlen("mirror:archive")

    # The same world checked by one process: the same verdicts, liveness and kept texts.
    world.forget_requests()
    alone = tmp_path / "alone.db"
    shutil.copy(world.mirror, alone)
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "check-links", "--db", str(alone), "--now", NOW, "--json",
         *world.settings],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_polite(world)  # one process keeps the same promise: it is the same spider
    queued, single = outcome_of(mirror), outcome_of(alone)
    assert queued == single
    outcomes = collections.Counter(row["outcome"] for row in queued.values())
    assert outcomes["ok"] > 0 and outcomes["soft404"] == 4 and outcomes["gone"] > 0
    assert any(row["texts"] for row in queued.values())  # the workers' extraction was kept
    # The lookups' rows too: captures of the missing pages, an empty answer dated, a failed one.
    assert sum(1 for row in queued.values() if row["archive_url"]) == HOSTS - 1
    asked = [row for row in queued.values() if row["archive_checked_at"]]
    assert len(asked) > HOSTS and not any(
        row["archive_url"] for row in queued.values() if not row["archive_checked_at"]
    )

    # A second round, every source again, by new workers: the probes of the first are fresh, so
    # none is on the streams, and each check of the soft-404 host tells its worker so; the
    # worker takes the pages' words in its pool (for the comparison), not the writer on its loop.
    procs.stop()
    for n in range(3):
        procs.worker(f"v{n}")
    procs.wait_for_workers(redis_server.client(), 3)
    world.forget_requests()
    finished(procs.writer(mirror, "writer-2", "--all"))
    asked = sorted(path for path in world.hosts[SOFT].requests if path != "/robots.txt")
    assert asked == [f"/news/{SOFT}/{page}.html" for page in "abcd"]
    procs.stop()
    said = [json.loads(Path(procs.named[f"v{n}"].log_path).read_text().splitlines()[-1]) for n in range(3)]
    assert sum(s["page_words_in_pool"] for s in said) == 4, said
    assert collections.Counter(row["outcome"] for row in outcome_of(mirror).values())["soft404"] == 4


def test_a_worker_killed_mid_round_leaves_its_checks_to_another(world, mirror, procs, redis_server):
    victim, survivor = procs.worker("victim"), procs.worker("survivor")
    procs.wait_for_workers(redis_server.client(), 2)
    writer = procs.writer(mirror)
    wait_rows(mirror, 5)
    victim.send_signal(signal.SIGKILL)
    finished(writer)
    assert_exactly_once(world, mirror)
    assert_polite(world)
    procs.stop()
    said = json.loads(Path(survivor.log_path).read_text().splitlines()[-1])
    assert said["tasks_taken_over"] > 0  # the victim's pending checks, claimed with XAUTOCLAIM


@pytest.fixture
def routes(world):
    """Answers of the world changed for one test, put back after it."""
    changed = {}

    def change(host: int, path: str, answers: list) -> None:
        server = world.hosts[host]
        changed.setdefault((host, path), server.routes[path])
        server.routes[path] = answers

    yield change
    for (host, path), answers in changed.items():
        world.hosts[host].routes[path] = answers


def test_a_writer_killed_mid_round_is_restarted_and_finishes_it(world, mirror, procs, redis_server, routes):
    # A host that asks to be left alone for two hours: the source is due again then, not after
    # RETRY_LATER_DAYS, even though the writer that stored its check is killed before settling.
    routes(2, "/news/2/a.html", [(429, {"Retry-After": "7200", **HTML}, b"slow down")])
    routes(3, "/news/3/d.html", [(STALL, {}, b"2.5")])  # answered late: the round is still open
    for n in range(2):
        procs.worker(f"w{n}")
    procs.wait_for_workers(redis_server.client(), 2)
    first = procs.writer(mirror, "writer1")
    wait_rows(mirror, 10)
    deadline = time.monotonic() + 30
    while not read_count(mirror, "SELECT count(*) FROM link_checks WHERE outcome = 'rate_limited'"):
        assert time.monotonic() < deadline, "the rate-limited check was not stored"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    # Killed before it settled: the round is still running, its checks not all stored.
    assert read_count(mirror, "SELECT count(*) FROM sync_runs WHERE status = 'running'") == 1
    assert read_count(mirror, "SELECT count(*) FROM link_checks") < 4 * HOSTS
    finished(procs.writer(mirror, "writer2"))
    assert_exactly_once(world, mirror)
    runs = read_count(mirror, "SELECT count(DISTINCT sync_run) FROM link_checks")
    assert runs == 1
    assert read_count(mirror, "SELECT count(*) FROM sync_runs WHERE kind = 'check-links'") == 1
    assert read_count(
        mirror, "SELECT count(*) FROM sync_runs WHERE status = 'finished' AND kind = 'check-links'"
    )
    limited = outcome_of(mirror)[world.hosts[2].url("news/2/a.html")]
    assert limited["outcome"] == "rate_limited"
    assert limited["next_check_at"].startswith("2026-03-01T14:00:00"), limited  # NOW + Retry-After


def test_redis_restarted_mid_round_the_writer_queues_again(world, mirror, procs, redis_server):
    for n in range(2):
        procs.worker(f"w{n}")
    procs.wait_for_workers(redis_server.client(), 2)
    writer = procs.writer(mirror)
    wait_rows(mirror, 10)
    redis_server.restart()
    finished(writer, timeout=90)
    assert_exactly_once(world, mirror)
    assert "queueing again" in Path(writer.log_path).read_text()


def test_a_check_that_kills_every_worker_is_dead_lettered_not_struck(world, mirror, procs, redis_server):
    """A page no worker lives through: the worker that asks for it dies (SIGKILL, sent by the
    host's server here; the kernel's OOM killer or a crash in a parser in life).  Three workers
    die on it (REDIS_MAX_DELIVERIES: handed out in a batch, in a takeover, then alone); the
    fourth puts it on the dead-letter stream, and the writer stores a check that could not be
    made: no verdict, no strike, due again after RETRY_LATER_DAYS.  Every other source is
    checked once, as usual: the tasks the dead workers held were not dead-lettered with it."""
    poison = world.hosts[4].url("news/4/a.html")
    killed = []

    def die(user_agent: str) -> None:
        name = user_agent.rsplit(" ", 1)[-1]
        killed.append(name)
        procs.named[name].kill()
        procs.named[name].wait()

    world.fatal["/news/4/a.html"] = die
    try:
        for n in range(4):
            procs.worker(f"w{n}")
        client = redis_server.client()
        procs.wait_for_workers(client, 4)
        finished(procs.writer(mirror), timeout=180)
    finally:
        world.fatal.clear()
    assert len(killed) == len(set(killed)) == 3, killed
    assert_exactly_once(world, mirror)
    assert_polite(world)
    rows = outcome_of(mirror)
    assert [url for url, row in rows.items() if row["error"] == "worker_lost"] == [poison]
    lost = rows[poison]
    assert lost["outcome"] == "unknown" and lost["status"] == "unchecked" and lost["strikes"] == 0
    assert "handed to workers 3 times" in lost["note"]
    assert lost["next_check_at"].startswith("2026-03-02T12:00:00")  # NOW + RETRY_LATER_DAYS
    dead = client.xrange("mirror:dead")
    assert [fields[b"url"].decode() for _id, fields in dead] == [poison]
    assert dead[0][1][b"deliveries"] == b"3"


def test_the_demo_checked_on_redis_as_in_one_process(tmp_path, redis_server, crawl):
    """``check-links --demo --redis`` with a ``worker --redis --demo`` (its own demo server): the
    same rows as ``check-links --demo``.  The demo round has keys of its own: a worker checking
    the web on the same Redis takes none of it."""
    made = crawl("--now", "2030-01-01T12:00:00Z")
    alone, queued = tmp_path / "alone.db", tmp_path / "queued.db"
    shutil.copy(made.db, alone)
    shutil.copy(made.db, queued)
    check = [
        sys.executable,
        "-m",
        "crawler",
        "check-links",
        "--demo",
        "--now",
        "2030-01-04T12:00:00Z",
        "--json",
    ]
    proc = subprocess.run(
        [*check, "--db", str(alone)], capture_output=True, text=True, timeout=180, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = {}
    workers = []
    for name, demo in (("demo", ["--demo"]), ("web", [])):
        logs[name] = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 (closed below)
        args = ["worker", "--redis", redis_server.url, "--name", name, *demo]
        workers.append(subprocess.Popen([sys.executable, "-m", "crawler", *args], stdout=logs[name],
                                        stderr=subprocess.STDOUT, cwd=tmp_path))  # fmt: skip
    try:
        proc = subprocess.run(
            [*check, "--db", str(queued), "--redis", redis_server.url],
            capture_output=True, text=True, timeout=180, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        for worker in workers:  # both were there all along; stopped, each says what it pushed
            assert worker.poll() is None
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=60)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        for log in logs.values():
            log.close()
    said = {name: json.loads((tmp_path / f"{name}.log").read_text().splitlines()[-1]) for name in logs}
    assert said["web"]["results_pushed"] == 0 and said["demo"]["results_pushed"] > 100
    single, redis_rows = outcome_of(alone), outcome_of(queued)
    assert redis_rows == single and len(single) > 100
    assert any(row["archive_url"] for row in single.values())
