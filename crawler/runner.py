"""Run crawls in this process and report what they did.

The CLI is a thin layer over these functions: it turns options into Scrapy
settings and spider arguments; this module runs Scrapy's
``AsyncCrawlerProcess`` (asyncio reactor) with the project's settings module,
then reads the run's row back from ``sync_runs``.  ``run`` is the site crawl
followed, in the same process and the same ``sync_runs`` row, by a check of
the sources it discovered; ``check-links`` is the check alone.  A check run
that finished is settled by its pipeline, and then, as a crawl of its own,
the archive is asked about the failing and dead sources
(:class:`crawler.spiders.archive.ArchiveSpider`).  Each crawl starts only when
the one before it finished, and the result is read from the last one.  A
Twisted reactor cannot be restarted, so each function is called once per
process; the scheduler and the tests run them in child processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# First, while the stack is shallow and few modules are loaded: Scrapy builds deprecated aliases
# in this module with inspect.stack(), whose cost grows with both; imported later, deep in the
# reactor's start-up, it cost 0.4 s of CPU in every crawl process (a fifth of a short run's).
import scrapy.core.downloader.contextfactory  # noqa: F401, I001
from scrapy.crawler import AsyncCrawlerProcess
from scrapy.settings import Settings

from crawler.spiders.archive import ArchiveSpider
from crawler.spiders.eventsite import EventSiteSpider
from crawler.spiders.portal import PortalSpider
from crawler.spiders.sources import SourceCheckSpider
from pipeline.clock import Clock
from pipeline.run_phase import interrupt_unclosed
from pipeline.source_frontier import SourceFrontier


def project_settings(overrides: dict | None = None) -> Settings:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    if overrides:
        settings.update(overrides, priority="cmdline")
    return settings


@dataclass
class CrawlResult:
    run: dict  # the sync_runs row
    errors_by_reason: dict[str, int] = field(default_factory=dict)
    source_status: dict[str, int] = field(default_factory=dict)
    start_results: dict[str, str] = field(default_factory=dict)

    @property
    def start_failed(self) -> bool:
        """True when no start URL could be fetched at all."""
        return bool(self.start_results) and all(v != "ok" for v in self.start_results.values())


def _last_closed(phases: list) -> object:
    """The last phase that closed the run's row (a phase stopped before it began wrote nothing;
    one stopped after it opened the row but before Scrapy could close it is closed here)."""
    for crawler in phases:
        now = Clock.from_settings(crawler.settings).iso()
        interrupt_unclosed(crawler.settings.get("MIRROR_DB"), crawler.stats, now)
    for crawler in reversed(phases):
        if crawler.stats.get_value("mirror/run") is not None or crawler.stats.get_value("mirror/db_error"):
            return crawler
    return phases[0]


def _finished_run(crawler) -> dict:
    failed_write = crawler.stats.get_value("mirror/db_error")
    if failed_write:
        raise RuntimeError(
            f"cannot write the database ({failed_write}); the crawl stopped, what was stored"
            " before is intact, and the next run resumes"
        )
    run = crawler.stats.get_value("mirror/run")
    if run is None:
        raise RuntimeError("the crawl ended before the mirror was opened; see the log above")
    return run


SPIDERS = {"thecontext": EventSiteSpider, "wikipedia": PortalSpider}


def _then_archive(process: AsyncCrawlerProcess, checks, crawlers: list) -> None:
    """After a check run the pipeline settled, look its failing and dead sources up in the archive.

    Not after an offline run: the archive is out of reach too, and a failed lookup would put
    the next one off by ARCHIVE_RECHECK_DAYS."""
    run = checks.stats.get_value("mirror/run")
    if run and checks.stats.get_value("mirror/settled") and not checks.stats.get_value("mirror/offline"):
        with SourceFrontier.from_settings(checks.settings) as frontier:
            lookups = frontier.archive_lookups()
        if not lookups:
            return  # nothing to ask: no crawl to start
        archive = process.create_crawler(ArchiveSpider)
        crawlers.append(archive)
        process.crawl(archive, run_id=run["id"], lookups=lookups)


def run_crawl(settings: Settings, site_name: str = "thecontext", **spider_args) -> CrawlResult:
    """Crawl the site; then, unless CHECK_SOURCES is off, check the new sources."""
    process = AsyncCrawlerProcess(settings)
    site = process.create_crawler(SPIDERS[site_name])
    phases = [site]  # the crawls that ran, in order: the site, the checks, the archive lookups

    def then_check_sources(_task) -> None:
        run = site.stats.get_value("mirror/run")
        if run and run["status"] == "finished" and settings.getbool("CHECK_SOURCES"):
            checks = process.create_crawler(SourceCheckSpider)
            phases.append(checks)
            task = process.crawl(checks, only_unchecked=True, run_id=run["id"])
            task.add_done_callback(lambda _task: _then_archive(process, checks, phases))

    process.crawl(site, **spider_args).add_done_callback(then_check_sources)
    process.start()
    last = _last_closed(phases)
    return CrawlResult(
        run=_finished_run(last),
        errors_by_reason=site.stats.get_value("mirror/errors_by_reason", {}),
        source_status=last.stats.get_value("mirror/source_status", {}) if last is not site else {},
        start_results=dict(site.spider.start_results),
    )


def check_sources(settings: Settings, **spider_args) -> CrawlResult:
    """Check the sources that are due (or all, or a limited number), then ask the archive."""
    process = AsyncCrawlerProcess(settings)
    checks = process.create_crawler(SourceCheckSpider)
    phases = [checks]
    process.crawl(checks, **spider_args).add_done_callback(
        lambda _task: _then_archive(process, checks, phases)
    )
    process.start()
    last = _last_closed(phases)
    return CrawlResult(
        run=_finished_run(last), source_status=last.stats.get_value("mirror/source_status", {})
    )
