"""The portal adapter end to end: the CLI against a loopback MediaWiki API serving the real month."""

# ruff: noqa: E501  (real URLs and HTML are quoted whole)

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from test_sync import content

from crawler import settings

JANUARY_2023 = (
    Path(__file__).resolve().parents[1] / "crawler/demo/wikipedia/Portal_Current_events_January_2023.html"
)
DAY2 = "Portal:Current events/2023 January 2"
AFTER = "2023-02-01T12:00:00Z"  # the month is over: every day of it is in the past


def portal(crawl, wiki, *args, db=None, check=True, **kwargs):
    return crawl(
        "--site",
        "wikipedia",
        "--start-url",
        wiki.api_url,
        "--now",
        AFTER,
        *args,
        db=db,
        check=check,
        **kwargs,
    )


def api_calls(wiki) -> list[dict]:
    calls = []
    for path in wiki.requests:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}
        calls.append(query)
    return calls


def test_a_month_is_mirrored_through_the_monthly_page(crawl, wiki):
    mirror = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31")
    calls = api_calls(wiki)
    # One revisions query for the 31 days, one parse of the monthly page; nothing else.
    assert [c["action"] for c in calls] == ["query", "parse"]
    assert calls[0]["titles"].count("|") == 30 and calls[0]["maxlag"] == "5"
    assert calls[1]["page"] == "Portal:Current_events/January_2023"
    assert mirror.scalar("SELECT count(*) FROM events") == 334
    assert mirror.scalar("SELECT count(*) FROM events WHERE site = 'wikipedia'") == 334
    assert mirror.scalar("SELECT count(*) FROM event_sources") == 363
    assert mirror.scalar("SELECT count(*) FROM days WHERE site = 'wikipedia'") == 31
    assert mirror.scalar("SELECT count(DISTINCT topic) FROM events") == 10
    assert mirror.scalar("SELECT count(*) FROM day_events WHERE event_id IS NULL") == 0
    # Every day page is recorded with the revision it was read at.
    assert mirror.scalar("SELECT count(*) FROM pages WHERE kind = 'day' AND revision IS NOT NULL") == 31
    mali = mirror.query("SELECT * FROM events WHERE text LIKE 'Two firefighters and three civilians%'")[0]
    assert mali["date"] == "2023-01-02" and mali["story"] == "Mali War"
    assert mali["topic"] == "Armed conflicts and attacks"
    assert mali["url"].startswith("https://en.wikipedia.org/wiki/Portal:Current_events/2023_January_2#event-")
    labels = mirror.query(
        "SELECT es.label, s.url FROM event_sources es JOIN sources s ON s.id = es.source_id WHERE es.event_id = ?",
        [mali["id"]],
    )
    assert labels == [
        {
            "label": "AFP via Barron's",
            "url": "https://www.barrons.com/news/two-firefighters-three-civilians-killed-in-mali-attack-ministry-01672782909",
        }
    ]
    entities = {
        r["name"]
        for r in mirror.query(
            "SELECT c.name FROM event_contexts ec JOIN contexts c ON c.id = ec.context_id WHERE ec.event_id = ?",
            [mali["id"]],
        )
    }
    assert {"Bamako", "Mali War", "Islamist"} <= entities
    run = mirror.query("SELECT * FROM sync_runs")[0]
    assert (run["site"], run["status"], run["requests"]) == ("wikipedia", "finished", 2)
    # Wikimedia's etiquette: every request names the tool and asks its operator for a contact.
    assert wiki.user_agents == {settings.WIKIPEDIA_USER_AGENT}


def test_an_unchanged_sync_costs_one_revisions_query(crawl, wiki):
    first = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31")
    events = first.query("SELECT * FROM events ORDER BY id")
    wiki.requests.clear()
    again = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31", db=first.db)
    assert [c["action"] for c in api_calls(wiki)] == ["query"]
    assert again.query("SELECT * FROM events ORDER BY id") == events
    assert again.summary["events_new"] == again.summary["events_changed"] == 0


