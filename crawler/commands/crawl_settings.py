"""From a crawling command's options to Scrapy settings, spider arguments and a held mirror."""

from __future__ import annotations

import sqlite3
import sys
from contextlib import ExitStack, contextmanager
from urllib.parse import urlsplit, urlunsplit

import click

from crawler.commands.options import EXIT_LOCKED, fail, parse_overrides


def job_settings(db_path, now, allow_private, overrides):
    """The project's Scrapy settings with the command's options and ``-s`` overrides on top."""
    from crawler.runner import project_settings  # loads Scrapy

    settings = project_settings(parse_overrides(overrides))
    if db_path:
        settings.set("MIRROR_DB", db_path, priority="cmdline")
    if now:
        settings.set("NOW", now, priority="cmdline")
    if allow_private:
        settings.set("ALLOW_PRIVATE", True, priority="cmdline")
    return settings


@contextmanager
def sole_writer(settings, job: str):
    """Hold the mirror's writer lock for the job; exit 75 if another process keeps it."""
    from crawler.lock import MirrorLocked, writer_lock
    from pipeline.schema import SchemaTooNew, open_database

    path = settings.get("MIRROR_DB")
    with ExitStack() as stack:
        try:
            stack.enter_context(writer_lock(path, settings.getfloat("LOCK_TIMEOUT"), job))
        except MirrorLocked as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_LOCKED)
        except OSError as exc:
            fail(f"cannot write the database {path}: {exc}")
        try:
            open_database(path).close()
        except SchemaTooNew as exc:
            fail(str(SchemaTooNew(path, exc.version)))
        except sqlite3.DatabaseError as exc:
            if "file is not a database" in str(exc):
                fail(f"{path} is not a SQLite database")
            fail(f"cannot write the database {path}: {exc}")
        except OSError as exc:
            fail(f"cannot write the database {path}: {exc}")
        yield


def mark_failed(path: str, run_id: int, reason: str) -> None:
    """A run that could not fetch its start URL did not sync, whatever Scrapy says."""
    from pipeline.schema import open_database

    db = open_database(path)
    with db.atomic():
        db["sync_runs"].update(run_id, {"status": "failed", "finish_reason": reason})
    db.close()


def site_of(start_urls) -> str:
    """wikipedia when the start URL is on wikipedia.org (or is an api.php), else thecontext."""
    for url in start_urls:
        parts = urlsplit(url)
        if (parts.hostname or "").endswith("wikipedia.org") or parts.path.endswith("/api.php"):
            return "wikipedia"
    return "thecontext"


def api_url(start_urls, settings) -> str:
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


WIKIMEDIA = ("wikipedia.org", "wikimedia.org", "wikidata.org", "mediawiki.org", "wiktionary.org",
             "wikinews.org", "wikiquote.org", "wikisource.org", "wikibooks.org", "wikiversity.org",
             "wikivoyage.org")  # fmt: skip
PLACEHOLDER_CONTACT = "operator: set WIKIPEDIA_USER_AGENT"


def require_contact(api: str, user_agent: str) -> None:
    """Refuse to read a Wikimedia API without the operator's contact in the User-Agent.

    Wikimedia's User-Agent policy asks every client for a way to reach its
    operator (a web page or an e-mail address); the shipped User-Agent only
    names the tool.  Other APIs (a loopback stand-in, the demo, a wiki of your
    own) are not asked.
    """
    host = (urlsplit(api).hostname or "").lower()
    if not any(host == domain or host.endswith("." + domain) for domain in WIKIMEDIA):
        return
    if PLACEHOLDER_CONTACT in user_agent or not any(mark in user_agent for mark in ("@", "http", "User:")):
        raise click.UsageError(
            f"{host} asks every API client for a contact: set WIKIPEDIA_USER_AGENT to one naming you, "
            '-s "WIKIPEDIA_USER_AGENT=news-event-mirror/0.1 (https://your.site/contact; you@your.site)"'
        )


def route_to_demo(settings, demo) -> None:
    """Deliver every request of this crawl to the local demo server (a ``DemoServer``).

    Nothing leaves the machine: the routing handler plays only the demo's own
    hosts and refuses every other one, so the private-address middleware has
    nothing to guard (the connection-layer resolver, ``crawler.guard``, lets
    the demo server's own address through), and no host needs a delay.
    """
    handler = "crawler.demo.routing.DemoRoutingHandler"
    settings.set("DEMO_SERVER", demo.base_url, priority="cmdline")
    # One local server plays every host: politeness towards it would only make the demo slow.
    settings.set("SOURCE_DELAY", 0, priority="cmdline")
    settings.set("DOWNLOAD_HANDLERS", {"http": handler, "https": handler}, priority="cmdline")
    middlewares = dict(settings.getdict("DOWNLOADER_MIDDLEWARES"))
    middlewares["crawler.middlewares.PrivateAddressMiddleware"] = None
    settings.set("DOWNLOADER_MIDDLEWARES", middlewares, priority="cmdline")
