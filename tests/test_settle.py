"""Settling a run of source checks, rule by rule, on plain rows: no reactor, no server, no database.

Then the thin part, :func:`pipeline.settlement.settle_run`, on a real mirror file: in batches, and
stopped by a real SIGTERM between two of them.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

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
    network_of,
    read_archive_answer,
    settle,
    shared_redirect_targets,
)
from pipeline.settlement import settle_run

ROOT = Path(__file__).resolve().parents[1]

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


# -- an offline run: our outage, not the web's -----------------------------------------------


def failed(id_, host, error, outcome="transient"):
    return Check(id_, id_, f"http://{host}/story-{id_}", outcome, None, 0, NOW.isoformat(), error)


def answered(id_, host, outcome="ok"):
    return Check(id_, id_, f"http://{host}/story-{id_}", outcome, None, 0, NOW.isoformat(), None)


def test_most_hosts_failing_at_the_network_level_is_an_offline_run():
    checks = [failed(1, "a.example", "dns", "gone"), failed(2, "b.example", "dns", "gone")]
    checks += [failed(3, "c.example", "refused"), failed(4, "d.example", "timeout")]
    checks += [answered(5, "e.example"), answered(6, "f.example", "gone")]
    network = network_of(checks, min_hosts=5, share=0.5)
    assert (network.hosts, network.unreachable, network.offline) == (6, 4, True)
    assert network.errors == (("dns", 2), ("refused", 1), ("timeout", 1))
    assert network.describe() == "4 of 6 hosts failed at the network level (dns 2, refused 1, timeout 1)"
    settled = settle(checks, {c.source_id: SourceLiveness() for c in checks}, NOW, RULES)
    assert settled.offline
    # Nobody is struck, not even the host that answered 404: the run says nothing about the web.
    assert settled.excused == {1, 2, 3, 4, 6}
    assert all(settled.liveness[i]["strikes"] == 0 for i in (1, 2, 3, 4, 6))
    assert all(settled.liveness[i]["next_check_at"] == (NOW + DAY).isoformat() for i in (1, 2, 3, 4, 6))
    assert settled.liveness[5]["status"] == "alive"  # a good answer is still one


def test_a_failing_source_keeps_its_strikes_through_an_offline_run():
    earlier = Liveness(status="failing", strikes=2, last_strike_at=NOW - 5 * DAY)
    checks = [failed(i, f"h{i}.example", "dns", "gone") for i in range(1, 7)]
    sources = {c.source_id: SourceLiveness() for c in checks} | {1: SourceLiveness(earlier, "x")}
    settled = settle(checks, sources, NOW, RULES)
    assert settled.offline and settled.liveness[1]["status"] == "failing"
    assert settled.liveness[1]["strikes"] == 2 and settled.liveness[1]["first_failed_at"] == "x"


def test_one_nxdomain_among_hosts_that_answer_stays_a_strike():
    checks = [failed(1, "gone.example", "dns", "gone")] + [answered(i, f"h{i}.example") for i in range(2, 7)]
    settled = settle(checks, {c.source_id: SourceLiveness() for c in checks}, NOW, RULES)
    assert not settled.offline and settled.network.unreachable == 1
    assert settled.liveness[1]["status"] == "failing" and settled.liveness[1]["strikes"] == 1


def test_an_offline_run_needs_enough_hosts_and_the_share():
    four = [failed(i, f"h{i}.example", "dns", "gone") for i in range(1, 5)]
    assert not network_of(four, min_hosts=5, share=0.5).offline  # too few hosts to tell
    assert network_of(four, min_hosts=4, share=0.5).offline
    half = four[:3] + [answered(i, f"h{i}.example") for i in range(5, 8)]
    assert network_of(half, min_hosts=5, share=0.5).offline  # 3 of 6: at least half
    assert not network_of(half, min_hosts=5, share=0.6).offline


def test_a_host_that_answered_once_is_reachable():
    # A reset, a TLS error or an HTTP answer means the host was reached: not the network's fault.
    checks = [failed(1, "a.example", "timeout"), failed(2, "a.example", "reset")]
    checks += [failed(3, "b.example", "tls"), failed(4, "c.example", "dns", "gone")]
    checks += [Check(5, 5, "http://c.example/x", "transient", None, 0, None, None)]  # a 500
    checks += [failed(6, "d.example", "refused"), failed(7, "e.example", "refused")]
    network = network_of(checks, min_hosts=5, share=0.5)
    assert (network.hosts, network.unreachable, network.offline) == (5, 2, False)


def test_old_check_rows_without_an_error_never_make_a_run_offline():
    checks = [check(i, i, f"http://h{i}.example/x", "transient") for i in range(1, 8)]
    assert not network_of(checks, min_hosts=5, share=0.5).offline


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


# -- the thin part: a real mirror, committed batches, SIGTERM ----------------------------------


def build_mirror(path: Path, n: int) -> int:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from settle import build  # benchmarks/settle.py: n synthetic checks of n sources
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return build(path, n, earlier_runs=1)


def settled_count(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute("SELECT count(*) FROM sources WHERE next_check_at IS NOT NULL").fetchone()[0]
    finally:
        conn.close()


def test_settle_run_writes_in_batches_and_stops_between_two(tmp_path):
    from pipeline.schema import open_database

    path = tmp_path / "mirror.db"
    run_id = build_mirror(path, 2000)
    db = open_database(str(path))
    asked = []
    stop = lambda: asked.append(settled_count(path)) or len(asked) > 3  # noqa: E731
    settled = settle_run(db, run_id, NOW, Rules(), batch=300, stop=stop)
    assert settled.stopped and settled.settled == 900
    assert asked == [0, 300, 600, 900]  # each batch was committed before the next was begun
    assert settled_count(path) == 900
    # The rest is whole: no source half-settled, its checks' notes untouched.
    rest = db.execute(
        "SELECT count(*) FROM link_checks c WHERE c.sync_run = ? AND c.note IS NOT NULL"
        " AND c.source_id > (SELECT max(id) FROM sources WHERE next_check_at IS NOT NULL)",
        [run_id],
    ).fetchone()[0]
    assert rest == 0
    again = settle_run(db, run_id, NOW, Rules(), batch=5000)
    assert not again.stopped and again.settled == len(again.liveness) == 2000
    db.close()


SETTLE_CHILD = """
import datetime as dt, json, sys
sys.path.insert(0, {root!r})
from pipeline.schema import open_database
from pipeline.settle import Rules
from pipeline.settlement import settle_run, stop_on_signals
db = open_database({path!r})
with stop_on_signals() as stop:
    print("settling", flush=True)
    now = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    settled = settle_run(db, {run_id}, now, Rules(), batch=500, stop=stop)
