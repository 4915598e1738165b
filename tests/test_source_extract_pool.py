"""The source checker extracts a page's text in the parse pool, off the event loop.

trafilatura on a long article takes seconds (a 2.3 MB article: about 7 s).  Extracted on
Scrapy's event loop, it held up every other check: a stalled source whose answer came a
second after its download timeout was taken as if on time (asyncio runs the ready socket
before the due timer once the loop comes back).  In the pool, the timeout fires on time.
With ``PARSE_PROCESSES=0`` (extract on the loop) the stall below is recorded as a good
check instead, in one process and in a Redis worker: ``TEST_PARSE_PROCESSES=0`` shows it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import STALL, Mirror, SiteServer, crawler_in
from test_sources import HTML, NOT_FOUND_PAGE, article

from crawler.testing.sitegen import write_citing_site

NOW = "2026-03-01T12:00:00+00:00"
LATER = "2026-03-20T12:00:00+00:00"
TIMEOUT = 2
FAST = [
    *("-s", "SOURCE_DELAY=0", "-s", f"DOWNLOAD_TIMEOUT={TIMEOUT}", "-s", "RETRY_TIMES=0"),
    *("-s", "BACKOFF_MAX_DELAY=1", "--allow-private"),
]


def heavy_article(paragraphs: int) -> bytes:
    """A long article: trafilatura takes seconds over it (about 1 s per 4,000 paragraphs)."""
    body = "".join(
        f"<p>Paragraph {n} of the storm report, with words that go on and on {n * 7}.</p>"
        for n in range(paragraphs)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>The long storm report</title></head>"
        f"<body><nav>Home</nav><article><h1>The long storm report</h1>{body}</article></body></html>"
    ).encode()


def cite(folder: Path, sources: list[str]) -> SiteServer:
    """An event site whose one event cites ``sources``."""
    write_citing_site(folder, sources)
    return SiteServer(folder / "site", host="127.0.0.1")


def slow(server: SiteServer, seconds: float) -> None:
    """The server answers ``seconds`` late (its probe and robots.txt at once)."""
    plain = server.answer_request

    def answer_request(path, headers):
        if path.endswith("/heavy"):
            time.sleep(seconds)
        return plain(path, headers)

    server.answer_request = answer_request


def check_links(db: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "check-links", "--db", str(db), "--json", *args],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture
def news(tmp_path):
    """A news host of articles, redirects and failures, and a host that answers 200 for everything."""
    news = SiteServer(tmp_path, host="127.0.0.2")
    soft = SiteServer(tmp_path, host="127.0.0.3")
    n = news.routes
    n["/article"] = [(200, HTML, article("Locusts descend on Madagascar"))]
    n["/old"] = [(301, {"Location": news.url("new")}, b"")]
    n["/new"] = [(200, HTML, article("Cyprus banks stay shut"))]
    bare = b"<html><head><title>Only a title</title></head><body><p>Short.</p></body></html>"
    n["/bare"] = [(200, HTML, bare)]
    n["/long"] = [(200, HTML, heavy_article(400))]
    n["/missing"] = [(404, HTML, b"not found")]
    n["/report.pdf"] = [(200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 " + b"x" * 5000)]
    n["/to-home"] = [(302, {"Location": news.url("")}, b"")]
    n["/"] = [(200, HTML, article("Front page"))]
    soft.answer = lambda path: (200, HTML, NOT_FOUND_PAGE)
    paths = ("article", "old", "bare", "long", "missing", "report.pdf", "to-home")
    news.sources = [news.url(p) for p in paths]
    news.sources.append(soft.url("2013/03/27/story.html"))
    yield news
    news.close()
    soft.close()


KEPT = [
    "SELECT s.url, t.fetched_at, t.content_hash, t.text FROM source_texts t"
    " JOIN sources s ON s.id = t.source_id ORDER BY s.url, t.id",
    "SELECT url, title, description, published, site_name, content_hash, first_ok_at, last_ok_at,"
    " last_outcome FROM sources ORDER BY url",
    "SELECT s.url, c.checked_at, c.http_status, c.final_url, c.outcome, c.note, c.error FROM link_checks c"
    " JOIN sources s ON s.id = c.source_id ORDER BY s.url, c.checked_at",
]


def test_the_pool_keeps_the_same_texts_as_the_event_loop(news, tmp_path):
    """PARSE_PROCESSES=0 (extract on the loop, in the store pipeline's time) and the pool keep the
    same rows, over a first run and a second check after an article changed."""
    site = cite(tmp_path, news.sources)
    try:
        mirrors = []
        for processes in (0, 2):
            news.routes["/article"] = [(200, HTML, article("Locusts descend on Madagascar"))]
            pool = ["-s", f"PARSE_PROCESSES={processes}"]
            db = tmp_path / f"mirror{processes}.db"
            crawler_in(tmp_path)(
                "--start-url", site.url("news/2013/03/27/index.md"), "--now", NOW, *FAST, *pool,
                db=db, check_sources=True,
            )  # fmt: skip
            news.routes["/article"] = [(200, HTML, article("Locusts leave Madagascar"))]
            check_links(db, "--all", "--now", LATER, *FAST, *pool)
            mirrors.append(Mirror(None, db))
        for sql in KEPT:
            assert mirrors[0].query(sql) == mirrors[1].query(sql), sql
        texts = mirrors[1].query(KEPT[0])
        kept = [row["url"].rsplit("/", 1)[1] for row in texts]
        # Two copies of the edited article, one of each other good HTML page (old: redirected to new);
        # nothing of the PDF, the 404, the redirect home or the soft host's "not found" page.
        assert sorted(kept) == ["article", "article", "bare", "long", "old"], kept
        long_text = next(row["text"] for row in texts if row["url"].endswith("/long"))
        assert "Paragraph 399 of the storm report" in long_text
    finally:
        site.close()


@pytest.fixture
def heavy_and_stall(tmp_path):
    heavy = SiteServer(tmp_path, host="127.0.0.2")
    stall = SiteServer(tmp_path, host="127.0.0.4")
    # 2.3 MB, about 7 s of extraction on an idle machine (more on a loaded one), within
    # SOURCE_MAXSIZE; sent half a second late, so that the stalled request is surely on its way
    # when the extraction starts.
    heavy.routes["/heavy"] = [(200, HTML, heavy_article(30000))]
    slow(heavy, 0.5)
    stall.routes["/stall"] = [(STALL, {}, str(TIMEOUT + 1).encode())]
    site = cite(tmp_path, [heavy.url("heavy"), stall.url("stall")])
    yield site, heavy, stall
    for server in (site, heavy, stall):
        server.close()


# To see the test fail as it should without the pool: TEST_PARSE_PROCESSES=0 pytest -k heavy_article
BY_HAND = []
if "TEST_PARSE_PROCESSES" in os.environ:
    BY_HAND = ["-s", f"PARSE_PROCESSES={os.environ['TEST_PARSE_PROCESSES']}"]


def test_a_stall_next_to_a_heavy_article_is_a_timeout(heavy_and_stall, tmp_path):
    site, heavy, stall = heavy_and_stall
    mirror = crawler_in(tmp_path)(
        "--start-url", site.url("news/2013/03/27/index.md"), "--now", NOW, *FAST,
        *BY_HAND,
        check_sources=True,
    )  # fmt: skip
    checks = {row["url"].rsplit("/", 1)[1]: row for row in mirror.query(
        "SELECT s.url, c.* FROM link_checks c JOIN sources s ON s.id = c.source_id")}  # fmt: skip
    # The late answer ("too late", at the timeout + 1 s) was not taken: the timeout fired first.
    assert (checks["stall"]["error"], checks["stall"]["http_status"]) == ("timeout", None), checks["stall"]
    assert checks["heavy"]["outcome"] == "ok"
    text = mirror.scalar("SELECT text FROM source_texts")
    assert "Paragraph 29999 of the storm report" in text


def worker_pids(parent: int) -> list[int]:
    """The crawl's parse-pool workers: the forkserver's children (grandchildren of the crawl)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    return [pid for child in children.get(parent, []) for pid in children.get(child, [])]


def test_a_dead_parser_costs_the_text_not_the_check(heavy_and_stall, tmp_path):
    """The worker extracting the heavy article is killed (what an OOM kill does): the check is
    stored, good, with the reason as its note; nothing is kept of its text; the run ends well."""
    site, heavy, stall = heavy_and_stall
    stall.routes["/stall"] = [(404, HTML, b"gone")]
    db = tmp_path / "mirror.db"
    crawl = subprocess.Popen(
        [sys.executable, "-m", "crawler", "run", "--db", str(db), "--json", "--start-url",
         site.url("news/2013/03/27/index.md"), "--now", NOW, *FAST, "-s", "PARSE_PROCESSES=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "/heavy" not in heavy.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.5)  # the answer is in, and the worker is extracting it
        workers = worker_pids(crawl.pid)
        assert workers, "no parse-pool worker found"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        out, err = crawl.communicate(timeout=120)
    finally:
        if crawl.poll() is None:
            crawl.kill()
    assert crawl.returncode == 0, err[-3000:]
    mirror = Mirror(None, db)
    checks = {row["url"].rsplit("/", 1)[1]: row for row in mirror.query(
        "SELECT s.url, c.* FROM link_checks c JOIN sources s ON s.id = c.source_id")}  # fmt: skip
    assert checks["heavy"]["outcome"] == "ok"
    assert checks["heavy"]["note"].startswith("text not kept: parser process died"), checks["heavy"]
    assert checks["stall"]["outcome"] == "gone"
    assert mirror.scalar("SELECT count(*) FROM source_texts") == 0
    row = mirror.query("SELECT title, content_hash, last_ok_at FROM sources WHERE url LIKE '%/heavy'")[0]
    assert row["title"] is None and row["content_hash"] and row["last_ok_at"]


def test_a_redis_worker_extracts_in_its_pool_too(heavy_and_stall, tmp_path, redis_server):
    """The worker runs the same spider: the heavy article is extracted in its parse pool (the
    writer stores what the worker extracted) and the stall beside it is a timeout."""
    site, heavy, stall = heavy_and_stall
    db = tmp_path / "mirror.db"
    crawler_in(tmp_path)("--start-url", site.url("news/2013/03/27/index.md"), "--now", NOW, db=db)
    settings = [*FAST, "-s", "REDIS_SHARDS=2", *BY_HAND]
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("worker", "writer")}  # noqa: SIM115
    worker = subprocess.Popen(
        [sys.executable, "-m", "crawler", "worker", "--redis", redis_server.url, "--name", "w0", *settings],
        stdout=logs["worker"], stderr=logs["worker"], cwd=tmp_path,
    )  # fmt: skip
    try:
        writer = subprocess.run(
            [sys.executable, "-m", "crawler", "check-links", "--redis", redis_server.url, "--db", str(db),
             "--now", NOW, "--json", *settings],
            stdout=logs["writer"], stderr=logs["writer"], cwd=tmp_path, timeout=180,
        )  # fmt: skip
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        for log in logs.values():
            log.close()
    assert writer.returncode == 0, (tmp_path / "writer.log").read_text()[-3000:]
    mirror = Mirror(None, db)
    checks = {row["url"].rsplit("/", 1)[1]: row for row in mirror.query(
        "SELECT s.url, c.* FROM link_checks c JOIN sources s ON s.id = c.source_id")}  # fmt: skip
    assert (checks["stall"]["error"], checks["stall"]["http_status"]) == ("timeout", None), checks["stall"]
    assert checks["heavy"]["outcome"] == "ok"
    assert "Paragraph 29999 of the storm report" in mirror.scalar("SELECT text FROM source_texts")
