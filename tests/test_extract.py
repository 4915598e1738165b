"""Metadata and text of a live source."""

from __future__ import annotations

from crawler.items import CheckItem
from pipeline.check_classify import HostProbe, judge
from pipeline.extract import Extracted, extract, extract_page, is_html, page_words, similarity, tokens

BODY = "<p>" + " ".join(f"Word{n} of a long enough article body." for n in range(60)) + "</p>"


def test_opengraph_metadata_and_main_text():
    html = f"""<html><head><title>Ignored | Site</title><meta property="og:title" content="Real title">
    <meta property="og:site_name" content="The Site"><meta name="description" content="Summary">
    <meta property="article:published_time" content="2013-03-27T10:00:00Z"></head>
    <body><nav>Menu items</nav><article>{BODY}</article><footer>Copyright</footer></body></html>"""
    found = extract(html, "https://site.example/a")
    assert (found.title, found.site_name, found.description, found.published) == (
        "Real title", "The Site", "Summary", "2013-03-27",
    )  # fmt: skip
    assert "Word7 of a long enough article body." in found.text and "Copyright" not in found.text
    assert found.text_hash


def test_json_ld_date_and_plain_title():
    html = f"""<html><head><title>Plain title</title><script type="application/ld+json">
    {{"@type": "NewsArticle", "datePublished": "2017-10-01"}}</script></head><body>{BODY}</body></html>"""
    found = extract(html, "https://site.example/b")
    assert found.title == "Plain title"
    assert found.published == "2017-10-01"


def test_html_detection_and_page_likeness():
    assert is_html("text/html; charset=utf-8", b"")
    assert not is_html("application/pdf", b"%PDF")
    assert is_html(None, b"  <!DOCTYPE html><html>")
    a = tokens("<html><h1>Sorry, page not found</h1></html>")
    assert similarity(a, tokens("<html><h1>Sorry, page not found</h1></html>")) == 1.0
    assert similarity(a, tokens(f"<html>{BODY}</html>")) < 0.1


def test_a_soft_404_is_judged_on_the_words_the_pool_took():
    """The spider has a soft-404 host's page words taken in the parse pool, with its text; the
    pipeline compares those with the probe's, and takes them itself only when they are missing."""
    not_found = "<html><h1>Sorry, that page was not found on our site</h1></html>"
    probe = HostProbe(200, "https://site.example/random", frozenset(page_words(not_found.encode())))
    found = extract_page(not_found.encode(), "https://site.example/a", words=True)
    assert found.words == page_words(not_found.encode()) == sorted(tokens(not_found))
    assert extract_page(not_found.encode(), "https://site.example/a").words is None

    def check(body: str, words) -> str:
        item = CheckItem(
            source_id=1, url="https://site.example/a", http_status=200,
            final_url="https://site.example/a", content_type="text/html", body=body.encode(),
            extracted=Extracted(words=words),
        )  # fmt: skip
        return judge(item, lambda host: probe, 0.8).outcome

    article = f"<html><article>{BODY}</article></html>"
    assert check(not_found, None) == "soft404"  # taken by the pipeline
    assert check(article, None) == "ok"
    # The words that came with the item are the ones compared, not the body's.
    assert check(article, page_words(not_found.encode())) == "soft404"
    assert check(not_found, page_words(article.encode())) == "ok"
