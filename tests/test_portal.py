"""The portal parser on the real January 2023 page and on hand-made older renderings."""

# ruff: noqa: E501  (the HTML fixtures keep the portal's own lines)

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.parse import PageError
from pipeline.portal import day_title, event_url, month_title, page_url, parse_portal

JANUARY_2023 = (
    Path(__file__).resolve().parents[1]
    / "crawler"
    / "demo"
    / "wikipedia"
    / "Portal_Current_events_January_2023.html"
)


@pytest.fixture(scope="module")
def january():
    return parse_portal(JANUARY_2023.read_text(encoding="utf-8"))


def test_the_real_month_parses_in_full(january):
    # Counted from the page itself (shared/corpus/wikipedia/PROVENANCE.md).
    assert [d.date for d in january] == [f"2023-01-{n:02d}" for n in range(1, 32)]
    events = [page for day in january for _, page in day.events]
    assert len(events) == 334
    assert sum(len(page.sources) for page in events) == 363
    categories = {c for day in january for c in day.categories}
    assert len(categories) == 10
    assert "Armed conflicts and attacks" in categories
    urls = [url for day in january for url, _ in day.events]
    assert len(set(urls)) == 334
    # The day listing names every event of the day, in page order.
    for day in january:
        assert [item.href for item in day.listing.items] == [url for url, _ in day.events]


def test_an_event_has_its_story_path_sources_and_entities(january):
    day = january[1]
    assert day.url == "https://en.wikipedia.org/wiki/Portal:Current_events/2023_January_2"
    url, rajouri = day.events[0]
    assert url.startswith(day.url + "#event-")
    assert rajouri.topic == "Armed conflicts and attacks"
    assert rajouri.story == "Kashmir conflict > 2023 Rajouri attacks"
    assert rajouri.text.startswith(
        "Two children are killed and four other people are injured by an explosion"
    )
    assert rajouri.text.endswith("Jammu and Kashmir, India.")  # the "(The Hindu)" parenthetical is gone
    assert [(s.title, s.href) for s in rajouri.sources] == [
        (
            "The Hindu",
            "https://www.thehindu.com/news/national/many-killed-in-blast-at-rajouris-dangri-village/article66329258.ece/amp/",
        )
    ]
    assert rajouri.entities[:2] == ["Explosion", "Hindus"]
    assert {"Kashmir conflict", "2023 Rajouri attacks", "India"} <= set(rajouri.entities)
    _, mali = day.events[1]
    assert [s.title for s in mali.sources] == ["AFP via Barron's"]  # "(AFP via <i>Barron's</i>)"
    assert mali.text.endswith("between Bamako and Ségou.")


def test_edit_history_and_watch_links_are_not_sources(january):
    hrefs = [s.href for day in january for _, page in day.events for s in page.sources]
    assert not [h for h in hrefs if "action=" in h or "wikipedia.org" in h]
    texts = [page.text for day in january for _, page in day.events]
    assert not [t for t in texts if t.count("(") != t.count(")") or "edit" == t or "()" in t]


def test_outlet_labels_lose_their_parentheses(january):
    labels = {s.title for day in january for _, page in day.events for s in page.sources}
    assert {"Times of Israel", "AFP via The Times of Israel", "BBC News"} <= labels
    assert not [label for label in labels if "(" in label or ")" in label]
    # The real month's parentheses are all well formed; malformed ones are in the fixtures below.


