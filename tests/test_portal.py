"""The portal parser on the real January 2023 page and on hand-made older renderings."""

# ruff: noqa: E501  (the HTML fixtures keep the portal's own lines)

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

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


# --- Every era's markup (issue 15, point 3): a day page and a monthly page of each --------------
# Hand-written renderings of each era's wikitext; tests/fixtures/portal/README.md says how derived.

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "portal"
ERAS = [
    # (day page, monthly page, the day): the month numbers the day's footnotes differently
    ("header_2017_May_5.html", "header_May_2017.html", "2017-05-05"),
    ("current_2019_June_30.html", "current_June_2019.html", "2019-06-30"),
    ("footnotes_2005_May_6.html", "footnotes_May_2005.html", "2005-05-06"),
    ("oldest_2004_November_22.html", "oldest_November_2004.html", "2004-11-22"),
]
MARKER = re.compile(r"\[\s*\d+\s*\]|\[\s*citation needed\s*\]|\^", re.I)


def era(name: str) -> list:
    return parse_portal((FIXTURES / name).read_text(encoding="utf-8"))


def the_day(days: list, date: str):
    [day] = [d for d in days if d.date == date]
    return day


def sources(page) -> list[tuple[str, str]]:
    return [(s.title, s.href) for s in page.sources]


@pytest.mark.parametrize(("day_page", "month_page", "date"), ERAS)
def test_a_day_read_from_its_page_and_from_its_month_is_one_day(day_page, month_page, date):
    [alone] = era(day_page)
    in_month = the_day(era(month_page), date)
    assert alone.date == date and alone.url == in_month.url
    assert alone.categories == in_month.categories
    assert [url for url, _ in alone.events] == [url for url, _ in in_month.events]
    for (_, a), (_, b) in zip(alone.events, in_month.events, strict=True):
        assert (a.text, a.topic, a.story, a.entities) == (b.text, b.topic, b.story, b.entities)
        assert sources(a) == sources(b)


@pytest.mark.parametrize("name", [name for pair in ERAS for name in pair[:2]])
def test_no_footnote_marker_in_any_text_and_no_reference_is_an_event(name):
    html = (FIXTURES / name).read_text(encoding="utf-8")
    references = [
        " ".join(li.select_one(".reference-text").get_text().split())
        for li in BeautifulSoup(html, "lxml").select("ol.references > li")
    ]
    for day in parse_portal(html):
        assert not {c.lower() for c in day.categories} & {"references", "notes"}
        for url, page in day.events:
            assert not MARKER.search(page.text), page.text
            assert not MARKER.search(page.story or ""), page.story
            assert page.text not in references and not any(page.text in ref for ref in references)
            assert "#cite_" not in url and all(not s.href.startswith("#") for s in page.sources)
            assert page.sources, f"{page.text}: every fixture event has a source"
            assert not [e for e in page.entities if e.startswith("Wikipedia:")]


def test_the_header_era_table_with_dl_categories():
    [day] = era("header_2017_May_5.html")
    assert day.date == "2017-05-05"
    assert day.categories == ["Armed conflicts and attacks", "International relations"]
    safe_zones, welcome, border, senators = (page for _, page in day.events)
    assert [p.topic for p in (safe_zones, welcome, border, senators)] == [
        "Armed conflicts and attacks",
        "Armed conflicts and attacks",
        "Armed conflicts and attacks",
        "International relations",
    ]
    assert safe_zones.story == welcome.story == "Syrian Civil War"
    assert border.story is None and senators.story is None  # events straight under a category
    assert safe_zones.text.startswith("Russia, Iran and Turkey reach an agreement")  # the double space goes
    assert safe_zones.text.endswith("will be barred from flying.")
    assert [s.title for s in safe_zones.sources] == ["Reuters", "Fox News"]
    assert [s.title for s in welcome.sources] == ["Reuters", "Fox News", "Reuters"]
    assert sources(border) == [
        (
            "Radio Free Europe/Radio Liberty",
            "https://www.rferl.org/a/pakistan-afghanistan-border-shooting-census-team/28469536.html",
        )
    ]
    assert senators.text.startswith("United States senators Ben Cardin (D-MD) and Marco Rubio (R-FL) file")
    assert {"Ben Cardin", "Marco Rubio", "Philippine drug war"} <= set(senators.entities)
    may = era("header_May_2017.html")
    assert [d.date for d in may] == ["2017-05-04", "2017-05-05"]  # the navigation list is no day
    assert [p.text for _, p in may[0].events] == [
        "The United States House of Representatives narrowly passes the bill, 217 to 213."
    ]


def test_the_current_events_template_with_bold_categories_and_a_footnote_at_the_page_end():
    [day] = era("current_2019_June_30.html")
    assert day.categories == ["Armed conflicts and attacks", "Politics and elections", "Sports"]
    drone, dmz, cricket = (page for _, page in day.events)
    assert drone.story == "Yemeni Civil War > Saudi Arabian-led intervention in Yemen"
    assert dmz.text.endswith("the first sitting U.S. president to do so.")
    # The inline source first, then the footnote's: the work of its {{cite news}}.
    assert sources(dmz) == [
        ("AP", "https://apnews.com/trump-dmz"),
        ("BBC News", "https://www.bbc.com/news/world-asia-48814317"),
    ]
    assert [s.title for s in cricket.sources] == ["ESPNcricinfo"]
    june = era("current_June_2019.html")
    [(_, summit)] = june[0].events
    assert sources(summit) == [("NHK World", "https://www3.nhk.or.jp/nhkworld/en/news/g20-osaka/")]


