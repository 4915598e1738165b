"""``python -m crawler``: one small command per job.

Commands stay thin: they turn options into settings and spider arguments, run
the job, and print a summary.  Exit codes: 0 when the job ran (page errors are
recorded in the database, not fatal), 1 when it could not run (start URL
unreachable, database not writable, not a mirror), 2 for bad arguments, 75
when another process is writing the same database (try again later, as
``EX_TEMPFAIL`` says), 130 when the run was interrupted (Ctrl-C, SIGTERM) and
stopped cleanly before its end.

Whatever goes wrong is said in one line on stderr, ``error: ...``: the
commands name the failures they expect, and the group turns any other
exception into such a line too (exit 1); ``--debug`` shows its traceback.

This module is the group; the commands are in :mod:`crawler.commands`, and
each loads Scrapy, sqlite-utils or matplotlib only when it runs, so that
``--help`` and the read-only commands answer at once.
"""

from __future__ import annotations

import os
import sqlite3
import sys

import click

from crawler.commands.crawl import check_links, run
from crawler.commands.options import EXIT_CANNOT_RUN, run_command
from crawler.commands.read import dead_links_command, export, report, serve, status
from crawler.commands.worker import worker
from scheduler import schedule


def one_line(exc: BaseException) -> str:
    """An unexpected exception as one line that says what it is about."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        text = f"{exc.strerror}{where}"
    elif isinstance(exc, sqlite3.Error):
        text = f"database error: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


class Commands(click.Group):
    """The group: an exception no command expected is one ``error:`` line, exit 1 (``--debug``: raised)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BrokenPipeError:  # the reader of our output went away (| head): nothing to say
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(EXIT_CANNOT_RUN)
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {one_line(exc)} (--debug shows where)", err=True)
            ctx.exit(EXIT_CANNOT_RUN)


@click.group(
    cls=Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option("--debug", is_flag=True, help="Show the traceback of an unexpected error.")
def cli(debug):
    """Keep a local, queryable mirror of the news-event record in SQLite."""


for command in (run, check_links, dead_links_command, status, export, serve, report, schedule, worker):
    cli.add_command(command)


def main() -> None:
    run_command(cli, "python -m crawler")
