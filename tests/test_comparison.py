"""Comparison keys: the URL forms of one article share a key, different articles do not."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedsvc.comparison import comparison_key, general_key
from feedsvc.urls import entry_id, identity_key

# Real forms, from the records in seeds/ (webUrl, ampWebUrl and cdnAmpWebUrl of one article).
SAME_ARTICLE = [
    (
        "https://www.livemint.com/opinion/columns/facial-recognition-technology-has-shrugged-off-protests-11668444305981.html",
        "https://www.livemint.com/opinion/columns/facial-recognition-technology-has-shrugged-off-protests/amp-11668444305981.html",
    ),
    (
        "https://www.livemint.com/opinion/columns/facial-recognition-technology-has-shrugged-off-protests-11668444305981.html",
        "https://www-livemint-com.cdn.ampproject.org/c/s/www.livemint.com/opinion/columns/facial-recognition-technology-has-shrugged-off-protests/amp-11668444305981.html",
    ),
    (
        "https://www.gadgetsnow.com/tech-news/new-speech-recognition-tech-uses-facial-movements-to-transcribe-mouthed-words/articleshow/95514922.cms",
        "https://www-gadgetsnow-com.cdn.ampproject.org/c/s/www.gadgetsnow.com/tech-news/new-speech-recognition-tech-uses-facial-movements-to-transcribe-mouthed-words/amp_articleshow/95514922.cms",
    ),
    (
        "https://www.mid-day.com/technology/article/new-speech-recognition-tech-uses-facial-movements-to-transcribe-mouthed-words-23255594",
        "https://www-mid--day-com.cdn.ampproject.org/c/s/www.mid-day.com/amp/technology/article/new-speech-recognition-tech-uses-facial-movements-to-transcribe-mouthed-words-23255594",
    ),
    # Tracking parameters in the forms news sites' share links carry.
    (
        "https://www.example.com/news/robotaxi?id=42",
        "https://www.example.com/news/robotaxi?utm_source=twitter&id=42&utm_medium=social",
    ),
    ("https://news.example.net/a", "https://news.example.net/a?fbclid=IwAR0abc&gclid=xyz"),
    # The BBC's share links (AT Internet parameters), both forms in the collection's related lists.
    (
        "https://www.bbc.com/news/technology-63861322",
        "https://www.bbc.com/news/technology-63861322?at_link_origin=BBCWorld&at_format=link&at_ptr_name=twitter&at_campaign_type=owned&at_bbc_team=editorial&at_link_type=web_link&at_link_id=809AAB2E-75C4-11ED-A552-98A34744363C",
    ),
    ("https://news.example.net/a", "https://news.example.net/a?source=rss&mc_cid=1&mc_eid=2"),
    ("https://news.example.net/a", "https://news.example.net/a?amp"),
    ("https://news.example.net/a", "https://news.example.net/a/amp/"),
    ("https://news.example.net/a.html", "https://news.example.net/a.amp.html"),
    ("https://news.example.net/a", "https://amp.news.example.net/a"),
    ("http://example.com/a", "https://www.example.com/a/"),
    ("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2"),
]
DIFFERENT_ARTICLES = [
    ("https://example.com/a", "https://example.com/b"),
    ("https://example.com/a?id=1", "https://example.com/a?id=2"),
    ("https://example.com/a", "https://example.org/a"),
    ("https://www-example-com.cdn.ampproject.org/c/s/example.com/a", "https://example.com/b"),
]


@pytest.mark.parametrize(("one", "other"), SAME_ARTICLE)
def test_url_forms_of_one_article_share_a_comparison_key(one: str, other: str) -> None:
    assert comparison_key(one) == comparison_key(other)


@pytest.mark.parametrize(("one", "other"), DIFFERENT_ARTICLES)
def test_different_articles_keep_different_keys(one: str, other: str) -> None:
    assert comparison_key(one) != comparison_key(other)


# Keys exactly, for the forms whose pairs above would agree on a wrong key too: escapes in upper
# case, the AMP cache's viewer and http forms and the cache URLs that name no article, `.amp`.
COMPARISON_KEYS = [
    ("https://example.com/caf%c3%a9?q=%2f", "example.com/caf%C3%A9?q=%2F"),
    ("https://www-example-com.cdn.ampproject.org/v/s/www.example.com/a", "example.com/a"),
    ("https://www-example-com.cdn.ampproject.org/c/www.example.com/a", "example.com/a"),
    ("https://www-example-com.cdn.ampproject.org/c/s/www.example.com", "example.com/"),
    ("https://www-example-com.cdn.ampproject.org/c/www.example.com", "example.com/"),
    (
        "https://www-example-com.cdn.ampproject.org/x/y.html",
        "www-example-com.cdn.ampproject.org/x/y.html",
    ),
    (
        "https://www-example-com.cdn.ampproject.org/c/s/nodot/a",
        "www-example-com.cdn.ampproject.org/c/s/nodot/a",
    ),
    ("https://www-example-com.cdn.ampproject.org/", "www-example-com.cdn.ampproject.org/"),
    ("https://news.example.net/a.amp", "news.example.net/a"),
    ("https://news.example.net/amp/BOX", "news.example.net/BOX"),
    ("https://example.com/amp", "example.com/"),
    ("https://example.com/a#frag", "example.com/a"),
    ("https://m.example.com/a/", "example.com/a"),
    ("https://www.co/a", "www.co/a"),
    ("https://example.com/a#b#c", "example.com/a"),
    ("https://example.com/caf%c3%a9", "example.com/caf%C3%A9"),
    ("https://example.com/a?q=%2f", "example.com/a?q=%2F"),
    ("https://example.com/a?u=https://b.example/c", "example.com/a?u=https://b.example/c"),
    ("https://example.com/BOX", "example.com/BOX"),
    ("https://example.com/BOX/?id=1", "example.com/BOX?id=1"),
    ("https://example.com/a?b=2&a=1", "example.com/a?a=1&b=2"),
]


@pytest.mark.parametrize(("url", "key"), COMPARISON_KEYS)
def test_comparison_keys_are_exactly(url: str, key: str) -> None:
    assert comparison_key(url) == key


# Pieces of URLs in every form `general_key` treats apart, for the short way to meet each.
SEGMENTS = st.sampled_from(
    ["", "a", "B", "amp", "AMP", "Amp", "amp_x", "x.amp.html", "y.amp", "amp-12.html", "%2f", "%aB",
     "c", "s", "v", "www.example.com", "www.news.org", "a?b", "a#b", "a&b=c"]
)  # fmt: skip
HOSTS = st.sampled_from(
    ["example.com", "www.example.com", "www.com", "www.", "amp.example.com", "m.example.com",
     "mobile.example.com", "m.com", "www-news-org.cdn.ampproject.org", "", "a?b", "a#b"]
)  # fmt: skip
QUERIES = st.sampled_from(["", "?", "?utm_source=x", "?b=2&a=1", "?amp", "#", "#top", "?a=%2f#x"])


@settings(max_examples=1000)
@given(
    st.sampled_from(["https://", "https://", "http://", "", "https:/"]),
    HOSTS,
    st.lists(SEGMENTS, max_size=4),
    st.one_of(st.just(""), QUERIES),
    st.text(max_size=3),
)
@example("https://", "example.com", ["a", ""], "", "")
@example("https://", "www.example.com", ["a"], "", "")
@example("https://", "www.com", ["a"], "", "")
@example("https://", "m.example.com", ["a"], "", "")
@example("https://", "example.com", ["a", "AMP"], "", "")
@example("https://", "example.com", ["%2f"], "", "")
@example("https://", "www-news-org.cdn.ampproject.org", ["c", "s", "www.news.org", "a"], "", "")
def test_the_short_way_to_a_key_gives_the_general_key(
    scheme: str, host: str, segments: list[str], query: str, tail: str
) -> None:
    url = f"{scheme}{host}/{'/'.join(segments)}{query}"
    assert comparison_key(url) == general_key(url)
    assert comparison_key(url + tail) == general_key(url + tail)


@given(st.text())
def test_any_text_has_the_general_key(text: str) -> None:
    assert comparison_key(text) == general_key(text)


def test_entry_ids_do_not_use_the_comparison_key() -> None:
    one, other = SAME_ARTICLE[4]
    assert entry_id(one) != entry_id(other)
    assert identity_key(other).endswith("utm_medium=social")
