"""Settling a run of source checks, rule by rule, on plain rows: no reactor, no server, no database."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.liveness import Liveness, Policy
from pipeline.settle import (
    ArchiveCandidate,
    ArchiveLookup,
    Check,
    Rules,
    SourceLiveness,
    archive_lookups,
    host_outages,
    read_archive_answer,
    settle,
    shared_redirect_targets,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
RULES = Rules(policy=Policy(), outage_min_checks=2, shared_redirects=3)


def check(id_, source_id, url, outcome, final_url=None, redirects=0):
    return Check(id_, source_id, url, outcome, final_url, redirects, NOW.isoformat())


def redirected(n: int, target="http://news.example/sorry") -> list[Check]:
    return [check(i, i, f"http://news.example/story-{i}", "ok", target, 1) for i in range(1, n + 1)]


# -- a redirect target many cited URLs share: soft 404 ------------------------------------


def test_a_redirect_target_shared_by_the_threshold_of_cited_urls_is_a_soft_404():
    demoted = shared_redirect_targets(redirected(3), threshold=3)
    assert set(demoted) == {1, 2, 3}
    assert demoted[1] == "redirect target shared by 3 cited URLs of the host"


def test_fewer_than_the_threshold_is_a_move_not_a_soft_404():
    assert shared_redirect_targets(redirected(2), threshold=3) == {}


def test_shared_redirects_count_sources_not_checks_and_ignore_unredirected_or_failed_checks():
    twice = [check(1, 1, "http://a.example/x", "ok", "http://a.example/t", 1)] * 2
    twice += [check(2, 1, "http://a.example/x", "ok", "http://a.example/t", 1)]
    assert shared_redirect_targets(twice, threshold=2) == {}  # one source, however often
    others = [
        check(1, 1, "http://a.example/t", "ok", "http://a.example/t", 0),  # not redirected
        check(2, 2, "http://a.example/y", "gone", "http://a.example/t", 1),  # not a good answer
        check(3, 3, "http://a.example/z", "ok", "http://a.example/t", 2),
    ]
    assert shared_redirect_targets(others, threshold=2) == {}


def test_settle_demotes_shared_redirects_and_strikes_them():
    checks = redirected(3) + [check(9, 9, "http://news.example/fine", "ok", "http://news.example/fine")]
    sources = {c.source_id: SourceLiveness() for c in checks}
    settled = settle(checks, sources, NOW, RULES)
    assert set(settled.demoted) == {1, 2, 3}
    assert settled.liveness[1]["status"] == "failing" and settled.liveness[1]["strikes"] == 1
    assert settled.liveness[1]["first_failed_at"] == NOW.isoformat()
    assert settled.liveness[9]["status"] == "alive" and settled.liveness[9]["first_failed_at"] is None


# -- a host down as a whole: an outage, no strikes ----------------------------------------


def test_an_outage_needs_outage_min_checks():
    one = [check(1, 1, "http://down.example/a", "transient")]
    assert host_outages(one, min_checks=2) == set()
    two = one + [check(2, 2, "http://DOWN.example/b", "transient")]
    assert host_outages(two, min_checks=2) == {1, 2}
    assert host_outages(two, min_checks=3) == set()


def test_a_host_with_one_404_among_transient_failures_is_not_an_outage():
    checks = [
        check(1, 1, "http://flaky.example/a", "transient"),
        check(2, 2, "http://flaky.example/b", "transient"),
        check(3, 3, "http://flaky.example/c", "gone"),
    ]
    assert host_outages(checks, min_checks=2) == set()
    settled = settle(checks, {i: SourceLiveness() for i in (1, 2, 3)}, NOW, RULES)
    assert settled.excused == set()
    assert [settled.liveness[i]["strikes"] for i in (1, 2, 3)] == [1, 1, 1]


def test_outages_are_per_host():
    checks = [
        check(1, 1, "http://down.example/a", "transient"),
        check(2, 2, "http://down.example/b", "transient"),
        check(3, 3, "http://up.example/a", "transient"),
        check(4, 4, "http://up.example/b", "ok"),
    ]
    assert host_outages(checks, min_checks=2) == {1, 2}


# -- liveness -------------------------------------------------------------------------------


def test_excused_sources_keep_their_strikes_and_come_back_a_day_later():
    earlier = Liveness(status="failing", strikes=1, last_strike_at=NOW - 5 * DAY)
    sources = {1: SourceLiveness(earlier, "2026-02-24T12:00:00+00:00"), 2: SourceLiveness()}
    checks = [
        check(1, 1, "http://down.example/a", "transient"),
        check(2, 2, "http://down.example/b", "transient"),
    ]
    settled = settle(checks, sources, NOW, RULES)
    assert settled.outages == {1, 2} and settled.excused == {1, 2}
    assert settled.liveness[1] == {
        "status": "failing",
        "strikes": 1,
        "last_strike_at": (NOW - 5 * DAY).isoformat(),
        "dead_since": None,
        "next_check_at": (NOW + DAY).isoformat(),
        "first_failed_at": "2026-02-24T12:00:00+00:00",  # the first failure stays the first
    }
    assert settled.liveness[2]["status"] == "unchecked" and settled.liveness[2]["strikes"] == 0


def test_the_last_check_of_a_source_in_the_run_decides():
    checks = [check(1, 1, "http://a.example/x", "transient"), check(5, 1, "http://a.example/x", "ok")]
    settled = settle(checks, {1: SourceLiveness()}, NOW, Rules(outage_min_checks=5))
    assert settled.liveness[1]["status"] == "alive"


def test_a_check_of_a_source_without_a_row_is_not_settled():
    settled = settle([check(1, 7, "http://a.example/x", "gone")], {}, NOW, RULES)
    assert settled.liveness == {}


def test_retry_after_is_passed_through_to_the_next_check():
    checks = [
        check(1, 1, "http://busy.example/x", "rate_limited"),
        check(2, 2, "http://busy.example/y", "ok"),
    ]
    sources = {1: SourceLiveness(), 2: SourceLiveness()}
    settled = settle(checks, sources, NOW, RULES, retry_after={1: dt.timedelta(seconds=3600)})
    assert settled.liveness[1]["next_check_at"] == (NOW + dt.timedelta(hours=1)).isoformat()
    assert settled.liveness[1]["strikes"] == 0
    without = settle(checks, sources, NOW, RULES)
    assert without.liveness[1]["next_check_at"] == (NOW + RULES.policy.retry_later).isoformat()


def test_a_third_strike_makes_dead_and_keeps_the_first_failure():
    before = Liveness(status="failing", strikes=2, last_strike_at=NOW - 3 * DAY)
    sources = {1: SourceLiveness(before, "2026-02-23T12:00:00+00:00")}
    settled = settle([check(1, 1, "http://a.example/x", "gone")], sources, NOW, RULES)
    assert settled.liveness[1]["status"] == "dead" and settled.liveness[1]["dead_since"] == NOW.isoformat()
    assert settled.liveness[1]["first_failed_at"] == "2026-02-23T12:00:00+00:00"


def test_liveness_read_from_a_row():
    source = SourceLiveness.from_row(None, None, "2026-02-27T12:00:00+00:00", None, None)
    assert source.state == Liveness(status="unchecked", strikes=0, last_strike_at=NOW - 2 * DAY)


# -- the Internet Archive ---------------------------------------------------------------------


def test_archive_lookup_asks_for_the_end_of_the_earliest_citing_events_day():
    lookups = archive_lookups([ArchiveCandidate(1, "http://a.example/x", None, "2013-03-27")], NOW, 7 * DAY)
    assert lookups == [ArchiveLookup(1, "http://a.example/x", "20130327235959")]


def test_archive_lookup_of_a_source_no_event_cites_asks_for_today():
    lookups = archive_lookups([ArchiveCandidate(1, "http://a.example/x")], NOW, 7 * DAY)
    assert lookups[0].timestamp == "20260301235959"


def test_an_empty_answer_is_asked_again_only_after_the_recheck_interval():
    asked = lambda days: ArchiveCandidate(1, "http://a.example/x", (NOW - days * DAY).isoformat())  # noqa: E731
    assert archive_lookups([asked(6)], NOW, 7 * DAY) == []
    assert len(archive_lookups([asked(7)], NOW, 7 * DAY)) == 1
    assert len(archive_lookups([asked(30)], NOW, 7 * DAY)) == 1


def test_an_archive_answer_with_a_capture():
    body = (
        b'{"url": "x", "archived_snapshots": {"closest": {"available": true,'
        b' "url": "http://web.archive.org/web/20130327101010/x", "timestamp": "20130327101010"}}}'
    )
    assert read_archive_answer(body) == ("http://web.archive.org/web/20130327101010/x", "20130327101010")


@pytest.mark.parametrize(
    "body",
    [
        None,  # the lookup failed
        b'{"archived_snapshots": {}}',  # no capture
        b'{"archived_snapshots": {"closest": {"available": false, "url": "http://web.archive.org/x"}}}',
        b'{"archived_snapshots": {"closest": {"available": true}}}',  # no URL
        b'{"archived_snapshots": {"closest": "http://web.archive.org/x"}}',
        b'{"archived_snapshots": []}',
        b'{"archived_snapshots": null}',
        b"[1, 2]",
        b'"text"',
        b"<html>Too many requests</html>",
        b'{"archived_snapshots": {"closest": {"available": tr',  # cut short
        b"\xff\xfe\x00",  # not text
        b"",
    ],
)
def test_malformed_or_empty_archive_answers_are_no_copy(body):
    assert read_archive_answer(body) is None


def test_an_archive_answer_without_a_timestamp():
    body = b'{"archived_snapshots": {"closest": {"available": true, "url": "http://web.archive.org/x"}}}'
    assert read_archive_answer(body) == ("http://web.archive.org/x", "")
