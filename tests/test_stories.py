"""Stories: comparison keys of article URLs and the grouping of records into stories."""

from __future__ import annotations

import random
import uuid
import zlib
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from feedsvc.records import Record, Related, pack_related, shared_topic
from feedsvc.repository import Collection, RecordChanges
from feedsvc.stories import (
    STORY_ID_NAMESPACE,
    Story,
    StoryIndex,
    _Grouping,
    _stem,
    comparison_key,
    follow,
    general_key,
    group_stories,
    headline_words,
    record_keys,
    same_event,
    stories_of,
    story_id,
)
from feedsvc.urls import entry_id, identity_key

START = datetime(2022, 11, 15, tzinfo=UTC)


def make_record(
    url: str,
    hours: float = 0,
    related: tuple[str, ...] = (),
    quality: int | None = None,
    original_url: str | None = None,
    topics: tuple[str, ...] = (),
    title: str = "",
) -> Record:
    coverage = pack_related(Related(f"about {item}", item, None, None) for item in related)
    # The default titles share "title", "https" and "example", so `same_event` accepts any two of
    # them: the tests built on them are about URLs and dates, not headlines.
    return Record(
        path=f"{url}.md",
        id=entry_id(url),
        title=title or f"title of {url}",
        excerpt="",
        published=START + timedelta(hours=hours),
        url=url,
        original_url=original_url,
        provider=None,
        topics=tuple(shared_topic(name.upper(), name) for name in topics),
        images=(),
        coverage=coverage,
        quality=quality,
    )


# A headline word that most records hold is common (`COMMON_SHARE`) and links none of them: the
# tests built on the default titles group with common words left out (`common_min`).
NO_COMMON_WORDS = 10**9


def group_by_urls(records: Iterable[Record], **settings: Any) -> tuple[Story, ...]:
    return group_stories(records, common_min=NO_COMMON_WORDS, **settings)


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


def test_original_url_is_a_key_of_its_record() -> None:
    record = make_record("https://a.example/x", original_url="https://b.example/y?utm_source=z")
    assert comparison_key("https://b.example/y") in record_keys(record)


def test_records_sharing_a_related_url_are_one_story() -> None:
    shared = "https://c.example/original?utm_source=rss"
    one = make_record("https://a.example/1", 0, ("https://c.example/original",))
    two = make_record("https://b.example/2", 5, (shared,))
    alone = make_record("https://d.example/3", 2)
    stories = group_by_urls([two, alone, one])
    assert sorted(len(story.records) for story in stories) == [1, 2]
    together = next(story for story in stories if len(story.records) == 2)
    assert together.records == (one, two)
    assert together.id == story_id(one)


def test_the_window_keeps_old_records_apart() -> None:
    url = "https://c.example/x"
    one = make_record("https://a.example/1", 0, (url,))
    late = make_record("https://b.example/2", 24 * 4, (url,))
    assert len(group_by_urls([one, late])) == 2
    assert len(group_by_urls([one, late], window_days=5)) == 1


def test_a_hub_url_links_no_records() -> None:
    hub = "https://news.example/technology/"
    records = [make_record(f"https://p{n}.example/a", n, (hub,)) for n in range(31)]
    assert len(group_by_urls(records)) == 31
    assert len(group_by_urls(records[:30])) == 1


def test_a_url_that_the_records_of_one_cluster_list_is_no_hub() -> None:
    """40 records that list each other (the aggregator's cluster of one event) are one story of
    the cap; records of more than ten times the limit are too many, whatever lists they carry."""
    urls = [f"https://p{n}.example/a" for n in range(40)]
    records = [
        make_record(url, n, tuple(other for other in urls if other != url))
        for n, url in enumerate(urls)
    ]
    assert sorted(len(story.records) for story in group_by_urls(records)) == [40]
    assert sorted(len(story.records) for story in group_by_urls(records, max_records=30)) == [
        10,
        30,
    ]
    assert len(group_by_urls(records, hub_limit=4)) == 1
    assert len(group_by_urls(records, hub_limit=3)) == 40  # 40 records > 10 times 3


def test_a_story_stops_growing_at_its_cap() -> None:
    records = [
        make_record(f"https://p{n}.example/a", n / 10, (f"https://p{n + 1}.example/a",))
        for n in range(120)
    ]
    sizes = sorted(len(story.records) for story in group_by_urls(records))
    assert max(sizes) == 50
    assert sum(sizes) == 120


def test_lead_is_the_best_rated_record_else_the_first() -> None:
    url = "https://c.example/x"
    first = make_record("https://a.example/1", 0, (url,))
    better = make_record("https://b.example/2", 1, (url,), quality=9)
    worse = make_record("https://e.example/3", 2, (url,), quality=3)
    (story,) = group_by_urls([worse, better, first])
    assert story.lead == better
    (unrated,) = group_by_urls([make_record("https://b.example/2", 1, (url,)), first])
    assert unrated.lead == first


def test_coverage_lists_every_article_once_newest_first() -> None:
    url = "https://c.example/x"
    one = make_record("https://a.example/1", 0, (url, "https://b.example/2?utm_source=x"))
    two = make_record("https://b.example/2", 3, (url,))
    (story,) = group_by_urls([one, two])
    urls = [item.url for item in story.coverage]
    assert urls == ["https://b.example/2", "https://a.example/1", url]
    assert story.published == one.published
    assert story.updated == two.published


def test_lead_is_the_best_rated_record_whenever_it_came() -> None:
    url = "https://c.example/x"
    early = make_record("https://a.example/1", 0, (url,), quality=0)
    late = make_record("https://b.example/2", 1, (url,), quality=1)
    (story,) = group_by_urls([early, late])
    assert story.lead == late


