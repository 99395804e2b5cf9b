from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.errors import PageNotFound
from feedsvc.feeds import (
    AllItemsFeed,
    ProviderFeed,
    Site,
    TopicFeed,
    entry_for,
    feed_document,
    find_feed,
    iter_feeds,
)

SITE = Site("http://feeds.test", "News", "en", 3)


def test_find_feed_by_scope_and_slug(collection) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(find_feed(collection, "all"), AllItemsFeed)
    assert isinstance(find_feed(collection, "topics", "ai"), TopicFeed)
    assert isinstance(find_feed(collection, "providers", "usnews-com"), ProviderFeed)
    assert find_feed(collection, "topics", "nope") is None
    assert find_feed(collection, "providers", "ai") is None


def test_every_feed_is_listed_once(collection) -> None:  # type: ignore[no-untyped-def]
    paths = [feed.path for feed in iter_feeds(collection)]
    assert len(paths) == 1 + len(collection.topics) + len(collection.providers)
    assert len(set(paths)) == len(paths)
    assert paths[0] == "/feeds/all"


def test_feed_document_names_and_places_the_feed(collection) -> None:  # type: ignore[no-untyped-def]
    feed = find_feed(collection, "providers", "usnews-com")
    assert feed is not None
    doc = feed_document(feed, SITE, "atom")
    assert doc.title == "News: U.S. News & World Report"
    assert doc.self_url == "http://feeds.test/feeds/providers/usnews-com.atom"
    assert doc.html_url == "http://feeds.test/providers/usnews-com"
    assert doc.updated == collection.providers["usnews-com"].records[0].published
    assert doc.icon is not None and doc.icon.width == 50


def test_pages_and_rfc5005_links(collection) -> None:  # type: ignore[no-untyped-def]
    feed = AllItemsFeed(collection)
    first = feed_document(feed, SITE, "rss", 1)
    assert first.pages == 3 and len(first.entries) == 3
    assert {link.rel: link.href for link in first.paging} == {
        "first": "http://feeds.test/feeds/all.rss",
        "last": "http://feeds.test/feeds/all.rss?page=3",
        "next": "http://feeds.test/feeds/all.rss?page=2",
    }
    middle = feed_document(feed, SITE, "rss", 2)
    assert middle.self_url == "http://feeds.test/feeds/all.rss?page=2"
    assert {link.rel: link.href for link in middle.paging} == {
        "first": "http://feeds.test/feeds/all.rss",
        "last": "http://feeds.test/feeds/all.rss?page=3",
        "previous": "http://feeds.test/feeds/all.rss",
        "next": "http://feeds.test/feeds/all.rss?page=3",
    }
    last = feed_document(feed, SITE, "rss", 3)
    assert {link.rel: link.href for link in last.paging} == {
        "first": "http://feeds.test/feeds/all.rss",
        "last": "http://feeds.test/feeds/all.rss?page=3",
        "previous": "http://feeds.test/feeds/all.rss?page=2",
    }
    seen = [e.id for page in (1, 2, 3) for e in feed_document(feed, SITE, "rss", page).entries]
    assert seen == [record.id for record in collection.records]
    with pytest.raises(PageNotFound):
        feed_document(feed, SITE, "rss", 4)
    with pytest.raises(PageNotFound):
        feed_document(feed, SITE, "rss", 0)


def test_single_page_feed_has_no_paging_links(collection) -> None:  # type: ignore[no-untyped-def]
    feed = find_feed(collection, "topics", "aws-ai")
    assert feed is not None
    assert feed_document(feed, SITE, "atom").paging == ()


