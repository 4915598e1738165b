"""A live progress line on a terminal, periodic log lines otherwise.

Scrapy's LogStats prints pages per minute to the log; a person watching a
mirror fill wants pages, events, errors and the queue, on one line that
rewrites itself.  When stderr is not a terminal (cron, CI, a pipe) the same
figures go out as an ordinary log line every ``PROGRESS_INTERVAL`` seconds.
"""

from __future__ import annotations

import sys
import time

from scrapy import signals
from twisted.internet import task


class Progress:
    def __init__(self, crawler, stream=None):
        self.crawler = crawler
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.interval = 0.5 if self.tty else crawler.settings.getfloat("PROGRESS_INTERVAL")
        self.started = time.monotonic()
        self.loop: task.LoopingCall | None = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler):
        return cls(crawler)

    def spider_opened(self, spider):
        if self.interval > 0:
            self.loop = task.LoopingCall(self.report)
            self.loop.start(self.interval, now=False)

    def spider_closed(self, spider, reason):
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.tty:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def line(self) -> str:
        """The spider's own figures (its ``progress(stats)``), the queue and the time."""
        slot = getattr(self.crawler.engine, "_slot", None)  # Scrapy keeps the queue private
        try:
            queued = len(slot.scheduler) + len(slot.inprogress)
        except (AttributeError, TypeError):
            queued = 0
        figures = self.crawler.spider.progress(self.crawler.stats)
        return f"{figures} · queue {queued} · {time.monotonic() - self.started:.0f}s"

    def report(self):
        if self.tty:
            self.stream.write("\r\033[K" + self.line())
            self.stream.flush()
        else:
            self.stream.write(f"progress: {self.line()}\n")
            self.stream.flush()


def site_progress(stats, unit: str) -> str:
    """The figures of a site crawl (either site), from what the store pipeline counts."""
    return (
        f"{unit} {stats.get_value('item_scraped_count', 0)}"
        f" · events {stats.get_value('mirror/events_seen', 0)}"
        f" (new {stats.get_value('mirror/events_new', 0)})"
        f" · errors {stats.get_value('mirror/page_errors', 0)}"
    )
