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
from crawler.spiders.checkout import CheckoutSpider
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


def _then_archive(process: AsyncCrawlerProcess, checks, crawlers: list, redis_url: str | None = None) -> None:
    """After a check run the pipeline settled, look its failing and dead sources up in the archive:
    a crawl of its own, or, for a Redis round, a writer phase whose lookups the workers answer.

    Not after an offline run: the archive is out of reach too, and a failed lookup would put
    the next one off by ARCHIVE_RECHECK_DAYS."""
    run = checks.stats.get_value("mirror/run")
    if run and checks.stats.get_value("mirror/settled") and not checks.stats.get_value("mirror/offline"):
        with SourceFrontier.from_settings(checks.settings) as frontier:
            lookups = frontier.archive_lookups()
        if not lookups:
            return  # nothing to ask: no crawl to start
        if redis_url is None:
            archive = process.create_crawler(ArchiveSpider)
            crawlers.append(archive)
            process.crawl(archive, run_id=run["id"], lookups=lookups)
            return
        from crawler.redisqueue.writer import RedisArchiveWriterSpider

        archive = process.create_crawler(RedisArchiveWriterSpider)
        crawlers.append(archive)
        process.crawl(archive, redis_url=redis_url, run_id=run["id"], lookups=lookups)


def run_crawl(settings: Settings, site_name: str = "thecontext", **spider_args) -> CrawlResult:
    """Crawl the site; then, unless CHECK_SOURCES is off, check the new sources."""
    process = AsyncCrawlerProcess(settings)
    site = process.create_crawler(CheckoutSpider if spider_args.get("checkout") else SPIDERS[site_name])
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


def begin_round(settings: Settings, redis_url: str) -> int:
    """The Redis round to check: the one Redis holds, while its row is still running (a writer
    restarted), or a new ``sync_runs`` row (and what Redis held of an older round cleared)."""
    import redis

    from crawler import redisqueue as redisq
    from pipeline.runs import start_run
    from pipeline.schema import open_database

    r = redis.Redis.from_url(redis_url)
    keys = redisq.Keys.from_settings(settings)
    held = r.get(keys.round)
    db = open_database(settings.get("MIRROR_DB"))
    try:
        if held is not None:
            row = db.execute("SELECT status, kind FROM sync_runs WHERE id = ?", [int(held)]).fetchone()
            if row is not None and row[0] == "running" and row[1] == "check-links":
                return int(held)  # its writer died: this one finishes it
        end_round(settings, redis_url, int(held) if held is not None else None)
        return start_run(db, Clock.from_settings(settings), kind="check-links")
    finally:
        db.close()
        r.close()


def end_round(settings: Settings, redis_url: str, run_id: int | None) -> None:
    """Clear what Redis holds of a round: its keys, the streams' entries and the groups' pending lists."""
    import redis

    from crawler import redisqueue as redisq

    r = redis.Redis.from_url(redis_url)
    keys = redisq.Keys.from_settings(settings)
    try:
        groups = [(s, redisq.WORKERS_GROUP) for s in [*keys.all_checks(), keys.archive]]
        groups.append((keys.results, redisq.WRITER_GROUP))
        pipe = r.pipeline(transaction=False)
        for stream, group in groups:
            pipe.xtrim(stream, maxlen=0, approximate=False)
            pipe.xgroup_destroy(stream, group)
        pipe.delete(keys.round)
        if run_id is not None:
            pipe.delete(keys.queued(run_id), keys.enqueued(run_id))
            pipe.delete(keys.archive_queued(run_id), keys.archive_enqueued(run_id))
        pipe.execute(raise_on_error=False)
    finally:
        r.close()


def check_sources_redis(settings: Settings, redis_url: str, **spider_args) -> CrawlResult:
    """Check a round on the Redis queue (``check-links --redis``): this process is its one writer;
    workers (``worker --redis``) check.  Then settle, and put the archive lookups on their own
    stream for the workers to answer (the rows stored as :func:`check_sources` stores them)."""
    from crawler.redisqueue.writer import RedisWriterSpider

    run_id = begin_round(settings, redis_url)
    process = AsyncCrawlerProcess(settings)
    checks = process.create_crawler(RedisWriterSpider)
    phases = [checks]
    process.crawl(checks, redis_url=redis_url, run_id=run_id, **spider_args).add_done_callback(
        lambda _task: _then_archive(process, checks, phases, redis_url)
    )
    process.start()
    last = _last_closed(phases)
    result = CrawlResult(
        run=_finished_run(last), source_status=last.stats.get_value("mirror/source_status", {})
    )
    if checks.stats.get_value("mirror/settled"):
        end_round(settings, redis_url, run_id)
    return result


def run_worker(settings: Settings, redis_url: str, name: str | None = None, idle_exit: float = 0) -> dict:
    """Check what the Redis queue holds until stopped (or idle for ``idle_exit`` seconds)."""
    from crawler.redisqueue.worker import RedisWorkerSpider

    process = AsyncCrawlerProcess(settings)
    worker = process.create_crawler(RedisWorkerSpider)
    process.crawl(worker, redis_url=redis_url, worker_name=name, idle_exit=idle_exit)
    process.start()
    return {
        "results_pushed": worker.stats.get_value("mirror/results_pushed", 0),
        "tasks_taken_over": worker.stats.get_value("mirror/tasks_taken_over", 0),
        # Soft-404 hosts' good pages whose words were taken here, not on the writer's loop.
        "page_words_in_pool": worker.stats.get_value("mirror/page_words_in_pool", 0),
        "finish_reason": worker.stats.get_value("finish_reason"),
    }
