"""URL canonicalisation and the site's link space."""

from __future__ import annotations

import datetime as dt

import pytest

from pipeline.urls import BadURL, SiteRoot, canonical_url, default_site_root, domain_of

ONE_SOURCE = "http://www.bbc.co.uk/news/world-asia-42729597?a=1&b=2"


@pytest.mark.parametrize(
    "spelling",
    [
        "http://www.bbc.co.uk/news/world-asia-42729597?a=1&b=2",
        "HTTP://WWW.BBC.CO.UK/news/world-asia-42729597?b=2&a=1",
        "http://www.bbc.co.uk:80/news/world-asia-42729597?a=1&b=2#comments",
        "http://www.bbc.co.uk/news/world-asia-42729597?utm_source=tw&a=1&utm_medium=social&b=2",
        "http://www.bbc.co.uk/news/world-asia-42729597?a=1&fbclid=IwAR0&b=2&gclid=xyz",
        "http://www.bbc.co.uk/news/world%2Dasia%2D42729597?a=1&b=2",
        " http://www.bbc.co.uk/news/world-asia-42729597?a=1&b=2 ",
    ],
)
def test_spellings_of_one_url_canonicalise_to_one(spelling):
    assert canonical_url(spelling) == ONE_SOURCE


def test_canonical_url_keeps_what_matters():
    assert canonical_url("https://example.org:8443/A/B") == "https://example.org:8443/A/B"
    assert canonical_url("https://example.org") == "https://example.org/"
    assert canonical_url("http://example.org/caf%C3%A9") == canonical_url("http://example.org/café")


def test_domain_of():
    assert domain_of("http://www.bbc.co.uk/news") == "bbc.co.uk"
    assert domain_of("https://edition.cnn.com/x") == "edition.cnn.com"


def test_site_root_below_a_path_prefix():
    site = SiteRoot.of("http://raw.example/owner/repo/main")
    page = "http://raw.example/owner/repo/main/news/2013/03/27/index.md"
    assert site.resolve("/news/2013/03/26/index.md", page) == (
        "http://raw.example/owner/repo/main/news/2013/03/26/index.md"
    )
    assert site.news_date(site.resolve("/news/2013/03/4/a.md", page)) == dt.date(2013, 3, 4)
    assert site.resolve("mailto:desk@example.org", page) is None
    assert site.resolve("javascript:alert(1)", page) is None
    assert site.news_date("http://other.example/news/2013/03/4/a.md") is None
    assert site.news_date(site.resolve("/news/2013/02/30/a.md", page)) is None
    assert site.news_date(site.resolve("/news/2013/03/4/../../../../etc/x.md", page)) is None
    assert site.news_date(site.resolve("/news/2013/03/4/a.html", page)) is None


def test_default_site_root():
    assert default_site_root("http://h.example:8080/news/2013/03/27/index.md") == "http://h.example:8080/"
    assert default_site_root("file:///srv/checkout/news/2013/03/27/index.md") == "file:///srv/checkout/"
    assert default_site_root("file:///srv/checkout/README.md") == "file:///srv/checkout/"


@pytest.mark.parametrize(
    "href",
    ["https://apnews.com:8O80/x", "http://example.com:80a/", "http://[::1/news/x.md", "http://a.com:99999/"],
)
def test_a_link_that_is_not_a_url_is_rejected_with_its_reason_on_both_sites(href):
    from pipeline.portal import PortalSite

    sites = [
        (SiteRoot.of("https://thecontext.net/"), "https://thecontext.net/news/2013/03/27/x.md"),
        (PortalSite(), "https://en.wikipedia.org/wiki/Portal:Current_events/2023_January_1"),
    ]
    for site, base in sites:
        rejected: list[dict] = []
        assert site.resolve(href, base, rejected) is None
        assert rejected == [{"href": href, "reason": rejected[0]["reason"]}]
        assert rejected[0]["reason"].startswith("malformed URL")
    with pytest.raises(BadURL):
        canonical_url(href)
