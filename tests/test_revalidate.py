"""The revalidation schedule (pipeline.revalidate), as plain arithmetic."""

from __future__ import annotations

import datetime as dt

from pipeline.revalidate import Revalidation, is_transient

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
EXACT = Revalidation(jitter=0)


def days_until_due(policy, age_days, streak=0, **kwargs) -> float:
    page_date = NOW.date() - dt.timedelta(days=age_days)
    return (policy.next_check(page_date, NOW, streak, **kwargs) - NOW) / dt.timedelta(days=1)


def test_recent_days_every_run_then_daily_weekly_monthly():
    assert days_until_due(EXACT, 0) == days_until_due(EXACT, 1) == 0
    assert days_until_due(EXACT, 2) == days_until_due(EXACT, 6) == 1
    assert days_until_due(EXACT, 7) == days_until_due(EXACT, 30) == 7
    assert days_until_due(EXACT, 31) == days_until_due(EXACT, 5000) == 30
    assert (EXACT.next_check(None, NOW, 0) - NOW).days == 30  # no date in the path: an old page


def test_each_unchanged_find_stretches_the_interval_up_to_a_ceiling():
    assert [days_until_due(EXACT, 400, streak) for streak in range(5)] == [30, 60, 120, 240, 365]
    assert days_until_due(EXACT, 400, 1000) == 365
    assert days_until_due(EXACT, 0, 1000) == 0  # the newest days stay every run


def test_transient_failures_are_due_at_once_and_404s_are_answers():
    assert days_until_due(EXACT, 400, 3, transient=True) == 0
    assert is_transient(None, "timeout: took longer than 30s")
    assert is_transient(503, "HTTP 503") and is_transient(429, "HTTP 429")
    assert not is_transient(404, "HTTP 404") and not is_transient(200, None)
    assert not is_transient(None, "robots: forbidden by robots.txt")


def test_jitter_spreads_pages_mirrored_together_but_is_fixed_per_url():
    policy = Revalidation()
    due = [days_until_due(policy, 400, url=f"https://site/news/2013/03/{n}.md") for n in range(200)]
    assert min(due) >= 24 and max(due) <= 36 and max(due) - min(due) > 10
    assert due == [days_until_due(policy, 400, url=f"https://site/news/2013/03/{n}.md") for n in range(200)]