def test_coverage_lists_each_related_article_and_the_undated_ones_by_url() -> None:
    one = make_record("https://a.example/1", 0, ("https://z.example/9", "https://c.example/x"))
    two = make_record("https://b.example/2", 3, ("https://c.example/x", "https://m.example/5"))
    (story,) = group_by_urls([one, two])
    urls = [item.url for item in story.coverage]
    assert urls == [
        "https://b.example/2",
        "https://a.example/1",
        "https://c.example/x",
        "https://m.example/5",
        "https://z.example/9",
    ]


def test_group_stories_caps_stories_at_the_size_it_is_given() -> None:
    url = "https://c.example/x"
    records = [make_record(f"https://p{n}.example/a", n, (url,)) for n in range(5)]
    assert sorted(len(story.records) for story in group_by_urls(records, max_records=2)) == [
        1,
        2,
        2,
    ]


def as_collection(records: tuple[Record, ...], changes: RecordChanges | None = None) -> Collection:
    return Collection(records=records, topics={}, providers={}, changes=changes)


def test_stories_are_grouped_once_per_collection_version() -> None:
    records = (make_record("https://a.example/1"),)
    assert stories_of(as_collection(records)) is stories_of(as_collection(records))
    assert stories_of(as_collection(records)) is not stories_of(as_collection((*records,)[:]))
    assert stories_of(as_collection(records)) is not stories_of(as_collection(tuple(list(records))))


def test_story_ids_are_uuid5_in_the_stories_namespace() -> None:
    for url in ("https://a.example/1", "https://b.example/é?x=1"):
        record = make_record(url)
        expected = uuid.uuid5(STORY_ID_NAMESPACE, "story:" + record.id).urn
        assert story_id(record) == expected


def test_an_older_version_finds_its_own_stories_by_slug() -> None:
    """A version's `story(slug)` is its own story, not the one a later version has now."""
    url = "https://c.example/x"
    one = make_record("https://a.example/1", 0, (url,))
    first = as_collection((one,))
    before = stories_of(first)
    two = make_record("https://b.example/2", 5, (url,))
    second = as_collection((two, one), RecordChanges(first.records, (), (two,)))
    after = stories_of(second)
    slug = before.stories[0].slug
    assert after.story(slug) is not None and len(after.story(slug).records) == 2  # type: ignore[union-attr]
    assert before.story(slug) is before.stories[0] and len(before.stories[0].records) == 1
    assert after.story("no-such-story") is None and before.story("no-such-story") is None


def test_a_version_is_grouped_from_the_one_before_by_its_changes() -> None:
    url = "https://c.example/x"
    one, two = make_record("https://a.example/1", 0, (url,)), make_record("https://b.example/2")
    first = as_collection((two, one))
    before = stories_of(first)
    three = make_record("https://d.example/3", 5, (url,))
    second = as_collection((three, two, one), RecordChanges(first.records, (), (three,)))
    after = stories_of(second)
    assert shape(after) == shape(_Grouping.of(second.records).index())
    # the story `two` alone is the same object: what was rendered from it stays valid
    assert after.story(before.stories[-1].slug) is before.stories[-1]
    assert [len(story.records) for story in after.stories] == [2, 1]


def test_a_collection_is_grouped_with_the_window_it_is_asked_for() -> None:
    url = "https://c.example/x"
    one = make_record("https://a.example/1", 0, (url,))
    late = make_record("https://b.example/2", 24 * 4, (url,))
    assert len(stories_of(as_collection((one, late)), window_days=5).stories) == 1
    assert len(stories_of(as_collection((one, late)), window_days=3).stories) == 2


def test_each_version_of_a_chain_is_grouped_from_the_one_before() -> None:
    """Three versions, each the changes of the one before: the story no change touched is the
    same object in all three (a grouping from scratch would make it anew)."""
    url = "https://c.example/x"
    alone = make_record("https://z.example/0", 0)
    versions = [as_collection((alone,))]
    for number in range(1, 3):
        added = make_record(f"https://p{number}.example/a", number, (url,))
        base = versions[-1].records
        versions.append(as_collection((*base, added), RecordChanges(base, (), (added,))))
    indexes = [stories_of(version) for version in versions]
    kept = [index.story(story_id(alone).rpartition(":")[2]) for index in indexes]
    assert kept[0] is kept[1] is kept[2] is not None
    assert [len(story.records) for story in indexes[2].stories] == [2, 1]


def test_a_record_exactly_the_window_after_another_joins_its_story() -> None:
    url = "https://c.example/x"
    one = make_record("https://a.example/1", 0, (url,))
    first = as_collection((one,))
    stories_of(first)
    two = make_record("https://b.example/2", 24 * 3, (url,))
    second = as_collection((one, two), RecordChanges(first.records, (), (two,)))
    (story,) = stories_of(second).stories
    assert story.records == (one, two)
    (story,) = group_stories([two, one])
    assert story.records == (one, two)


def test_a_topic_whose_last_record_went_has_no_stories() -> None:
    one = make_record("https://a.example/1", 0, topics=("robots",))
    two = make_record("https://b.example/2", 1, topics=("vision",))
    first = as_collection((one, two))
    assert set(stories_of(first).by_topic) == {"robots", "vision"}
    second = as_collection((two,), RecordChanges(first.records, (one,), ()))
    assert set(stories_of(second).by_topic) == {"vision"}
    third = as_collection((two, one), RecordChanges(second.records, (), (one,)))
    assert set(stories_of(third).by_topic) == {"robots", "vision"}


