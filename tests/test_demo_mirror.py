"""The demo's mirror.db compared row by row with the pages it came from.

The pages are read here a second way, line by line with plain string
operations (not the project's markdown parser), so that a parser mistake
shows up as a disagreement instead of being checked against itself.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from conftest import CORPUS

from pipeline.urls import canonical_url

SITE = "https://thecontext.net/"
ITEM = re.compile(r"^\d+\.\s*\[(?P<label>.*)\]\((?P<href>[^)]*)\)")


def words(text: str) -> str:
    return " ".join(html.unescape(text).split())


def read_event_file(path: Path) -> dict:
    lines = path.read_text(encoding="utf-8").splitlines()
    date = next(re.match(r"### \[(\d{4}-\d+-\d+)\]", ln).group(1) for ln in lines if ln.startswith("### [2"))
    title = next(words(ln[2:]) for ln in lines if ln.startswith("# "))
    sections: dict[str, list[str]] = {}
    current = None
    for line in lines:
        if line.startswith("### ") and not line.startswith("### ["):
            current = line[4:].strip().rstrip(":").lower()
            sections[current] = []
        elif current and ITEM.match(line):
            sections[current].append(line)
    sources = []
    for line in sections.get("source", []) + sections.get("sources", []):
        match = ITEM.match(line)
        if match["label"] != "Cover Image":
            sources.append((words(match["label"]), match["href"]))
    y, m, d = (int(x) for x in date.split("-"))
    return {
        "date": f"{y:04d}-{m:02d}-{d:02d}",
        "title": title,
        "sources": sources,
        "related": len(sections.get("related", [])),
    }


# Its tests share one crawl of the demo, and so one xdist worker.
pytestmark = pytest.mark.xdist_group("demo-mirror")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    import subprocess
    import sys

    from conftest import Mirror

    folder = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "run", "--json"],
        capture_output=True,
        text=True,
        cwd=folder,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    return Mirror(proc, folder / "mirror.db")


def local(url: str) -> Path:
    assert url.startswith(SITE)
    return CORPUS / url[len(SITE) :]


def test_every_page_of_the_demo_tree_is_mirrored(demo):
    pages = {row["url"]: row for row in demo.query("SELECT * FROM pages")}
    files = sorted(CORPUS.glob("news/**/*.md"))
    assert len(files) == 85
    for file in files:
        url = SITE + file.relative_to(CORPUS).as_posix()
        assert url in pages, url
        expected = "day" if file.name == "index.md" else "event"
        assert pages[url]["kind"] == expected
        assert pages[url]["http_status"] == 200
        assert pages[url]["size"] == file.stat().st_size
    # Every other page the crawl asked for is a link out of the demo tree: a 404.
    others = [row for url, row in pages.items() if url != SITE + "index.md" and not local(url).is_file()]
    assert others and {row["error"] for row in others} == {"HTTP 404"}


def test_every_event_row_matches_its_canonical_page(demo):
    events = demo.query("SELECT * FROM events")
    assert len(events) == 75
    for event in events:
        page = read_event_file(local(event["url"]))
        assert event["date"] == page["date"], event["url"]
        assert event["title"] == page["title"], event["url"]
        if event["story"]:
            assert event["title"].startswith(event["story"])
        assert event["text"] in event["title"] or event["story"] is None
        sources = demo.query(
            "SELECT es.label, s.url FROM event_sources es JOIN sources s ON s.id = es.source_id"
            " WHERE es.event_id = ? ORDER BY es.position",
            [event["id"]],
        )
        assert [s["label"] for s in sources] == [label for label, _ in page["sources"]], event["url"]
        for stored, (_, href) in zip(sources, page["sources"], strict=True):
            # URL spellings have their own tests (test_urls.py); here: the same URL.
            assert stored["url"] == canonical_url(href)
        related = demo.scalar("SELECT count(*) FROM related_events WHERE event_id = ?", [event["id"]])
        assert related == page["related"], event["url"]


def test_every_day_row_matches_its_day_page(demo):
    for day in demo.query("SELECT * FROM days"):
        lines = local(day["url"]).read_text(encoding="utf-8").splitlines()
        listed = [
            re.search(r"\]\((/news/[^)]*)\)\s*$", ln).group(1) for ln in lines if ln.startswith("### [")
        ]
        assert day["event_count"] == len(listed)
        rows = demo.query(
            "SELECT url, event_id FROM day_events WHERE date = ? ORDER BY position", [day["date"]]
        )
        assert [r["url"] for r in rows] == [SITE + href.lstrip("/") for href in listed]
        # Every event a day lists is in the mirror, and its canonical URL is the listed one.
        for row in rows:
            assert demo.scalar("SELECT url FROM events WHERE id = ?", [row["event_id"]]) == row["url"]


def test_every_event_file_belongs_to_exactly_one_event(demo):
    files = [f for f in CORPUS.glob("news/**/*.md") if f.name != "index.md"]
    owners = {}
    for file in files:
        url = SITE + file.relative_to(CORPUS).as_posix()
        owners[url] = demo.scalar("SELECT event_id FROM event_urls WHERE url = ?", [url])
    assert all(owners.values())
    assert len(files) == 79 and len(set(owners.values())) == 75
