"""Source checking against real servers on several loopback addresses.

Each cited "news host" is a server on its own address (127.0.0.2, .3, ...);
one more plays the Internet Archive's availability API.  The mirror is built
by ``run`` at a fixed ``--now``; ``check-links --now`` then moves through a
simulated month.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import RESET, STALL, Mirror, SiteServer, crawler_in

T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
HTML = {"Content-Type": "text/html; charset=utf-8"}
FAST = [
    *("-s", "SOURCE_DELAY=0", "-s", "DOWNLOAD_TIMEOUT=3"),
    *("-s", "RETRY_TIMES=1", "-s", "SOURCE_MAXSIZE=100000", "-s", "BACKOFF_MAX_DELAY=1"),
]


def article(title: str, words: int = 80) -> bytes:
    text = " ".join(f"{title} paragraph word{n}" for n in range(words))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title} | Daily Example</title>
<meta property="og:title" content="{title}"><meta property="og:site_name" content="Daily Example">
<meta name="description" content="About {title}">
<meta property="article:published_time" content="2013-03-27T08:00:00Z"></head>
<body><nav>Home News Sport</nav><article><h1>{title}</h1><p>{text}</p></article></body></html>""".encode()


NOT_FOUND_PAGE = b"<html><title>Sorry</title><body><h1>Sorry, that page cannot be found</h1></body></html>"


def at(days: float) -> str:
    return (T0 + dt.timedelta(days=days)).isoformat()


