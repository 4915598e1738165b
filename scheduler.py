"""Keep the mirror current from one long-running process (APScheduler 3).

``python -m crawler schedule`` (or ``python scheduler.py``) runs the sync and
the link check on their own schedules, each given as a cron expression
(``--sync "*/30 * * * *"``) or an interval (``--sync-every 2h``).  Why it is
built the way it is:

* Every job is ``python -m crawler run`` / ``check-links`` in a **fresh child
  process**: a Twisted reactor cannot be restarted, and a crawler that lives
  for months leaks.  The child's output goes to a log file per job run, and
  the scheduler logs where.
* **Jobs never overlap.**  A job that comes due while its previous run is
  still going is skipped and logged (APScheduler's ``max_instances=1``); the
  link check due while a sync runs (or the reverse) waits for it, so that a
  nightly check is not put off by a day.  One child writes at a time, as the
  database's writer lock demands.
* **Missed runs coalesce.**  Within the process, ``coalesce=True`` turns a
  backlog into one run.  Across downtime, the schedule is compared with the
  last run of each kind in ``sync_runs``: if a run came due while the
  scheduler was down (or none ever ran), one runs at start.
* **A failing job** (a non-zero exit) is logged with its log file and tried
  again at its next tick; the scheduler keeps running.  A job **refused by the
  writer lock** (exit 75: another process writes the mirror) is logged and
  recorded as ``skipped``, not as a failure.
* **A job that hangs** is stopped after ``--job-timeout`` (the ``JOB_TIMEOUT``
  setting, 6 hours by default): SIGTERM, then SIGKILL after ``--grace``
  seconds; it is logged and recorded as ``timed-out``, and the schedule goes on.
* **Every job's outcome** (finished, failed, skipped, timed-out, stopped) is
  logged and appended as one JSON line to ``jobs.jsonl`` in the log folder,
  with its exit code, times and log file.
* **SIGTERM / SIGINT** stop the schedule, pass SIGTERM to a running child
  (which ends its crawl cleanly and marks the run ``interrupted``), wait
  ``--grace`` seconds, kill it if it is still there (the database stays
  valid; the next sync resumes), and exit 0.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import click

from crawler import settings as project_defaults  # plain constants: no Scrapy loads

# APScheduler and sqlite-utils (under pipeline.schema) load inside the functions that use
# them: ``python -m crawler --help`` lists this command and should not pay for them.

log = logging.getLogger("scheduler")

DEFAULT_SYNC_EVERY = "2h"  # the site changes every few hours
DEFAULT_CHECK_LINKS_CRON = "0 3 * * *"  # nightly, when sources see the least traffic
EXIT_LOCKED = 75  # a job's exit when another process holds the mirror's writer lock
JOBS_RECORD = "jobs.jsonl"
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_every(text: str) -> dt.timedelta:
    """``90s``, ``30m``, ``2h``, ``1d`` (also ``1.5h``) as a timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text or "")
    if not match or float(match[1]) <= 0:
        raise ValueError(f"expected an interval like 90s, 30m, 2h or 1d, not {text!r}")
    return dt.timedelta(**{UNITS[match[2]]: float(match[1])})


def make_trigger(cron: str | None, every: str | None, default_cron=None, default_every=None):
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if cron and every:
        raise ValueError("give a cron expression or an interval, not both")
    if cron or (default_cron and not every):
        try:
            return CronTrigger.from_crontab(cron or default_cron, timezone=dt.UTC)
        except ValueError as exc:
            raise ValueError(f"bad cron expression {cron!r}: {exc}") from None
    return IntervalTrigger(seconds=parse_every(every or default_every).total_seconds(), timezone=dt.UTC)


def missed(trigger, last_started: dt.datetime | None, now: dt.datetime) -> bool:
    """Did a run come due since the last one started (or has none ever run)?"""
    from apscheduler.triggers.interval import IntervalTrigger

    if last_started is None:
        return True
    if isinstance(trigger, IntervalTrigger):
        return last_started + trigger.interval <= now
    due = trigger.get_next_fire_time(None, last_started + dt.timedelta(seconds=1))
    return due is not None and due <= now


def last_started(db_path: str, kind: str) -> dt.datetime | None:
    """When the last run of this kind started, by the clock (``sync_runs``)."""
    from pipeline.schema import open_read_only

    if not Path(db_path).exists():
        return None
    try:
        conn = open_read_only(db_path)
        try:
            row = conn.execute("SELECT max(started_at) FROM sync_runs WHERE kind = ?", [kind]).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return dt.datetime.fromisoformat(row[0]) if row and row[0] else None