def edited(html: str, old: str, new: str) -> str:
    assert html.count(old) == 1, old
    return html.replace(old, new)


def test_an_edited_day_is_parsed_alone_and_keeps_the_earlier_text(crawl, wiki):
    first = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31")
    before = first.query(
        "SELECT id, text FROM events WHERE text LIKE 'Two firefighters and three civilians%'"
    )[0]
    day2 = wiki.html(DAY2)
    day2 = edited(day2, "Two <a", "Two Malian <a")  # a copy-edit of the Mali event
    day2 = edited(day2, "Protests continue for a fifth day in", "Protests continue for a sixth day in")
    gone = "Malawi</a> suspends the opening of schools"
    start = day2.index("<li>", day2.rindex("<ul>", 0, day2.index(gone)))
    day2 = day2[:start] + day2[day2.index("</li>", start) + 5 :]  # the cholera event is deleted
    day2 = edited(
        day2,
        "<p><b>Law and crime</b>",
        '<p><b>Science and technology</b>\n</p><ul><li>A new event of the day. <a rel="nofollow" '
        'class="external text" href="https://news.example/new">(Example News)</a></li></ul>\n<p><b>Law and crime</b>',
    )
    wiki.edit(DAY2, day2)
    wiki.requests.clear()
    again = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31", db=first.db)
    calls = api_calls(wiki)
    assert [(c["action"], c.get("page")) for c in calls] == [
        ("query", None),
        ("parse", "Portal:Current_events/2023_January_2"),
    ]
    s = again.summary
    assert (s["events_new"], s["events_changed"], s["events_removed"]) == (1, 2, 1)
    after = again.query("SELECT id, text FROM events WHERE id = ?", [before["id"]])[0]
    assert after["text"].startswith("Two Malian firefighters and three civilians")  # the same event, edited
    versions = again.query("SELECT snapshot FROM event_versions WHERE event_id = ?", [before["id"]])
    assert len(versions) == 1 and before["text"] in versions[0]["snapshot"]
    removed = again.query("SELECT text, removed_reason FROM events WHERE removed_at IS NOT NULL")
    assert [(r["text"][:6], r["removed_reason"]) for r in removed] == [("Malawi", "unlisted")]
    assert again.scalar("SELECT count(*) FROM events WHERE removed_at IS NULL") == 334
    assert again.scalar("SELECT count(*) FROM day_versions WHERE site = 'wikipedia'") == 1


def test_an_event_read_from_a_daily_and_a_monthly_page_is_one_event(crawl, wiki):
    daily = portal(crawl, wiki, "--since", "2023-01-30", "--until", "2023-01-31")
    assert sorted(c.get("page") for c in api_calls(wiki)[1:]) == [
        "Portal:Current_events/2023_January_30",
        "Portal:Current_events/2023_January_31",
    ]
    first_ids = {r["id"] for r in daily.query("SELECT id FROM events")}
    monthly = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31", "--full", db=daily.db)
    assert monthly.scalar("SELECT count(*) FROM events") == 334
    assert first_ids <= {r["id"] for r in monthly.query("SELECT id FROM events")}
    assert monthly.summary["events_changed"] == 0


def test_the_default_window_is_the_last_seven_days(crawl, wiki):
    mirror = crawl("--site", "wikipedia", "--start-url", wiki.api_url, "--now", "2023-01-10T08:00:00Z")
    titles = api_calls(wiki)[0]["titles"].split("|")
    assert titles == [f"Portal:Current_events/2023_January_{d}" for d in range(10, 3, -1)]
    assert mirror.query("SELECT min(date) AS first, max(date) AS last FROM days") == [
        {"first": "2023-01-04", "last": "2023-01-10"}
    ]


