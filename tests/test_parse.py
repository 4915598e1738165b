"""The parser on the real corpus files and on small hand-made pages."""

from __future__ import annotations

import pytest
from conftest import CORPUS, MALI_PAGES, NEWS, SEED, THAILAND_PAGES

from pipeline.parse import DayPage, EventPage, IndexPage, OtherPage, PageError, parse_page, split_story


def parse_file(path) -> object:
    return parse_page((CORPUS / path).read_text(encoding="utf-8"))


def test_seed_page_field_by_field():
    page = parse_file(SEED)
    assert isinstance(page, EventPage)
    assert page.date == "2013-03-27"
    assert page.story == "Northern Mali conflict"
    assert page.text == (
        "The Government of Mali announces that 63 of their soldiers have been killed fighting "
        "jihadists since the French led intervention Operation Serval in January 2013."
    )
    assert page.title.startswith("Northern Mali conflict:The Government")
    assert page.topic is None
    assert page.description is None
    assert [(s.title, s.href) for s in page.sources] == [
        ("AFP via SBS", "http://www.sbs.com.au/news/article/1751054/63-Malian-soldiers-600-Islamists-killed")
    ]
    assert len(page.related) == 10
    first = page.related[0]
    assert first.title.startswith("Northern Mali conflict:French officials announce")
    assert first.href == (
        "/news/2013/03/4/northern-mali-conflict-pfrench-officials-announce-that-a-soldier-was-"
        "killed-in-action-during-contact-with-islamic-militants-over-the-weekend.md"
    )
    assert first.contexts == ["French", "Northern Mali conflict (2012-present)", "Operation Serval"]
    assert page.related[8].contexts == ["French", "Mali"]
    assert page.related[9].contexts == ["Mali", "Northern Mali conflict (2012-present)"]
    # "in  the hopes": the double space of the published title is collapsed.
    assert "in the hopes" in page.related[9].title


def test_story_variants_of_one_event_share_their_text():
    texts = set()
    stories = []
    for path in MALI_PAGES:
        page = parse_file(path)
        texts.add(page.text)
        stories.append(page.story)
    assert len(texts) == 1
    assert stories == ["Northern Mali conflict", "Northern Mali conflict", None]
    thailand = [parse_file(p) for p in THAILAND_PAGES]
    assert {p.text for p in thailand} == {
        "The Thailand government prepares for peace talks with Muslim separatist groups with the hope "
        "of ending a decade-long insurgency."
    }
    # The no-story version lists a Cover Image, which is not a source.
    assert [len(p.sources) for p in thailand] == [2, 2, 2]


def test_later_layout_with_topic_description_sources_and_changes():
    page = parse_file(
        "news/2018/01/18/a-bus-carrying-uzbek-migrant-workers-catches-fire-in-kazakhstan-s-aktobe-region-"
        "killing-52-people-five-people-escape-and-are-treated-by-re.md"
    )
    assert page.date == "2018-01-18"
    assert page.topic == "2018 Aktobe bus fire"
    assert page.story is None
    assert page.description == (
        "Five people survived the accident on the bus, thought to have been carrying many Uzbek nationals."
    )
    assert [s.title for s in page.sources] == ["BBC"]  # Cover Image dropped
    assert len(page.changes) == 2
    assert page.changes[0].note == "2018-02-06 13:49:31 (First version)"
    assert len(page.related) == 5
    assert page.related[0].contexts == ["Kazakhstan"]


def test_formats_heading_layout_b2():
    page = parse_file(
        "news/2017/10/1/a-knife-wielding-man-at-saint-charles-train-station-in-marseille-france-kills-two-"
        "women-police-kill-the-suspect-and-are-treating-the-atta.md"
    )
    assert page.date == "2017-10-01"
    assert page.text.startswith("A knife-wielding man at Saint Charles")
    assert [s.title for s in page.sources] == ["CNN", "Daily Mail"]
    assert len(page.changes) == 2
    assert len(page.related) == 5


def test_story_prefix_matching_the_topic_line():
    page = parse_file(
        "news/2013/03/27/2013-nantou-earthquake-at-least-one-person-is-killed-and-19-others-are-injured-"
        "when-a-6-0-magnitude-earthquake-strikes-near-taipei-taiwan.md"
    )
    assert page.topic == "2013 Nantou earthquake"
    assert page.story == "2013 Nantou earthquake"
    assert page.text.startswith("At least one person is killed")
    # Wiki markup leaks into labels and stays as published.
    assert page.sources[0].title == "AFP via ''The Star Malaysia"


def test_pages_without_related_section():
    page = parse_file("news/2013/03/27/patricia-mccarthy-wins-the-2013-national-poetry-competition.md")
    assert page.related == []
    assert page.story is None
    assert len(page.sources) == 1


