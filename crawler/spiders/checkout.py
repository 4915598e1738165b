"""Import a local checkout of the site's repository (``run --checkout DIR``) at the parse limit.

The site's whole record is a git repository of about 300,000 files.  Crawled
through ``file://`` start URLs, each file is a Scrapy request: scheduled,
downloaded, answered and followed link by link, one page at a time on the
event loop.  A checkout needs none of that: its files are all there.  This
spider walks ``news/`` folder by folder, reads and parses the files in the
parse pool's worker processes (``pipeline.page_reading.read_file``) and
yields each page's item straight from ``start()`` into the same pipelines as
a crawl (normalise, dedupe, store), so the mirror is the one a crawl of the
same tree makes, table for table.

- **Only what changed is read.**  A file whose size and mtime are the ones
  stored (``pages.size``, ``pages.file_mtime``) is not opened; one whose
  stat changed but whose bytes hash to the stored ``content_hash`` is seen
  unchanged (after a ``git checkout`` touched it) and not parsed.  ``--full``
  reads every file (and still parses only changed bytes).
- **Batched.**  The store commits every ``STORE_BATCH_PAGES`` pages (see
  ``pipeline.store``): a killed import loses at most one batch, whose files
  are read again by the next run (their rows did not land).
- **Bounded.**  Files go to the workers 16 at a time, at most two such trips
  per worker in flight; one folder's stored states are read at a time, and the
  end-of-walk pass streams the ``pages`` rows: memory does not grow with the
  record.
- **At the end**, the pages the mirror knows below the checkout whose file is
  missing (a dangling link, a file ``git pull`` deleted) are asked for as
  ``file://`` requests, as a crawl would: each is recorded "file not found",
  and an event or day page so recorded is marked gone (never deleted).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import deque
from pathlib import Path
from urllib.parse import unquote, urlsplit

from scrapy import signals
from scrapy.exceptions import DontCloseSpider

from crawler.failures import FILE_NOT_FOUND
from crawler.items import PageItem
from crawler.parse_pool import PoolBroken
from crawler.spiders.eventsite import EventSiteSpider
from pipeline.page_reading import FileReading, PageReading, read_files
from pipeline.store import StorePipeline
from pipeline.urls import canonical_url

# Files sent to a worker at a time (see read_files), and trips in flight per worker process:
# enough to keep every worker busy while the crawl process stores, few enough that memory
# does not grow with the checkout.
FILES_PER_TRIP = 16
TRIPS_AHEAD_PER_PROCESS = 2
# Missing files asked for at a time by the end-of-walk pass.
MISSING_AT_ONCE = 500
# RFC 3986's unreserved characters: a file name spelled only with them needs no quoting.
PLAIN_NAME = re.compile(r"[A-Za-z0-9._~-]+")


class CheckoutSpider(EventSiteSpider):
    name = "checkout"
    custom_settings = {**EventSiteSpider.custom_settings, "STORE_BATCH_PAGES": 500}

    def __init__(self, checkout: str | None = None, **kwargs):
        if not checkout:
            raise ValueError("the checkout spider needs the checkout's folder (checkout=DIR)")
        self.checkout = Path(checkout).expanduser().resolve()
        if not (self.checkout / "news").is_dir():
            raise ValueError(f"{self.checkout} has no news/ folder: not a checkout of the site")
        root_url = canonical_url(self.checkout.as_uri() + "/")
        super().__init__(start_urls=[root_url], site_root=root_url, **kwargs)
        self.files_unchanged = 0  # files not read: their size and mtime are the stored ones
        self.missing_after = ""  # the end-of-walk pass: where its last lot ended (a URL)
        self.missing_done = False

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.missing_files, signal=signals.spider_idle)
        return spider

    @property
    def pages_not_due(self) -> int:
        return self.files_unchanged

    async def start(self):
        self.parse_pool.start()
        ahead: deque[tuple[list, asyncio.Future]] = deque()
        most = max(1, self.parse_pool.processes) * TRIPS_AHEAD_PER_PROCESS
        for trip in _in_trips(self._changed_files(), FILES_PER_TRIP):
            jobs = [(str(path), url, known[1] if known else None) for url, path, _mtime, known in trip]
            ahead.append((trip, asyncio.ensure_future(self._read(jobs))))
            while len(ahead) >= most:
                for item in await self._items(*ahead.popleft()):
                    yield item
        while ahead:
            for item in await self._items(*ahead.popleft()):
                yield item

    def _changed_files(self):
        """(url, path, mtime, (kind, hash) held) of each file to read: the front page (``index.md``,
        where a crawl starts), then the news tree's, folder by folder."""
        front = [(self.checkout, ["index.md"])] if (self.checkout / "index.md").is_file() else []
        for folder, names in [*front, *self._folders(self.checkout / "news")]:
            folder_url = canonical_url(folder.as_uri() + "/")
            states = self.frontier.checkout_states(folder_url)
            for name in names:
                path = folder / name
                # A name of unreserved characters (every slug of the site) is its own canonical
                # spelling: w3lib's canonicalisation, a tenth of the walk, is for the others.
                url = folder_url + name if PLAIN_NAME.fullmatch(name) else canonical_url(path.as_uri())
                if folder != self.checkout and not self.in_window(url):
                    continue
                try:
                    stat = path.stat()
                except OSError:
                    continue  # gone since the folder was listed: the end-of-walk pass records it
                size, mtime, content_hash, kind, held = states.get(url, (None,) * 4 + (False,))
                if held and not self.full and (size, mtime) == (stat.st_size, stat.st_mtime_ns):
                    self.files_unchanged += 1
                    continue
                # Content the mirror holds is not parsed again if the bytes are the same.
                yield url, path, stat.st_mtime_ns, (kind, content_hash) if held and kind != "error" else None

    def _folders(self, top: Path):
        """Each folder below ``top`` with its markdown files, in a stable order."""
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            names = sorted(name for name in files if name.endswith(".md"))
            if names:
                yield Path(folder), names

    async def _read(self, jobs: list) -> list[FileReading]:
        try:
            return await self.parse_pool.run(read_files, jobs, self.reading_rules)
        except PoolBroken as exc:  # each file of the trip fails, and is read again next run
            return [FileReading(0, None, PageReading(error=str(exc)))] * len(jobs)

    async def _items(self, trip: list, readings: asyncio.Future) -> list[PageItem]:
        found = await readings
        return [
            self._item(url, mtime, known, reading)
            for (url, _path, mtime, known), reading in zip(trip, found, strict=True)
        ]

    def _item(self, url: str, mtime: int, known, found: FileReading) -> PageItem:
        item = PageItem(
            url=url,
            kind="error",
            http_status=200,  # what a file:// crawl records for a file it read
            content_hash=found.content_hash,
            size=found.size,
            date=self._date_of(url),
            file_mtime=mtime if found.content_hash else None,  # an unreadable file is read again
        )
        if found.reading is None:  # the bytes the mirror holds: seen, not parsed
            item.kind, item.unchanged = known[0], True
            return item
        reading = found.reading
        if reading.error:
            item.error = reading.error
            if found.content_hash is None:
                item.http_status = None  # not read at all
            return item
        item.parsed, item.kind, item.links = reading.parsed, reading.parsed.kind, reading.links
        item.normalised = reading.normalised
        return item

    def missing_files(self):
        """Once the walk is stored: ask, as file:// requests, for the known pages whose file is
        missing (dangling links, files deleted upstream); each is recorded "file not found".

        Asked ``MISSING_AT_ONCE`` at a time (each time the crawl is idle again), in URL order
        from where the last lot ended: a whole record has tens of thousands of dangling links,
        and queued at once their requests were the largest thing in memory."""
        if self.missing_done:
            return
        self.crawler.get_item_pipeline(StorePipeline).flush()  # the last batch's links, readable
        asked = 0
        for url, _kind, error in self.frontier.pages_below(self.site.url + "news/", after=self.missing_after):
            self.missing_after = url
            if error == FILE_NOT_FOUND or not self.in_window(url):
                continue
            if os.path.exists(unquote(urlsplit(url).path)):
                continue  # walked (read, or unchanged)
            request = self._request(url, always=True)
            if request is None or isinstance(request, PageItem):
                continue
            self.crawler.engine.crawl(request)
            asked += 1
            if asked >= MISSING_AT_ONCE:
                raise DontCloseSpider
        self.missing_done = True
        if asked:
            raise DontCloseSpider


def _in_trips(files, size: int):
    """The walk's files in lists of ``size`` (the last one shorter)."""
    trip = []
    for file in files:
        trip.append(file)
        if len(trip) == size:
            yield trip
            trip = []
    if trip:
        yield trip
