"""A pool of worker processes for the CPU-heavy work of a crawl: parsing pages.

Scrapy runs every callback on its one event loop.  A page parsed there blocks
everything else: on a 2-core machine a page of 10,000 links took 2.4 s, the
download timeouts of other requests could not fire meanwhile, and a stalled
page's late answer was taken as if it were on time.  Parsed in a worker
process, a page costs the loop one ``await``; the loop only does I/O and
bookkeeping, and both cores work.

``PARSE_PROCESSES`` sets the pool's size (default: the cores this process may
use); 0 parses on the event loop, as before (for debugging, and for the tests
that show why the pool exists).  The workers are started with
``forkserver``, not ``fork``: the crawl process has threads (Twisted's pool,
the pool's own manager) whose locks a forked child could inherit held.  The
forkserver imports the parser once, and each worker is a fork of it.

A worker that dies (killed, out of memory) fails only the pages it held:
each gets ``PoolBroken``'s reason, and the next page starts a new pool.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

# What the forkserver imports once, so that its forks start ready to parse pages.  The source
# checker's extraction (trafilatura: a second or more to import) is imported by each worker on
# its first extraction, off the loop: preloaded, every crawl paid it, checking sources or not.
PRELOAD = ["pipeline.page_reading"]


class PoolBroken(Exception):
    """A worker process died while it held this job."""


def default_processes() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _ready() -> None:
    """A job that only proves a worker is up."""


def _exit_with(owner: int) -> None:
    """In each worker: end when the crawl process that owns the pool is gone.

    A crawl killed with SIGKILL cannot stop its workers, and a worker never sees its queue
    close (it holds both ends of it, as every multiprocessing queue's reader does), so
    orphaned workers waited for work for ever, and kept the forkserver alive with them
    (found after the kill -9 tests: three idle processes left by each)."""

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(owner, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # alive, under another user (a reused pid): keep watching
                pass

    threading.Thread(target=watch, name="exit-with-owner", daemon=True).start()


def _spawn(executor: ProcessPoolExecutor, processes: int) -> None:
    """Start the workers (a thread runs this: see ``ParsePool.start``)."""
    for job in [executor.submit(_ready) for _ in range(processes)]:
        try:
            job.result()
        except BrokenProcessPool:
            return  # the first real job gets PoolBroken


class ParsePool:
    def __init__(self, processes: int):
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._spawning: asyncio.Future | None = None

    @classmethod
    def from_settings(cls, settings) -> ParsePool:
        value = settings.get("PARSE_PROCESSES")
        return cls(default_processes() if value in (None, "") else int(value))

    def start(self) -> None:
        """Start the workers now, in a thread, so that they are ready when the first page comes.

        A worker is started by the first job submitted to it, and the submission waits until
        the forkserver is up and has imported ``PRELOAD``: 0.4 s on a loaded machine (0.9 s
        with trafilatura), for which the event loop, submitting, would have stood still.
        """
        if self.processes > 0 and self._executor is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            self._executor = ProcessPoolExecutor(
                self.processes, mp_context=context, initializer=_exit_with, initargs=(os.getpid(),)
            )
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: nothing to hold up
                _spawn(self._executor, self.processes)
            else:
                self._spawning = loop.run_in_executor(None, _spawn, self._executor, self.processes)

    async def run(self, function, *args):
        """``function(*args)`` in a worker (on the loop when the pool has no processes)."""
        if self.processes <= 0:
            return function(*args)
        self.start()
        executor = self._executor
        if self._spawning is not None:
            await self._spawning  # submitting before the workers are up would wait on the loop
            self._spawning = None
        try:
            return await asyncio.wrap_future(executor.submit(function, *args))
        except BrokenProcessPool as exc:
            executor.shutdown(wait=False, cancel_futures=True)
            if self._executor is executor:
                self._executor, self._spawning = None, None
            raise PoolBroken("parser process died (killed, or out of memory)") from exc

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor, self._spawning = None, None


class UsesParsePool:
    """A spider whose CPU-heavy work runs in a :class:`ParsePool`: made on first use (in its
    ``start()``), closed with the spider."""

    @functools.cached_property
    def parse_pool(self) -> ParsePool:
        return ParsePool.from_settings(self.settings)

    def closed(self, reason: str) -> None:
        if "parse_pool" in self.__dict__:
            self.parse_pool.close()
        closed = getattr(super(), "closed", None)
        if closed is not None:
            closed(reason)