db.close()
print(json.dumps({{"stopped": settled.stopped, "settled": settled.settled, "of": len(settled.liveness)}}))
"""


def test_sigterm_stops_a_settlement_after_its_current_batch(tmp_path):
    path = tmp_path / "mirror.db"
    n = 40_000
    run_id = build_mirror(path, n)
    code = SETTLE_CHILD.format(root=str(ROOT), path=str(path), run_id=run_id)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "settling"
    deadline = time.monotonic() + 60
    while settled_count(path) == 0 and time.monotonic() < deadline:  # a batch or more is written
        time.sleep(0.02)
    child.send_signal(signal.SIGTERM)
    out, _ = child.communicate(timeout=60)
    assert child.returncode == 0  # ended by itself, cleanly: not killed by the signal
    result = json.loads(out)
    assert result["stopped"] and 0 < result["settled"] < n and result["settled"] % 500 == 0
    assert settled_count(path) == result["settled"]  # what it said it wrote, all of it, nothing more


def test_a_signal_while_settling_is_passed_on_to_the_handler_before():
    from pipeline.settlement import stop_on_signals

    seen = []

    def scrapys(signum, frame):  # as Scrapy's does, it installs another handler for the next signal
        seen.append(signum)
        signal.signal(signal.SIGTERM, kill_handler)

    def kill_handler(signum, frame):
        seen.append(-signum)

    before = signal.signal(signal.SIGTERM, scrapys)
    try:
        with stop_on_signals() as stop:
            assert not stop()
            signal.raise_signal(signal.SIGTERM)
            assert stop() and seen == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is kill_handler  # not put back over Scrapy's
        with stop_on_signals() as stop:
            pass
        assert signal.getsignal(signal.SIGTERM) is kill_handler  # restored when nothing came
    finally:
        signal.signal(signal.SIGTERM, before)
