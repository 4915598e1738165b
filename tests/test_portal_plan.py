"""The portal's pure rules, without a reactor or a database: which days, what cost, which answers pass."""

from __future__ import annotations

import datetime as dt

import pytest

from crawler.portal_plan import cost, day_of_title, plan
from crawler.wikiapi import ApiError, cached_time, latest_revisions, read_answer, wait_for

NOW = dt.datetime(2023, 2, 9, tzinfo=dt.UTC)
WEEK = [dt.date(2023, 2, 9) - dt.timedelta(days=n) for n in range(7)]
JANUARY = {dt.date(2023, 1, d) for d in range(1, 32)}


def test_a_backfill_asks_about_its_window_only():
    window = [dt.date(2010, 1, 1)]
    decided = plan(window, True, JANUARY, {dt.date(2023, 1, 5)}, None, NOW, 30)
    assert decided.days == window and decided.reason == "backfill" and decided.recent_since is None


def test_a_sync_reads_recent_changes_since_the_last_sync_when_they_reach_back_that_far():
    last = NOW - dt.timedelta(days=3)
    decided = plan(WEEK, False, JANUARY, set(), last, NOW, 30)
    assert decided.reason == "recent changes" and decided.days == WEEK
    assert decided.recent_since == last - dt.timedelta(hours=1)


@pytest.mark.parametrize(
    "last", [None, NOW - dt.timedelta(days=31), NOW - dt.timedelta(days=29, hours=23, minutes=30)]
)
def test_a_sync_without_recent_changes_to_trust_asks_about_every_held_day(last):
    decided = plan(WEEK, False, JANUARY, set(), last, NOW, 30)
    assert decided.reason == "sweep" and set(decided.days) == set(WEEK) | JANUARY
    assert decided.days == sorted(decided.days, reverse=True)


def test_failed_days_join_a_sync_and_nothing_older_held_means_all():
    failed = {dt.date(2020, 5, 1)}
    decided = plan(WEEK, False, set(WEEK), failed, None, NOW, 30)
    assert decided.reason == "all" and set(decided.days) == set(WEEK) | failed


def test_cost_counts_revisions_queries_and_monthly_or_daily_parses():
    days = sorted(JANUARY | {dt.date(2022, 12, d) for d in (30, 31)}, reverse=True)
    counted = cost(days, held={dt.date(2023, 1, d) for d in range(1, 30)}, monthly_after=3, reads_recent=True)
    assert counted.revision_queries == 1  # 33 days
    assert counted.parses_if_unchanged == 2 + 2  # two January days and two December days, each alone
    assert counted.parses_at_most == 1 + 2  # January's monthly page; December's two days
    assert counted.at_least == 1 + 4 + 1


@pytest.mark.parametrize(
    ("title", "day"),
    [
        ("Portal:Current events/2023 January 5", dt.date(2023, 1, 5)),
        ("Portal:Current_events/2004_November_22", dt.date(2004, 11, 22)),
        ("Portal:Current events/January 2023", None),
        ("Portal:Current events/2023 February 30", None),
        ("Portal:Current events/Sidebar", None),
        ("Talk:Current events/2023 January 5", None),
    ],
)
def test_day_of_title(title, day):
    assert day_of_title(title) == day


@pytest.mark.parametrize(
    ("code", "passing"),
    [
        ("maxlag", True),
        ("readonly", True),
        ("ratelimited", True),
        ("internal_api_error_DBQueryError", True),
        ("http", True),
        ("missingtitle", False),
        ("toomanyvalues", False),
        ("somethingnew", False),
    ],
)
def test_which_error_objects_pass(code, passing):
    with pytest.raises(ApiError) as raised:
        read_answer(200, f'{{"error": {{"code": "{code}", "info": "i"}}}}'.encode())
    assert raised.value.passing is passing


def test_answers_that_are_not_an_api_answer():
    for status, body in [(503, b"down"), (200, b"<html>"), (200, b"[1]")]:
        with pytest.raises(ApiError):
            read_answer(status, body)


def test_waits_follow_retry_after_in_seconds_or_double():
    assert wait_for(b"5", 1, 60) == 5 and wait_for(None, 3, 60) == 4 and wait_for("120", 1, 60) == 60
    assert wait_for("Wed, 21 Oct 2015 07:28:00 GMT", 2, 60) == 2


def test_the_parser_cache_time_is_read_from_the_limit_report():
    html = "<div><!-- \nNewPP limit report\nCached time: 20230201003200\nCache expiry: 86400\n--></div>"
    assert cached_time(html) == dt.datetime(2023, 2, 1, 0, 32, tzinfo=dt.UTC)
    assert cached_time("<div>no report</div>") is None


def test_latest_revisions_are_keyed_by_the_title_asked_through_normalisation_and_redirects():
    answer = {
        "query": {
            "normalized": [
                {"from": "Portal:Current_events/2004_July_1", "to": "Portal:Current events/2004 July 1"}
            ],
            "redirects": [
                {"from": "Portal:Current events/2004 July 1", "to": "Portal:Current events/2004 July 01"}
            ],
            "pages": [
                {
                    "title": "Portal:Current events/2004 July 01",
                    "revisions": [{"revid": 7, "timestamp": "t"}],
                },
                {"title": "Portal:Current events/2004 July 2", "missing": True},
            ],
        }
    }
    assert latest_revisions(answer) == {"Portal:Current events/2004 July 1": (7, "t")}