def test_a_story_regrouped_into_the_same_records_stays_the_same_object() -> None:
    """A record that holds a story's key but reports another event regroups that story: into the
    same records, so the same object (what was rendered from it stays valid)."""
    url = "https://c.example/x"
    one = make_record("https://a.example/1", 0, (url,), title="Meta pauses Galactica demo")
    two = make_record("https://b.example/2", 1, (url,), title="Meta fires Galactica AI")
    first = as_collection((one, two))
    (story,) = stories_of(first).stories
    other = make_record("https://d.example/3", 2, (url,), title="Nvidia gaming profits fall")
    second = as_collection((one, two, other), RecordChanges(first.records, (), (other,)))
    after = stories_of(second)
    assert after.story(story.slug) is story
    assert len(after.stories) == 2


def test_the_latest_version_finds_its_stories_without_a_slug_map_of_its_own() -> None:
    """The grouping's map of ids serves the latest version (a map per version would cost one
    entry per story, 100,000 stories, every version); a story gone leaves it."""
    url = "https://c.example/x"
    one = make_record("https://a.example/1", 0, (url,))
    two = make_record("https://b.example/2", 1, ("https://d.example/y",))
    first = as_collection((one, two))
    before = stories_of(first)
    gone = next(story for story in before.stories if story.first is two)
    second = as_collection((one,), RecordChanges(first.records, (two,), ()))
    after = stories_of(second)
    (story,) = after.stories
    assert after.story(story.slug) is story and "_by_slug" not in vars(after)
    assert gone.id not in after.latest_by_id and after.story(gone.slug) is None


def test_the_stories_of_the_last_three_versions_are_kept() -> None:
    versions = [as_collection((make_record(f"https://p{n}.example/a"),)) for n in range(5)]
    indexes = [stories_of(version) for version in versions]
    assert stories_of(versions[2]) is indexes[2]  # after versions 3 and 4
    assert stories_of(versions[0]) is not indexes[0]  # grouped again: not kept


def test_a_new_version_is_grouped_before_it_is_served_once_stories_were_asked() -> None:
    url = "https://c.example/x"
    one = make_record("https://a.example/1", 0, (url,))
    first = as_collection((one,))
    two = make_record("https://b.example/2", 24 * 4, (url,))
    second = as_collection((one, two), RecordChanges(first.records, (), (two,)))
    with (
        mock.patch("feedsvc.stories._grouping", None),  # no stories asked yet: nothing to do
        mock.patch.object(_Grouping, "of", side_effect=AssertionError("grouped")),
    ):
        follow(second, window_days=5)
    stories_of(first, window_days=5)
    follow(second, window_days=5)
    with (
        mock.patch.object(_Grouping, "of", side_effect=AssertionError("grouped on request")),
        mock.patch.object(_Grouping, "update", side_effect=AssertionError("grouped on request")),
    ):
        (story,) = stories_of(second, window_days=5).stories
    assert story.records == (one, two)


# Headline pairs from real records of the collection (everyday-cc/ai, November-December 2022)
# that hold a common URL within the window (bench/README.md, Real sample).
ONE_EVENT = [
    (  # the records of tests/data/records: "facial recognition" counts half
        "Italy bans the use of facial-recognition technology",
        "Italy Outlaws Facial Recognition Tech, Except to Fight Crime",
    ),
    (
        "Meta pauses AI bot Galactica demo after complaints of fake research",
        "Meta takes down AI bot after complaints of fake research",
    ),
    (
        "Meta fires Galactica AI over controversial life choices",
        "Meta Shuts Down Public Test Of Galactica, Its \u2018AI For Science\u2019",
    ),
    (
        "Amazon unveils its latest warehouse robot",
        "Amazon's latest robot picker for warehouses uses AI to identify objects",
    ),
    (
        "Are ChatGPT and AlphaCode going to replace programmers?",
        "Competitive programming with AlphaCode",
    ),
    (
        "Tesla's Full Self-Driving Beta Available to Anyone That Pays in North America",
        "Tesla Full Self-Driving beta now available: Musk",
    ),
    (
        "Microsoft and Nvidia team up to build massive AI cloud supercomputer",
        "Nvidia and Microsoft partner to build AI supercomputer",
    ),
    (
        "Qualcomm\u2019s Snapdragon 8 Gen 2 Announced \u2013 Huge Power And Performance"
        " With Lots Of AI",
        "Qualcomm debuts latest flagship Snapdragon chip and a new AI platform",
    ),
]
TWO_EVENTS = [
    (  # Galactica and Cicero: each in the other's related list
        "Facebook Takes Down AI That Churns Out Fake Academic Papers After Widespread Criticism",
        "Facebook Says It Has Created A 'Human-Level' Board Game AI",
    ),
    (  # a fintech named QUALCO, in the related lists of Qualcomm's chip launch
        "Qualco adds conversational AI from Webio to debt collection platform",
        "Qualcomm debuts latest flagship Snapdragon chip and a new AI platform",
    ),
    (
        "Nvidia: Data Center Growth But Gaming Profits Plummet",
        "Nvidia RTX 4050 GPU leaks via Samsung gaming laptop benchmarks",
    ),
    (
        "Tesla Full Self-Driving Caught Ignoring Stop Signs on School Buses",
        "Tesla Full Self-Driving Beta is now available to all owners in North America",
    ),
    (  # topic words alone
        "Italy Outlaws Facial Recognition Tech, Except to Fight Crime",
        "Facial recognition technology has shrugged off protests",
    ),
    (
        "Lockheed Martin teams up with Microsoft on classified cloud services for Pentagon",
        "Microsoft and Nvidia team up to build massive AI cloud supercomputer",
    ),
    (  # two company names and nothing else in common
        "Nvidia and Microsoft partner to build AI supercomputer",
        "Top 5 stories of the week: DALL-E uses, Nvidia\u2019s digital twins, Microsoft\u2019s AI"
        " inference, Intel detects deepfakes",
    ),
    (
        "Stack Overflow temporarily bans ChatGPT from platform",
        "AI bot ChatGPT stuns academics with essay-writing skills and usability",
    ),
]