def test_a_lagged_api_is_waited_out_up_to_the_longest_wait_allowed(crawl, wiki):
    wiki.lag = 2  # two maxlag answers with Retry-After: 5 (test_mediawiki_api waits the 5 s)
    window = ("--since", "2023-01-31", "--until", "2023-01-31")
    mirror = portal(crawl, wiki, *window, "-s", "RETRY_AFTER_MAX=1")
    assert [c["action"] for c in api_calls(wiki)] == ["query", "query", "query", "parse"]
    lagged = [t for p, t in wiki.times][:3]
    assert 0.9 <= lagged[1] - lagged[0] < 4 and 0.9 <= lagged[2] - lagged[1] < 4
    assert mirror.scalar("SELECT count(*) FROM days") == 1


def test_a_day_without_a_page_is_recorded_not_fatal(crawl, wiki):
    mirror = portal(crawl, wiki, "--since", "2023-01-31", "--until", "2023-02-01")
    assert mirror.query("SELECT url, error FROM pages WHERE error IS NOT NULL") == [
        {
            "url": "https://en.wikipedia.org/wiki/Portal:Current_events/2023_February_1",
            "error": "no such page on Wikipedia",
        }
    ]
    assert mirror.scalar("SELECT count(*) FROM days") == 1


def test_an_unreachable_api_fails_the_run(crawl, wiki, tmp_path):
    url = wiki.api_url
    wiki.close()
    failed = crawl("--site", "wikipedia", "--start-url", url, "--now", AFTER, check=False)
    assert failed.proc.returncode == 1
    assert "cannot fetch the start URL" in failed.proc.stderr
    assert failed.query("SELECT status FROM sync_runs") == [{"status": "failed"}]


def test_an_api_url_start_selects_the_portal(crawl, wiki):
    mirror = crawl(
        "--start-url", wiki.api_url, "--since", "2023-01-31", "--until", "2023-01-31", "--now", AFTER
    )
    assert mirror.query("SELECT site FROM sync_runs") == [{"site": "wikipedia"}]


def test_related_events_are_computed_from_shared_entities(crawl, wiki):
    mirror = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31")
    rows = mirror.query("SELECT * FROM related_events ORDER BY event_id, position")
    assert rows and {r["via"] for r in rows} == {"entities"}
    per_event = {}
    for r in rows:
        per_event.setdefault(r["event_id"], []).append(r)
    assert max(len(v) for v in per_event.values()) == 10  # the Context's limit
    # Recount one event's list from plain rows: every related event shares the listed entities,
    # and the list is ordered by how many it shares.
    event_id = max(per_event, key=lambda e: len(per_event[e]))
    entities = lambda e: {  # noqa: E731
        r["name"]
        for r in mirror.query(
            "SELECT c.name FROM event_contexts ec JOIN contexts c ON c.id = ec.context_id WHERE ec.event_id = ?",
            [e],
        )
    }
    mine = entities(event_id)
    shared = []
    for r in per_event[event_id]:
        names = set(json.loads(r["contexts"]))
        assert names == mine & entities(r["related_id"]) and names
        assert r["related_id"] != event_id
        assert r["title"] == mirror.scalar("SELECT title FROM events WHERE id = ?", [r["related_id"]])
        shared.append(len(names))
    assert shared == sorted(shared, reverse=True)
    best_possible = max(
        len(mine & entities(other["id"]))
        for other in mirror.query("SELECT id FROM events WHERE id != ?", [event_id])
    )
    assert shared[0] == best_possible


def test_a_faulty_api_is_healed_by_the_next_syncs(crawl, wiki, tmp_path):
    """Half the API's answers fail (5xx, resets, stalls, truncated JSON, trickles)."""
    window = ("--since", "2023-01-29", "--until", "2023-01-31")  # 1 revisions query + 3 parses a run
    reference = portal(crawl, wiki, *window, db=tmp_path / "reference.db")
    wiki.faults, wiki.stall = 0.5, 2.0
    wiki.seed(3)
    runs = []
    while not runs or (content(runs[-1]) != content(reference) and len(runs) < 3):
        runs.append(
            portal(crawl, wiki, *window, "-s", "DOWNLOAD_TIMEOUT=1", db=tmp_path / "chaos.db", check=False)
        )
        assert runs[-1].proc.returncode in (0, 1), runs[-1].proc.stderr  # a failed start is a clear exit 1
    assert content(runs[-1]) == content(reference), f"not healed after {len(runs)} runs"
    assert len({fault for _, fault, _ in wiki.fault_log}) >= 3  # the faults really happened


