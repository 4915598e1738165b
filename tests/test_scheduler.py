"""The scheduler: its schedule arithmetic, and a real scheduler process over a loopback site."""

from __future__ import annotations

import datetime as dt
import json
import logging
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, read_count

from crawler.lock import writer_lock
from crawler.loopback.site import SiteServer
from crawler.testing.sitegen import generate
from pipeline.schema import open_database
from scheduler import JobRunner, make_trigger, missed, parse_every

UTC = dt.UTC


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("1.5h", 5400)]
)
def test_intervals(text, seconds):
    assert parse_every(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "2", "2w", "-1h", "0s", "h"])
def test_bad_intervals(text):
    with pytest.raises(ValueError):
        parse_every(text)


def test_bad_or_double_schedules():
    with pytest.raises(ValueError, match="cron"):
        make_trigger("61 * * * *", None)
    with pytest.raises(ValueError, match="not both"):
        make_trigger("0 3 * * *", "1d")


def test_missed_runs_after_downtime_coalesce_into_one_catch_up():
    now = dt.datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    nightly = make_trigger(None, None, default_cron="0 3 * * *")
    assert missed(nightly, None, now)  # never ran
    assert not missed(nightly, dt.datetime(2026, 11, 23, 3, 0, 5, tzinfo=UTC), now)  # ran last night
    assert missed(nightly, dt.datetime(2026, 11, 20, 3, 0, tzinfo=UTC), now)  # down for three nights: one run
    every_2h = make_trigger(None, "2h")
    assert not missed(every_2h, now - dt.timedelta(minutes=90), now)
    assert missed(every_2h, now - dt.timedelta(hours=5), now)


def run_until(cmd: list[str], cwd, done) -> tuple[int, str]:
    """Run the scheduler until ``done()`` says so (90 s at most), then SIGTERM it: its exit code and log."""
    proc = subprocess.Popen(cmd, cwd=cwd, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if done():
                break
        proc.send_signal(signal.SIGTERM)
        _, log = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, log


def test_the_scheduler_runs_jobs_without_overlap_survives_failure_and_stops_on_sigterm(tmp_path):
    site = generate(tmp_path / "site", days=4, events_per_day=4)
    server = SiteServer(site.root)
    server.delay = 0.3  # a first sync of a few seconds, longer than the sync interval
    front = server.prefix + "index.md"
    # The first sync cannot fetch its start URL (three 500s, retries included) and fails.
    server.routes[front] = [(500, {}, b"down")] * 3 + [(200, {}, (site.root / "index.md").read_bytes())]
    db = tmp_path / "mirror.db"
    logs = tmp_path / "logs"
    cmd = [sys.executable, "-m", "crawler", "schedule", "--db", str(db)]
    cmd += ["--start-url", server.url("index.md")]
    cmd += ["--sync-every", "2s", "--check-links-every", "3s", "--log-dir", str(logs), "--grace", "20"]
    # Sources of the generated site are on .example hosts (no DNS); archive lookups stay on loopback.
    cmd += ["-s", "SOURCE_DELAY=0", "-s", f"WAYBACK_API_URL={server.origin}/wayback"]
    cmd += ["-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2"]
    finished = "SELECT count(*) FROM sync_runs WHERE kind = 'sync' AND status = 'finished'"
    checked = "SELECT count(*) FROM sync_runs WHERE kind = 'check-links'"
    def two_syncs_and_a_check() -> bool:
        return read_count(db, finished) >= 2 and bool(read_count(db, checked))

    try:
        code, log = run_until(cmd, tmp_path, two_syncs_and_a_check)
    finally:
        server.close()
    assert code == 0, log
    assert "failed with exit code 1" in log  # the first sync, logged with its output file
    assert "maximum number of running instances reached" in log  # a sync came due during a sync
    assert "check-links waits for sync to finish" in log
    assert "SIGTERM received: stopping" in log and "scheduler stopped" in log
    conn = sqlite3.connect(db)
    runs = conn.execute(
        "SELECT kind, status, started_at, finished_at FROM sync_runs ORDER BY started_at, id"
    ).fetchall()
    conn.close()
    kinds = [(kind, status) for kind, status, _, _ in runs]
    assert ("sync", "finished") in kinds and ("check-links", "finished") in kinds
    assert kinds.count(("sync", "failed")) == 1, kinds  # the start URL was down: no sync happened
    others = {status for kind, status in kinds if (kind, status) != ("sync", "failed")}
    assert others <= {"finished", "interrupted"}, kinds
    for (_, _, _, finished), (_, _, started, _) in zip(runs, runs[1:], strict=False):
        assert finished is not None and started >= finished, runs  # never two at once
    assert len(list(logs.glob("sync-*.log"))) >= 3  # the failure and the two finished syncs
    assert read_count(db, "SELECT count(*) FROM events") == site.events


def test_scheduler_py_accepts_dash_h():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scheduler.py"), "-h"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "--job-timeout" in proc.stdout and "Traceback" not in proc.stderr


def jobs(logs) -> list[dict]:
    return [json.loads(line) for line in (logs / "jobs.jsonl").read_text().splitlines()]


def test_a_hung_job_is_killed_after_the_timeout_and_recorded(tmp_path, caplog):
    logs = tmp_path / "logs"
    runner = JobRunner(logs, timeout=1, grace=1)
    hang = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="scheduler"):
        runner("sync", [sys.executable, "-c", hang])
    assert time.monotonic() - started < 30
    [record] = jobs(logs)
    assert record["job"] == "sync" and record["outcome"] == "timed-out"
    assert record["exit_code"] == -signal.SIGKILL  # it ignored SIGTERM: killed after the grace
    assert "sync timed out: killed after 1s" in caplog.text and "recorded as timed-out" in caplog.text
    runner("sync", [sys.executable, "-c", "pass"])  # the schedule goes on
    assert [r["outcome"] for r in jobs(logs)] == ["timed-out", "finished"]


