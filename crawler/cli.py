"""``python -m crawler``: one small command per job.

Commands stay thin: they turn options into settings and spider arguments, run
the job, and print a summary.  Exit codes: 0 when the job ran (page errors are
recorded in the database, not fatal), 1 when it could not run (start URL
unreachable, database not writable), 2 for bad arguments, 75 when another
process is writing the same database (try again later, as ``EX_TEMPFAIL``
says), 130 when the run was interrupted (Ctrl-C, SIGTERM) and stopped
cleanly before its end.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click

from crawler.browse import metadata_text
from crawler.demo import PORTAL_SINCE, PORTAL_UNTIL, DemoServer, portal_demo
from crawler.demo import START_URL as DEMO_START_URL
from crawler.export import event_records, write_csv, write_jsonl
from crawler.linkrot import write_report
from crawler.lock import MirrorLocked, writer_lock
from crawler.reports import dead_links, render
from crawler.runner import check_sources, project_settings, run_crawl
from crawler.status import mirror_status, render_status
from pipeline.clock import Clock, parse_instant
from pipeline.schema import open_database
from scheduler import schedule

EXIT_CANNOT_RUN = 1
EXIT_LOCKED = 75  # EX_TEMPFAIL: another writer holds the mirror; a later run will do
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_CANNOT_RUN)


def _parse_overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="-s")
        overrides[name.strip()] = value
    return overrides


def _instant(ctx, param, value):
    if value is None:
        return None
    try:
        parse_instant(value)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO-8601 moment like 2026-03-01T12:00:00Z, got {value!r}"
        ) from None
    return value


def db_option(f):
    return click.option("--db", "db_path", metavar="PATH", help="SQLite file (default: ./mirror.db).")(f)


def job_options(f):
    """Options every crawling command takes."""
    for option in reversed(
        [
            db_option,
            click.option(
                "--now",
                metavar="ISO-8601",
                callback=_instant,
                help="Act as if it were this moment (tests, replayed backfills). Default: the clock.",
            ),
            click.option(
                "--allow-private",
                is_flag=True,
                help="Also fetch loopback/private addresses other than the ones you named.",
            ),
            click.option(
                "--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary."
            ),
            click.option(
                "-s",
                "--set",
                "overrides",
                multiple=True,
                metavar="NAME=VALUE",
                help="Override a setting (Scrapy's or the project's), as with scrapy crawl.",
            ),
        ]
    ):
        f = option(f)
    return f


def _settings(db_path, now, allow_private, overrides):
    settings = project_settings(_parse_overrides(overrides))
    if db_path:
        settings.set("MIRROR_DB", db_path, priority="cmdline")
    if now:
        settings.set("NOW", now, priority="cmdline")
    if allow_private:
        settings.set("ALLOW_PRIVATE", True, priority="cmdline")
    return settings


@contextmanager
def _sole_writer(settings, job: str):
    """Hold the mirror's writer lock for the job; exit 75 if another process keeps it."""
    path = settings.get("MIRROR_DB")
    with ExitStack() as stack:
        try:
            stack.enter_context(writer_lock(path, settings.getfloat("LOCK_TIMEOUT"), job))
        except MirrorLocked as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_LOCKED)
        except OSError as exc:
            _fail(f"cannot write the database {path}: {exc}")
        try:
            open_database(path).close()
        except (sqlite3.Error, OSError) as exc:
            _fail(f"cannot write the database {path}: {exc}")
        yield


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli():
    """Keep a local, queryable mirror of the news-event record in SQLite."""


