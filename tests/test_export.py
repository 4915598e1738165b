"""python -m crawler export: one record per event, JSON Lines or CSV, read back here."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys


def export(mirror, *args) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "export", "--db", str(mirror.db), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


def test_jsonl_has_every_event_with_its_sources_and_related_events(aged_demo):
    records = [json.loads(line) for line in export(aged_demo, "--format", "jsonl").splitlines()]
    assert len(records) == aged_demo.scalar("SELECT count(*) FROM events") == 75
    assert [r["date"] for r in records] == sorted(r["date"] for r in records)
    by_id = {r["id"]: r for r in records}
    for row in aged_demo.query(
        "SELECT es.event_id, s.url, s.status, s.archive_url, es.label FROM event_sources es"
        " JOIN sources s ON s.id = es.source_id ORDER BY es.event_id, es.position"
    ):
        source = next(s for s in by_id[row["event_id"]]["sources"] if s["canonical_url"] == row["url"])
        assert (source["status"], source["archive_url"], source["label"]) == (
            row["status"],
            row["archive_url"],
            row["label"],
        )
    seed = next(r for r in records if "63 of their soldiers" in r["text"])
    assert len(seed["related"]) == 10 and all(item["event_id"] for item in seed["related"])
    assert "Operation Serval" in seed["contexts"]
    dead = sum(s["status"] == "dead" for r in records for s in r["sources"])
    assert dead == aged_demo.scalar(
        "SELECT count(*) FROM event_sources es JOIN sources s ON s.id = es.source_id WHERE s.status = 'dead'"
    )


def test_csv_round_trips_and_the_window_bounds_it(aged_demo, tmp_path):
    out = tmp_path / "events.csv"
    subprocess.run(
        [sys.executable, "-m", "crawler", "export", "--db", str(aged_demo.db), "--format", "csv"]
        + ["--since", "2013-03-27", "--until", "2013-03-27", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == aged_demo.scalar("SELECT count(*) FROM events WHERE date = '2013-03-27'") == 16
    assert {row["date"] for row in rows} == {"2013-03-27"}
    for row in rows:
        sources = json.loads(row["sources"])
        assert sources and all(s["url"].startswith("http") for s in sources)
        assert isinstance(json.loads(row["related"]), list)


def test_a_missing_mirror_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "export", "--db", str(tmp_path / "none.db"), "--format", "jsonl"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error: no mirror at")


def test_the_readme_names_every_field_the_export_writes(aged_demo):
    import re

    from conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    bullet = readme.split("- **`export`** writes", 1)[1].split("\n\n", 1)[0]
    fields = re.search(r"its\s+fields \(([^)]*)\)", bullet).group(1)
    sources = re.search(r"its\s+`sources` \((.*?)\), its\s+`related`", bullet, re.S).group(1)
    related = re.search(r"its\s+`related` events \(([^)]*)\)", bullet).group(1)
    named = [set(re.findall(r"`(\w+)`", part)) for part in (fields, sources, related)]
    record = json.loads(export(aged_demo, "--format", "jsonl", "--until", "2013-03-27").splitlines()[0])
    source = next(r for r in record["sources"])
    written = [set(record) - {"sources", "related", "contexts"}, set(source), set(record["related"][0])]
    assert named == written
    assert "`contexts`" in bullet


def test_sources_carry_their_outlet_and_last_check(aged_demo):
    records = [json.loads(line) for line in export(aged_demo, "--format", "jsonl").splitlines()]
    sources = [s for r in records for s in r["sources"]]
    assert {s["outlet"] for s in sources if s["domain"] in ("edition.cnn.com", "money.cnn.com")} == {
        "cnn.com"
    }
    assert all(s["last_checked_at"] for s in sources)  # the aged demo checked every source
