"""What the commands share: exit codes, failing with one, and the common options."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from crawler import settings as project_defaults  # plain constants: no Scrapy loads
from pipeline.clock import parse_instant

EXIT_CANNOT_RUN = 1
EXIT_LOCKED = 75  # EX_TEMPFAIL: another writer holds the mirror; a later run will do
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_CANNOT_RUN)


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
    return path
