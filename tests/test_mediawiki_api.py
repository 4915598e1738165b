"""The portal adapter against the API's awkward corners, and the stand-in held to the API's rules.

The stand-in (``crawler/loopback/mediawiki.py``) is only worth testing
against if it is as strict as the real API: the first tests here ask it
directly what the real API would refuse or omit.  The others crawl it for
real, through the CLI, into a mirror.db: a monthly page served from a stale
parser cache, a month cut at the include limit, temporary error objects,
redirects, a polite User-Agent.
"""

# ruff: noqa: E501  (real titles and answers are quoted whole)

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import pytest
from test_wikipedia import DAY2, api_calls, edited, portal

from crawler.loopback.mediawiki import MediaWikiServer

JANUARY = ("--since", "2023-01-01", "--until", "2023-01-31")


def ask(server: MediaWikiServer, gzipped=False, **params) -> tuple[dict, dict]:
    """One API request, as a plain client sends it: (JSON answer, headers)."""
    query = urlencode({"format": "json", "formatversion": "2", **params})
    request = urllib.request.Request(f"{server.api_url}?{query}")
    if gzipped:
        request.add_header("Accept-Encoding", "gzip")
    with urllib.request.urlopen(request, timeout=10) as answer:
        body = answer.read()
        headers = dict(answer.headers)
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return json.loads(body), headers


# -- the stand-in is as strict as the API ----------------------------------


def test_the_stand_in_refuses_more_than_50_titles(wiki):
    titles = "|".join(f"Portal:Current_events/2023_January_{d}" for d in range(1, 32))
    titles += "|" + "|".join(f"Portal:Current_events/2022_December_{d}" for d in range(1, 21))
    answer, headers = ask(wiki, action="query", prop="revisions", titles=titles)
    assert answer["error"]["code"] == "toomanyvalues" and headers["MediaWiki-API-Error"] == "toomanyvalues"


def test_the_stand_in_gives_only_what_is_asked(wiki):
    answer, _ = ask(wiki, action="parse", page="Portal:Current_events/2023_January_2", prop="text")
    assert "revid" not in answer["parse"] and "Cached time: " in answer["parse"]["text"]
    answer, _ = ask(wiki, action="query", prop="revisions", rvprop="ids", titles=DAY2)
    assert set(answer["query"]["pages"][0]["revisions"][0]) == {"revid", "parentid"}
    answer, _ = ask(wiki, action="parse", page=DAY2, prop="text", rvlimit="5")
    assert answer["warnings"]["main"]["warnings"] == "Unrecognized parameters: rvlimit."


def test_the_stand_in_answers_missing_pages_and_redirects_like_the_api(wiki):
    answer, _ = ask(wiki, action="query", prop="revisions", titles="Portal:Current_events/2023_February_30")
    assert answer["query"]["pages"][0]["missing"] is True
    answer, headers = ask(wiki, action="parse", page="Portal:Current_events/2023_February_30")
    assert answer["error"]["code"] == "missingtitle"
    wiki.redirect("Portal:Current events/2023 January 02", DAY2)
    answer, _ = ask(wiki, action="parse", page="Portal:Current_events/2023_January_02", prop="text")
    assert "Redirect to:" in answer["parse"]["text"]  # no redirects=1: the redirect page itself
    answer, _ = ask(
        wiki, action="parse", page="Portal:Current_events/2023_January_02", prop="text", redirects="1"
    )
    assert answer["parse"]["title"] == DAY2 and answer["parse"]["redirects"][0]["to"] == DAY2


def test_the_stand_in_serves_the_month_from_a_lagging_cache(wiki):
    month = "Portal:Current_events/January_2023"
    first, _ = ask(wiki, action="parse", page=month, prop="text")
    wiki.edit(DAY2, edited(wiki.html(DAY2), "Two <a", "Two Malian <a"))
    stale, _ = ask(wiki, action="parse", page=month, prop="text")
    assert stale["parse"]["text"] == first["parse"]["text"]  # the refresh job has not run
    wiki.run_jobs()
    fresh, _ = ask(wiki, action="parse", page=month, prop="text")
    assert "Two Malian" in fresh["parse"]["text"]