@cli.command()
@click.option(
    "--site",
    "site_name",
    type=click.Choice(["thecontext", "wikipedia"]),
    help="Which site to read: the Context's markdown pages, or Wikipedia's Current Events Portal "
    "through its API. Default: wikipedia for a start URL on wikipedia.org, else thecontext.",
)
@click.option(
    "--start-url",
    "start_urls",
    multiple=True,
    metavar="URL",
    help="Front page, day page or event page to start from (repeatable); for wikipedia, any "
    "en.wikipedia.org URL or an api.php URL. Default: the bundled demo site (thecontext), "
    "the real portal (wikipedia).",
)
@click.option(
    "--site-root",
    metavar="URL",
    help="Root that /news/... links resolve against (default: the start URL's origin).",
)
@click.option("--max-pages", type=click.IntRange(min=1), metavar="N", help="Fetch at most N pages.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Only pages dated on or after this day (by their /news/Y/M/D/ path). "
    "wikipedia: the first day of the window (default: 7 days before --until).",
)
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="YYYY-MM-DD",
    help="Only pages dated on or before this day; its day pages are asked for directly. "
    "wikipedia: the last day of the window (default: today).",
)
@click.option(
    "--full",
    is_flag=True,
    help="Revalidate every known page, not only those due (still conditionally).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Mirror the bundled demo offline (the default for thecontext without --start-url); "
    "with --site wikipedia, the portal's January 2023 through a loopback API.",
)
@job_options
def run(
    site_name,
    start_urls,
    site_root,
    max_pages,
    since,
    until,
    full,
    demo,
    db_path,
    now,
    allow_private,
    as_json,
    overrides,
):
    """Crawl the event site, bring mirror.db up to date, check new sources."""
    if since and until and since > until:
        raise click.BadParameter("--since is after --until", param_hint="--since")
    settings = _settings(db_path, now, allow_private, overrides)
    site_name = site_name or _site_of(start_urls)
    window = {"since": since.date() if since else None, "until": until.date() if until else None}
    if demo and start_urls:
        raise click.BadParameter("--demo mirrors the bundled pages: drop --start-url", param_hint="--demo")
    if site_name == "wikipedia":
        if site_root or max_pages:
            raise click.BadParameter(
                "--site-root and --max-pages are for the markdown site", param_hint="--site"
            )
        spider_args = {"api_url": _api_url(start_urls, settings), **window, "full": full}
    else:
        spider_args = {"site_root": site_root, **window, "max_pages": max_pages or 0, "full": full}
    started = time.monotonic()
    with ExitStack() as stack:
        stack.enter_context(_sole_writer(settings, "run"))
        if site_name == "wikipedia" and demo:
            spider_args["api_url"] = stack.enter_context(portal_demo()).api_url
            spider_args["since"] = spider_args["since"] or PORTAL_SINCE
            spider_args["until"] = spider_args["until"] or PORTAL_UNTIL
            # The month cites real news sites: an offline demo does not check them.
            settings.set("CHECK_SOURCES", False, priority="cmdline")
        elif site_name == "thecontext":
            demo = demo or not start_urls
            if demo:
                start_urls = (DEMO_START_URL,)
                _route_to_demo(settings, stack.enter_context(DemoServer()))
            spider_args["start_urls"] = list(start_urls)
        try:
            result = run_crawl(settings, site_name, **spider_args)
        except (ValueError, RuntimeError) as exc:
            _fail(str(exc))
    if result.start_failed:
        reasons = "; ".join(f"{url}: {why}" for url, why in result.start_results.items())
        _mark_failed(settings.get("MIRROR_DB"), result.run["id"], f"start URL unreachable ({reasons})")
        _fail(f"cannot fetch the start URL ({reasons})")
    summary = {
        **result.run,
        "db": str(Path(settings.get("MIRROR_DB"))),
        "seconds": round(time.monotonic() - started, 2),
        "errors_by_reason": result.errors_by_reason,
        "sources_by_status": result.source_status,
        "demo": bool(demo),
    }
    summary["start_urls"] = json.loads(summary["start_urls"])
    _report(summary, as_json, _run_summary)