def test_every_corpus_page_parses():
    kinds = {}
    for path in NEWS.rglob("*.md"):
        page = parse_page(path.read_text(encoding="utf-8"))
        kinds[page.kind] = kinds.get(page.kind, 0) + 1
        if isinstance(page, EventPage):
            assert page.text and page.date and page.sources, path
    assert kinds == {"event": 79, "day": 6}


def test_day_pages_both_variants():
    early = parse_file("news/2013/03/27/index.md")
    assert isinstance(early, DayPage)
    assert early.date == "2013-03-27"
    assert len(early.items) == 16
    assert early.previous_href == "/news/2013/03/26/index.md"
    mali = early.items[1]
    assert mali.title.startswith("Northern Mali conflict:The Government")
    assert "French" in mali.contexts and "Operation Serval" in mali.contexts
    thai = early.items[0]
    assert thai.description.startswith("Five people are reported killed")
    late = parse_file("news/2018/01/18/index.md")
    assert late.date == "2018-01-18"
    assert [i.topic for i in late.items] == [
        "Emirates",
        "2018 Aktobe bus fire",
        "France-United Kingdom relations",
        "Crime in Serbia",
        "Lennox Head, New South Wales",
    ]
    unpadded = parse_file("news/2017/10/1/index.md")
    assert unpadded.date == "2017-10-01"
    assert len(unpadded.items) == 7


def test_front_pages_and_other_pages():
    assert isinstance(parse_file("index.md"), IndexPage)
    assert isinstance(parse_file("PROVENANCE.md"), OtherPage)
    assert isinstance(parse_file("faq/index.md"), OtherPage)


HAND_MADE = (
    "\r\n### [2013-03-4](/news/2013/03/4/index.md)  \r\n\r\n"
    "#   Temperatures reach [?]67 C in &quot;Oodnadatta&quot; &hellip; \r\n\r\n"
    "Some  description &#039;quoted&#039;.\r\n\r\n"
    "### Sources:\r\n\r\n"
    "1. [BBC](http://www.bbc.co.uk/news/a)\r\n"
    "1. [Cover Image](http://x/y.jpg)\r\n"
    "2. [AFP via SBS](http://sbs.com.au/b)\r\n\r\n"
    "### Related:\r\n\r\n"
    "1. [Heat [record] broken ](/news/2013/01/8/heat.md) _Context: Australia, Heat wave (2013, south)_\r\n"
    "2. [Unbalanced ] bracket](/news/2013/01/9/x.md) _Context: A_\r\n"
    "3. [Other [unbalanced ](/news/2013/01/10/y.md) _Context: B_\r\n"
)


def test_hand_made_page_with_crlf_entities_and_brackets():
    page = parse_page(HAND_MADE)
    assert page.date == "2013-03-04"
    assert page.title == 'Temperatures reach [?]67 C in "Oodnadatta" …'
    assert page.story is None
    assert page.description == "Some description 'quoted'."
    assert [(s.title, s.href) for s in page.sources] == [
        ("BBC", "http://www.bbc.co.uk/news/a"),
        ("AFP via SBS", "http://sbs.com.au/b"),
    ]
    assert [(r.title, r.href) for r in page.related] == [
        ("Heat [record] broken", "/news/2013/01/8/heat.md"),
        ("Unbalanced ] bracket", "/news/2013/01/9/x.md"),
        ("Other [unbalanced", "/news/2013/01/10/y.md"),
    ]
    assert page.related[0].contexts == ["Australia", "Heat wave (2013, south)"]


@pytest.mark.parametrize(
    "title, story, text",
    [
        ("Syrian civil war:The UN prepares", "Syrian civil war", "The UN prepares"),
        ("Syrian civil war:. The UN prepares", "Syrian civil war", "The UN prepares"),
        ("Officials say: the UN prepares", None, "Officials say: the UN prepares"),
        ("At 10:30 a bomb explodes", None, "At 10:30 a bomb explodes"),
        ("See http://x.org:8080/a for more", None, "See http://x.org:8080/a for more"),
        ("Konstanz shootingA man opens fire", None, "Konstanz shootingA man opens fire"),
    ],
)
def test_split_story(title, story, text):
    assert split_story(title) == (story, text)


@pytest.mark.parametrize(
    "markdown, reason",
    [
        ("### [2013-02-30](/news/2013/02/30/index.md)\n\n# Title\n", "invalid date"),
        (
            "### [2013-03-27](/news/2013/03/27/index.md)\n\n### Source:\n\n1. [A](http://a/)\n",
            "without title",
        ),
    ],
)
def test_unreadable_pages_raise_with_a_reason(markdown, reason):
    with pytest.raises(PageError, match=reason):
        parse_page(markdown)
