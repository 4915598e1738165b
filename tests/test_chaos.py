"""Chaos: a site and a news host that fail a quarter of their answers, every way they can.

After the crawl and at most two follow-up syncs the mirror must equal the
mirror of a fault-free crawl, field for field; and no source may be marked
dead by faults that pass.
"""

from __future__ import annotations

import subprocess
import sys

from conftest import CORPUS, SiteServer  # noqa: F401
from test_sync import content

from crawler.testing.server import ArticleServer
from crawler.testing.sitegen import generate

NOW = "2019-09-01T00:00:00Z"


def mirror_run(crawl, site, articles, db, *extra):
    return crawl(
        "--start-url",
        site.url("index.md"),
        "--now",
        NOW,
        "--allow-private",
        "-s",
        "SOURCE_DELAY=0",
        "-s",
        "DOWNLOAD_TIMEOUT=1",
        "-s",
        f"WAYBACK_API_URL={articles.origin}/wayback",
        *extra,
        db=db,
        check_sources=True,
    )


def test_faults_are_healed_by_the_next_syncs_and_never_kill_a_source(tmp_path, crawl):
    articles = ArticleServer(tmp_path)
    generated = generate(tmp_path / "site", days=6, events_per_day=5, source_origins=(articles.origin,))
    site = SiteServer(generated.root)
    try:
        reference = mirror_run(crawl, site, articles, tmp_path / "reference.db")
        assert reference.scalar("SELECT count(*) FROM events") == 30
        assert reference.query("SELECT DISTINCT status FROM sources") == [{"status": "alive"}]

        for server, seed in ((site, 1), (articles, 2)):
            server.faults, server.stall = 0.25, 2.0
            server.seed(seed)
        db = tmp_path / "chaos.db"
        runs = [mirror_run(crawl, site, articles, db)]
        while content(runs[-1]) != content(reference) and len(runs) < 3:
            runs.append(mirror_run(crawl, site, articles, db))
        assert content(runs[-1]) == content(reference), f"not healed after {len(runs)} runs"
        faults = {fault for _, fault, _ in site.fault_log + articles.fault_log}
        assert site.fault_log and articles.fault_log and len(faults) >= 5  # the faults really happened
        assert runs[-1].scalar("SELECT count(*) FROM sources WHERE status = 'dead'") == 0

        # Three more checks, three days apart, still under chaos: faults make sources "failing"
        # (one strike each time they win every retry), never dead; once the faults stop, all are alive.
        for day in ("2019-09-04", "2019-09-07", "2019-09-10"):
            check = crawl_check(db, articles, day)
            assert check.returncode == 0, check.stderr
            assert runs[-1].scalar("SELECT count(*) FROM sources WHERE status = 'dead'") == 0
        assert runs[-1].scalar("SELECT max(strikes) FROM sources") <= 2
        articles.faults = 0
        assert crawl_check(db, articles, "2019-09-13").returncode == 0
        by_status = runs[-1].query("SELECT status, count(*) AS n FROM sources GROUP BY status")
        total = reference.scalar("SELECT count(*) FROM sources")
        assert {row["status"]: row["n"] for row in by_status} == {"alive": total}
    finally:
        site.close()
        articles.close()


def crawl_check(db, articles, day):
    return subprocess.run(
        [sys.executable, "-m", "crawler", "check-links", "--db", str(db), "--now", f"{day}T00:00:00Z"]
        + ["--allow-private", "-s", "SOURCE_DELAY=0", "-s", "DOWNLOAD_TIMEOUT=1"]
        + ["-s", f"WAYBACK_API_URL={articles.origin}/wayback"],
        capture_output=True,
        text=True,
        timeout=300,
    )
