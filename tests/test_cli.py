"""The command line as a user runs it: demo, bounds, options, exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from urllib.parse import urlsplit

import pytest
from conftest import ROOT, SEED
from scrapy import Request
from scrapy.exceptions import IgnoreRequest
from scrapy.utils.test import get_crawler

from crawler.addresses import literal_address
from crawler.demo import ORIGIN_HEADER, DemoServer
from crawler.guard import checked_address, lookup
from crawler.middlewares import PrivateAddressMiddleware


def cli(*args, cwd, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "crawler", *args], capture_output=True, text=True, cwd=cwd, timeout=timeout
    )


def test_demo_runs_offline_with_defaults(tmp_path, crawl):
    proc = cli("run", "-s", "PROGRESS_INTERVAL=0.05", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Mirrored" in proc.stdout and "bundled demo site" in proc.stdout
    assert "progress: pages" in proc.stderr  # not a terminal: periodic lines
    mirror = crawl(db=tmp_path / "mirror.db", json_output=False)  # the default file, run again
    assert mirror.scalar("SELECT count(*) FROM events") == 75  # 79 files, two events in three files each
    assert mirror.scalar("SELECT count(*) FROM days") == 6
    assert (
        mirror.scalar("SELECT count(*) FROM events WHERE url NOT LIKE 'https://thecontext.net/news/%'") == 0
    )
    assert mirror.scalar("SELECT count(*) FROM sync_runs WHERE status = 'finished'") == 2
    # A sync of the unchanged demo asks robots.txt and the front page (a 304), nothing else.
    second = mirror.query("SELECT * FROM sync_runs WHERE id = 2")[0]
    assert (second["requests"], second["pages_not_modified"], second["events_new"]) == (2, 1, 0)


def test_demo_server_plays_the_cited_sources(tmp_path, crawl):
    mirror = crawl()  # the whole demo: 108 cited sources
    urls = [row["url"] for row in mirror.query("SELECT url FROM sources")]
    assert len(urls) > 50
    statuses = Counter()

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None  # the Location is the article's real address: never follow it here

    opener = urllib.request.build_opener(NoRedirects)
    with DemoServer() as demo:
        for url in urls:
            origin = "/".join(url.split("/", 3)[:3])
            path = "/" + url.split("/", 3)[3]
            request = urllib.request.Request(
                demo.base_url.rstrip("/") + path, headers={ORIGIN_HEADER: origin}
            )
            try:
                with opener.open(request) as response:
                    statuses[response.status] += 1
            except urllib.error.HTTPError as exc:
                statuses[exc.code] += 1
    assert statuses[200] > len(urls) / 2
    assert {404, 410, 301, 302, 403, 500} <= set(statuses)


def test_max_pages_bounds_the_crawl(site, crawl):
    mirror = crawl("--start-url", site.url("news/2013/03/27/index.md"), "--max-pages", "5")
    assert mirror.scalar("SELECT count(*) FROM pages WHERE kind != 'queued'") == 5
    assert len([p for p in site.requests if p != "/robots.txt"]) == 5


def test_since_until_bound_what_is_fetched(site, crawl):
    mirror = crawl(
        "--start-url", site.url("news/2013/03/27/index.md"), "--since", "2013-03-26", "--until", "2013-03-27"
    )
    fetched = [p for p in site.requests if p != "/robots.txt"]
    assert fetched and all(p.startswith(("/news/2013/03/26/", "/news/2013/03/27/")) for p in fetched)
    assert {r["date"] for r in mirror.query("SELECT date FROM days")} == {"2013-03-26", "2013-03-27"}
    assert mirror.scalar("SELECT count(*) FROM events") == 35


def test_until_alone_asks_for_its_day_directly(site, crawl):
    mirror = crawl("--start-url", site.url(SEED), "--since", "2013-03-25", "--until", "2013-03-25")
    # The seed is fetched (a start URL), its related events are all out of the window,
    # and the window's day is asked for by its path.
    assert mirror.scalar("SELECT count(*) FROM days") == 1
    assert mirror.scalar("SELECT count(*) FROM events WHERE date = '2013-03-25'") == 17


def test_robots_txt_is_respected(site, crawl):
    site.routes["/robots.txt"] = [(200, {}, b"User-agent: *\nDisallow: /news/2013/03/26/\n")]
    mirror = crawl("--start-url", site.url("news/2013/03/27/index.md"), "--since", "2013-03-26")
    assert not site.requested("/news/2013/03/26/")
    errors = mirror.query("SELECT error FROM pages WHERE url LIKE '%/2013/03/26/%'")
    assert errors and {e["error"] for e in errors} == {"robots: forbidden by robots.txt"}


def test_settings_override_with_dash_s(site, crawl):
    crawl("--start-url", site.url(SEED), "--max-pages", "1", "-s", "USER_AGENT=test-agent/9 (+http://x)")
    assert site.user_agents == {"test-agent/9 (+http://x)"}


def test_unreachable_start_url_exits_1_with_one_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens
    proc = cli("run", "--start-url", f"http://127.0.0.1:{port}/news/2013/03/27/index.md", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: cannot fetch the start URL")
    assert "refused" in proc.stderr


def test_unwritable_database_exits_1(tmp_path):
    proc = cli("run", "--db", str(tmp_path / "no" / "such" / "dir" / "m.db"), cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot write the database")


@pytest.mark.parametrize(
    "args",
    [
        ["--since", "2013-13-01"],
        ["--since", "2013-03-27", "--until", "2013-03-01"],
        ["-s", "NO_EQUALS_SIGN"],
        ["--max-pages", "0"],
    ],
)
def test_bad_arguments_exit_2(tmp_path, args):
    proc = cli("run", *args, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert not (tmp_path / "mirror.db").exists()


def test_json_summary(site, crawl):
    summary = crawl("--start-url", site.url(SEED), "--max-pages", "3").summary
    assert summary["status"] == "finished"
    assert summary["pages_fetched"] == 3
    assert summary["start_urls"] == [site.url(SEED)]
    assert set(summary) >= {"events_new", "events_changed", "events_unchanged", "errors", "seconds", "db"}


def test_scrapy_crawl_works_from_the_project_folder(site, tmp_path):
    db = tmp_path / "scrapy.db"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "crawl",
            "eventsite",
            "-a",
            f"start_urls={site.url(SEED)}",
            "-a",
            "max_pages=2",
            "-s",
            f"MIRROR_DB={db}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert sqlite3.connect(db).execute("SELECT count(*) FROM pages WHERE kind != 'queued'").fetchone()[0] == 2


def test_private_addresses_are_refused_unless_allowed():
    crawler = get_crawler(settings_dict={"ALLOW_PRIVATE": False})
    guard = PrivateAddressMiddleware(crawler)
    guard.allowed_hosts = {"127.0.0.1"}

    async def verdict(url):
        try:
            await guard.process_request(Request(url))  # IP literals are checked here
            host = urlsplit(url).hostname
            if url.startswith("http") and literal_address(host) is None and host not in guard.allowed_hosts:
                checked_address(host, lookup(host))  # names: what the reactor's resolver does (crawler.guard)
        except IgnoreRequest as exc:
            return str(exc)
        return None

    async def main():
        return [
            await verdict("http://127.0.0.1:9/ok.md"),  # the start URL's host
            await verdict("http://127.0.0.2:9/x"),
            await verdict("http://localhost:9/x"),
            await verdict("http://10.1.2.3/x"),
            await verdict("http://169.254.169.254/latest/meta-data"),
            await verdict("http://[::1]/x"),
            await verdict("http://93.184.215.14/x"),  # public: allowed (never fetched here)
            await verdict("file:///etc/passwd"),  # not a network request
        ]

    results = asyncio.run(main())
    assert results[0] is None
    assert all(r and r.startswith("private address") for r in results[1:6])
    assert results[6] is None and results[7] is None
    allowed = PrivateAddressMiddleware(get_crawler(settings_dict={"ALLOW_PRIVATE": True}))
    assert asyncio.run(allowed.process_request(Request("http://10.1.2.3/x"))) is None


def test_help_lists_the_options(tmp_path):
    proc = cli("run", "--help", cwd=tmp_path, timeout=60)
    for option in (
        "--start-url",
        "--site-root",
        "--db",
        "--max-pages",
        "--since",
        "--until",
        "--allow-private",
        "--json",
        "-s",
    ):
        assert option in proc.stdout


def test_ctrl_c_stops_cleanly_and_the_next_run_completes(site, tmp_path, crawl):
    db = tmp_path / "interrupted.db"
    start = site.url("news/2013/03/27/index.md")
    site.delay = 0.05
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crawler",
            "run",
            "--db",
            str(db),
            "--start-url",
            start,
            "--since",
            "2013-03-26",
            "-s",
            "CONCURRENT_REQUESTS_PER_DOMAIN=1",
            "-s",
            "CHECK_SOURCES=False",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 30
    while len(site.requests) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    run = json.loads(out)
    assert run["status"] == "interrupted" and run["finish_reason"] == "shutdown"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    site.delay = 0
    resumed = crawl("--start-url", start, "--since", "2013-03-26", db=db)
    reference = crawl("--start-url", start, "--since", "2013-03-26", db=tmp_path / "reference.db")
    assert 0 < stored < reference.summary["events_new"]
    assert resumed.scalar("SELECT count(*) FROM events") == reference.summary["events_new"]
    assert resumed.summary["status"] == "finished"


def test_progress_line_on_a_terminal(tmp_path):
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "run"],
        stdout=subprocess.PIPE,
        stderr=follower,
        cwd=tmp_path,
        text=True,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=120)
    os.close(leader)
    screen = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0
    assert "\r\x1b[Kpages " in screen and " · queue " in screen
    assert "progress:" not in screen


def test_a_run_stopped_during_its_source_checks_prints_a_summary_that_agrees_with_itself(tmp_path):
    """Today: "55 checked; by status: 108 unchecked" (the checks were kept, their verdicts not settled)."""
    err = (tmp_path / "err.txt").open("w+")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crawler",
            "run",
            "-s",
            "PROGRESS_INTERVAL=0.1",
            "-s",
            "CONCURRENT_REQUESTS=1",
        ],
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
        if "sources checked" in (tmp_path / "err.txt").read_text().replace("sources checked 0 ", ""):
            break
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    err.close()
    assert proc.returncode == 130, (tmp_path / "err.txt").read_text()
    lines = out.splitlines()
    checked = next(line for line in lines if line.startswith("  sources:"))
    assert "checked before the stop, not settled" in checked and "stay due" in checked, out
    statuses = next(line for line in lines if line.startswith("  sources by status"))
    assert statuses.startswith("  sources by status, as before the checks: ") and "unchecked" in statuses
    assert "; by status:" not in out  # the old line, which set a count of checks beside no status


def test_summaries_of_stopped_and_settled_check_runs():
    from crawler.commands.summaries import check_summary, run_summary

    run = {
        "status": "interrupted",
        "finish_reason": "shutdown",
        "pages_fetched": 79,
        "db": "mirror.db",
        "seconds": 9.0,
        "events_new": 75,
        "events_changed": 0,
        "events_unchanged": 0,
        "errors": 0,
        "start_urls": ["https://thecontext.net/"],
        "sources_checked": 55,
        "sources_by_status": {"unchecked": 108},
    }
    assert "55 checked before the stop, not settled" in run_summary(run)
    assert "as before the checks: 108 unchecked" in run_summary(run)
    assert "55 checked before the stop" not in run_summary({**run, "status": "finished"})
    assert "not settled" in check_summary(run) and "not settled" not in check_summary(
        {**run, "status": "finished"}
    )
