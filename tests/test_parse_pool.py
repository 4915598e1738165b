"""Pages are parsed off the event loop: a heavy page never holds up another request's timeout.

Before the parse pool, a page was parsed on Scrapy's event loop; a page citing
20,000 sources took 4 s, and a stalled page whose answer came one second after
its download timeout was taken as if on time (asyncio runs the ready socket
before the due timer once the loop comes back).  The stall here answers at
``DOWNLOAD_TIMEOUT`` + 1 s, next to heavy pages, while a busy loop holds the
machine's other core: the stall must be recorded as a timeout.
"""

from __future__ import annotations

import os

import pytest
from conftest import STALL, SiteServer

DAY = "news/2020/01/2/"
HEAD = "### [2020-01-2](/news/2020/01/2/index.md)\n\n# {title}\n\n### Sources:\n\n"
TIMEOUT = 2
NOW = "2020-01-03T12:00:00"


def heavy_page(title: str, outlet: str, sources: int) -> str:
    return HEAD.format(title=title) + "".join(
        f"{n}. [Outlet {n}](https://{outlet}{n}.example/a/{n})\n" for n in range(1, sources + 1)
    )


def many_related(title: str, links: int) -> str:
    return (
        HEAD.format(title=title)
        + "1. [AP](https://apnews.com/x)\n\n### Related:\n\n"
        + "".join(f"{n}. [x ](/news/2019/12/1/r{n}.md) _Context: X_\n" for n in range(1, links + 1))
    )


@pytest.fixture
def heavy_site(site_dir):
    day = site_dir / DAY
    day.mkdir(parents=True, exist_ok=True)
    pages = {
        "heavy0": heavy_page("A storm cites twenty thousand sources.", "storm", 20000),
        "heavy1": heavy_page("Parliament votes on a budget nobody read.", "vote", 20000),
    }
    pages["related"] = many_related("Ten thousand related.", 10000)
    pages["light"] = HEAD.format(title="A light page.") + "1. [AP](https://apnews.com/light)\n"
    for name, text in pages.items():
        (day / f"{name}.md").write_text(text)
    names = ["stall", *pages]
    listing = "".join(f"### [{name} ](/{DAY}{name}.md)\n\n" for name in names)
    (day / "index.md").write_text(f"## [2020-01-2](/{DAY}index.md)\n\n{listing}")
    server = SiteServer(site_dir)
    server.routes[f"/{DAY}stall.md"] = [(STALL, {}, str(TIMEOUT + 1).encode())]
    yield server
    server.close()


def test_a_stall_next_to_heavy_pages_is_a_timeout_on_time(heavy_site, crawl, busy_core):
    mirror = crawl(
        "--start-url", heavy_site.url(DAY + "index.md"), "--since", "2020-01-02", "--now", NOW,
        "-s", f"DOWNLOAD_TIMEOUT={TIMEOUT}", "-s", "RETRY_TIMES=0",
    )
    pages = {row["url"].rsplit("/", 1)[1]: row for row in mirror.query("SELECT * FROM pages")}
    # The late answer ("too late", at the timeout + 1 s) was not taken: the timeout fired first.
    assert pages["stall.md"]["kind"] == "error" and pages["stall.md"]["error"].startswith("timeout")
    # The heavy pages were parsed whole (in the pool) and stored with their first hundred sources.
    for name in ("heavy0.md", "heavy1.md", "light.md"):
        assert (pages[name]["kind"], pages[name]["error"]) == ("event", None), name
    assert mirror.scalar("SELECT count(*) FROM event_sources") == 201
    # The page of 10,000 site links was refused before it was parsed, with the reason.
    assert pages["related.md"]["kind"] == "error"
    assert "too many links" in pages["related.md"]["error"]


def test_parsing_on_the_event_loop_gives_the_same_mirror(heavy_site, crawl, tmp_path):
    """PARSE_PROCESSES=0 (parse on the loop) and the pool store the same rows: only where the
    work runs differs.  (With a short timeout it does not: on the loop, parsing one heavy page
    held up the download of the other past 2 s, and it was recorded as a timeout.)"""
    heavy_site.routes[f"/{DAY}stall.md"] = [(404, {}, b"gone")]
    mirrors = [
        crawl("--start-url", heavy_site.url(DAY + "index.md"), "--since", "2020-01-02", "--now", NOW,
              "-s", f"PARSE_PROCESSES={n}", db=tmp_path / f"mirror{n}.db")
        for n in (0, 2)
    ]
    errors = [
        m.query("SELECT url, kind, error FROM pages WHERE kind != 'queued' ORDER BY url") for m in mirrors
    ]
    assert errors[0] == errors[1]
    # Row ids follow the order pages came back in, which differs: compare what they point to.
    queries = [
        "SELECT id, url, date, text, title, content_hash FROM events ORDER BY id",
        "SELECT es.event_id, s.url, es.label, es.position FROM event_sources es"
        " JOIN sources s ON s.id = es.source_id ORDER BY 1, 4",
        "SELECT url, cited_url, domain, status FROM sources ORDER BY url",
    ]
    for sql in queries:
        assert mirrors[0].query(sql) == mirrors[1].query(sql), sql


def test_a_worker_that_dies_fails_its_page_and_the_next_page_gets_a_new_pool():
    """A parser process killed (out of memory, a signal) costs the pages it held, not the crawl."""
    import asyncio

    from crawler.parse_pool import ParsePool, PoolBroken
    from pipeline.page_reading import ReadingRules, read_page
    from pipeline.urls import SiteRoot

    async def scenario():
        pool = ParsePool(1)
        try:
            with pytest.raises(PoolBroken, match="parser process died"):
                await pool.run(os._exit, 9)
            rules = ReadingRules(SiteRoot.of("http://127.0.0.1/"))
            page = (HEAD.format(title="After the crash.") + "1. [AP](https://apnews.com/a)\n").encode()
            reading = await pool.run(read_page, page, "http://127.0.0.1/news/2020/01/2/a.md", rules)
            return reading
        finally:
            pool.close()

    reading = asyncio.run(scenario())
    assert reading.error is None and reading.parsed.title == "After the crash."


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (read from /proc)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry))
    return found


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        for child in _children(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def test_the_parse_workers_end_with_a_crawl_killed_by_sigkill(tmp_path):
    """A crawl killed with SIGKILL (the OOM killer, a stuck job's timeout) cannot stop its parse
    workers; they notice it is gone and end, and the forkserver with them."""
    import subprocess
    import sys
    import time

    from crawler.testing.sitegen import generate

    site = generate(tmp_path / "checkout", days=60, events_per_day=30)
    cmd = [sys.executable, "-m", "crawler", "run", "--db", str(tmp_path / "m.db"), "--checkout",
           str(site.root), "-s", "CHECK_SOURCES=False", "-s", "PARSE_PROCESSES=2"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        helpers: set[int] = set()
        while time.monotonic() < deadline and len(helpers) < 3:  # the forkserver and two workers
            time.sleep(0.2)
            helpers = _descendants(proc.pid)
        assert len(helpers) >= 3 and proc.poll() is None, helpers
    finally:
        proc.kill()  # SIGKILL, to the crawl process alone
        proc.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and [pid for pid in helpers if os.path.exists(f"/proc/{pid}")]:
        time.sleep(0.2)
    left = [pid for pid in helpers if os.path.exists(f"/proc/{pid}")]
    for pid in left:  # do not leave them behind if the test fails
        os.kill(pid, 9)
    assert not left, "parse workers outlived their crawl"