OLD_TABLE = """
<table class="vevent" style="width:100%"><tr><td>
<span class="summary">March 27, 2013 <span style="display:none">(<span class="bday dtstart">2013-03-27</span>)</span></span>
<a class="external text" href="https://en.wikipedia.org/w/index.php?title=Portal:Current_events/2013_March_27&amp;action=edit">edit</a>
</td></tr><tr><td class="description">
<dl><dt>Armed conflicts and attacks</dt></dl>
<ul><li><a href="/wiki/Northern_Mali_conflict" title="Northern Mali conflict">Northern Mali conflict</a>
<ul><li>The <a href="/wiki/Government_of_Mali" title="Government of Mali">Government of Mali</a> announces that
63 of their soldiers have been killed. <a rel="nofollow" class="external text"
href="http://www.sbs.com.au/news/article/1751054/mali">(AFP via SBS)</a></li></ul></li></ul>
<dl><dt>Politics and elections</dt></dl>
<ul><li><a href="/wiki/Cyprus" title="Cyprus">Cyprus</a>, <a href="/wiki/Eurozone" title="Eurozone">Eurozone</a>
<ul><li>Banks stay closed. <a rel="nofollow" class="external text" href="http://bbc.example/cyprus">((BBC)</a>
(<a rel="nofollow" class="external text" href="http://reuters.example/cyprus">Reuters</a>)</li>
<li><a rel="nofollow" class="external text" href="http://orphan.example/">(Orphan source)</a></li></ul></li></ul>
</td></tr></table>
"""

HEADING_DIVS = """
<div class="current-events-main vevent" id="2019_June_30">
<div class="current-events-content description">
<div class="current-events-content-heading" role="heading">Sports</div>
<ul><li>A <a href="/wiki/Cricket" title="Cricket">cricket</a> match ends. <a rel="nofollow"
class="external text" href="https://sport.example/a">(ESPN)</a> <a href="/wiki/File:Ball.jpg">ball</a></li></ul>
<div role="heading">Science and technology</div>
<ul><li>A probe lands. <a rel="nofollow" class="external text" href="https://space.example/b">(NASA</a></li></ul>
</div></div>
"""


def test_the_older_table_rendering_with_dl_categories():
    page = parse_portal(OLD_TABLE)
    [day] = page
    assert day.date == "2013-03-27"
    assert day.categories == ["Armed conflicts and attacks", "Politics and elections"]
    events = [p for _, p in day.events]
    assert [p.topic for p in events] == ["Armed conflicts and attacks", "Politics and elections"]
    mali, cyprus = events
    assert mali.story == "Northern Mali conflict"
    assert mali.text == "The Government of Mali announces that 63 of their soldiers have been killed."
    assert [s.title for s in mali.sources] == ["AFP via SBS"]
    # One story line naming two stories; an outlet with a doubled "(" and one outside the link.
    assert cyprus.story == "Cyprus, Eurozone"
    assert {"Cyprus", "Eurozone"} <= set(cyprus.entities)
    assert cyprus.text == "Banks stay closed."
    assert [s.title for s in cyprus.sources] == ["BBC", "Reuters"]
    # A bullet that holds only a source is not an event; the edit link is no source.
    assert len(events) == 2


def test_the_heading_div_rendering_and_a_date_from_the_block_id():
    [day] = parse_portal(HEADING_DIVS)
    assert day.date == "2019-06-30"  # no span.bday: the block's id says it
    assert day.categories == ["Sports", "Science and technology"]
    cricket, probe = (p for _, p in day.events)
    assert cricket.topic == "Sports" and probe.topic == "Science and technology"
    assert cricket.entities == ["Cricket"]  # the File: link is no entity
    assert [s.title for s in probe.sources] == ["NASA"]  # "(NASA" without its ")"
    assert probe.text == "A probe lands."


def test_a_page_without_day_blocks_is_an_error():
    with pytest.raises(PageError, match="no day block"):
        parse_portal("<html><body><p>Wikipedia does not have a page with this exact name.</p></body></html>")
    with pytest.raises(PageError, match="readable date"):
        parse_portal('<div class="vevent"><ul><li>Something.</li></ul></div>')


def test_titles_and_urls():
    day = dt.date(2023, 1, 2)
    assert day_title(day) == "Portal:Current_events/2023_January_2"
    assert month_title(2023, 1) == "Portal:Current_events/January_2023"
    assert page_url("Portal:Current events/2023 January 2").endswith(
        "/wiki/Portal:Current_events/2023_January_2"
    )
    # The same text gives the same event URL on a daily and a monthly page.
    assert event_url(day, "a b") == event_url(day, "a b") != event_url(day, "a c")