# Held-out pairs: real records of February 2023 that hold a common URL within the window, judged
# after the word lists were written (bench/README.md, Held-out sample).
ONE_EVENT_HELD_OUT = [
    (
        "Meta to launch AI language model LLaMA",
        "Meta enters Big Tech AI race with launch of language model LLaMA",
    ),
    (
        "MediaTek likely to incorporate Nvidia AI GPU in smartphone SoC?",
        "MediaTek may soon integrate Nvidia's AI GPUs in flagship mobile chips",
    ),
    (
        "Nvidia stock rises after slight beat driven by A.I. chips",
        "Nvidia Beats Earning Expectations And Looks Towards AI, Stock Jumps 14% In Response",
    ),
    (
        "Microsoft introduces next-gen hybrid cloud platform 'Azure Operator Nexus'",
        "Microsoft introduces next-generation hybrid cloud platform",
    ),
    (
        "Nvidia shares soar day after Intel cuts dividend",
        "Chip Maker Nvidia Shares Soar 14% As Imaginations For AI Future Run Wild",
    ),
    (
        "Tesla recalls 362,758 vehicles, says Full Self-Driving Beta software may cause crashes",
        "Regulators force Tesla to recall 363,000 \u2018Full Self-Driving\u2019 vehicles",
    ),
]
TWO_EVENTS_HELD_OUT = [
    (  # one cluster of the aggregator: its related lists are the same
        "Microsoft introduces next-gen hybrid cloud platform 'Azure Operator Nexus'",
        "Sydney, We Barely Knew You: Microsoft Kills Bing AI's Bizarre Alter Ego",
    ),
    (
        "How Microsoft is Helping Preserve Vulnerable Indic Languages with AI",
        "Microsoft explains Bing's bizarre AI chat behavior",
    ),
    (
        "AMD slowly catching up to Nvidia in GPU sales",
        "Nvidia stock rises after slight beat driven by A.I. chips",
    ),
    ("Meta to launch AI language model LLaMA", "Using AI to reclaim Native languages"),
    (
        "Microsoft Is Experimenting With AI That Plays Minecraft For You",
        "Microsoft Limits Bing AI Chats to 5 Replies to Keep Conversations Normal",
    ),
]
# The held-out errors of `same_event` as it stands: a product that became a platform after the
# lists were written (Bing, ChatGPT) or a word of no event (CEO, next) beside a company's name,
# and explainers on one theme. Kept as expected failures until a rule tells them apart.
HELD_OUT_ERRORS = [
    (
        "Bing's chat AI bot wants to be your new phone assistant. Here's how it's doing it",
        "Did Bing Really Say That? Microsoft Warns of Doctored AI Chats Spreading Online",
    ),
    (
        "Microsoft brings Bing\u2019s AI chatbot to mobile devices and adds voice support",
        "Sydney, We Barely Knew You: Microsoft Kills Bing AI's Bizarre Alter Ego",
    ),
    (
        "Nvidia CEO Says AI Will Allow Anyone to Be a Programmer",
        "NVIDIA CEO Teases AI Breakthroughs Ahead of GTC 2023",
    ),
    (
        "Nvidia adds $79 billion in market value after CEO Jensen Huang says ChatGPT represents"
        " an inflection point for artificial intelligence",
        "NVIDIA GTC 2023: Jensen Keynote, AI Developments, How To Watch And What Else To Expect",
    ),
    (
        "Microsoft Just Starting To Hit Next Gear Of Growth, Backed By ChatGPT And AI,"
        " Analyst Says",
        "Microsoft introduces next-gen hybrid cloud platform 'Azure Operator Nexus'",
    ),
    (
        "AI Chatbots Are Coming to Search Engines. Can You Trust Them?",
        "How AI chatbots in search engines will completely change the internet",
    ),
]

# Whole-day pairs: real records of 16-27 December 2019 that hold a common URL within the window,
# judged after the grouping was committed (bench/README.md, Whole-day sample).
ONE_EVENT_WHOLE_DAY = [
    (
        "Artificial intelligence tracks down leukemia",
        "Artificial Intelligence That Tracks Down Leukemia Discovered",
    ),
    (
        "Why some cities and states balk at face recognition tech",
        "Why some cities, states and lawmakers want to curb facial recognition technology",
    ),
    (
        "Facebook says group used AI-generated faces to push pro-Trump messages",
        "Facebook, Twitter disable sprawling inauthentic operation that used AI to make fake faces",
    ),
]
TWO_EVENTS_WHOLE_DAY = [
    (  # a face-recognition test of Congress and a vision accelerator card, each in the other's list
        "Amazon\u2019s Face Recognition Disproportionately Matched Congressional Members of Color"
        " With Mugshots",
        "AI Accelerator Card Offers Face, Object Recognition Applications",
    ),
    (
        "Why 2020 Is Going to Be Another Huge Year for AI Stocks",
        "5 Artificial Intelligence Stocks to Consider",
    ),
]
# Its error: two AWS launches of re:Invent (Rekognition Custom Labels, SageMaker Studio), linked by
# a company's name and "releases", a news verb that the generic words do not hold.
WHOLE_DAY_ERRORS = [
    (
        "Amazon Releases A New Tool To Improve Machine Learning Processes",
        "Amazon Releases SageMaker Studio IDE for Machine Learning",
    ),
]


