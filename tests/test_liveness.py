"""The dead-link policy, rule by rule, without any I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.liveness import Liveness, Policy, advance, classify

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
POLICY = Policy()
URL = "http://news.example/2013/03/27/story.html"


@pytest.mark.parametrize(
    "status, final_url, error, headers, outcome",
    [
        (200, URL, None, {}, "ok"),
        (200, "http://news.example/moved/story.html", None, {}, "ok"),
        (200, "http://news.example/", None, {}, "soft404"),
        (200, "http://news.example/errors/404.html", None, {}, "soft404"),
        (200, "http://news.example/page-not-found?u=1", None, {}, "soft404"),
        (404, URL, None, {}, "gone"),
        (410, URL, None, {}, "gone"),
        (403, URL, None, {}, "blocked"),
        (999, URL, None, {}, "blocked"),
        (200, URL, None, {"cf-mitigated": "challenge"}, "blocked"),
        (429, URL, None, {"Retry-After": "30"}, "rate_limited"),
        (503, URL, None, {"Retry-After": "30"}, "rate_limited"),
        (503, URL, None, {}, "transient"),
        (500, URL, None, {}, "transient"),
        (None, None, "timeout", {}, "transient"),
        (None, None, "reset", {}, "transient"),
        (None, None, "too_many_redirects", {}, "transient"),
        (None, None, "dns", {}, "gone"),
        (None, None, "robots", {}, "blocked"),
        (None, None, "size", {}, "unknown"),
        (301, URL, None, {}, "unknown"),
    ],
)
def test_classify(status, final_url, error, headers, outcome):
    assert classify(URL, status, final_url, error, headers) == outcome


def test_the_site_root_itself_is_never_a_soft_404():
    assert classify("http://news.example/", 200, "http://news.example/", None) == "ok"


def run(outcomes_at):
    state = Liveness()
    for day, outcome in outcomes_at:
        state = advance(state, outcome, T0 + day * DAY, POLICY)
    return state


def test_three_strikes_three_days_apart_make_dead():
    assert run([(0, "gone")]).status == "failing"
    assert run([(0, "gone"), (3, "gone")]).strikes == 2
    dead = run([(0, "gone"), (3, "gone"), (6, "gone")])
    assert dead.status == "dead" and dead.dead_since == T0 + 6 * DAY


def test_strikes_closer_than_three_days_do_not_count():
    state = run([(0, "gone"), (1, "gone"), (2, "gone"), (2.9, "transient")])
    assert state.status == "failing" and state.strikes == 1
    assert state.next_check_at == T0 + 3 * DAY


def test_a_good_check_resets_at_once():
    state = run([(0, "gone"), (3, "gone"), (5, "ok")])
    assert state.status == "alive" and state.strikes == 0 and state.last_strike_at is None
    assert state.next_check_at == T0 + 12 * DAY


@pytest.mark.parametrize("excused", ["blocked", "rate_limited", "unknown"])
def test_blocked_rate_limited_and_unknown_never_strike(excused):
    state = run([(day, excused) for day in range(0, 30, 3)])
    assert state.strikes == 0 and state.status in ("unchecked", "blocked")


def test_dead_sources_are_rechecked_rarely_and_come_back():
    dead = run([(0, "gone"), (3, "gone"), (6, "gone")])
    assert dead.next_check_at == T0 + 36 * DAY
    back = advance(dead, "ok", T0 + 40 * DAY, POLICY)
    assert back.status == "alive" and back.dead_since is None