class World:
    """The news hosts, the archive, and the event site that cites them."""

    def __init__(self, tmp_path, only: list[str] | None = None):
        self.tmp = tmp_path
        self.news = SiteServer(tmp_path, host="127.0.0.2")
        self.soft = SiteServer(tmp_path, host="127.0.0.3")
        self.faulty = SiteServer(tmp_path, host="127.0.0.4")  # stalls and resets, on a host of their own
        self.archive = SiteServer(tmp_path, host="127.0.0.6")
        with socket.socket() as sock:  # a host where nothing listens: every check is refused
            sock.bind(("127.0.0.5", 0))
            self.down = f"http://127.0.0.5:{sock.getsockname()[1]}"
        n = self.news.routes
        n["/robots.txt"] = [(200, {}, b"User-agent: *\nDisallow: /private/\n")]
        n["/article"] = [(200, HTML, article("Locusts descend on Madagascar"))]
        n["/old"] = [(301, {"Location": self.news.url("new")}, b"")]
        n["/new"] = [(200, HTML, article("Cyprus banks stay shut"))]
        n["/missing"] = [(404, HTML, b"not found")]
        n["/removed"] = [(410, HTML, b"gone")]
        n["/flaky"] = [(500, HTML, b"oops"), (200, HTML, article("Flaky but fine"))]
        n["/broken"] = [(500, HTML, b"oops")]
        n["/comeback"] = [(503, HTML, b"down")]
        n["/report.pdf"] = [(200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 " + b"x" * 5000)]
        n["/huge"] = [(200, HTML, b"<html>" + b"x" * 300_000 + b"</html>")]
        n["/to-home"] = [(302, {"Location": self.news.url("")}, b"")]
        n["/"] = [(200, HTML, article("Front page of the news host"))]
        n["/loop-a"] = [(302, {"Location": self.news.url("loop-b")}, b"")]
        n["/loop-b"] = [(302, {"Location": self.news.url("loop-a")}, b"")]
        n["/busy"] = [(429, {"Retry-After": "1"}, b""), (200, HTML, article("Worth the wait"))]
        n["/very-busy"] = [(429, {"Retry-After": "3600"}, b"")]
        n["/walled"] = [(403, {"cf-mitigated": "challenge", **HTML}, b"<html>Just a moment...</html>")]
        n["/private/memo"] = [(200, HTML, article("Never fetched"))]
        self.faulty.routes["/stall"] = [(STALL, {}, b"5")]
        self.faulty.routes["/reset"] = [(RESET, {}, b"")]
        # Everything else on the news host is an honest 404 (SiteServer's default).
        self.soft.routes_default = None
        self.archive_hits: list[dict] = []
        self._soft_host_answers_200_for_everything()
        self._archive_api()
        self.paths = [
            "article", "old", "missing", "removed", "flaky", "broken", "comeback", "report.pdf", "huge",
            "to-home", "loop-a", "busy", "very-busy", "walled", "private/memo",
        ]  # fmt: skip
        if only is not None:
            self.paths = only
        self.sources = [self.news.url(p) for p in self.paths] + [
            self.faulty.url("stall"),
            self.faulty.url("reset"),
            self.soft.url("2013/03/27/story.html"),
            self.down + "/a.html",
            self.down + "/b.html",
            "http://newsroom.invalid/story.html",
        ]
        if only is not None:
            self.sources = self.sources[: len(only)]
        self.site = SiteServer(self._write_site(), host="127.0.0.1")

    def _soft_host_answers_200_for_everything(self):
        soft = self.soft

        def answer(path):
            soft.requests_seen = getattr(soft, "requests_seen", 0) + 1
            return 200, HTML, NOT_FOUND_PAGE

        soft.answer = answer

    def _archive_api(self):
        world = self

        def answer(path):
            query = parse_qs(urlsplit(path).query)
            world.archive_hits.append(query)
            url = query["url"][0]
            if url.endswith("/removed") or url.endswith("/broken"):
                return 200, {"Content-Type": "application/json"}, b'{"archived_snapshots": {}}'
            stamp = query["timestamp"][0][:8] + "101010"
            body = {
                "url": url,
                "archived_snapshots": {
                    "closest": {
                        "available": True,
                        "url": f"http://web.archive.org/web/{stamp}/{url}",
                        "timestamp": stamp,
                        "status": "200",
                    }
                },
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

        self.archive.answer = answer

    def _write_site(self):
        root = self.tmp / "site"
        day = root / "news/2013/03/27"
        day.mkdir(parents=True)
        sources = "\n".join(f"{n}. [Outlet {n}]({url})" for n, url in enumerate(self.sources, 1))
        (day / "event.md").write_text(
            "### [2013-03-27](/news/2013/03/27/index.md)\n\n# Something happens.\n\n"
            f"### Sources:\n\n{sources}\n"
        )
        (day / "index.md").write_text(
            "## [2013-03-27](/news/2013/03/27/index.md)\n\n"
            "### [Something happens. ](/news/2013/03/27/event.md)\n"
        )
        return root

    def close(self):
        for server in (self.news, self.soft, self.faulty, self.archive, self.site):
            server.close()

    @property
    def settings(self) -> list[str]:
        return [*FAST, "-s", f"WAYBACK_API_URL={self.archive.origin}/wayback/available", "--allow-private"]


# The tests that only read the first run share one world and one run (and so one xdist worker);
# the simulated month moves time on, so it has a world of its own.
SHARES_THE_FIRST_RUN = pytest.mark.xdist_group("source-world")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("world"))
    yield w
    w.close()


@pytest.fixture
def own_world(tmp_path):
    w = World(tmp_path)
    yield w
    w.close()


def check_links(mirror: Mirror, *args: str) -> Mirror:
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "check-links", "--db", str(mirror.db), "--json", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return Mirror(proc, mirror.db)


def by_path(mirror: Mirror) -> dict[str, dict]:
    rows = mirror.query("SELECT * FROM sources")
    return {urlsplit(r["url"]).path.lstrip("/") or r["url"]: r for r in rows}


def last_checks(mirror: Mirror) -> dict[str, dict]:
    rows = mirror.query(
        "SELECT c.*, s.url AS source_url FROM link_checks c JOIN sources s ON s.id = c.source_id"
        " WHERE c.id IN (SELECT max(id) FROM link_checks GROUP BY source_id)"
    )
    return {urlsplit(r["source_url"]).path.lstrip("/"): r for r in rows}


def crawl_first_run(world: World) -> Mirror:
    return crawler_in(world.tmp)("--start-url", world.site.url("news/2013/03/27/index.md"), "--now", at(0),
                                 *world.settings, check_sources=True)  # fmt: skip


@pytest.fixture(scope="module")
def first_run(world):
    return crawl_first_run(world)


@pytest.fixture
def own_first_run(own_world):
    return crawl_first_run(own_world)


@SHARES_THE_FIRST_RUN
def test_every_case_gets_its_outcome(world, first_run):
    checks = last_checks(first_run)
    expected = {
        "article": ("ok", None),
        "old": ("ok", None),
        "missing": ("gone", None),
        "removed": ("gone", None),
        "flaky": ("ok", None),
        "broken": ("transient", None),
        "comeback": ("transient", None),
        "report.pdf": ("ok", None),
        "huge": ("unknown", "size"),
        "to-home": ("soft404", None),
        "loop-a": ("transient", "too_many_redirects"),
        "busy": ("ok", None),
        "very-busy": ("rate_limited", None),
        "walled": ("blocked", None),
        "private/memo": ("blocked", "robots"),
        "stall": ("transient", "timeout"),
        "reset": ("transient", "reset"),
        "2013/03/27/story.html": ("soft404", None),
        "a.html": ("transient", "refused"),
        "b.html": ("transient", "refused"),
        "story.html": ("gone", "dns"),
    }
    assert {path: (c["outcome"], c["error"]) for path, c in checks.items()} == expected
    assert checks["old"]["redirects"] == 1 and checks["old"]["final_url"].endswith("/new")
    assert "random-sibling probe" in checks["2013/03/27/story.html"]["note"]
    assert "outage" in checks["a.html"]["note"]
    assert "outage" in checks["stall"]["note"]  # its host answered nothing else
    assert "/private/memo" not in world.news.requests  # robots.txt obeyed
    assert first_run.summary["sources_checked"] == len(world.sources)
    assert first_run.summary["sources_by_status"]["alive"] == 5


@SHARES_THE_FIRST_RUN
def test_what_is_kept_from_live_sources(world, first_run):
    sources = by_path(first_run)
    live = sources["article"]
    assert live["status"] == "alive"
    assert live["title"] == "Locusts descend on Madagascar"
    assert live["site_name"] == "Daily Example"
    assert live["description"] == "About Locusts descend on Madagascar"
    assert live["published"] == "2013-03-27"
    assert live["http_status"] == 200 and live["first_ok_at"] == live["last_ok_at"] == at(0)
    texts = first_run.query("SELECT * FROM source_texts WHERE source_id = ?", [live["id"]])
    assert len(texts) == 1 and "Locusts descend on Madagascar paragraph word3" in texts[0]["text"]
    assert first_run.query("SELECT rowid FROM source_texts_fts WHERE source_texts_fts MATCH 'madagascar'")
    pdf = sources["report.pdf"]
    assert pdf["status"] == "alive" and pdf["content_type"] == "application/pdf" and pdf["size"] == 5009
    assert pdf["title"] is None
    assert not first_run.query("SELECT 1 FROM source_texts WHERE source_id = ?", [pdf["id"]])
    assert sources["new"]["final_url"] if "new" in sources else sources["old"]["final_url"].endswith("/new")


@SHARES_THE_FIRST_RUN
def test_liveness_after_the_first_run(world, first_run):
    sources = by_path(first_run)
    status = {path: (s["status"], s["strikes"]) for path, s in sources.items()}
    assert status["missing"] == ("failing", 1)
    assert status["to-home"] == ("failing", 1)
    assert status["walled"] == ("blocked", 0)
    assert status["private/memo"] == ("blocked", 0)
    assert status["very-busy"] == ("unchecked", 0)
    assert sources["very-busy"]["next_check_at"] == (T0 + dt.timedelta(seconds=3600)).isoformat()
    # A whole host down is an outage: no strike for any of its URLs.
    assert status["a.html"] == status["b.html"] == ("unchecked", 0)
    assert sources["missing"]["next_check_at"] == at(3)


@SHARES_THE_FIRST_RUN
def test_archive_copies_of_failing_sources(world, first_run):
    sources = by_path(first_run)
    missing = sources["missing"]
    assert missing["archive_url"] == f"http://web.archive.org/web/20130327101010/{missing['url']}"
    assert missing["archive_timestamp"] == "20130327101010"
    # The question was asked for the event's day.
    asked = [q for q in world.archive_hits if q["url"][0] == missing["url"]]
    assert asked and asked[0]["timestamp"][0] == "20130327235959"
    # An empty answer is "unknown": dated, and asked again after ARCHIVE_RECHECK_DAYS.
    removed = sources["removed"]
    assert removed["archive_url"] is None and removed["archive_checked_at"] == at(0)
    assert sources["article"]["archive_checked_at"] is None  # alive: nobody asked


def test_a_simulated_month(own_world, own_first_run):
    world, first_run = own_world, own_first_run
    world.faulty.routes["/stall"] = [(RESET, {}, b"")]  # still failing, but without the wait
    # The host of /comeback is down for two days, then comes back.
    mirror = check_links(first_run, "--now", at(1), *world.settings)  # nothing due yet but very-busy
    world.news.routes["/comeback"] = [(200, HTML, article("Back again"))]
    mirror = check_links(first_run, "--now", at(3), *world.settings)
    sources = by_path(mirror)
    assert sources["comeback"]["status"] == "alive" and sources["comeback"]["strikes"] == 0
    assert sources["missing"]["strikes"] == 2
    # A check forced a day later does not strike: strikes must be three days apart.
    mirror = check_links(first_run, "--now", at(4), "--all", *world.settings)
    assert by_path(mirror)["missing"]["strikes"] == 2
    mirror = check_links(first_run, "--now", at(6), *world.settings)
    sources = by_path(mirror)
    assert sources["missing"]["status"] == "dead" and sources["missing"]["dead_since"] == at(6)
    assert sources["removed"]["status"] == "dead"
    assert sources["broken"]["status"] == "dead"  # a 500 on every check for six days
    for day in (10, 20, 30):
        mirror = check_links(first_run, "--now", at(day), "--all", *world.settings)
    sources = by_path(mirror)
    assert sources["walled"]["status"] == "blocked" and sources["walled"]["strikes"] == 0
    assert sources["private/memo"]["status"] == "blocked"
    assert sources["a.html"]["strikes"] == 0 and sources["a.html"]["status"] != "dead"  # outages
    assert sources["comeback"]["status"] == sources["article"]["status"] == "alive"
    assert sources["very-busy"]["strikes"] == 0
    # The archive was asked again for /removed after ARCHIVE_RECHECK_DAYS, not on every run.
    asked = [q for q in world.archive_hits if q["url"][0].endswith("/removed")]
    assert 2 <= len(asked) <= 5
    report = subprocess.run(
        [sys.executable, "-m", "crawler", "dead-links", "--db", str(mirror.db), "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    dead = {urlsplit(s["url"]).path.lstrip("/"): s for s in json.loads(report.stdout)}
    assert "missing" in dead and "comeback" not in dead and "walled" not in dead
    assert dead["missing"]["events"][0]["date"] == "2013-03-27"
    assert dead["missing"]["events"][0]["label"] == "Outlet 3"
    assert dead["missing"]["archive_url"].startswith("http://web.archive.org/web/20130327")
    assert dead["missing"]["first_failed_at"] == at(0)
    table = subprocess.run(
        [sys.executable, "-m", "crawler", "dead-links", "--db", str(mirror.db)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert f"{len(dead)} dead sources" in table and "cited by 2013-03-27 [Outlet 3]" in table
    rows = subprocess.run(
        [sys.executable, "-m", "crawler", "dead-links", "--db", str(mirror.db), "--format", "csv"],
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    assert rows[0].startswith("url,domain,first_failed_at,dead_since,last_status,archive_url")
    assert len(rows) == 1 + len(dead)  # one citing event each


def test_politeness_per_host(tmp_path, crawl):
    world = World(tmp_path, only=["article", "missing", "removed", "report.pdf", "busy"])
    slow = [*world.settings, "-s", "SOURCE_DELAY=0.5"]  # exact: the sources spider turns jitter off
    crawl(
        "--start-url", world.site.url("news/2013/03/27/index.md"), "--now", at(0), *slow, check_sources=True
    )
    times = [
        t
        for path, t in world.news.times
        if path.lstrip("/") in ("article", "missing", "removed", "report.pdf")
    ]
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 0.45, gaps
    busy = [t for path, t in world.news.times if path == "/busy"]
    world.close()
    assert len(busy) == 2 and busy[1] - busy[0] >= 0.95  # Retry-After: 1 honoured


@SHARES_THE_FIRST_RUN
def test_a_long_retry_after_is_not_hammered(world, first_run):
    # 429 with Retry-After: 3600 was asked once, not retried within the run;
    # a 503 without Retry-After is transient, so it was retried.
    assert world.news.requested("/very-busy") == ["/very-busy"]
    assert len(world.news.requested("/comeback")) == 2