@cli.command("check-links")
@click.option("--all", "check_all", is_flag=True, help="Check every source, not only those due.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Check at most N sources.")
@click.option(
    "--demo",
    is_flag=True,
    help="Deliver the checks to the bundled demo server (for a mirror made from the demo).",
)
@job_options
def check_links(check_all, limit, demo, db_path, now, allow_private, as_json, overrides):
    """Check the cited sources that are due; flag dead ones, find archived copies."""
    settings = _settings(db_path, now, allow_private, overrides)
    started = time.monotonic()
    server = DemoServer() if demo else None
    with _sole_writer(settings, "check-links"), server or nullcontext():
        if server is not None:
            _route_to_demo(settings, server)
        try:
            result = check_sources(settings, check_all=check_all, limit=limit or 0)
        except (ValueError, RuntimeError) as exc:
            _fail(str(exc))
    summary = {
        **result.run,
        "db": str(Path(settings.get("MIRROR_DB"))),
        "seconds": round(time.monotonic() - started, 2),
        "sources_by_status": result.source_status,
    }
    _report(summary, as_json, _check_summary)


@cli.command("dead-links")
@db_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
def dead_links_command(db_path, fmt):
    """List dead sources with their events, first failure, last status and archived copy."""
    db = open_database(_existing_mirror(db_path))
    click.echo(render(dead_links(db), fmt), nl=False)


@cli.command()
@db_option
@click.option("--now", metavar="ISO-8601", callback=_instant, help="Say what is due at this moment.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
def status(db_path, now, as_json):
    """What the mirror holds, how it last synced, and what is due next."""
    path = _existing_mirror(db_path)
    try:
        open_database(path).close()  # bring an older file's schema up to date first
    except sqlite3.Error:
        pass  # a read-only file: report what it has
    moment = Clock(parse_instant(now) if now else None).iso()
    try:
        report = mirror_status(path, moment)
    except sqlite3.Error as exc:
        _fail(f"cannot read {path}: {exc}")
    click.echo(json.dumps(report, sort_keys=True) if as_json else render_status(report))


@cli.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True, help="Output format.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="Events on or after.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="Events on or before.")
@click.option("--out", type=click.Path(dir_okay=False), metavar="FILE", help="Write here (default: stdout).")
def export(db_path, fmt, since, until, out):
    """One record per event with its sources, related events and entities."""
    path = _existing_mirror(db_path)
    db = open_database(path)
    records = event_records(
        db, since.date().isoformat() if since else None, until.date().isoformat() if until else None
    )
    writer = write_jsonl if fmt == "jsonl" else write_csv
    with open(out, "w", encoding="utf-8", newline="") if out else nullcontext(sys.stdout) as stream:
        count = writer(records, stream)
    if out:
        click.echo(f"Wrote {count} events to {out}.", err=True)


def _existing_mirror(db_path: str | None) -> str:
    path = db_path or project_settings().get("MIRROR_DB")
    if not Path(path).exists():
        _fail(f"no mirror at {path}; run `python -m crawler run` first")
    return path


@cli.command()
@db_option
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="Port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--open", "open_browser", is_flag=True, help="Open the mirror in a web browser.")
@click.option(
    "--write-metadata",
    is_flag=True,
    help="Write metadata.yml next to the database (for `datasette DB -m metadata.yml`) and exit.",
)
def serve(db_path, port, host, open_browser, write_metadata):
    """Browse and search the mirror with Datasette."""
    path = _existing_mirror(db_path)
    open_database(path).close()  # tables, views and search index up to date
    metadata = metadata_text(path)
    if write_metadata:
        target = Path(path).with_name("metadata.yml")
        target.write_text(metadata, encoding="utf-8")
        click.echo(f"Wrote {target}; run: datasette {path} -m {target}")
        return
    if importlib.util.find_spec("datasette") is None:
        _fail("Datasette is not installed: pip install 'news-event-mirror[browse]' or pip install datasette")
    with tempfile.TemporaryDirectory() as folder:
        meta = Path(folder) / "metadata.yml"
        meta.write_text(metadata, encoding="utf-8")
        cmd = [sys.executable, "-m", "datasette", "serve", path, "-m", str(meta), "-h", host, "-p", str(port)]
        click.echo(f"Serving {path} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
        try:
            code = subprocess.call([*cmd, *(["--open"] if open_browser else [])])
        except KeyboardInterrupt:
            code = 0
    sys.exit(code)


@cli.command()
@db_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("report"),
    show_default=True,
    help="Folder for index.html, report.json and the PNG charts.",
)
def report(db_path, out):
    """Write the link-rot report: dead, failing and alive sources by year and domain, archives, history."""
    path = _existing_mirror(db_path)
    db = open_database(path)
    page = write_report(db.conn, path, out)
    click.echo(f"Wrote {page} (charts and report.json beside it).")