def test_the_stand_in_cuts_a_month_at_the_include_limit(wiki):
    wiki.include_limit = 150_000
    answer, _ = ask(wiki, action="parse", page="Portal:Current_events/January_2023", prop="text")
    text = answer["parse"]["text"]
    assert "template omitted, post-expand include size too large" in text
    assert '<a href="/wiki/Portal:Current_events/2023_January_31"' in text


def test_the_stand_in_lags_gzips_and_errs_like_the_api(wiki):
    wiki.lag = 1
    answer, headers = ask(wiki, action="query", prop="revisions", titles=DAY2, maxlag="5")
    assert answer["error"]["code"] == "maxlag" and headers["Retry-After"] == "5"
    wiki.errors = [("readonly", "The wiki is currently in read-only mode.")]
    answer, headers = ask(wiki, action="query", prop="revisions", titles=DAY2)
    assert answer["error"]["code"] == "readonly" and headers["MediaWiki-API-Error"] == "readonly"
    answer, headers = ask(wiki, gzipped=True, action="query", prop="revisions", titles=DAY2)
    assert headers["Content-Encoding"] == "gzip" and answer["query"]["pages"][0]["title"] == DAY2


# -- the adapter against those corners --------------------------------------


def stored_days(mirror) -> dict[str, int]:
    return {
        r["url"].rsplit("/", 1)[1]: r["revision"]
        for r in mirror.query("SELECT url, revision FROM pages WHERE kind = 'day'")
    }


def with_event(html: str, event: str) -> str:
    """The day's HTML with one more event at the end of its last list."""
    head, _, tail = html.rpartition("</ul>")
    return f"{head}<li>{event}</li></ul>{tail}"


def test_a_day_edited_after_the_month_was_cached_is_read_from_its_own_page(crawl, wiki):
    first = portal(crawl, wiki, *JANUARY)
    # Four days edited (more than WIKIPEDIA_MONTHLY_AFTER: the month is read), the refresh job lagging.
    new_revisions = {}
    for day in (2, 3, 4, 5):
        title = f"Portal:Current events/2023 January {day}"
        event = f'Edit of day {day}. <a rel="nofollow" class="external text" href="https://news.example/{day}">(Example)</a>'
        new_revisions[f"2023_January_{day}"] = wiki.edit(title, with_event(wiki.html(title), event))
    wiki.requests.clear()
    again = portal(crawl, wiki, *JANUARY, db=first.db)
    calls = [(c["action"], c.get("page")) for c in api_calls(wiki)]
    assert calls[:2] == [("query", None), ("parse", "Portal:Current_events/January_2023")]
    assert sorted(page for _, page in calls[2:]) == [
        f"Portal:Current_events/2023_January_{d}" for d in (2, 3, 4, 5)
    ]
    days = stored_days(again)
    for name, revid in new_revisions.items():
        assert days[name] == revid
    # Every stored revision's text is there: the four new events, each once.
    edits = again.query("SELECT date, text FROM events WHERE text LIKE 'Edit of day%' ORDER BY date")
    assert [(e["date"], e["text"]) for e in edits] == [
        (f"2023-01-0{d}", f"Edit of day {d}.") for d in (2, 3, 4, 5)
    ]
    # Once the jobs have run, the month is fresh: no day is read twice.
    wiki.run_jobs()
    for day in (6, 7, 8, 9):
        title = f"Portal:Current events/2023 January {day}"
        wiki.edit(title, with_event(wiki.html(title), f"Late edit of day {day}."))
    wiki.run_jobs()
    wiki.requests.clear()
    third = portal(crawl, wiki, *JANUARY, db=first.db)
    assert [(c["action"], c.get("page")) for c in api_calls(wiki)] == [
        ("query", None),
        ("parse", "Portal:Current_events/January_2023"),
    ]
    assert third.scalar("SELECT count(*) FROM events WHERE text LIKE 'Late edit of day%'") == 4


