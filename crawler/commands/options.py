"""What the commands share: exit codes, failing with one, and the common options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import click

from crawler import settings as project_defaults  # plain constants: no Scrapy loads
from pipeline.clock import parse_instant

EXIT_CANNOT_RUN = 1
EXIT_LOCKED = 75  # EX_TEMPFAIL: another writer holds the mirror; a later run will do
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_CANNOT_RUN)


def run_command(command: click.Command, prog_name: str) -> NoReturn:
    """Run a click command as a program whose every complaint is one ``error:`` line.

    Click's own usage errors take three lines (usage, a hint, the error); here
    they are one, with where to find help, and exit 2 as click's do.
    """
    try:
        code = command.main(prog_name=prog_name, standalone_mode=False)
    except click.exceptions.UsageError as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
        click.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:  # Ctrl-C while the command read or waited
        click.echo("error: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="-s")
        overrides[name.strip()] = value
    return overrides


def instant(ctx, param, value):
    """Check an ISO-8601 moment given as an option; pass it on as written."""
    if value is None:
        return None
    try:
        parse_instant(value)
    except ValueError:
        raise click.BadParameter(
            f"expected an ISO-8601 moment like 2026-03-01T12:00:00Z, got {value!r}"
        ) from None
    return value


def http_url(text: str) -> str | None:
    """Why ``text`` is not an http(s) URL with a host (or a ``file:`` URL of a local
    checkout, which the README documents), or None when it is one."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        return f"not a valid URL: {text!r} ({exc})"
    if parts.scheme.lower() == "file":
        return None if parts.path not in ("", "/") else f"not a file URL with a path: {text!r}"
    if parts.scheme.lower() not in ("http", "https"):
        return f"not an http(s) or file URL: {text!r}" + (
            f" ({parts.scheme}: is not fetched)" if parts.scheme else " (it has no scheme; try https://...)"
        )
    if not parts.hostname:
        return f"not a URL with a host: {text!r}"
    return None


def http_urls(ctx, param, value):
    """Check URL options (one or many) up front, so that a crawl never starts from a bad one."""
    for url in value if isinstance(value, tuple) else [value] if value else []:
        problem = http_url(url)
        if problem:
            raise click.BadParameter(problem)
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
                callback=instant,
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


def existing_mirror(db_path: str | None) -> str:
    """The mirror a reading command names (or the default one); exit 1 if there is none."""
    path = db_path or project_defaults.MIRROR_DB
    if not Path(path).exists():
        fail(f"no mirror at {path}; run `python -m crawler run` first")
    if Path(path).is_dir():
        fail(f"{path} is a folder, not a mirror: name the database file with --db")
    return path