def test_entry_related_excludes_itself_and_escapes_text(collection) -> None:  # type: ignore[no-untyped-def]
    record = next(r for r in collection.records if r.path == "001_a1e971cc52df9b4c.txt")
    entry = entry_for(record, SITE)
    assert entry.id == record.id and entry.link == record.url
    assert len(entry.related) == 4
    assert all(link.rel == "related" and link.title for link in entry.related)
    assert entry.content_html is not None
    assert "U.S. News &amp; World Report" in entry.content_html
    assert entry.content_html.count("<li>") == 4
    assert [(c.term, c.label) for c in entry.categories] == [
        ("computer-vision", "Computer Vision"),
        ("ai", "AI"),
    ]
    assert {c.scheme for c in entry.categories} == {SITE.url("/topics/")}
    assert entry.summary == record.excerpt and record.excerpt
    # The excerpt first, escaped, then the other coverage.
    assert entry.content_html.startswith(f"<p>{html.escape(record.excerpt)}</p>\n<p>Other")
    assert entry.author == "IET"
    assert entry.updated == entry.published == datetime(2022, 11, 15, 17, 36, tzinfo=UTC)


def test_related_that_is_the_article_itself_is_dropped() -> None:
    from feedsvc.fields import record_from_mapping

    data = {
        "title": "<b>Self</b>",
        "webUrl": "https://x.example/a",
        "publishedDateTime": "2022-01-01",
        "related": [
            {"title": "Me again", "webUrl": "http://X.example/a#frag"},
            {"title": "<script>x</script>", "webUrl": "https://y.example/b"},
            {"title": "Twice", "webUrl": "https://y.example/b"},
        ],
    }
    record = record_from_mapping(data, "x.md").record
    assert record is not None
    entry = entry_for(record, SITE)
    assert [link.href for link in entry.related] == ["https://y.example/b"]
    assert entry.content_html is not None
    assert "<script>" not in entry.content_html and "&lt;script&gt;" in entry.content_html
    # Every character HTML gives a meaning to is escaped, in the excerpt and the articles.
    for text in ("a & b", "a < b", "a > b", 'a "b"', "a 'b'"):
        data["related"] = [{"title": text, "webUrl": "https://y.example/b"}]
        data["excerpt"] = text
        record = record_from_mapping(data, "x.md").record
        assert record is not None
        content = entry_for(record, SITE).content_html
        assert content is not None and content.count(html.escape(text)) == 2


def test_equal_entries_hash_alike_and_others_apart(collection) -> None:  # type: ignore[no-untyped-def]
    """Entries key the rendered fragments and hash by a few fields: equal entries made twice
    must find each other, and an edited record's entry must not be taken for the old one."""
    from dataclasses import replace

    record = collection.records[0]
    one, again = entry_for(record, SITE), entry_for(record, SITE)
    assert one is not again and one == again and hash(one) == hash(again)
    edited = entry_for(replace(record, title="Edited"), SITE)
    assert edited != one and hash(edited) != hash(one)


@given(st.datetimes(timezones=st.just(UTC)))
def test_coverage_dates_are_written_as_strftime_writes_them(moment: datetime) -> None:
    """An entry's other coverage dates each article as `%d %b %Y` in the C locale would."""
    from feedsvc.feeds import _coverage_item
    from feedsvc.records import Related

    item = Related("Title", "https://x.example/a", moment, "Provider")
    assert _coverage_item(item).endswith(f"(Provider, {moment.strftime('%d %b %Y')})")


related_texts = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x1e\x1f"))
related_urls = st.builds(
    lambda host, path: f"https://{host}/{path}",
    st.sampled_from(["x.example", "X.example:443", "y.example"]),
    st.sampled_from(["a", "a#top", "b?q=1&r=<2>", '"c"', "a/../a"]),
)
related_items = st.builds(
    lambda title, url, published, provider: (title, url, published, provider),
    related_texts,
    related_urls,
    st.none() | st.datetimes(timezones=st.sampled_from([UTC, None])),
    st.none() | related_texts,
)