def test_footnotes_take_their_sources_from_the_references_list():
    [day] = era("footnotes_2005_May_6.html")
    assert day.categories == ["Politics and elections", "Disasters", "Science and technology"]
    assert len(day.events) == 4  # the references list's four items are no events
    blair, howard, ferry, crew = (page for _, page in day.events)
    bbc = ("BBC News", "http://news.bbc.co.uk/2/hi/uk_news/politics/vote_2005/4519863.stm")
    assert blair.text == (
        "Tony Blair's Labour Party wins a third consecutive term with a reduced majority of 66 seats."
    )
    assert blair.story == "United Kingdom general election, 2005"
    assert sources(blair) == [bbc]  # {{cite news|work=BBC News}}: the work, not the article's title
    assert sources(howard) == [  # a named footnote used again, then a bare [url (Outlet)] footnote
        bbc,
        ("The Guardian", "http://politics.guardian.co.uk/election2005/story/0,15803,1478223,00.html"),
    ]
    assert ferry.topic == "Disasters" and ferry.story is None
    assert ferry.text.endswith("in Bangladesh, leaving at least 50 people missing.")
    # {{cite web|publisher=Reuters}}: the publisher, from the citation's COinS (rft.pub).
    assert sources(ferry) == [("Reuters", "http://www.reuters.com/newsArticle.jhtml?storyID=8412345")]
    assert sources(crew) == [("www.nasa.gov", "http://www.nasa.gov/home/hqnews/2005/may/HQ_05_124.html")]
    may = era("footnotes_May_2005.html")
    assert [d.date for d in may] == ["2005-05-05", "2005-05-06"]
    election, tikrit = (page for _, page in may[0].events)  # its ==References== list: no events either
    assert may[0].categories == ["Politics and elections", "Armed conflicts and attacks"]
    assert sources(election) == [("BBC", "http://news.bbc.co.uk/2/hi/uk_news/politics/vote_2005/4515263.stm")]
    assert sources(tikrit) == [("CNN", "http://www.cnn.com/2005/WORLD/meast/05/05/iraq.main/")]


def test_the_oldest_days_have_no_categories():
    [day] = era("oldest_2004_November_22.html")
    assert day.categories == []
    ukraine, cassini, iraq = (page for _, page in day.events)
    assert {p.topic for p in (ukraine, cassini, iraq)} == {None}
    assert {p.story for p in (ukraine, cassini, iraq)} == {None}
    assert ukraine.text.startswith("Ukraine's presidential runoff: tens of thousands protest in Kiev")
    assert sources(ukraine) == [("BBC", "http://news.bbc.co.uk/2/hi/europe/4032141.stm")]  # no parentheses
    assert cassini.text == "The Cassini probe returns new images of Titan."  # its "[1]" link is a source
    assert [s.title for s in cassini.sources] == ["saturn.jpl.nasa.gov"]
    assert iraq.text == "Iraqi officials set 30 January 2005 as the date of the national elections."
    assert sources(iraq) == [("CNN", "http://www.cnn.com/2004/WORLD/meast/11/22/iraq.election/")]
    november = era("oldest_November_2004.html")
    assert [d.date for d in november] == ["2004-11-21", "2004-11-22", "2004-11-23"]
    # November 21's footnote is listed in November 23's references list, two blocks further on.
    [(_, brawl)] = november[0].events
    assert [s.title for s in brawl.sources] == ["AP via USA Today"]
    assert [[p.text for _, p in d.events] for d in november[2:]] == [
        ["A tsunami warning is lifted after an earthquake off New Zealand."]
    ]


STORY_FOOTNOTE = """
<div class="current-events-main vevent" id="2010_March_3"><div class="current-events-content description">
<ul><li><a href="/wiki/Chile" title="Chile">2010 Chile earthquake</a><sup id="cite_ref-usgs_1-0" class="reference"><a href="./Portal:Current_events/2010_March_3#cite_note-usgs-1">[1]</a></sup>
<ul><li>Aftershocks continue.<sup id="cite_ref-usgs_1-1" class="reference"><a href="./Portal:Current_events/2010_March_3#cite_note-usgs-1">[1]</a></sup><sup id="cite_ref-missing-2" class="reference"><a href="#cite_note-missing-2">[2]</a></sup></li></ul></li></ul>
</div></div>
<ol class="mw-references references"><li id="cite_note-usgs-1"><span class="mw-reference-text reference-text"><a rel="nofollow" class="external text" href="https://earthquake.usgs.gov/x">USGS</a></span></li></ol>
"""


def test_a_story_line_footnote_a_parsoid_link_and_a_dangling_marker():
    [day] = parse_portal(STORY_FOOTNOTE)
    [(_, page)] = day.events
    assert page.story == "2010 Chile earthquake"  # the story line's marker is gone too
    assert page.text == "Aftershocks continue."
    assert sources(page) == [("USGS", "https://earthquake.usgs.gov/x")]  # "./Page#cite_note-…" resolves


def test_one_footnote_cited_twice_in_an_event_is_one_source():
    html = STORY_FOOTNOTE.replace(
        "[2]</a></sup>", '[2]</a></sup><sup class="reference"><a href="#cite_note-usgs-1">[1]</a></sup>'
    )
    [day] = parse_portal(html)
    [(_, page)] = day.events
    assert sources(page) == [("USGS", "https://earthquake.usgs.gov/x")]
