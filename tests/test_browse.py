"""Datasette on the mirror, for real: python -m crawler serve on a loopback port, asked over HTTP."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
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


# -- safe by default, and nothing left behind -------------------------------------------


def serve_proc(db: Path, *args, env=None) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler", "serve", "--db", str(db), "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/versions.json", timeout=5):
                return proc, port
        except OSError:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("Datasette did not start")


def port_closed(port: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return True
        time.sleep(0.1)
    return False


@pytest.fixture
def small_mirror(tmp_path) -> Path:
    from pipeline.schema import open_database

    db = tmp_path / "mirror.db"
    mirror = open_database(str(db))
    mirror.execute(
        "INSERT INTO events (id, url, date, title, text) VALUES ('e1', 'u', '2013-03-27', 't', 'x')"
    )
    mirror.conn.commit()
    mirror.close()  # the last connection folds the WAL back into the file
    return db


def test_no_canned_query_writes_and_sql_cannot_write(datasette, aged_demo):
    queries = yaml.safe_load(metadata_text("mirror.db"))["databases"]["mirror"]["queries"]
    assert queries and not [name for name, query in queries.items() if query.get("write")]
    before = aged_demo.scalar("SELECT count(*) FROM events")
    for sql in ("DELETE FROM events", "UPDATE sources SET status = 'alive'", "DROP TABLE events"):
        try:
            answer = json.loads(datasette.get("/mirror.json", sql=sql))
            assert answer.get("ok") is False, answer
        except urllib.error.HTTPError as exc:
            assert exc.code in (400, 403, 405), exc
    for name in queries:  # a canned query asked with POST, as a writing one would be
        request = urllib.request.Request(f"{datasette.base}/mirror/{name}", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError):  # Datasette answers an error, writes nothing
            urllib.request.urlopen(request, timeout=30)
    assert aged_demo.scalar("SELECT count(*) FROM events") == before
    assert aged_demo.scalar("SELECT count(*) FROM sources WHERE status = 'dead'") == 41


def test_serve_listens_on_loopback_by_default_and_warns_for_every_interface(small_mirror):
    proc, port = serve_proc(small_mirror)
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert f"on http://127.0.0.1:{port}/" in err and "warning" not in err
    proc, port = serve_proc(small_mirror, "--host", "0.0.0.0")
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warning == [
        "warning: --host 0.0.0.0 lets other machines read the mirror (read-only, without a login);"
        " the default 127.0.0.1 keeps it to this one"
    ]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_stopped_by_a_signal_stops_datasette_and_removes_its_files(small_mirror, tmp_path, stop):
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc, port = serve_proc(small_mirror, env={**os.environ, "TMPDIR": str(temp)})
    assert [p.name for p in temp.iterdir() if p.name.startswith("crawler-serve-")]  # its metadata is there
    proc.send_signal(stop)  # to serve alone, as a service manager or `kill` sends it
    proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert port_closed(port), "Datasette still listens after serve stopped"
    assert not [p.name for p in temp.iterdir() if p.name.startswith("crawler-serve-")]


def test_serve_reads_a_read_only_mirror(small_mirror):
    folder = small_mirror.parent
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(small_mirror)], capture_output=True).returncode != 0:
            pytest.skip("running as root and chattr +i is not permitted here")
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        undo = [["chattr", "-i", str(folder)], ["chattr", "-i", str(small_mirror)]]
    else:
        small_mirror.chmod(0o444)
        folder.chmod(0o555)
        undo = [["chmod", "755", str(folder)], ["chmod", "644", str(small_mirror)]]
    try:
        proc, port = serve_proc(small_mirror)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/mirror/events.json?_shape=array") as answer:
            assert [row["id"] for row in json.loads(answer.read())] == ["e1"]
        proc.terminate()
        proc.communicate(timeout=30)
    finally:
        for step in undo:
            subprocess.run(step, check=True)
    assert proc.returncode == 0


# -- read well: internal columns, outlets, the event page, a sync while pages are read --------


def header_columns(html: str) -> list[str]:
    return re.findall(r'<th [^>]*data-column="([^"]+)"', html)


def test_table_pages_leave_out_internal_columns_that_json_and_sql_keep(datasette):
    shown = header_columns(datasette.get("/mirror/events"))
    assert {"date", "text", "story"} <= set(shown)
    assert not {"text_key", "content_hash", "sync_run"} & set(shown)
    assert not {"text_key", "content_hash", "sync_run"} & set(
        header_columns(datasette.get("/mirror/events", _search="Mali"))
    )
    row = datasette.rows("/mirror/events.json", _size="1")[0]
    assert {"text_key", "content_hash", "sync_run"} <= set(row)  # still queryable
    assert "text_key" in header_columns(datasette.get("/mirror/events", _internal="1"))
    assert header_columns(datasette.get("/mirror/events", _col="text_key")) == ["id", "text_key"]
    assert "content_hash" not in header_columns(datasette.get("/mirror/sources"))
    assert not {"etag", "last_modified"} & set(header_columns(datasette.get("/mirror/pages")))
    answer = json.loads(datasette.get("/mirror.json", sql="select text_key from events limit 1"))
    assert answer["rows"][0][0]


def test_every_hidden_column_is_a_column_of_its_table():
    tables = yaml.safe_load(metadata_text("mirror.db"))["databases"]["mirror"]["tables"]
    hidden = {
        table: meta["plugins"]["crawler-browse"]["hidden_columns"]
        for table, meta in tables.items()
        if "plugins" in meta
    }
    assert hidden["events"] == ["text_key", "content_hash", "sync_run"]
    for table, columns in hidden.items():
        assert set(columns) <= set(TABLES[table][0]), table


def test_the_outlet_facet_merges_subdomains_by_registered_domain(datasette, aged_demo):
    from crawler.outlets import registered_domain

    cnn = datasette.rows("/mirror/dead_sources.json", outlet="cnn.com")
    hosts = {urllib.parse.urlsplit(row["url"]).hostname for row in cnn}
    assert {"edition.cnn.com", "money.cnn.com", "www.cnn.com"} <= hosts
    dead = aged_demo.query(
        "SELECT s.domain FROM sources s JOIN event_sources es ON es.source_id = s.id WHERE s.status = 'dead'"
    )
    assert len(cnn) == sum(registered_domain(row["domain"]) == "cnn.com" for row in dead) == 5
    assert {row["outlet"] for row in cnn} == {"cnn.com"}
    page = datasette.get("/mirror/dead_sources")
    facet = page.split('id="facet-outlet"', 1)[1].split("</ul>", 1)[0]
    assert 'data-facet-value="cnn.com">cnn.com</a> 5' in facet and "edition.cnn.com" not in facet
    assert 'data-facet-value="bbc.co.uk">bbc.co.uk</a> 11' in facet
    answer = json.loads(datasette.get("/mirror.json", sql="select registered_domain('news.bbc.co.uk')"))
    assert answer["rows"] == [["bbc.co.uk"]]


def test_the_dead_link_list_sorts_by_date_and_by_outlet(datasette):
    newest = [row["date"] for row in datasette.rows("/mirror/dead_sources.json")]
    assert newest == sorted(newest, reverse=True)
    oldest = [row["date"] for row in datasette.rows("/mirror/dead_sources.json", sort="date_asc")]
    assert oldest == sorted(oldest)
    outlets = [row["outlet"] for row in datasette.rows("/mirror/dead_sources.json", sort="outlet")]
    assert outlets == sorted(outlets)
    first = datasette.rows("/mirror/dead_sources.json", _size="1")[0]
    assert list(first)[:5] == ["date", "event", "outlet", "status", "archive_url"]


def test_the_event_page_lists_sources_related_events_and_entities(datasette, aged_demo):
    event_id = aged_demo.scalar("SELECT id FROM events WHERE text LIKE '%63 of their soldiers%'")
    page = datasette.get(f"/mirror/events/{event_id}")
    assert 'class="event-sources"' in page and "AFP via SBS" in page
    assert page.count('<li class="source source-') == aged_demo.scalar(
        "SELECT count(*) FROM event_sources WHERE event_id = ?", [event_id]
    )
    related = aged_demo.query("SELECT related_id FROM related_events WHERE event_id = ?", [event_id])
    assert len(related) == 10
    for row in related:
        assert f'href="/mirror/events/{row["related_id"]}"' in page
    assert "Operation Serval" in page and "No change recorded" in page
    other = datasette.get("/mirror/sources/1")  # other rows keep Datasette's own page
    assert "Links from other tables" in other


def test_cells_cut_long_urls_and_keep_the_link():
    from crawler.browse.pages import hidden_query, short_url

    url = "https://www.theguardian.com/world/2013/mar/26/" + "a-very-long-slug-" * 6 + "end"
    shown = short_url(url)
    assert len(shown) == 60 and shown.startswith("www.theguardian.com/world/") and shown.endswith("end")
    assert (
        short_url("http://web.archive.org/web/20130326093000/http://x.com/a")
        == "web.archive.org · 2013-03-26"
    )
    assert hidden_query("", ["text_key"], ["id", "text_key"]) == "_nocol=text_key"
    assert hidden_query("_col=text_key", ["text_key"], ["id", "text_key"]) is None
    assert hidden_query("_internal=1", ["text_key"], ["id", "text_key"]) is None
    assert hidden_query("a=1", ["text_key"], ["id"]) is None  # an older mirror without the column


def test_registered_domains_offline():
    from crawler.outlets import registered_domain

    assert {registered_domain(h) for h in ("edition.cnn.com", "money.cnn.com", "cnn.com", "www.cnn.com")} == {
        "cnn.com"
    }
    assert registered_domain("news.bbc.co.uk") == "bbc.co.uk"
    assert registered_domain("127.0.0.1") == "127.0.0.1" and registered_domain("") == ""


def test_a_sync_writing_while_pages_are_read_neither_waits_nor_breaks_them(aged_demo, tmp_path):
    """Read-only mode on the WAL mirror: pages answer during a write, the writer never waits, and
    the next page shows what it wrote (an immutable database would show the old file, or break)."""
    db = tmp_path / "mirror.db"
    source = sqlite3.connect(aged_demo.db)
    target = sqlite3.connect(db)
    source.backup(target)
    source.close()
    target.execute("PRAGMA journal_mode=WAL")
    target.close()
    event_id = aged_demo.scalar("SELECT id FROM events WHERE text LIKE '%63 of their soldiers%'")
    server = Datasette(db)
    try:
        assert "63 of their soldiers" in server.get(f"/mirror/events/{event_id}")
        writer = sqlite3.connect(db, timeout=0, isolation_level=None)  # a writer that never waits
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO event_versions (event_id, recorded_at, url, content_hash, snapshot)"
            " SELECT id, '2030-02-01T00:00:00Z', url, content_hash, json_object('text', text) FROM events"
            " WHERE id = ?",
            [event_id],
        )
        writer.execute(
            "UPDATE events SET text = 'Sixty-three soldiers, as corrected.' WHERE id = ?", [event_id]
        )
        during = server.get(f"/mirror/events/{event_id}")  # a page while the sync's transaction is open
        assert "63 of their soldiers" in during and "No change recorded" in during
        writer.execute("COMMIT")
        writer.close()
        after = server.get(f"/mirror/events/{event_id}")
        assert "Sixty-three soldiers, as corrected." in after
        assert "Changed 2030-02-01" in after and "63 of their soldiers" in after  # the earlier version
    finally:
        server.close()


def test_the_sources_table_facets_and_filters_by_outlet(datasette, aged_demo):
    page = json.loads(datasette.get("/mirror/sources.json", _size="0"))
    facet = page["facet_results"]["domain"]
    assert facet["type"] == "outlet"
    counts = {item["value"]: item["count"] for item in facet["results"]}
    assert counts["cnn.com"] == 9 and "edition.cnn.com" not in counts and "money.cnn.com" not in counts
    cnn = next(item for item in facet["results"] if item["value"] == "cnn.com")
    assert "_outlet=cnn.com" in cnn["toggle_url"]
    rows = datasette.rows("/mirror/sources.json", _outlet="cnn.com")
    assert sorted({row["domain"] for row in rows}) == ["cnn.com", "edition.cnn.com", "money.cnn.com"]
    assert len(rows) == 9
    html = datasette.get("/mirror/sources", _outlet="cnn.com")
    assert (
        "outlet (registered domain) is &#34;cnn.com&#34;" in html
        or 'outlet (registered domain) is "cnn.com"' in html
    )


def test_the_examples_in_the_docstrings_hold():
    import doctest

    from crawler import outlets
    from crawler.browse import pages

    for module in (pages, outlets):
        assert doctest.testmod(module).failed == 0, module.__name__
