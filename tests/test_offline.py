"""False alarms and lost verdicts, end to end: the real CLI against loopback hosts.

* An offline run (most source hosts fail at the network level: unresolvable ``.invalid``
  names, closed ports on 127.0.0.x) strikes nobody, warns, and its ``sync_runs`` row says
  so; one unresolvable host among hosts that answer is still struck.
* ``check-links --demo`` on a mirror that also holds real sources answers only for the
  demo's own: the others are not checked (and stay due).
* A ``run`` killed (SIGKILL) during its source checks leaves a row the next run marks
  ``abandoned``.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import STALL, Mirror, SiteServer, crawler_in

from crawler.testing.server import ArticleServer
from crawler.testing.sitegen import write_citing_site

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
FAST = ["-s", "SOURCE_DELAY=0", "-s", "DOWNLOAD_TIMEOUT=3", "-s", "RETRY_TIMES=0", "--allow-private"]


def at(days: float) -> str:
    return (T0 + dt.timedelta(days=days)).isoformat()


def closed_port(host: str) -> str:
    """An origin on ``host`` where nothing listens: every connection is refused."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return f"http://{host}:{sock.getsockname()[1]}"


def citing_site(folder: Path, sources: list[str]) -> SiteServer:
    """An event site on 127.0.0.1 with one event citing ``sources``."""
    return SiteServer(write_citing_site(folder, sources), host="127.0.0.1")


def mirror_of(folder: Path, site: SiteServer, *args: str) -> Mirror:
    """The site mirrored, its sources not checked yet."""
    return crawler_in(folder)("--start-url", site.url("news/2013/03/27/index.md"), "--now", at(0), *args)


