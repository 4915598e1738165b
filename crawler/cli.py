"""``python -m crawler``: one small command per job.

Commands stay thin: they turn options into settings and spider arguments, run
the job, and print a summary.  Exit codes: 0 when the job ran (page errors are
recorded in the database, not fatal), 1 when it could not run (start URL
unreachable, database not writable), 2 for bad arguments, 75 when another
process is writing the same database (try again later, as ``EX_TEMPFAIL``
says), 130 when the run was interrupted (Ctrl-C, SIGTERM) and stopped
cleanly before its end.

This module is the group; the commands are in :mod:`crawler.commands`, and
each loads Scrapy, sqlite-utils or matplotlib only when it runs, so that
``--help`` and the read-only commands answer at once.
"""

from __future__ import annotations

import click

from crawler.commands.crawl import check_links, run
from crawler.commands.read import dead_links_command, export, report, serve, status
from scheduler import schedule


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def cli():
    """Keep a local, queryable mirror of the news-event record in SQLite."""


for command in (run, check_links, dead_links_command, status, export, serve, report, schedule):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="python -m crawler")