@given(related_texts, st.lists(related_items, max_size=6))
def test_other_coverage_from_packed_fields_is_what_the_related_articles_make(
    excerpt: str, items: list[tuple[str, str, datetime | None, str | None]]
) -> None:
    """`_coverage` reads the packed related articles directly: its links and HTML are what the
    unpacked articles give, without the article itself and repeats (by identity key), each
    written by `_coverage_item` (escaped, dated as strftime would)."""
    import html

    from feedsvc.feeds import Link, _coverage, _coverage_item
    from feedsvc.records import Related, pack_related, unpack_related
    from feedsvc.urls import identity_key

    record_url = "https://x.example/a"
    packed = pack_related(Related(t, u, p, v or None) for t, u, p, v in items)
    seen, shown = {identity_key(record_url)}, []
    for item in unpack_related(packed):
        if identity_key(item.url) not in seen:
            seen.add(identity_key(item.url))
            shown.append(item)
    html_parts = [f"<p>{html.escape(excerpt)}</p>"] if excerpt else []
    html_parts.append("<p>Other coverage:</p>\n<ul>")
    html_parts += [f"<li>{_coverage_item(item)}</li>" for item in shown]
    html_parts.append("</ul>")
    expected = (
        tuple(Link(item.url, "related", "text/html", item.title) for item in shown),
        "\n".join(html_parts) if shown else None,
    )
    assert _coverage.__wrapped__(record_url, excerpt, packed) == expected


def test_entries_links_and_categories_made_through_their_slots_are_those_of_the_classes() -> None:
    """`values.maker` sets each field by its slot: the objects equal, hash and behave as those
    the dataclasses' own constructors make (frozen, and an entry weakly referable)."""
    import dataclasses
    import weakref

    from feedsvc.feeds import Category, Entry, Link, _category, _entry_of, _link
    from feedsvc.values import maker

    link = _link("https://x.example/a", "related", "text/html", "A")
    assert type(link) is Link and link == Link("https://x.example/a", "related", "text/html", "A")
    category = _category("ai", "AI", "https://x.example/topics/")
    assert category == Category("ai", "AI", "https://x.example/topics/")
    values = {
        "id": "urn:x",
        "title": "T",
        "link": "https://x.example/a",
        "summary": "S",
        "published": datetime(2024, 1, 1, tzinfo=UTC),
        "author": "P",
        "categories": (category,),
        "images": (),
        "related": (link,),
        "content_html": "<p>S</p>",
        "modified": datetime(2024, 1, 2, tzinfo=UTC),
    }
    made, expected = _entry_of(**values), Entry(**values)
    assert made == expected and hash(made) == hash(expected) and repr(made) == repr(expected)
    # A maker made here, not at import (where a planted bug would not reach it), by position.
    again = maker(Entry)(*values.values())
    assert type(again) is Entry and repr(again) == repr(expected)
    assert weakref.ref(made)() is made
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.title = "Other"  # type: ignore[misc]


def test_a_shown_record_entry_is_made_once_and_an_edited_record_gets_its_own(
    collection,  # type: ignore[no-untyped-def]
) -> None:
    """Pages showing the same records get the same entry objects while something holds them
    (the fragment store's keys, which then find each by identity); nothing else keeps them. A
    record replaced by an edit, or another site, gets an entry of its own."""
    import weakref
    from dataclasses import replace

    from feedsvc.feeds import _entry

    feed = find_feed(collection, "all")
    assert feed is not None
    first = feed_document(feed, SITE, "atom").entries
    again = feed_document(feed, SITE, "json").entries
    assert all(one is other for one, other in zip(first, again, strict=True))
    record = collection.records[-1]
    made = weakref.ref(_entry(record, SITE))
    assert made() is None  # held by nothing, kept by nothing
    edited = replace(record, title="Edited")
    assert _entry(edited, SITE).title == "Edited" and _entry(record, SITE).title == record.title
    other_site = Site("http://other.test", "News", "en", 3)
    here, there = _entry(record, SITE), _entry(record, other_site)
    assert there is not here and there.link == record.url
    assert there.categories[0].scheme.startswith("http://other.test/")