def check_links(db: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "check-links", "--db", str(db), "--json", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


# -- an offline run ------------------------------------------------------------------------------


def test_an_offline_run_strikes_nobody_warns_and_says_so(tmp_path):
    # Six hosts, every one failing at the network level: three names that cannot resolve, three
    # loopback addresses where nothing listens.  So looks a machine whose network is down.
    origins = [f"http://news{n}.invalid" for n in range(3)]
    origins += [closed_port(f"127.0.0.{n}") for n in (7, 8, 9)]
    sources = [f"{origin}/2013/03/27/story-{k}.html" for origin in origins for k in range(2)]
    site = citing_site(tmp_path, sources)
    archive = SiteServer(tmp_path, host="127.0.0.10")  # a stand-in for the Internet Archive
    wayback = ["-s", f"WAYBACK_API_URL={archive.origin}/wayback/available"]
    try:
        mirror = mirror_of(tmp_path, site)
        # One source already failing (a strike from an earlier, online run): it would be looked
        # up in the archive after a settled run, but not after an offline one.
        conn = sqlite3.connect(mirror.db)
        with conn:
            conn.execute(
                "UPDATE sources SET status = 'failing', strikes = 1, last_strike_at = ?,"
                " first_failed_at = ? WHERE url = ?",
                [at(-3), at(-3), sources[0]],
            )
        conn.close()
        for day in (0, 3, 6):  # what, online, would be three strikes three days apart: dead
            proc = check_links(mirror.db, "--now", at(day), *FAST, *wayback)
            assert "offline run: 6 of 6 hosts failed at the network level (dns 3, refused 3)" in proc.stderr
            assert "no source was struck" in proc.stderr
        rows = {r["url"]: r for r in mirror.query("SELECT url, status, strikes, next_check_at FROM sources")}
        assert len(rows) == len(sources)
        assert (rows[sources[0]]["status"], rows[sources[0]]["strikes"]) == ("failing", 1)
        assert {(r["status"], r["strikes"]) for url, r in rows.items() if url != sources[0]} == {
            ("unchecked", 0)
        }
        assert {r["next_check_at"] for r in rows.values()} == {at(7)}  # tried again a day later
        assert archive.requests == []  # no lookup from a machine that is offline
        runs = mirror.query("SELECT kind, status, offline, sources_checked FROM sync_runs ORDER BY id")
        assert runs[0]["kind"] == "sync" and runs[0]["offline"] is None  # its sources were not checked
        assert [(r["status"], r["offline"], r["sources_checked"]) for r in runs[1:]] == [
            ("finished", 1, len(sources))
        ] * 3
        outcomes = mirror.query("SELECT error, outcome, count(*) AS n FROM link_checks GROUP BY 1, 2")
        assert {(r["error"], r["outcome"]) for r in outcomes} == {("dns", "gone"), ("refused", "transient")}
        status = subprocess.run(
            [sys.executable, "-m", "crawler", "status", "--db", str(mirror.db), "--now", at(6)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        last_check = next(line for line in status.stdout.splitlines() if "last link check" in line)
        assert "offline" in last_check and "nothing was struck" in last_check
    finally:
        site.close()
        archive.close()


def test_one_unresolvable_host_among_hosts_that_answer_is_struck(tmp_path):
    hosts = [ArticleServer(tmp_path, host=f"127.0.0.{n}", words=50) for n in range(2, 7)]
    gone = "http://closed-newspaper.invalid/2013/03/27/story.html"
    sources = [server.url(f"2013/03/27/story-{n}.html") for n, server in enumerate(hosts)] + [gone]
    site = citing_site(tmp_path, sources)
    try:
        mirror = mirror_of(tmp_path, site)
        proc = check_links(mirror.db, "--now", at(0), *FAST)
        assert "offline run" not in proc.stderr
        rows = {r["url"]: r for r in mirror.query("SELECT url, status, strikes FROM sources")}
        assert (rows[gone]["status"], rows[gone]["strikes"]) == ("failing", 1)
        assert {(r["status"], r["strikes"]) for url, r in rows.items() if url != gone} == {("alive", 0)}
        assert mirror.scalar("SELECT offline FROM sync_runs WHERE kind = 'check-links'") == 0
    finally:
        site.close()
        for server in hosts:
            server.close()


# -- the demo answers only for the demo's own sources ----------------------------------------------


def test_check_links_demo_leaves_the_mirrors_other_sources_alone(tmp_path):
    from crawler.demo.sources import cited_urls

    demo_host = sorted(cited_urls())[0].split("/")[2]
    real = ArticleServer(tmp_path, host="127.0.0.2", words=50)
    others = [real.url("2013/03/27/real-article.html"), f"https://{demo_host}/a-story-the-demo-does-not-cite"]
    site = citing_site(tmp_path, others)
    try:
        crawler_in(tmp_path)("--now", at(0))  # the bundled demo, its sources not checked
        mirror = mirror_of(tmp_path, site)  # and a site of our own, citing other sources
        assert mirror.scalar("SELECT count(*) FROM sources") > 100
        proc = check_links(mirror.db, "--demo", "--now", at(0), *FAST)
        assert "2 sources the demo does not play were not checked" in proc.stderr
        placeholders = ", ".join("?" * len(others))
        rows = mirror.query(f"SELECT * FROM sources WHERE url IN ({placeholders})", others)
        assert len(rows) == 2
        for row in rows:  # no demo answer recorded for them: not checked, still due
            assert (row["status"], row["last_outcome"]) == ("unchecked", None)
            assert row["archive_checked_at"] is None
        ids = ", ".join(str(row["id"]) for row in rows)
        assert not mirror.query(f"SELECT 1 FROM link_checks WHERE source_id IN ({ids})")
        assert real.requests == []  # and the network was not asked either
        checked = mirror.scalar("SELECT count(*) FROM sources WHERE status != 'unchecked'")
        assert checked > 90  # the demo's own sources were checked, as before
        # A real check then checks them, for real.
        check_links(mirror.db, "--now", at(0), "--limit", "5", *FAST)
        status = mirror.scalar("SELECT status FROM sources WHERE url = ?", [others[0]])
        assert status == "alive" and real.requested("real-article")
    finally:
        site.close()
        real.close()


def test_the_demo_plays_its_own_hosts_and_urls_only():
    import asyncio

    from scrapy import Request
    from scrapy.exceptions import IgnoreRequest

    from crawler.demo.routing import DemoRoutingHandler
    from crawler.demo.sources import cited_urls, demo_hosts, plays

    cited = sorted(cited_urls())[0]
    host = cited.split("/")[2]
    assert {"thecontext.net", "archive.org", host} <= demo_hosts()
    assert plays(cited) and not plays(f"https://{host}/not-cited") and not plays("http://a:8O80/x")
    handler = DemoRoutingHandler.__new__(DemoRoutingHandler)  # no reactor needed: nothing is sent
    handler.server, handler.inner = "http://127.0.0.1:9", None
    with pytest.raises(IgnoreRequest, match="not a host the demo plays: news.example.org"):
        asyncio.run(handler.download_request(Request("https://news.example.org/story")))


# -- killed during the source checks ---------------------------------------------------------------


def test_a_run_killed_during_its_source_checks_is_marked_abandoned_by_the_next(tmp_path):
    slow = SiteServer(tmp_path, host="127.0.0.3")
    slow.routes["/robots.txt"] = [(404, {}, b"")]
    for n in range(3):
        slow.routes[f"/story-{n}.html"] = [(STALL, {}, b"20")]
    site = citing_site(tmp_path, [slow.url(f"story-{n}.html") for n in range(3)])
    db = tmp_path / "mirror.db"
    args = ["--start-url", site.url("news/2013/03/27/index.md"), "--now", at(0), "--db", str(db)]
    slow_checks = [*FAST[:2], "-s", "DOWNLOAD_TIMEOUT=60", "--allow-private"]
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawler", "run", *args, *slow_checks],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=tmp_path,
        )
        deadline = time.monotonic() + 60
        while not slow.requested("story-") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert slow.requested("story-"), "the source checks never started"
        mirror = Mirror(None, db)
        # The site crawl is done, the checks go on: the run is still running.
        row = mirror.query("SELECT status, finish_reason, pages_fetched FROM sync_runs")[0]
        assert (row["status"], row["finish_reason"]) == ("running", "checking sources")
        assert row["pages_fetched"] > 0
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        killed = mirror.query("SELECT status, sources_checked FROM sync_runs")[0]
        assert killed == {"status": "running", "sources_checked": None}
        crawler_in(tmp_path)(*args)  # the next run, sources not checked
        runs = mirror.query("SELECT status, finish_reason FROM sync_runs ORDER BY id")
        assert runs == [
            {"status": "abandoned", "finish_reason": "process died during the source checks"},
            {"status": "finished", "finish_reason": "finished"},
        ]
    finally:
        site.close()
        slow.close()


def test_a_run_whose_checks_finish_keeps_the_site_crawls_verdict(tmp_path):
    news = ArticleServer(tmp_path, host="127.0.0.4", words=50)
    site = citing_site(tmp_path, [news.url("2013/03/27/story.html")])
    try:
        mirror = crawler_in(tmp_path)(
            "--start-url", site.url("news/2013/03/27/index.md"), "--now", at(0), *FAST,
            check_sources=True,
        )  # fmt: skip
        row = mirror.query("SELECT status, finish_reason, sources_checked, offline FROM sync_runs")[0]
        assert row == {"status": "finished", "finish_reason": "finished", "sources_checked": 1, "offline": 0}
        assert mirror.summary["status"] == "finished"
    finally:
        site.close()
        news.close()