cli.add_command(schedule)


def _report(summary: dict, as_json: bool, human) -> None:
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        click.echo(human(summary))
    if summary["status"] == "interrupted":
        sys.exit(EXIT_INTERRUPTED)


def _mark_failed(path: str, run_id: int, reason: str) -> None:
    """A run that could not fetch its start URL did not sync, whatever Scrapy says."""
    db = open_database(path)
    with db.atomic():
        db["sync_runs"].update(run_id, {"status": "failed", "finish_reason": reason})
    db.close()


def _site_of(start_urls) -> str:
    """wikipedia when the start URL is on wikipedia.org (or is an api.php), else thecontext."""
    for url in start_urls:
        parts = urlsplit(url)
        if (parts.hostname or "").endswith("wikipedia.org") or parts.path.endswith("/api.php"):
            return "wikipedia"
    return "thecontext"


def _api_url(start_urls, settings) -> str:
    """The API to read the portal through: an api.php start URL, or its wiki's /w/api.php."""
    if len(start_urls) > 1:
        raise click.BadParameter("wikipedia takes one start URL", param_hint="--start-url")
    if not start_urls:
        return settings.get("WIKIPEDIA_API_URL")
    parts = urlsplit(start_urls[0])
    if parts.scheme not in ("http", "https"):
        raise click.BadParameter(f"not an HTTP URL: {start_urls[0]}", param_hint="--start-url")
    if parts.path.endswith("/api.php"):
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    return urlunsplit((parts.scheme, parts.netloc, "/w/api.php", "", ""))


def _route_to_demo(settings, demo: DemoServer) -> None:
    """Deliver every request of this crawl to the local demo server.

    Nothing leaves the machine, so the private-address guard (which would
    look host names up in DNS) has nothing to guard, and no host needs a delay.
    """
    handler = "crawler.demo.routing.DemoRoutingHandler"
    settings.set("DEMO_SERVER", demo.base_url, priority="cmdline")
    # One local server plays every host: politeness towards it would only make the demo slow.
    settings.set("SOURCE_DELAY", 0, priority="cmdline")
    settings.set("DOWNLOAD_HANDLERS", {"http": handler, "https": handler}, priority="cmdline")
    middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
    middlewares["crawler.middlewares.PrivateAddressMiddleware"] = None
    settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority="cmdline")


def _statuses(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {status}" for status, n in counts.items()) or "none"


def _run_summary(s: dict) -> str:
    if s.get("demo"):
        where = (
            "the bundled demo (Wikipedia's portal)"
            if s.get("site") == "wikipedia"
            else "the bundled demo site"
        )
    else:
        where = ", ".join(s["start_urls"])
    lines = [
        f"Mirrored {s['pages_fetched']} pages from {where} into {s['db']} in {s['seconds']:.1f}s"
        f" ({s['status']}: {s['finish_reason']}).",
        f"  events: {s['events_new']} new, {s['events_changed']} changed, {s['events_unchanged']} unchanged",
    ]
    if s["errors"]:
        reasons = ", ".join(f"{count} × {reason}" for reason, count in s["errors_by_reason"].items())
        lines.append(f"  pages not usable: {reasons}")
        query = "select url, error from pages where error is not null"
        lines.append(f'  (listed in the pages table: sqlite3 {s["db"]} "{query}")')
    if s.get("sources_checked") is not None:
        lines.append(
            f"  sources: {s['sources_checked']} checked; by status: {_statuses(s['sources_by_status'])}"
        )
    return "\n".join(lines)


def _check_summary(s: dict) -> str:
    return (
        f"Checked {s['sources_checked']} sources in {s['db']} in {s['seconds']:.1f}s"
        f" ({s['status']}: {s['finish_reason']}).\n"
        f"  sources by status: {_statuses(s['sources_by_status'])}"
    )


def main() -> None:
    cli(prog_name="python -m crawler")