def titled(title: str) -> Record:
    """A record of that headline, its URL its own (two records of one URL are one article)."""
    return make_record(f"https://a.example/{zlib.crc32(title.encode())}", title=title)


@pytest.mark.parametrize(("one", "other"), ONE_EVENT + ONE_EVENT_HELD_OUT + ONE_EVENT_WHOLE_DAY)
def test_headlines_of_one_event_are_linked(one: str, other: str) -> None:
    assert same_event(titled(one), titled(other))
    assert same_event(titled(other), titled(one))


@pytest.mark.parametrize(
    ("one", "other"),
    TWO_EVENTS
    + TWO_EVENTS_HELD_OUT
    + TWO_EVENTS_WHOLE_DAY
    + [
        pytest.param(*pair, marks=pytest.mark.xfail(strict=True, reason="held-out error"))
        for pair in HELD_OUT_ERRORS + WHOLE_DAY_ERRORS
    ],
)
def test_headlines_of_different_events_are_not_linked(one: str, other: str) -> None:
    assert not same_event(titled(one), titled(other))
    assert not same_event(titled(other), titled(one))


def test_common_words_keep_two_market_reports_apart() -> None:
    """Two market reports of December 2019 (one lists the other) share "market" and "forecast",
    both common in that fortnight's headlines: apart with the common words, linked without."""
    vision = titled(
        "Computer Vision Market Key Players And Production Information Analysis With Forecast 2026"
    )
    translation = titled(
        "The global machine translation market at a CAGR of over 19% during the forecast period"
    )
    assert same_event(vision, translation)
    assert not same_event(vision, translation, {"market", "forecast"})


CCPA = (
    "https://medium.com/trueface-ai/computer-vision-and-the-ccpa-what-you-need-to-know-928477de0601"
)


def test_one_article_under_two_urls_is_one_event_whatever_its_headline() -> None:
    """Medium's "Computer Vision and the CCPA" is two records of December 2019, the second URL with
    a tracking parameter: one article. Its headline words ("vision", a topic word, and "ccpa") do
    not link it; its own URLs do. An original URL counts as the record's own. (Headlines with no
    word in common are not asked about their URLs: the bound that keeps the check cheap.)"""
    title = "Computer Vision and the CCPA: What You Need to Know"
    plain = make_record(CCPA, 0, title=title)
    tracked = make_record(f"{CCPA}?source=topic_page---------2------------------1", 24, title=title)
    amp = make_record("https://amp.example/ccpa", 30, original_url=f"{CCPA}/amp", title="CCPA")
    assert not same_event(titled(title), titled(title + "!"))
    assert same_event(plain, tracked, {"vision"})
    assert same_event(tracked, amp) and same_event(amp, plain)
    assert as_sets(group_stories([tracked, plain, amp])) == {
        frozenset({plain.id, tracked.id, amp.id})
    }
    assert not same_event(plain, replace(tracked, title="Privacy law and cameras"))


def test_a_related_url_alone_does_not_make_one_article() -> None:
    """Only the records' own URLs make them one article: a record listing another's URL among its
    related articles is still asked for its headline."""
    one = make_record(CCPA, 0, title="Computer Vision and the CCPA")
    other = make_record("https://b.example/2", 5, (CCPA,), title="Robots in the kitchen")
    assert not same_event(one, other)


def test_a_topic_word_counts_half() -> None:
    """One distinctive word and one topic word are not enough; with a second topic word they
    are (the rule `same_event` states, whatever headlines the lists are tuned on)."""
    assert not same_event(titled("Italy bans robots"), titled("Robots leave Italy"))
    assert same_event(titled("Italy bans chip robots"), titled("Robots with chips leave Italy"))


# Each rule of the stem and the letters it keeps: "ss" stays, "ies" of a long word is "y",
# "ches", "shes" and "xes" lose "es", then "ings", "ing", "ers", "er", "ed" and "s" (each only
# when enough of the word is left: "coding", "paper", "used", "gas" stay).
STEMS = {
    "class": "class",
    "companies": "company",
    "armies": "army",
    "watches": "watch",
    "crashes": "crash",
    "boxes": "box",
    "buildings": "build",
    "things": "thing",
    "training": "train",
    "bring": "bring",
    "hacking": "hack",
    "coding": "coding",
    "hackers": "hack",
    "users": "user",
    "hacker": "hack",
    "paper": "paper",
    "hacked": "hack",
    "used": "used",
    "cars": "car",
    "gas": "gas",
}


def test_stems() -> None:
    assert {word: _stem(word) for word in STEMS} == STEMS


def test_headline_words_join_elisions_and_keep_words_of_two_letters_or_more() -> None:
    assert headline_words("Rock'n'roll robots") == {"rocknroll", "robot"}
    assert headline_words("Rock\u2019n\u2019roll robots") == {"rocknroll", "robot"}
    assert headline_words("Plan B for Q robots") == {"plan", "robot"}
    assert headline_words("EV maker") == {"ev", "maker"}


def test_headline_words_drop_case_possessives_and_generic_words_but_keep_topics() -> None:
    assert headline_words("Meta\u2019s Galactica AI can write scientific papers") == {
        "meta",
        "galactica",
        "write",
        "scientific",
        "paper",
    }
    assert headline_words("AI robots: a new machine-learning model") == {"robot"}


