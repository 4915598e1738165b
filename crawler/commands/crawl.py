"""``run`` and ``check-links``: the jobs that write the mirror, one writer at a time.

Scrapy (and the demo servers) load when a job starts, not when the command
line is read.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

import click

from crawler.commands.crawl_settings import (
    api_url,
    job_settings,
    mark_failed,
    require_contact,
    route_to_demo,
    site_of,
    sole_writer,
)
from crawler.commands.options import existing_mirror, fail, http_urls, job_options
from crawler.commands.summaries import check_summary, checks_unsettled, print_summary, run_summary


@click.command()
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
    callback=http_urls,
    help="Front page, day page or event page to start from (repeatable); for wikipedia, any "
    "en.wikipedia.org URL or an api.php URL. Default: the bundled demo site (thecontext), "
    "the real portal (wikipedia).",
)
@click.option(
    "--site-root",
    metavar="URL",
    callback=http_urls,
    help="Root that /news/... links resolve against (default: the start URL's origin).",
)
@click.option(
    "--checkout",
    type=click.Path(exists=True, file_okay=False),
    metavar="DIR",
    help="Import a local checkout of the site's repository (the folder holding news/): every "
    "file read and parsed in parallel, only changed files on later runs.",
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
@click.option(
    "--dry-run",
    is_flag=True,
    help="wikipedia: print how many requests the run would make, from the mirror alone; "
    "send nothing, write nothing.",
)
@job_options
def run(
    site_name,
    start_urls,
    site_root,
    checkout,
    max_pages,
    since,
    until,
    full,
    demo,
    dry_run,
    db_path,
    now,
    allow_private,
    as_json,
    overrides,
):
    """Crawl the event site, bring mirror.db up to date, check new sources."""
    if since and until and since > until:
        raise click.BadParameter("--since is after --until", param_hint="--since")
    settings = job_settings(db_path, now, allow_private, overrides)
    site_name = site_name or site_of(start_urls)
    window = {"since": since.date() if since else None, "until": until.date() if until else None}
    if demo and start_urls:
        raise click.BadParameter("--demo mirrors the bundled pages: drop --start-url", param_hint="--demo")
    if checkout and (start_urls or site_root or demo or max_pages or site_name == "wikipedia"):
        raise click.BadParameter(
            "--checkout is the whole source: drop --start-url, --site-root, --demo, --max-pages, --site",
            param_hint="--checkout",
        )
    if site_name == "wikipedia":
        if site_root or max_pages:
            raise click.BadParameter(
                "--site-root and --max-pages are for the markdown site", param_hint="--site"
            )
        spider_args = {"api_url": api_url(start_urls, settings), **window, "full": full}
        if dry_run:
            from crawler.commands.dry_run import portal_plan_summary, print_plan

            return print_plan(portal_plan_summary(settings, **window), as_json)
        if not demo:
            require_contact(spider_args["api_url"], settings.get("WIKIPEDIA_USER_AGENT"))
    elif dry_run:
        raise click.BadParameter(
            "--dry-run plans a portal run; the markdown site's crawl finds its pages as it goes",
            param_hint="--dry-run",
        )
    elif checkout:
        spider_args = {"checkout": checkout, **window, "full": full}
    else:
        spider_args = {"site_root": site_root, **window, "max_pages": max_pages or 0, "full": full}
    from crawler.demo import PORTAL_SINCE, PORTAL_UNTIL, DemoServer, portal_demo
    from crawler.demo import START_URL as DEMO_START_URL
    from crawler.runner import run_crawl

    started = time.monotonic()
    with ExitStack() as stack:
        stack.enter_context(sole_writer(settings, "run"))
        if site_name == "wikipedia" and demo:
            spider_args["api_url"] = stack.enter_context(portal_demo()).api_url
            spider_args["since"] = spider_args["since"] or PORTAL_SINCE
            spider_args["until"] = spider_args["until"] or PORTAL_UNTIL
            # The month cites real news sites: an offline demo does not check them.
            settings.set("CHECK_SOURCES", False, priority="cmdline")
        elif site_name == "thecontext" and not checkout:
            demo = demo or not start_urls
            if demo:
                start_urls = (DEMO_START_URL,)
                route_to_demo(settings, stack.enter_context(DemoServer()))
            spider_args["start_urls"] = list(start_urls)
        try:
            result = run_crawl(settings, site_name, **spider_args)
        except (ValueError, RuntimeError) as exc:
            fail(str(exc))
    if result.start_failed:
        reasons = "; ".join(f"{url}: {why}" for url, why in result.start_results.items())
        mark_failed(settings.get("MIRROR_DB"), result.run["id"], f"start URL unreachable ({reasons})")
        fail(f"cannot fetch the start URL ({reasons})")
    summary = {
        **result.run,
        "db": str(Path(settings.get("MIRROR_DB"))),
        "seconds": round(time.monotonic() - started, 2),
        "errors_by_reason": result.errors_by_reason,
        "sources_by_status": result.source_status,
        "demo": bool(demo),
    }
    summary["start_urls"] = json.loads(summary["start_urls"])
    if summary.get("sources_checked") is not None:
        summary["sources_settled"] = not checks_unsettled(summary)
    print_summary(summary, as_json, run_summary)


@click.command("check-links")
@click.option("--all", "check_all", is_flag=True, help="Check every source, not only those due.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Check at most N sources.")
@click.option(
    "--demo",
    is_flag=True,
    help="Deliver the checks to the bundled demo server (for a mirror made from the demo).",
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="Be the one writer of a round on this Redis (redis://host:6379/0): put what is due on "
    "its streams, store what the workers (`worker --redis`) found. Default: check in this process.",
)
@job_options
def check_links(check_all, limit, demo, redis_url, db_path, now, allow_private, as_json, overrides):
    """Check the cited sources that are due; flag dead ones, find archived copies."""
    from crawler.demo import DemoServer
    from crawler.runner import check_sources, check_sources_redis

    settings = job_settings(db_path, now, allow_private, overrides)
    if redis_url and demo:
        from crawler.redisqueue import demo_queue

        demo_queue(settings)  # read only by `worker --redis --demo`: never by a worker checking the web
    existing_mirror(settings.get("MIRROR_DB"))  # checking creates no mirror: `run` makes one
    started = time.monotonic()
    server = DemoServer() if demo else None
    with sole_writer(settings, "check-links"), server or nullcontext():
        if server is not None:
            route_to_demo(settings, server)
        try:
            if redis_url:
                result = check_sources_redis(settings, redis_url, check_all=check_all, limit=limit or 0)
            else:
                result = check_sources(settings, check_all=check_all, limit=limit or 0)
        except (ValueError, RuntimeError) as exc:
            fail(str(exc))
    summary = {
        **result.run,
        "db": str(Path(settings.get("MIRROR_DB"))),
        "seconds": round(time.monotonic() - started, 2),
        "sources_by_status": result.source_status,
    }
    summary["sources_settled"] = not checks_unsettled(summary)
    print_summary(summary, as_json, check_summary)
