"""python -m crawler report on a known mirror: its numbers, checked a second way."""

from __future__ import annotations

import html
import json
import sqlite3
import subprocess
import sys
from collections import Counter


def test_report_numbers_match_the_mirror(aged_demo, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "report", "--db", str(aged_demo.db), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "report.json").read_text())
    assert data["sources"] == 108 and data["events"] == 75
    assert data["by_status"] == {"alive": 61, "failing": 0, "dead": 41, "blocked": 6, "unchecked": 0}
    assert (data["dead_archived"], data["archive_coverage_percent"]) == (31, 75.6)
    assert data["dead_percent_of_checked"] == 38.0

    # The same figures counted here in Python from plain rows.
    cited = aged_demo.query(
        "SELECT s.id, s.status, s.archive_url, e.date, e.id AS event_id FROM sources s"
        " JOIN event_sources es ON es.source_id = s.id JOIN events e ON e.id = es.event_id"
    )
    first_year, status, archived = {}, {}, {}
    for row in cited:
        year = row["date"][:4]
        first_year[row["id"]] = min(first_year.get(row["id"], year), year)
        status[row["id"]], archived[row["id"]] = row["status"], row["archive_url"] is not None
    by_year = Counter((first_year[s], status[s]) for s in first_year)
    for year, counts in data["by_year"].items():
        expected = {st: n for (y, st), n in by_year.items() if y == year}
        assert {k: v for k, v in counts.items() if v} == expected
    dead_events = {row["event_id"] for row in cited if row["status"] == "dead"}
    assert data["events_with_dead_source"] == len(dead_events)
    assert sum(v["archived"] for v in data["dead_by_year"].values()) == 31
    sources_2013 = [s for s in first_year if first_year[s] == "2013"]
    dead_2013 = sum(status[s] == "dead" for s in sources_2013)
    assert data["sources_2013_dead_percent"] == round(100 * dead_2013 / len(sources_2013), 1)
    assert [run["kind"] for run in data["sync_runs"]] == ["sync"] + ["check-links"] * 3

    page = (out / "index.html").read_text()
    assert "<strong>41</strong> dead" in page and "<strong>31</strong> of the 41 dead" in page
    assert "38%" in page and "Pew Research Center, 2024" in page
    assert page.count('<img src="data:image/png;base64,') == 4  # self-contained
    for chart in ("by_year", "by_domain", "archive", "history"):
        assert (out / f"{chart}.png").read_bytes().startswith(b"\x89PNG")


def report_of(db, out):
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "report", "--db", str(db), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads((out / "report.json").read_text()), (out / "index.html").read_text()


def test_report_lists_dead_sources_linked_and_groups_domains_by_outlet(aged_demo, tmp_path):
    data, page = report_of(aged_demo.db, tmp_path / "report")
    dead = data["dead_sources"]
    assert len(dead) == 41 and sum(bool(s["archive_url"]) for s in dead) == 31
    listed = page.split('id="dead-sources"', 1)[1]
    for source in dead:
        assert f'href="{html.escape(source["url"])}"' in listed
        if source["archive_url"]:
            assert f'href="{html.escape(source["archive_url"])}"' in listed
        assert source["events"]
        for event in source["events"]:
            assert f'href="{html.escape(event["event_url"])}"' in listed
    assert listed.count("none found yet") == 10
    outlets = {row["outlet"]: row for row in data["top_domains"]}
    assert outlets["cnn.com"]["hosts"] == ["cnn.com", "edition.cnn.com", "money.cnn.com"]
    assert outlets["cnn.com"]["sources"] == aged_demo.scalar(
        "SELECT count(*) FROM sources WHERE domain IN ('cnn.com', 'edition.cnn.com', 'money.cnn.com')"
    )
    assert not any("." in host and host.startswith(("edition.", "money.")) for host in outlets)
    assert "<td>edition.cnn.com, money.cnn.com</td>" in page


def test_report_shows_a_site_only_when_the_mirror_holds_its_events(aged_demo, tmp_path):
    data, page = report_of(aged_demo.db, tmp_path / "context")
    assert list(data["sites"]) == ["thecontext"]
    assert "Portal" not in page and "Wikipedia pages with a dead reference link" not in page
    assert "the Context (thecontext.net)" in page

    db = tmp_path / "both.db"
    source, target = sqlite3.connect(aged_demo.db), sqlite3.connect(db)
    source.backup(target)
    source.close()
    target.execute("UPDATE events SET site = 'wikipedia' WHERE date = '2013-03-27'")
    target.commit()
    target.close()
    data, page = report_of(db, tmp_path / "both")
    portal = data["sites"]["wikipedia"]
    assert portal["events"] == 16 and set(data["sites"]) == {"thecontext", "wikipedia"}
    assert "Wikipedia pages with a dead reference link" in page
    assert f"<td>{portal['percent']:.1f}%</td><td>Portal events citing at least one dead source</td>" in page
    assert "Wikipedia&#x27;s Current Events Portal" in page