def test_a_shared_url_does_not_join_different_events() -> None:
    """Futurism's Galactica piece and Kotaku's Cicero piece list each other; a story of the
    first keeps Galactica's coverage and Kotaku's record stays on its own."""
    futurism, kotaku, fudzilla = (
        "https://futurism.com/the-byte/facebook-takes-down-galactica-ai",
        "https://kotaku.com/meta-ai-cicero-diplomacy-1849810163",
        "https://fudzilla.com/news/ai/55903-meta-fires-galactica-ai",
    )
    galactica = make_record(futurism, 0, (kotaku, fudzilla), title=TWO_EVENTS[0][0])
    cicero = make_record(kotaku, 10, (futurism,), title=TWO_EVENTS[0][1])
    fired = make_record(
        fudzilla, 20, (futurism,), title="Meta fires Galactica AI after it churns out fake papers"
    )
    stories = group_stories([galactica, cicero, fired])
    assert as_sets(stories) == {
        frozenset({galactica.id, fired.id}),
        frozenset({cicero.id}),
    }


@given(st.text(max_size=60), st.text(max_size=60))
def test_same_event_is_symmetric(one: str, other: str) -> None:
    assert same_event(titled(one), titled(other)) == same_event(titled(other), titled(one))


# Random collections: records whose URLs and related URLs come from a small pool, so that they
# share keys often, with dates spread over a few weeks.
POOL = [f"https://site{n % 5}.example/article-{n}" for n in range(30)]


@st.composite
def collections(draw: st.DrawFn) -> list[Record]:
    count = draw(st.integers(1, 25))
    urls = draw(st.lists(st.sampled_from(POOL), min_size=count, max_size=count, unique=True))
    records = []
    for url in urls:
        related = draw(st.lists(st.sampled_from(POOL), max_size=4))
        # a tracking-parameter form now and then, which must not keep records apart
        related = [f"{item}?utm_source=feed" if len(item) % 2 else item for item in related]
        hours = draw(st.integers(0, 24 * 20))
        records.append(make_record(url, hours, tuple(related)))
    return records


def as_sets(stories: tuple[object, ...]) -> set[frozenset[str]]:
    return {frozenset(record.id for record in story.records) for story in stories}  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(collections(), st.randoms(use_true_random=False))
def test_every_record_is_in_exactly_one_story(records: list[Record], rng: random.Random) -> None:
    stories = group_by_urls(records)
    ids = [record.id for story in stories for record in story.records]
    assert sorted(ids) == sorted(record.id for record in records)


@settings(max_examples=60, deadline=None)
@given(collections(), st.randoms(use_true_random=False))
def test_grouping_does_not_depend_on_order(records: list[Record], rng: random.Random) -> None:
    shuffled = list(records)
    rng.shuffle(shuffled)
    one, other = group_by_urls(records), group_by_urls(shuffled)
    assert [story.id for story in one] == [story.id for story in other]
    assert as_sets(one) == as_sets(other)


@settings(max_examples=60, deadline=None)
@given(collections())
def test_records_sharing_a_url_within_the_window_are_together(records: list[Record]) -> None:
    story_of = {record.id: story.id for story in group_by_urls(records) for record in story.records}
    for one in records:
        for other in records:
            close = abs(one.published - other.published) <= timedelta(days=3)
            if close and set(record_keys(one)) & set(record_keys(other)):
                assert story_of[one.id] == story_of[other.id]


@settings(max_examples=60, deadline=None)
@given(collections(), st.sampled_from(POOL), st.integers(1, 24 * 5))
def test_a_story_keeps_its_id_as_coverage_arrives(
    records: list[Record], related: str, hours: int
) -> None:
    before = group_by_urls(records)
    latest = max(record.published for record in records)
    newcomer = make_record(
        "https://late.example/new", (latest - START).total_seconds() / 3600 + hours, (related,)
    )
    after = group_by_urls([*records, newcomer])
    old_ids = {story.id for story in before}
    joined = next(story for story in after if newcomer in story.records)
    # the newcomer is the latest record, so any story it joins is named after an older record
    assert joined.id in old_ids or joined.records == (newcomer,)
    # every story that existed keeps its id (merges keep the older id, which existed before)
    assert {story.id for story in after} - {joined.id} <= old_ids


def test_collection_records_group_into_stories(collection: Collection) -> None:
    stories = stories_of(collection)
    assert sum(len(story.records) for story in stories.stories) == len(collection.records)


def shape(index: StoryIndex) -> tuple[object, ...]:
    """Everything a story feed or page shows of an index, by record identity."""
    return (
        [(story.id, tuple(map(id, story.records))) for story in index.stories],
        {slug: [story.id for story in stories] for slug, stories in index.by_topic.items()},
        {story.slug: index.story(story.slug) for story in index.stories},
    )


TOPICS = ["ai", "robots", "vision"]


@st.composite
def pool_records(draw: st.DrawFn, url: str) -> Record:
    """A record of `url` (a POOL entry): its date, related articles and topics drawn; now and
    then the aggregator's cluster of the first POOL entries, which its members all list."""
    if draw(st.booleans()):
        related = [item for item in POOL[:8] if item != url]
    else:
        related = draw(st.lists(st.sampled_from(POOL), max_size=4))
    related = [f"{item}?utm_source=feed" if len(item) % 2 else item for item in related]
    topics = draw(st.lists(st.sampled_from(TOPICS), max_size=2, unique=True))
    hours = draw(st.integers(0, 24 * 12))
    title = draw(
        st.sampled_from(["", "edited"])
        | st.lists(st.sampled_from(HEADLINE_POOL), max_size=4).map(" ".join)
    )
    return make_record(url, hours, tuple(related), topics=tuple(topics), title=title)


# Headline words, so that words turn common and stop being as records come and go.
HEADLINE_POOL = ["bing", "chat", "nexus", "operator", "tesla", "recall"]


