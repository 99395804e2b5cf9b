"""Fingerprints: what a build's page is made from, so that equal fingerprints mean equal bytes
and any change a page can show changes its fingerprint (tests/test_build.py checks the build
that keeps files by them; here, the digests themselves)."""

from __future__ import annotations

import dataclasses
import sys
from datetime import timedelta
from typing import Any

import pytest

from feedsvc import feeds
from feedsvc.feeds import (
    FeedListing,
    FeedPage,
    Fingerprints,
    Site,
    feed_page,
    iter_feeds,
)
from feedsvc.records import Image, Record
from feedsvc.repository import load_collection
from tests.conftest import ASSET_BASE_URL, RECORDS

SITE = Site("https://news.example.org", "News", feed_size=2)


def _records() -> tuple[Record, ...]:
    return load_collection(RECORDS, ASSET_BASE_URL).records


def _page() -> FeedPage:
    collection = load_collection(RECORDS, ASSET_BASE_URL)
    feed = next(iter_feeds(collection))
    return feed_page(feed, SITE, "atom", 2)


def _another(name: str, value: Any) -> Any:
    """Another value of the kind a FeedPage's field `name` holds."""
    if name == "site":
        return dataclasses.replace(value, title=value.title + " more")
    if name == "icon":
        return Image("https://img.example/icon.png", 16, 16, "image/png")
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str) or value is None:
        return (value or "") + "x"
    return value + timedelta(seconds=1)  # updated


def test_equal_pages_have_one_fingerprint_in_any_instance() -> None:
    page = _page()
    again = dataclasses.replace(page, records=tuple(dataclasses.replace(r) for r in page.records))
    assert Fingerprints().page(page) == Fingerprints().page(again)
    assert len(Fingerprints().page(page)) == 40  # hex


@pytest.mark.parametrize(
    "name", [field.name for field in dataclasses.fields(FeedPage) if field.name != "records"]
)
def test_each_field_of_a_page_changes_its_fingerprint(name: str) -> None:
    page = _page()
    other = dataclasses.replace(page, **{name: _another(name, getattr(page, name))})
    assert Fingerprints().page(other) != Fingerprints().page(page)


def test_the_records_of_a_page_their_order_and_their_fields_change_its_fingerprint() -> None:
    page = _page()
    first, second = page.records
    retitled = dataclasses.replace(first, title=first.title + "x")  # type: ignore[type-var]
    others = [(second, first), (first,), (retitled, second), (first, second, first)]
    prints = {Fingerprints().page(dataclasses.replace(page, records=o)) for o in others}
    assert len(prints) == len(others) and Fingerprints().page(page) not in prints


def test_one_instance_gives_each_page_what_a_new_instance_gives() -> None:
    """An instance remembers digests and the last page's entries: whatever it was asked before,
    a page's fingerprint is the one a new instance gives."""
    records = _records()
    page = _page()
    pages = [dataclasses.replace(page, records=records[start : start + 2]) for start in (0, 2, 1)]
    empty = dataclasses.replace(page, records=())
    pages += [dataclasses.replace(pages[0], page=5), pages[1], pages[0], empty, pages[2], empty]
    prints = Fingerprints()
    assert [prints.page(p) for p in pages] == [Fingerprints().page(p) for p in pages]
    story = Fingerprints()
    assert story.record(records[1]) == Fingerprints().record(records[1])
    assert story.page(pages[0]) == Fingerprints().page(pages[0])


def test_records_that_come_and_go_never_share_a_digest() -> None:
    """Digests are remembered by object, so the instance keeps the records alive: a record made
    after another was dropped may take its memory, and must not take its digest."""
    base = _records()[0]
    prints = Fingerprints()
    digests = []
    for number in range(50):
        record = dataclasses.replace(base, title=f"Title {number}")
        digests.append(prints.record(record))
        del record
    assert len(set(digests)) == 50


def test_equal_records_have_one_digest_however_their_strings_were_made() -> None:
    """Interned or not, one string object in two fields or two equal ones: the same digest."""
    base = _records()[0]
    title = "".join(["A title ", "made at run time"])
    interned = sys.intern("".join(["A title ", "made at run time"]))
    apart = dataclasses.replace(base, title=title, excerpt=title[:1] + title[1:])
    shared = dataclasses.replace(base, title=interned, excerpt=interned)
    assert apart.title is not apart.excerpt and shared.title is shared.excerpt
    assert apart.title is not shared.title
    assert Fingerprints().record(apart) == Fingerprints().record(shared)


def test_listings_fingerprints_follow_every_field() -> None:
    listing = FeedListing("topics", "AI", "AI news", "https://x/t/ai", (("atom", "u"),), 3, None)
    others = {
        "scope": "providers",
        "name": "Robots",
        "title": "Robot news",
        "html_url": "https://x/t/robots",
        "feed_urls": (("atom", "u"), ("rss", "v")),
        "entries": 4,
        "updated": _page().updated,
    }
    assert set(others) == {field.name for field in dataclasses.fields(listing)}
    prints = {Fingerprints.listings((listing,))}
    for name, value in others.items():
        prints.add(Fingerprints.listings((dataclasses.replace(listing, **{name: value}),)))
    prints.add(Fingerprints.listings((listing, listing)))
    prints.add(Fingerprints.listings(()))
    assert len(prints) == len(others) + 3
    assert Fingerprints.listings((listing,)) == Fingerprints.listings(iter([listing]))


def test_each_record_is_digested_once_by_an_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record is in many pages, each in several formats: its fields are read once."""
    records = _records()[:2]
    read: list[Record] = []
    real = feeds.record_values
    monkeypatch.setattr(feeds, "record_values", lambda r: read.append(r) or real(r))
    prints = Fingerprints()
    first = [prints.record(record) for record in records]
    assert [prints.record(record) for record in records] == first
    page = dataclasses.replace(_page(), records=records)
    prints.page(page)
    prints.page(dataclasses.replace(page, records=records[::-1]))
    assert read == list(records)


def test_a_page_whose_records_were_digested_asks_no_record_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A page's entries are looked up by record at C speed; a record digested for another page
    (or another format) is not asked for again."""
    records = _records()[:3]
    page = dataclasses.replace(_page(), records=records[:2])
    prints = Fingerprints()
    for record in records:
        prints.record(record)
    asked: list[object] = []
    real = prints.record
    monkeypatch.setattr(prints, "record", lambda item: asked.append(item) or real(item))
    fingerprint = prints.page(page)
    prints.page(dataclasses.replace(page, records=records[1:]))
    assert asked == [] and fingerprint == Fingerprints().page(page)


def test_digests_are_of_fixed_sizes() -> None:
    """128 bits a record (an instance keeps one per record of the collection), 160 bits a page
    or list of feeds (a build keeps one per URL): none shorter, none longer."""
    record = _records()[0]
    assert len(Fingerprints().record(record)) == 16
    listing = FeedListing("topics", "AI", "AI news", "https://x/t/ai", (("atom", "u"),), 3, None)
    assert len(Fingerprints.listings((listing,))) == len(Fingerprints.listings(())) == 40
