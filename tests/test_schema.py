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
        ("day_events", "event_id", "events"),
        ("events", "sync_run", "sync_runs"),
    } <= fks
    # Days are per site: the Context and the portal both have a 2018-01-18.
    assert db["days"].pks == ["site", "date"]
    assert db["day_events"].pks == ["site", "date", "position"]


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


def test_days_keyed_by_date_alone_are_rekeyed_by_site_with_every_row(tmp_path):
    """A mirror made before the portal adapter: days, listings and versions keyed by date."""
    path = str(tmp_path / "old.db")
    old = sqlite_utils.Database(path)
    old["events"].insert({"id": "e1", "url": "u", "date": "2013-03-27", "text": "x", "title": "x"}, pk="id")
    old["days"].insert({"date": "2013-03-27", "url": "d", "event_count": 1}, pk="date")
    old["day_events"].insert(
        {"date": "2013-03-27", "position": 1, "url": "u", "event_id": "e1", "title": "x"},
        pk=("date", "position"),
        foreign_keys=[("date", "days", "date"), ("event_id", "events", "id")],
    )
    old["day_versions"].insert(
        {"date": "2013-03-27", "recorded_at": "2019-01-01", "url": "d", "listing": "[]"},
        foreign_keys=[("date", "days", "date")],
    )
    related = {"event_id": "e1", "position": 1, "related_url": "r"}
    old["related_events"].insert(related, pk=("event_id", "position"))
    old.close()
    db = open_database(path)
    assert db["days"].pks == ["site", "date"]
    assert list(db["days"].rows_where(select="site, date, url")) == [
        {"site": "thecontext", "date": "2013-03-27", "url": "d"}
    ]
    assert list(db["day_events"].rows_where(select="site, date, position, event_id")) == [
        {"site": "thecontext", "date": "2013-03-27", "position": 1, "event_id": "e1"}
    ]
    assert [r["site"] for r in db["day_versions"].rows] == ["thecontext"]
    assert [r["site"] for r in db["events"].rows] == ["thecontext"]
    assert [r["via"] for r in db["related_events"].rows] == ["page"]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # The portal's day of the same date now fits beside the Context's.
    db["days"].insert({"site": "wikipedia", "date": "2013-03-27", "url": "w"})
    assert db["days"].count == 2
    open_database(path)  # idempotent
    assert db["days"].count == 2