def some_pairs(one: Record, other: Record, common: AbstractSet[str] = frozenset()) -> bool:
    """A symmetric predicate that refuses some pairs `same_event` accepts."""
    refused = zlib.crc32("".join(sorted((one.id, other.id))).encode()) % 3 == 0
    return not refused and same_event(one, other, common)


@settings(max_examples=150, deadline=None)
@given(
    st.data(),
    st.integers(2, 5),
    st.integers(2, 6),
    st.booleans(),
    st.integers(1, 6),
    st.sampled_from([0.0, 0.1, 0.25]),
)
def test_regrouping_by_changes_equals_grouping_from_scratch(
    data: st.DataObject,
    hub_limit: int,
    cap: int,
    refuse_some: bool,
    common_min: int,
    common_share: float,
) -> None:
    """After random adds, edits and removals, the grouping followed in place gives what a
    grouping from scratch gives: the same stories, in the same order, by topic and by slug. A
    small hub limit and cap make hubs and full stories common; a predicate that refuses some
    pairs of records makes links that a shared key alone would not explain; a low bound on
    common words makes headline words turn common and stop being, the share by the
    collection's size as well as by their own count."""
    options = (3.0, hub_limit, cap, common_share, common_min)
    if refuse_some:
        with mock.patch("feedsvc.stories.same_event", some_pairs):
            check_regrouping(data, options)
    else:
        check_regrouping(data, options)


def check_regrouping(data: st.DataObject, options: tuple[float, int, int, float, int]) -> None:
    current: dict[str, Record] = {}
    for url in data.draw(st.lists(st.sampled_from(POOL), max_size=20, unique=True)):
        current[url] = data.draw(pool_records(url))
    # one to eight buckets for the keys held alone put many keys, and a record's several keys,
    # in one bucket
    bucket_bits = data.draw(st.sampled_from([0, 1, 3]))
    grouping = _Grouping.of(current.values(), *options, bucket_bits=bucket_bits)
    for _ in range(data.draw(st.integers(1, 4))):
        removed, added = [], []
        for url in data.draw(st.lists(st.sampled_from(POOL), max_size=5, unique=True)):
            if url in current and data.draw(st.booleans()):
                removed.append(current.pop(url))
            else:
                if url in current:
                    removed.append(current.pop(url))
                current[url] = data.draw(pool_records(url))
                added.append(current[url])
        grouping.update(removed, added)
        fresh = _Grouping.of(current.values(), *options)
        assert shape(grouping.index()) == shape(fresh.index())
        # and what it keeps for the next version: each key's holders alike (shared by key, one
        # alone in its bucket, none not at all), no story gone kept by its id
        assert holders_of(grouping) == holders_of(fresh)
        assert grouping.by_id.keys() == fresh.by_id.keys()
        # and the same word counts and common words
        assert grouping.words.holders == fresh.words.holders
        assert grouping.words.several == fresh.words.several
        assert grouping.words.clusters == fresh.words.clusters
        assert grouping.words.common == fresh.words.common


def test_a_word_turned_common_links_no_records_and_links_again_when_it_is_not() -> None:
    """Two records share "operator" and "nexus": one story. A fourth cluster whose headline
    holds both words makes them common (4 clusters, the bound): the two records part, though
    neither changed, in place as from scratch; when another of those clusters goes, they are
    one story again."""
    url = "https://c.example/nexus"
    one = make_record("https://a.example/1", 0, (url,), title="Azure Operator Nexus launched")
    two = make_record("https://b.example/2", 1, (url,), title="Microsoft's Operator Nexus")
    others = [
        make_record(f"https://p{n}.example/a", 2 + n, title=f"Nexus operator {n}") for n in (1, 2)
    ]
    grouping = _Grouping.of([one, two, others[0]], common_min=4, common_share=0.0)
    assert as_sets(grouping.index().stories) == {
        frozenset({one.id, two.id}),
        frozenset({others[0].id}),
    }
    grouping.update((), (others[1],))
    assert grouping.words.common == {"nexu", "operator"}  # stems
    assert len(grouping.index().stories) == 4
    assert shape(grouping.index()) == shape(
        _Grouping.of([one, two, *others], common_min=4, common_share=0.0).index()
    )
    grouping.update((others[0],), ())
    assert as_sets(grouping.index().stories) == {
        frozenset({one.id, two.id}),
        frozenset({others[1].id}),
    }


def test_common_words_are_counted_by_cluster_and_by_share() -> None:
    """Records listing one another (one aggregator cluster) count once; the share raises the
    bound for a large collection, and the bound leaves small collections without common words."""
    members = ["https://a.example/1", "https://b.example/2", "https://c.example/3"]
    cluster = [
        make_record(url, n, tuple(other for other in members if other != url), title="Recall")
        for n, url in enumerate(members)
    ]
    alone = [make_record(f"https://p{n}.example/a", n, title="Recall") for n in range(2)]
    assert _Grouping.of(cluster + alone, common_min=4).words.common == set()  # 5 records
    assert _Grouping.of(cluster + alone, common_min=3).words.common == {"recall"}
    others = [make_record(f"https://q{n}.example/a", n, title=f"Other {n}") for n in range(8)]
    # 3 clusters of 11: more than a quarter, not more than a third
    assert _Grouping.of(cluster + alone + others, common_min=1, common_share=0.25).words.common
    assert not _Grouping.of(cluster + alone + others, common_min=1, common_share=1 / 3).words.common
    assert group_stories(cluster) == group_stories(cluster, common_min=NO_COMMON_WORDS)


