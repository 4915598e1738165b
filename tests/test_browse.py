"""Datasette on the mirror, for real: python -m crawler serve on a loopback port, asked over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from crawler.browse import metadata_text
from pipeline.schema import TABLES, VIEWS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Datasette:
    def __init__(self, db: Path):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crawler", "serve", "--db", str(db), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/-/versions.json")
                return
            except OSError:
                assert self.proc.poll() is None, self.proc.stderr.read()
                time.sleep(0.2)
        raise AssertionError("Datasette did not start")

    def get(self, path: str, **params) -> str:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(self.base + path + query, timeout=30) as response:
            return response.read().decode("utf-8")

    def rows(self, path: str, **params) -> list[dict]:
        return json.loads(self.get(path, **{"_shape": "array", "_size": "max", **params}))

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        # Nothing outlives the test: Datasette (serve's child) has let go of the port.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"Datasette still listens on port {self.port} after serve was stopped")


# Its tests share one Datasette server, and so one xdist worker.
pytestmark = pytest.mark.xdist_group("datasette")


@pytest.fixture(scope="module")
def datasette(aged_demo):
    server = Datasette(aged_demo.db)
    yield server
    server.close()


def test_search_from_the_table_finds_the_right_events(datasette, aged_demo):
    for word in ("Thailand", "Macron", "earthquake"):
        found = {row["id"] for row in datasette.rows("/mirror/events.json", _search=word)}
        like = "SELECT id FROM events WHERE title LIKE :w OR text LIKE :w OR story LIKE :w"
        expected = {row["id"] for row in aged_demo.query(like, {"w": f"%{word}%"})}
        assert found == expected and found, word
    texts = datasette.rows("/mirror/source_texts.json", _search="the")
    assert len(texts) == aged_demo.scalar("SELECT count(*) FROM source_texts WHERE text LIKE '% the %'")


def test_facets_count_right(datasette, aged_demo):
    page = json.loads(datasette.get("/mirror/sources.json", _facet="status", _size="0"))
    counts = {item["value"]: item["count"] for item in page["facet_results"]["status"]["results"]}
    assert counts == {"alive": 61, "blocked": 6, "dead": 41}
    page = json.loads(datasette.get("/mirror/events.json", _size="0"))  # date, story, topic by default
    dates = {item["value"]: item["count"] for item in page["facet_results"]["date"]["results"]}
    by_date = aged_demo.query("SELECT date, count(*) AS n FROM events GROUP BY date")
    assert dates == {row["date"]: row["n"] for row in by_date if row["date"] in dates}
    assert dates["2013-03-27"] == 16


def test_canned_queries_return_the_expected_rows(datasette, aged_demo):
    dead = datasette.rows("/mirror/dead_sources.json")
    assert len(dead) == aged_demo.scalar(
        "SELECT count(*) FROM event_sources es JOIN sources s ON s.id = es.source_id WHERE s.status = 'dead'"
    )
    assert len({row["url"] for row in dead}) == 41
    assert len({row["url"] for row in dead if row["archive_url"]}) == 31
    day = datasette.rows("/mirror/events_of_a_day.json", date="2013-03-27")
    assert len(day) == 16 and all(row["sources"] >= 1 for row in day)
    story = datasette.rows("/mirror/story_timeline.json", story="Northern Mali conflict")
    assert [row["date"] for row in story] == sorted(row["date"] for row in story)
    mali = "SELECT count(*) FROM events WHERE story = 'Northern Mali conflict'"
    assert len(story) == aged_demo.scalar(mali)
    domains = datasette.rows("/mirror/sources_by_domain.json")
    assert sum(row["sources"] for row in domains) == 108 and sum(row["dead"] for row in domains) == 41
    changes = datasette.rows("/mirror/recent_changes.json")
    assert {row["change"] for row in changes} == {"new"} and len(changes) == 75


def test_foreign_keys_link_events_to_sources_by_their_labels(datasette, aged_demo):
    rows = datasette.rows("/mirror/event_sources.json", _labels="on", _size="5")
    for row in rows[:5]:
        url = aged_demo.scalar("SELECT url FROM sources WHERE id = ?", [row["source_id"]["value"]])
        title = aged_demo.scalar("SELECT title FROM events WHERE id = ?", [row["event_id"]["value"]])
        assert row["source_id"]["label"] == url and row["event_id"]["label"] == title
    page = datasette.get("/mirror/sources/1")
    assert "Links from other tables" in page and "event_sources" in page


def test_table_pages_show_descriptions_and_a_search_box(datasette):
    page = datasette.get("/mirror/events")
    assert "One row per event, however many page versions" in page
    assert 'name="_search"' in page
    assert "CC BY-SA 3.0" in datasette.get("/")


def test_metadata_describes_every_table_view_and_column(tmp_path):
    metadata = yaml.safe_load(metadata_text(str(tmp_path / "other.db")))
    tables = metadata["databases"]["other"]["tables"]
    for table, (columns, _) in TABLES.items():
        assert tables[table]["description"], table
        assert set(tables[table]["columns"]) == set(columns), table
    for view in VIEWS:
        assert tables[view]["description"], view


def test_write_metadata_next_to_the_database(aged_demo, tmp_path):
    db = tmp_path / "news.db"
    db.write_bytes(aged_demo.db.read_bytes())
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "serve", "--db", str(db), "--write-metadata"],
        capture_output=True,
        text=True,
        check=True,
    )
    written = yaml.safe_load((tmp_path / "metadata.yml").read_text())
    assert "news" in written["databases"] and "dead_sources" in written["databases"]["news"]["queries"]
    assert "datasette" in proc.stdout