class JobRunner:
    """Runs one job at a time, each as a child process with its own log file.

    A job still running after ``timeout`` seconds is stopped (SIGTERM, then
    SIGKILL after ``grace``); each job's outcome is logged and appended to
    ``jobs.jsonl`` in ``log_dir``.
    """

    def __init__(self, log_dir: Path, timeout: float | None = None, grace: float = 60.0):
        self.log_dir = log_dir
        self.timeout = timeout
        self.grace = grace
        self.busy = threading.Lock()
        self.current: tuple[str, subprocess.Popen] | None = None
        self.stopping = threading.Event()

    def __call__(self, name: str, argv: list[str]) -> None:
        if self.stopping.is_set():
            return
        if not self.busy.acquire(blocking=False):
            running = self.current[0] if self.current else "another job"
            log.info("%s waits for %s to finish", name, running)
            self.busy.acquire()
            if self.stopping.is_set():
                self.busy.release()
                return
        try:
            self._run(name, argv)
        finally:
            self.current = None
            self.busy.release()

    def _run(self, name: str, argv: list[str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        started = dt.datetime.now(dt.UTC)
        path = self.log_dir / f"{name}-{started.strftime('%Y%m%dT%H%M%S%fZ')}.log"
        timed_out = False
        with path.open("wb") as output:
            # Its own session: a Ctrl-C at the terminal reaches the scheduler, which decides.
            child = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
            self.current = (name, child)
            log.info("%s started (pid %d); output: %s", name, child.pid, path)
            if self.stopping.is_set():  # the stop came while the child was starting
                child.send_signal(signal.SIGTERM)
            try:
                code = child.wait(self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                log.error(
                    "%s still running after %s (--job-timeout): stopping it; see %s",
                    name,
                    _duration(self.timeout),
                    path,
                )
                code = self._end(name, child)
        if timed_out:
            outcome = "timed-out"
            log.error(
                "%s timed out: killed after %s (exit %d); recorded as timed-out; trying again at its"
                " next tick; output: %s",
                name,
                _duration(self.timeout),
                code,
                path,
            )
        elif code == 0:
            outcome = "finished"
            log.info("%s finished; output: %s", name, path)
        elif self.stopping.is_set():
            outcome = "stopped"
            log.info(
                "%s stopped by shutdown (exit %d); the next run resumes it; output: %s", name, code, path
            )
        elif code == EXIT_LOCKED:
            outcome = "skipped"
            log.warning(
                "%s skipped: another process is writing the mirror (exit %d); it runs at its next tick;"
                " output: %s",
                name,
                code,
                path,
            )
        else:
            outcome = "failed"
            log.error("%s failed with exit code %d; see %s; trying again at its next tick", name, code, path)
        self._record(name, outcome, code, started, path)

    def _end(self, name: str, child: subprocess.Popen) -> int:
        """Ask the child to stop; kill it (and anything it started) after the grace period."""
        child.send_signal(signal.SIGTERM)
        try:
            return child.wait(self.grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %gs; killing it", name, self.grace)
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return child.wait()

    def _record(self, name: str, outcome: str, code: int, started: dt.datetime, path: Path) -> None:
        """One JSON line per job in ``jobs.jsonl``: what ran, how it ended, where its output is."""
        finished = dt.datetime.now(dt.UTC)
        record = {
            "job": name,
            "outcome": outcome,
            "exit_code": code,
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": finished.isoformat(timespec="seconds"),
            "seconds": round((finished - started).total_seconds(), 1),
            "log": str(path),
        }
        try:
            with (self.log_dir / JOBS_RECORD).open("a", encoding="utf-8") as jobs:
                jobs.write(json.dumps(record) + "\n")
        except OSError as exc:
            log.error("cannot record the outcome of %s in %s: %s", name, self.log_dir / JOBS_RECORD, exc)

    def stop(self, grace: float) -> None:
        """Stop taking jobs; ask a running child to finish, and kill it after ``grace`` seconds."""
        self.stopping.set()
        current = self.current
        if current is None:
            return
        name, child = current
        log.info("asking %s (pid %d) to stop", name, child.pid)
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %gs; killing it", name, grace)
            child.kill()
            child.wait()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "ever"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:g}{unit}"
    return f"{seconds:g}s"


def job_timeout_seconds(option: str | None, overrides) -> float:
    """``--job-timeout``, else ``-s JOB_TIMEOUT=seconds``, else the setting's default."""
    if option:
        try:
            return parse_every(option).total_seconds()
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--job-timeout") from None
    from crawler.commands.options import parse_overrides

    value = parse_overrides(tuple(overrides)).get("JOB_TIMEOUT", project_defaults.JOB_TIMEOUT)
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise click.BadParameter(
            f"JOB_TIMEOUT must be a number of seconds above 0, not {value!r}", param_hint="-s"
        )
    return seconds


def job_commands(db, start_urls, site_root, overrides) -> dict[str, list[str]]:
    base = [sys.executable, "-m", "crawler"]
    settings = [arg for pair in overrides for arg in ("-s", pair)]
    sync = [*base, "run", "--db", db, *settings]
    for url in start_urls:
        sync += ["--start-url", url]
    if site_root:
        sync += ["--site-root", site_root]
    check = [*base, "check-links", "--db", db, *settings]
    if not start_urls:
        check.append("--demo")  # the sync mirrors the demo site: check its sources there too
    return {"sync": sync, "check-links": check}


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db_path", default="mirror.db", show_default=True, metavar="PATH", help="SQLite file.")
@click.option("--start-url", "start_urls", multiple=True, metavar="URL", help="As for run (repeatable).")
@click.option("--site-root", metavar="URL", help="As for run.")
@click.option("--sync", "sync_cron", metavar="CRON", help='When to sync, as a crontab line: "*/30 * * * *".')
@click.option(
    "--sync-every", metavar="INTERVAL", help=f"Or sync every 90s/30m/2h/1d. [default: {DEFAULT_SYNC_EVERY}]"
)
@click.option(
    "--check-links",
    "check_cron",
    metavar="CRON",
    help=f'When to check sources, as a crontab line. [default: "{DEFAULT_CHECK_LINKS_CRON}"]',
)
@click.option("--check-links-every", metavar="INTERVAL", help="Or check sources every 90s/30m/2h/1d.")
@click.option(
    "--log-dir", type=click.Path(path_type=Path), help="Where job output goes. [default: logs/ by the db]"
)
@click.option(
    "--grace", default=60.0, show_default=True, help="Seconds a stopping job gets before it is killed."
)
@click.option(
    "--job-timeout",
    metavar="INTERVAL",
    help="Stop a job still running after this long (90s/30m/6h/1d), record it, go on."
    f" [default: the JOB_TIMEOUT setting, {_duration(float(project_defaults.JOB_TIMEOUT))}]",
)
@click.option("-s", "--set", "overrides", multiple=True, metavar="NAME=VALUE", help="Setting for every job.")
def schedule(
    db_path,
    start_urls,
    site_root,
    sync_cron,
    sync_every,
    check_cron,
    check_links_every,
    log_dir,
    grace,
    job_timeout,
    overrides,
):
    """Run the sync and the link check on schedules until SIGTERM or Ctrl-C."""
    from apscheduler.schedulers.background import BackgroundScheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        triggers = {
            "sync": make_trigger(sync_cron, sync_every, default_every=DEFAULT_SYNC_EVERY),
            "check-links": make_trigger(check_cron, check_links_every, default_cron=DEFAULT_CHECK_LINKS_CRON),
        }
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    for pair in overrides:
        if "=" not in pair:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="-s")
    timeout = job_timeout_seconds(job_timeout, overrides)
    runner = JobRunner(log_dir or Path(db_path).resolve().parent / "logs", timeout=timeout, grace=grace)
    commands = job_commands(db_path, start_urls, site_root, overrides)
    scheduler = BackgroundScheduler(
        timezone=dt.UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    )
    now = dt.datetime.now(dt.UTC)
    for order, (name, trigger) in enumerate(triggers.items()):
        catch_up = missed(trigger, last_started(db_path, name), now)
        # A catch-up sync goes first: the link check then sees the sources it found.
        start_now = {"next_run_time": now + dt.timedelta(seconds=order)} if catch_up else {}
        scheduler.add_job(runner, trigger, args=[name, commands[name]], id=name, name=name, **start_now)
        if catch_up:
            log.info("%s: a run came due while no scheduler ran (or none ever ran): running one now", name)
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    scheduler.start()
    for job in scheduler.get_jobs():
        log.info("%s scheduled (%s); next run %s", job.name, job.trigger, job.next_run_time)
    while not stop.wait(1):
        pass
    scheduler.shutdown(wait=False)
    runner.stop(grace)
    log.info("scheduler stopped")


if __name__ == "__main__":
    from crawler.commands.options import run_command

    run_command(schedule, "scheduler.py")