def test_a_word_stops_being_common_when_the_collection_grows_past_its_share() -> None:
    """Three clusters of five hold "operator" and "nexus", more than half: common, and the two
    records that share them apart. Three clusters more raise the bound past three: the words are
    no longer common and the two records one story, though no record holding them changed."""
    url = "https://c.example/nexus"
    one = make_record("https://a.example/1", 0, (url,), title="Azure Operator Nexus launched")
    two = make_record("https://b.example/2", 1, (url,), title="Microsoft's Operator Nexus")
    third = make_record("https://p.example/a", 2, title="Nexus operator")
    others = [make_record(f"https://q{n}.example/a", 3, title=f"Other {n}") for n in range(3)]
    grouping = _Grouping.of([one, two, third, *others[:2]], common_min=1, common_share=0.5)
    assert grouping.words.common >= {"nexu", "operator"}
    assert frozenset({one.id, two.id}) not in as_sets(grouping.index().stories)
    grouping.update((), others[2:])
    assert not grouping.words.common & {"nexu", "operator"}
    assert frozenset({one.id, two.id}) in as_sets(grouping.index().stories)
    fresh = _Grouping.of([one, two, third, *others], common_min=1, common_share=0.5)
    assert shape(grouping.index()) == shape(fresh.index())


def holders_of(grouping: _Grouping) -> dict[str, list[str]]:
    """Each key's holders (by path) as the grouping keeps them, whether shared or held alone:
    a grouping followed in place must keep what one from scratch keeps."""
    holders = grouping.holders
    found = {key: [record.path for record in held] for key, held in holders.shared.items()}
    for record in {id(record): record for bucket in holders.buckets for record in bucket}.values():
        for key in record_keys(record):
            if key not in holders.shared:
                assert key not in found, f"{key} held alone by two records"
                found[key] = [record.path]
                assert record in holders.buckets[hash(key) & holders.mask]
    return found


def test_a_url_of_one_cluster_turns_hub_when_other_clusters_list_it() -> None:
    """Three records that list each other link through each URL of theirs; two records of other
    clusters listing one of those URLs make it a hub (3 clusters, the limit 2), in place as
    from scratch, so the two stay out of the three's story."""
    urls = [f"https://p{n}.example/a" for n in range(3)]
    members = [
        make_record(url, n, tuple(other for other in urls if other != url))
        for n, url in enumerate(urls)
    ]
    options = {"hub_limit": 2, "max_records": 50, "common_min": NO_COMMON_WORDS}
    grouping = _Grouping.of(members, 3.0, **options)
    others = [make_record(f"https://q{n}.example/a", 3 + n, (urls[0],)) for n in range(2)]
    grouping.update((), others)
    fresh = _Grouping.of([*members, *others], 3.0, **options)
    assert as_sets(fresh.index().stories) == {
        frozenset(record.id for record in members),
        frozenset({others[0].id}),
        frozenset({others[1].id}),
    }
    assert shape(grouping.index()) == shape(fresh.index())


def test_a_url_held_by_the_records_of_as_many_clusters_as_the_limit_links_them() -> None:
    """Three records that list each other (one cluster) and a record of another cluster listing
    one of their URLs: four records of two clusters hold that URL, within a hub limit of 2, so
    it links all four, from scratch and when the fourth arrives by a reload."""
    urls = [f"https://p{n}.example/a" for n in range(3)]
    members = [
        make_record(url, n, tuple(other for other in urls if other != url))
        for n, url in enumerate(urls)
    ]
    other = make_record("https://q.example/a", 3, (urls[0],))
    options = {"hub_limit": 2, "max_records": 50, "common_min": NO_COMMON_WORDS}
    fresh = _Grouping.of([*members, other], 3.0, **options)
    assert as_sets(fresh.index().stories) == {frozenset(r.id for r in [*members, other])}
    grouping = _Grouping.of(members, 3.0, **options)
    grouping.update((), (other,))
    assert shape(grouping.index()) == shape(fresh.index())


def test_a_url_turned_hub_by_a_new_record_parts_the_records_it_linked() -> None:
    """Two records linked by one URL alone part when a record of a third cluster lists it too
    (a hub over the limit of 2), though neither changed; when that record goes, they are one
    story again. In place as from scratch."""
    url = "https://c.example/x"
    one = make_record("https://a.example/1", 0, (url,))
    two = make_record("https://b.example/2", 1, (url,))
    third = make_record("https://d.example/3", 2, (url,))
    options = {"hub_limit": 2, "max_records": 50, "common_min": NO_COMMON_WORDS}
    grouping = _Grouping.of([one, two], 3.0, **options)
    assert as_sets(grouping.index().stories) == {frozenset({one.id, two.id})}
    grouping.update((), (third,))
    assert len(grouping.index().stories) == 3
    assert shape(grouping.index()) == shape(_Grouping.of([one, two, third], 3.0, **options).index())
    grouping.update((third,), ())
    assert as_sets(grouping.index().stories) == {frozenset({one.id, two.id})}


def test_group_stories_counts_common_words_with_the_share_and_minimum_it_is_given() -> None:
    """Three clusters of three hold "operator" and "nexus": common above a share of a half (and a
    minimum of 1), so the two records sharing a URL stay apart; with the defaults (a minimum of
    5 clusters) the words are not common and the two are one story."""
    url = "https://c.example/nexus"
    one = make_record("https://a.example/1", 0, (url,), title="Azure Operator Nexus launched")
    two = make_record("https://b.example/2", 1, (url,), title="Microsoft's Operator Nexus")
    third = make_record("https://p.example/a", 2, title="Nexus operator")
    apart = group_stories([one, two, third], common_share=0.5, common_min=1)
    assert len(apart) == 3
    assert frozenset({one.id, two.id}) in as_sets(group_stories([one, two, third]))
