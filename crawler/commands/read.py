"""The commands that read a mirror: ``status``, ``dead-links``, ``export``, ``report``, ``serve``.

What a command reads with (sqlite-utils, matplotlib, Datasette) loads when it
runs.  ``status`` and ``dead-links`` read through a read-only connection and
bring the file's schema up to date only when it is older than the code (the
read finds a table or column missing), so that they answer at once, even while
a sync writes; the others bring it up to date first.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import subprocess
import sys
import tempfile
from contextlib import nullcontext
from pathlib import Path

import click

from crawler.commands.options import db_option, existing_mirror, fail, instant


@click.command("dead-links")
@db_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
def dead_links_command(db_path, fmt):
    """List dead sources with their events, first failure, last status and archived copy."""
    from crawler.reports import dead_links, render
    from pipeline.schema import open_read_only

    path = existing_mirror(db_path)
    try:
        sources = _reading(open_read_only(path), dead_links)
    except sqlite3.Error:  # an older file (a table or column missing): bring it up to date, then read
        sources = _reading(_migrated(path).conn, dead_links)
    click.echo(render(sources, fmt), nl=False)


@click.command()
@db_option
@click.option("--now", metavar="ISO-8601", callback=instant, help="Say what is due at this moment.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
def status(db_path, now, as_json):
    """What the mirror holds, how it last synced, and what is due next."""
    from crawler.status import mirror_status, render_status
    from pipeline.clock import Clock, parse_instant

    path = existing_mirror(db_path)
    moment = Clock(parse_instant(now) if now else None).iso()
    try:
        report = mirror_status(path, moment)
    except sqlite3.Error:  # an older file (a table or column missing): bring it up to date, then read
        try:
            _migrated(path).close()
        except sqlite3.Error:
            pass  # a read-only file: report what it has
        try:
            report = mirror_status(path, moment)
        except sqlite3.Error as exc:
            fail(f"cannot read {path}: {exc}")
    click.echo(json.dumps(report, sort_keys=True) if as_json else render_status(report))


def _migrated(path: str):
    """The mirror opened with its schema brought up to date (this loads sqlite-utils)."""
    from pipeline.schema import open_database

    return open_database(path)


def _reading(conn: sqlite3.Connection, read):
    """``read(conn)``, then close the connection."""
    try:
        return read(conn)
    finally:
        conn.close()


@click.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True, help="Output format.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="Events on or after.")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), metavar="YYYY-MM-DD", help="Events on or before.")
@click.option("--out", type=click.Path(dir_okay=False), metavar="FILE", help="Write here (default: stdout).")
def export(db_path, fmt, since, until, out):
    """One record per event with its sources, related events and entities."""
    from crawler.export import event_records, write_csv, write_jsonl
    from pipeline.schema import open_database

    path = existing_mirror(db_path)
    db = open_database(path)
    records = event_records(
        db, since.date().isoformat() if since else None, until.date().isoformat() if until else None
    )
    writer = write_jsonl if fmt == "jsonl" else write_csv
    with open(out, "w", encoding="utf-8", newline="") if out else nullcontext(sys.stdout) as stream:
        count = writer(records, stream)
    if out:
        click.echo(f"Wrote {count} events to {out}.", err=True)


@click.command()
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
    from crawler.browse import metadata_text
    from pipeline.schema import open_database

    path = existing_mirror(db_path)
    open_database(path).close()  # tables, views and search index up to date
    metadata = metadata_text(path)
    if write_metadata:
        target = Path(path).with_name("metadata.yml")
        target.write_text(metadata, encoding="utf-8")
        click.echo(f"Wrote {target}; run: datasette {path} -m {target}")
        return
    if importlib.util.find_spec("datasette") is None:
        fail("Datasette is not installed: pip install 'news-event-mirror[browse]' or pip install datasette")
    with tempfile.TemporaryDirectory() as folder:
        meta = Path(folder) / "metadata.yml"
        meta.write_text(metadata, encoding="utf-8")
        cmd = [sys.executable, "-m", "datasette", "serve", path, "-m", str(meta), "-h", host, "-p", str(port)]
        click.echo(f"Serving {path} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
        code = _serve_until_stopped([*cmd, *(["--open"] if open_browser else [])])
    sys.exit(code)


def _serve_until_stopped(cmd: list[str]) -> int:
    """Run Datasette as a child that never outlives this process.

    Ctrl-C reaches the child with the terminal's process group; SIGTERM (a
    service manager, a test) reaches only us, so it is passed on.
    """
    import signal

    child = subprocess.Popen(cmd)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.terminate())
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.terminate()
        child.wait()
        return 0


@click.command()
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
    from crawler.linkrot import write_report  # matplotlib
    from pipeline.schema import open_database

    path = existing_mirror(db_path)
    db = open_database(path)
    page = write_report(db.conn, path, out)
    click.echo(f"Wrote {page} (charts and report.json beside it).")