def test_days_past_the_include_limit_are_read_from_their_own_pages(crawl, wiki):
    wiki.include_limit = 150_000  # about a third of January 2023's HTML
    mirror = portal(crawl, wiki, *JANUARY)
    calls = api_calls(wiki)
    reread = [c["page"] for c in calls[2:]]
    assert calls[1]["page"] == "Portal:Current_events/January_2023" and 10 < len(reread) < 31
    assert "Portal:Current_events/2023_January_31" in reread
    assert mirror.scalar("SELECT count(*) FROM days WHERE site = 'wikipedia'") == 31
    assert mirror.scalar("SELECT count(*) FROM events") == 334
    assert mirror.summary["errors"] == 0 and mirror.summary["status"] == "finished"


def refuse(wiki, fragment: str, code: str, info: str) -> None:
    """Answer every request whose path holds ``fragment`` with the error object ``code``."""
    original = wiki.answer

    def answer(path):
        if fragment in path:
            return (
                200,
                {"MediaWiki-API-Error": code},
                json.dumps({"error": {"code": code, "info": info}}).encode(),
            )
        return original(path)

    wiki.answer = answer


def test_a_day_that_cannot_be_read_is_a_failed_day_the_run_reports(crawl, wiki):
    wiki.include_limit = 150_000  # day 31 is not on the monthly page
    refuse(wiki, "page=Portal%3ACurrent_events%2F2023_January_31", "unknowncode", "Something new went wrong.")
    first = portal(crawl, wiki, *JANUARY)
    reason = "API error unknowncode: Something new went wrong."
    assert first.summary["status"] == "finished" and first.summary["errors_by_reason"] == {reason: 1}
    assert first.query("SELECT error FROM pages WHERE url LIKE '%2023_January_31'") == [{"error": reason}]
    assert first.scalar("SELECT count(*) FROM days WHERE site = 'wikipedia'") == 30
    text = portal(crawl, wiki, *JANUARY, db=first.db, json_output=False).proc.stdout
    assert f"pages not usable: 1 × {reason}" in text  # the summary a person reads says so
    del wiki.answer  # the API is well again: the next run reads the day, and only it
    wiki.requests.clear()
    healed = portal(crawl, wiki, *JANUARY, db=first.db)
    assert [c.get("page") for c in api_calls(wiki)] == [None, "Portal:Current_events/2023_January_31"]
    assert healed.summary["errors"] == 0
    assert healed.scalar("SELECT count(*) FROM days WHERE site = 'wikipedia'") == 31


def test_temporary_error_objects_are_waited_out(crawl, wiki):
    wiki.errors = [
        ("readonly", "The wiki is currently in read-only mode."),
        ("internal_api_error_DBQueryError", "[abc] Database query error."),
        ("ratelimited", "You've exceeded your rate limit."),
    ]
    mirror = portal(crawl, wiki, "--since", "2023-01-31", "--until", "2023-01-31")
    assert [c["action"] for c in api_calls(wiki)] == ["query"] * 4 + ["parse"]
    times = [t for _, t in wiki.times]
    assert times[1] - times[0] >= 0.9 and times[2] - times[1] >= 1.9 and times[3] - times[2] >= 3.9
    assert mirror.scalar("SELECT count(*) FROM days") == 1 and mirror.summary["errors"] == 0


def test_temporary_errors_that_last_fail_the_day_for_the_next_run(crawl, wiki):
    refuse(wiki, "action=parse", "readonly", "The wiki is currently in read-only mode.")
    window = ("--since", "2023-01-31", "--until", "2023-01-31")
    first = portal(crawl, wiki, *window, "-s", "WIKIPEDIA_RETRIES=2", "-s", "RETRY_AFTER_MAX=0.1")
    assert [c["action"] for c in api_calls(wiki)] == ["query", "parse", "parse", "parse"]
    reason = "API error readonly: The wiki is currently in read-only mode."
    assert first.summary["errors_by_reason"] == {reason: 1}
    del wiki.answer
    healed = portal(crawl, wiki, *window, db=first.db)
    assert healed.summary["errors"] == 0 and healed.summary["events_new"] == 9