def test_both_sites_share_one_mirror(crawl, wiki, tmp_path):
    db = tmp_path / "both.db"
    context = crawl(db=db)  # the bundled demo: the Context's pages of 2013-2018
    context_related = context.query("SELECT * FROM related_events ORDER BY event_id, position")
    both = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31", db=db)
    by_site = both.query("SELECT site, count(*) AS n FROM events GROUP BY site ORDER BY site")
    assert by_site == [{"site": "thecontext", "n": 75}, {"site": "wikipedia", "n": 334}]
    assert both.query("SELECT site, count(*) AS n FROM days GROUP BY site ORDER BY site")[1] == {
        "site": "wikipedia",
        "n": 31,
    }
    # The Context's own lists are kept as published; portal events may relate to its events.
    assert (
        both.query(
            "SELECT r.* FROM related_events r JOIN events e ON e.id = r.event_id"
            " WHERE e.site = 'thecontext' ORDER BY r.event_id, r.position"
        )
        == context_related
    )
    cross = both.query(
        "SELECT r.contexts FROM related_events r JOIN events mine ON mine.id = r.event_id"
        " JOIN events other ON other.id = r.related_id"
        " WHERE mine.site = 'wikipedia' AND other.site = 'thecontext'"
    )
    assert cross and all(json.loads(r["contexts"]) for r in cross)


def test_the_portal_demo_runs_offline(crawl):
    mirror = crawl("--site", "wikipedia", "--demo")
    assert mirror.summary["demo"] is True and mirror.summary["site"] == "wikipedia"
    assert mirror.scalar("SELECT count(*) FROM events WHERE site = 'wikipedia'") == 334
    assert mirror.scalar("SELECT count(*) FROM sources WHERE status = 'unchecked'") == mirror.scalar(
        "SELECT count(*) FROM sources"
    )  # real news sites: the offline demo does not check them


def test_overload_answers_are_backed_off_not_hammered(crawl, wiki):
    wiki.statuses = [503, 429, 502]
    mirror = portal(crawl, wiki, "--since", "2023-01-31", "--until", "2023-01-31")
    assert [c["action"] for c in api_calls(wiki)] == ["query"] * 4 + ["parse"]
    times = [t for _, t in wiki.times]
    gaps = [b - a for a, b in zip(times, times[1:4], strict=False)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9 and gaps[2] >= 3.9  # 1, 2, 4 seconds
    assert mirror.scalar("SELECT count(*) FROM days") == 1


def test_an_api_that_stays_down_fails_the_run_with_its_reason(crawl, wiki):
    wiki.statuses = [503] * 3
    failed = portal(
        crawl,
        wiki,
        "--since",
        "2023-01-31",
        "--until",
        "2023-01-31",
        "-s",
        "WIKIPEDIA_RETRIES=2",
        check=False,
    )
    assert failed.proc.returncode == 1 and "API error http: HTTP 503" in failed.proc.stderr
    assert len(wiki.requests) == 3  # the first answer and two retries, no more
    assert failed.query("SELECT status FROM sync_runs") == [{"status": "failed"}]
    assert failed.query("SELECT error FROM pages") == [{"error": "API error http: HTTP 503"}]


def test_status_does_not_schedule_portal_pages(crawl, wiki):
    mirror = portal(crawl, wiki, "--since", "2023-01-01", "--until", "2023-01-31")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "crawler",
            "status",
            "--db",
            str(mirror.db),
            "--json",
            "--now",
            "2024-01-01T00:00:00Z",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    status = json.loads(proc.stdout)
    assert status["events"]["count"] == 334 and status["pages"] == {"ok": 31}
    # Every sync asks the API which days changed: no portal page waits on a schedule.
    assert status["due"]["pages_due_now"] == 0 and status["due"]["next_page_check_at"] is None
