"""Run one crawl in this process and report what it did.

The CLI is a thin layer over :func:`run_crawl`: it turns options into Scrapy
settings and spider arguments, and this module runs Scrapy's
``AsyncCrawlerProcess`` (asyncio reactor) with the project's settings module,
then reads the run's row back from ``sync_runs``.  A Twisted reactor cannot be
restarted, so this is called once per process; the scheduler and the tests run
it in child processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scrapy.crawler import AsyncCrawlerProcess
from scrapy.settings import Settings

from crawler.spiders.eventsite import EventSiteSpider


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
    start_results: dict[str, str] = field(default_factory=dict)
    stats: dict = field(default_factory=dict)

    @property
    def start_failed(self) -> bool:
        """True when no start URL could be fetched at all."""
        return bool(self.start_results) and all(v != "ok" for v in self.start_results.values())


def run_crawl(settings: Settings, **spider_args) -> CrawlResult:
    process = AsyncCrawlerProcess(settings)
    crawler = process.create_crawler(EventSiteSpider)
    process.crawl(crawler, **spider_args)
    process.start()
    stats = crawler.stats.get_stats()
    run = stats.pop("mirror/run", None)
    if run is None:
        raise RuntimeError("the crawl ended before the mirror was opened; see the log above")
    return CrawlResult(
        run=run,
        errors_by_reason=stats.pop("mirror/errors_by_reason", {}),
        start_results=dict(crawler.spider.start_results),
        stats=stats,
    )