def test_maxlag_is_waited_for_as_long_as_the_api_asks(crawl, wiki):
    wiki.lag = 1
    mirror = portal(crawl, wiki, "--since", "2023-01-31", "--until", "2023-01-31")
    times = [t for _, t in wiki.times]
    assert times[1] - times[0] >= 4.9  # Retry-After: 5
    assert mirror.scalar("SELECT count(*) FROM days") == 1


def test_a_redirected_day_page_is_read_through_its_redirect(crawl, wiki):
    # An old day page moved: its title now redirects to the page that holds the day.
    day31 = "Portal:Current events/2023 January 31"
    wiki.edit("Portal:Current events/Archive/2023 January 31", wiki.html(day31))
    wiki.redirect(day31, "Portal:Current events/Archive/2023 January 31")
    mirror = portal(crawl, wiki, "--since", "2023-01-31", "--until", "2023-01-31")
    assert all(c["redirects"] == "1" for c in api_calls(wiki))
    assert mirror.scalar("SELECT count(*) FROM events WHERE date = '2023-01-31'") == 9
    assert mirror.summary["errors"] == 0


def test_a_backfill_asks_at_most_50_titles_at_a_time(crawl, wiki):
    mirror = portal(crawl, wiki, "--since", "2022-11-01", "--until", "2023-01-31")
    queries = [c for c in api_calls(wiki) if c["action"] == "query"]
    assert [len(c["titles"].split("|")) for c in queries] == [50, 42]
    assert mirror.scalar("SELECT count(*) FROM days WHERE site = 'wikipedia'") == 31
    assert wiki.gzipped == len(wiki.requests)  # every answer came compressed


def test_the_real_api_is_not_used_with_the_placeholder_contact(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "run", "--site", "wikipedia", "--db", str(tmp_path / "m.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "WIKIPEDIA_USER_AGENT" in lines[0] and "contact" in lines[0]
    assert not (tmp_path / "m.db").exists()


@pytest.mark.parametrize(
    "api", ["https://de.wikipedia.org/w/api.php", "https://en.wikipedia.org/wiki/Portal:Current_events"]
)
def test_every_wikimedia_api_asks_for_a_contact(tmp_path, api):
    proc = subprocess.run(
        [sys.executable, "-m", "crawler", "run", "--start-url", api, "--db", str(tmp_path / "m.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "WIKIPEDIA_USER_AGENT" in proc.stderr


@pytest.mark.parametrize(
    ("month", "first", "last"),
    [
        ("footnotes_May_2005.html", "2005-05-05", "2005-05-06"),
        ("header_May_2017.html", "2017-05-04", "2017-05-05"),
        ("oldest_November_2004.html", "2004-11-21", "2004-11-23"),
    ],
)
def test_every_era_reads_the_same_from_its_day_pages_and_its_month(crawl, tmp_path, month, first, last):
    """The stand-in serves an era's month as its day pages (each with the footnotes it cites)."""
    server = MediaWikiServer()
    server.add_month((Path(__file__).parent / "fixtures/portal" / month).read_text(encoding="utf-8"))
    try:
        window = ("--since", first, "--until", last)
        daily = portal(crawl, server, *window, db=tmp_path / "daily.db")
        monthly = portal(
            crawl, server, *window, "-s", "WIKIPEDIA_MONTHLY_AFTER=1", db=tmp_path / "monthly.db"
        )
    finally:
        server.close()
    sql = (
        "SELECT e.url, e.text, group_concat(s.url, ' ') AS sources FROM events e"
        " LEFT JOIN event_sources es ON es.event_id = e.id LEFT JOIN sources s ON s.id = es.source_id"
        " GROUP BY e.id ORDER BY e.url"
    )
    assert daily.query(sql) == monthly.query(sql)
    assert all(row["sources"] for row in daily.query(sql))  # footnotes resolved on the day's own page
    assert "[1]" not in " ".join(row["text"] for row in daily.query(sql))
