"""``worker``: check sources from a Redis queue for a writer (``check-links --redis``) elsewhere."""

from __future__ import annotations

import json

import click

from crawler.commands.options import fail


@click.command()
@click.option("--redis", "redis_url", required=True, metavar="URL", help="The queue (redis://host:6379/0).")
@click.option("--name", metavar="NAME", help="This worker's name in the queue (default: host-pid-random).")
@click.option(
    "--idle-exit",
    type=click.FloatRange(min=0),
    default=0,
    metavar="SECONDS",
    help="Stop after this long with nothing to check (default: run until stopped).",
)
@click.option(
    "--demo",
    is_flag=True,
    help="Answer a demo round (check-links --demo --redis) from a bundled demo server of this worker's own.",
)
@click.option(
    "--allow-private",
    is_flag=True,
    help="Also fetch loopback/private addresses (a test world on loopback).",
)
@click.option(
    "-s",
    "--set",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a setting, as with scrapy crawl (SOURCE_DELAY, REDIS_SHARDS...: as the writer's).",
)
def worker(redis_url, name, idle_exit, demo, allow_private, overrides):
    """Check sources from a Redis queue and push what they say; holds no database."""
    from contextlib import nullcontext

    from crawler.commands.crawl_settings import job_settings, route_to_demo
    from crawler.demo import DemoServer
    from crawler.redisqueue import demo_queue
    from crawler.runner import run_worker

    settings = job_settings(None, None, allow_private, overrides)
    try:
        import redis

        redis.Redis.from_url(redis_url).ping()
    except ImportError:
        fail("the redis client is not installed: pip install 'news-event-mirror[redis]'")
    except Exception as exc:  # the URL's server is not there (yet): say so in one line
        fail(f"cannot reach {redis_url}: {exc}")
    server = DemoServer() if demo else None
    with server or nullcontext():
        if server is not None:
            route_to_demo(settings, server)
            demo_queue(settings)
        said = run_worker(settings, redis_url, name, idle_exit)
    click.echo(json.dumps(said))