def test_a_job_refused_by_the_writer_lock_is_recorded_as_skipped(tmp_path, caplog):
    db = tmp_path / "mirror.db"
    open_database(str(db)).close()
    logs = tmp_path / "logs"
    argv = [sys.executable, "-m", "crawler", "check-links", "--db", str(db), "-s", "LOCK_TIMEOUT=0.2"]
    with writer_lock(str(db), 1, "another sync"), caplog.at_level(logging.INFO, logger="scheduler"):
        JobRunner(logs)("check-links", argv)
    [record] = jobs(logs)
    assert (record["outcome"], record["exit_code"]) == ("skipped", 75)
    assert "check-links skipped: another process is writing the mirror" in caplog.text
    assert "failed" not in caplog.text
    assert "another sync" in Path(record["log"]).read_text()  # the job's own line says who holds it


def test_the_scheduler_stops_a_hung_sync_and_goes_on(tmp_path):
    """A start URL whose server accepts the connection and never answers: the sync hangs."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel's backlog; nothing ever reads them
    port = silent.getsockname()[1]
    db, logs = tmp_path / "mirror.db", tmp_path / "logs"
    cmd = [sys.executable, "-m", "crawler", "schedule", "--db", str(db), "--log-dir", str(logs)]
    cmd += [
        "--start-url",
        f"http://127.0.0.1:{port}/index.md",
        "--sync-every",
        "1h",
        "--check-links-every",
        "1d",
    ]
    cmd += ["--job-timeout", "12s", "--grace", "2", "-s", "DOWNLOAD_TIMEOUT=600", "-s", "RETRY_TIMES=0"]
    record = logs / "jobs.jsonl"
    def two_jobs_recorded() -> bool:
        return record.exists() and len(record.read_text().splitlines()) >= 2

    try:
        code, log = run_until(cmd, tmp_path, two_jobs_recorded)
    finally:
        silent.close()
    assert code == 0, log
    outcomes = [(r["job"], r["outcome"]) for r in jobs(logs)]
    assert outcomes[0] == ("sync", "timed-out"), log
    assert ("check-links", "finished") in outcomes, log  # the schedule went on after it
    assert "sync still running after 12s (--job-timeout): stopping it" in log
    assert "sync timed out: killed after 12s" in log
