"""The commands that read a mirror: ``status``, ``dead-links``, ``export``, ``report``, ``serve``.

What a command reads with (sqlite-utils, matplotlib, Datasette) loads when it
runs.  Every one of them reads through a read-only connection, so that it
answers while a sync writes and reads a mirror it may not write (a read-only
file, folder or mount).  Before reading, :func:`readable_mirror` checks that the
file is a SQLite mirror of a schema this release knows (a newer one is
refused), and brings an older schema up to date when the file can be written;
a read-only file of an older schema is read as it is, and if the read needs
what it lacks, the error says what to do.  ``status`` and ``dead-links`` load
sqlite-utils only for that migration.
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


def _sqlite_problem(path: str, exc: sqlite3.Error) -> str:
    """One line on why a mirror cannot be read."""
    text = str(exc)
    if "file is not a database" in text:
        return f"{path} is not a SQLite database"
    if "unable to open" in text:
        return f"cannot open {path} (is its folder readable?)"
    return f"cannot read {path}: {text}"


def readable_mirror(db_path: str | None) -> tuple[str, bool]:
    """The mirror a reading command names, checked: ``(path, current)``; exit 1 if it cannot be read.

    ``current`` is False only for a file of an older schema that could not be
    brought up to date (it is read-only, or another process holds it).
    """
    from pipeline.schema import SchemaTooNew, open_read_only, refuse_newer, schema_current, writable

    path = existing_mirror(db_path)
    try:
        conn = open_read_only(path)
        try:
            refuse_newer(conn, path)
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            current = schema_current(conn)
        finally:
            conn.close()
    except SchemaTooNew as exc:
        fail(str(exc))
    except sqlite3.Error as exc:
        fail(_sqlite_problem(path, exc))
    if not tables & {"events", "sync_runs"}:  # an empty file, or another program's database
        fail(
            f"{path} is not a mirror (it has no events table);"
            f" run `python -m crawler run --db {path}` to make one"
        )
    if current or not writable(path):
        return path, current
    try:
        _migrated(path).close()
    except (sqlite3.Error, OSError):  # another process holds it: read what it has
        return path, False
    return path, True


def read_mirror(path: str, current: bool, read):
    """``read(conn)`` on a read-only connection to the mirror; exit 1 with one line if it fails."""
    from pipeline.schema import open_read_only

    try:
        return _reading(open_read_only(path), read)
    except sqlite3.Error as exc:
        if not current and "no such" in str(exc):
            fail(
                f"{path} has an older schema ({exc}) and is read-only: make it writable once and"
                f" run `python -m crawler status --db {path}` to bring it up to date"
            )
        fail(_sqlite_problem(path, exc))


@click.command("dead-links")
@db_option
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
@click.option(
    "--fail-on-dead",
    is_flag=True,
    help="Exit 1 when any source is dead (after printing them), for scripts and CI.",
)
def dead_links_command(db_path, fmt, fail_on_dead):
    """List dead sources with their events, first failure, last status and archived copy."""
    from crawler.reports import dead_links, render

    sources = read_mirror(*readable_mirror(db_path), dead_links)
    click.echo(render(sources, fmt), nl=False)
    if fail_on_dead and sources:
        sys.exit(1)


@click.command()
@db_option
@click.option("--now", metavar="ISO-8601", callback=instant, help="Say what is due at this moment.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
def status(db_path, now, as_json):
    """What the mirror holds, how it last synced, and what is due next."""
    from crawler.status import mirror_status, render_status
    from pipeline.clock import Clock, parse_instant

    path, current = readable_mirror(db_path)
    moment = Clock(parse_instant(now) if now else None).iso()
    report = read_mirror(path, current, lambda conn: mirror_status(path, moment, conn))
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

    path, current = readable_mirror(db_path)
    window = (since.date().isoformat() if since else None, until.date().isoformat() if until else None)
    writer = write_jsonl if fmt == "jsonl" else write_csv
    try:
        stream = open(out, "w", encoding="utf-8", newline="") if out else nullcontext(sys.stdout)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}")
    with stream as output:
        count = read_mirror(path, current, lambda conn: writer(event_records(conn, *window), output))
    if out:
        click.echo(f"Wrote {count} events to {out}.", err=True)


@click.command()
@db_option
@click.option("--port", type=click.IntRange(0, 65535), default=8001, show_default=True, help="Port.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every interface, so other machines can read the mirror).",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the mirror in a web browser.")
@click.option(
    "--write-metadata",
    is_flag=True,
    help="Write metadata.yml next to the database (for `datasette DB -m metadata.yml`) and exit.",
)
def serve(db_path, port, host, open_browser, write_metadata):
    """Browse and search the mirror with Datasette (read-only)."""
    from crawler.browse import browse_options, metadata_text
    from pipeline.schema import frozen

    path, current = readable_mirror(db_path)
    metadata = metadata_text(path)
    if write_metadata:
        target = Path(path).with_name("metadata.yml")
        try:
            target.write_text(metadata, encoding="utf-8")
        except OSError as exc:
            fail(f"cannot write {target}: {exc.strerror}")
        click.echo(f"Wrote {target}; run: datasette {path} -m {target} {' '.join(browse_options())}")
        return
    if importlib.util.find_spec("datasette") is None:
        fail("Datasette is not installed: pip install 'news-event-mirror[browse]' or pip install datasette")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(
            f"warning: --host {host} lets other machines read the mirror (read-only, without a login);"
            " the default 127.0.0.1 keeps it to this one",
            err=True,
        )
    if not current:
        click.echo(
            f"warning: {path} has an older schema and is read-only: some tables or views may be missing",
            err=True,
        )
    # Read-only mode (mode=ro) on the WAL mirror: a page reads a consistent snapshot while a sync
    # writes, and never blocks it.  Immutable only where nobody can write (no -shm can be made).
    database = ["-i", path] if frozen(path) else [path]
    with tempfile.TemporaryDirectory(prefix="crawler-serve-") as folder:
        meta = Path(folder) / "metadata.yml"
        meta.write_text(metadata, encoding="utf-8")
        cmd = [sys.executable, "-m", "datasette", "serve", *database, "-m", str(meta), *browse_options()]
        cmd += ["-h", host, "-p", str(port)]
        click.echo(f"Serving {path} on http://{host}:{port}/ (Ctrl-C stops)", err=True)
        code = _serve_until_stopped([*cmd, *(["--open"] if open_browser else [])], _plugin_env())
    sys.exit(code)


def _plugin_env() -> dict:
    """The environment for Datasette: its plugin imports this package, wherever it is installed."""
    import os

    import crawler

    root = str(Path(crawler.__file__).resolve().parents[1])
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(paths))}


def _serve_until_stopped(cmd: list[str], env: dict | None = None) -> int:
    """Run Datasette as a child that never outlives this process; 0 when a signal stopped it.

    Ctrl-C reaches the child with the terminal's process group; SIGTERM and a
    SIGINT sent to this process alone (a service manager, ``kill``, a test)
    reach only us, so both are passed on.  Either way this process waits for
    the child, and the caller then removes the temporary folder.
    """
    import signal

    stopped, children = [], []

    def pass_on(signum, _frame):
        stopped.append(signum)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, pass_on) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        children.append(subprocess.Popen(cmd, env=env))
        if stopped:  # the signal came while the child was starting
            children[0].send_signal(signal.SIGTERM)
        code = children[0].wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopped else code


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

    path, current = readable_mirror(db_path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        fail(f"cannot write the report into {out}: {exc.strerror}")
    page = read_mirror(path, current, lambda conn: write_report(conn, path, out))
    click.echo(f"Wrote {page} (charts and report.json beside it).")
