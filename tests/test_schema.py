"""The schema: created, migrated in place, foreign keys, full-text search, WAL."""

from __future__ import annotations

import sqlite_utils

from pipeline.schema import TABLES, open_database


def test_fresh_database_has_every_table_with_foreign_keys(tmp_path):
    db = open_database(str(tmp_path / "m.db"))
    assert set(TABLES) <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    fks = {(fk.table, fk.column, fk.other_table) for name in TABLES for fk in db[name].foreign_keys}
    assert {
        ("event_sources", "event_id", "events"),
        ("event_sources", "source_id", "sources"),
        ("related_events", "related_id", "events"),
        ("event_urls", "event_id", "events"),
        ("event_contexts", "context_id", "contexts"),
        ("day_events", "date", "days"),
        ("events", "sync_run", "sync_runs"),
    } <= fks


def test_fts_follows_inserts_and_updates(tmp_path):
    db = open_database(str(tmp_path / "m.db"))
    db["events"].insert(
        {"id": "e1", "url": "u", "date": "2013-03-27", "title": "t", "text": "Locusts in Madagascar"}
    )
    assert [r["id"] for r in db["events"].search("madagascar")] == ["e1"]
    db["events"].update("e1", {"text": "A plague of frogs"})
    assert list(db["events"].search("madagascar")) == []
    assert [r["id"] for r in db["events"].search("frogs")] == ["e1"]


def test_an_older_database_is_migrated_in_place_without_losing_rows(tmp_path):
    path = str(tmp_path / "old.db")
    old = sqlite_utils.Database(path)
    old["events"].insert({"id": "e1", "url": "u", "date": "2013-03-27", "text": "x", "title": "x"}, pk="id")
    old["pages"].insert({"url": "u", "http_status": 200}, pk="url")
    old.close()
    db = open_database(path)
    assert db["events"].count == 1 and db["pages"].count == 1
    assert set(TABLES["events"][0]) <= set(db["events"].columns_dict)
    assert db["events"].get("e1")["text"] == "x"
    open_database(path)  # idempotent
    assert db["events"].count == 1


def test_moving_last_seen_does_not_touch_the_search_index(tmp_path):
    db = open_database(str(tmp_path / "m.db"))
    db["events"].insert({"id": "e1", "url": "u", "date": "2013-03-27", "title": "t", "text": "Locusts"})
    trigger = db.execute("SELECT sql FROM sqlite_master WHERE name = 'events_au'").fetchone()[0]
    assert 'AFTER UPDATE OF "title", "text", "story" ON "events"' in trigger
    db["events"].update("e1", {"last_seen": "2026-01-01"})
    assert [r["id"] for r in db["events"].search("locusts")] == ["e1"]
