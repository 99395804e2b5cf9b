from __future__ import annotations

import gc
import gzip
import sys
import time
import tracemalloc
from datetime import UTC, datetime

import brotli
import pytest

from feedsvc.cache import (
    IDENTITY,
    VARIANT_OVERHEAD,
    FragmentCache,
    RenderCache,
    entry_size,
    fragment_size,
    key_size,
    rendered_feed,
    strong_etag,
)
from tests.conftest import make_app

MOMENT = datetime(2022, 1, 1, tzinfo=UTC)


def test_every_coding_has_its_own_strong_etag_and_decodes_to_the_same_bytes() -> None:
    body = b"<feed>" + b"news " * 500 + b"</feed>"
    feed = rendered_feed(body, "application/atom+xml", MOMENT)
    assert not feed.variants  # each made (compressed, digested) on its first request
    assert gzip.decompress(feed.variant("gzip").body) == body
    assert set(feed.variants) == {"gzip"}  # the identity bytes were not digested for it
    assert feed.variant(IDENTITY).body is body and feed.variant(IDENTITY).etag == strong_etag(body)
    assert brotli.decompress(feed.variant("br").body) == body
    assert feed.variant("gzip") is feed.variant("gzip")  # compressed once
    etags = {variant.etag for variant in feed.variants.values()}
    assert len(etags) == 3
    again = rendered_feed(body, "application/atom+xml", MOMENT)
    assert again.variant("gzip") == feed.variant("gzip")  # byte-stable, gzip mtime=0


def test_compressed_variants_made_later_count_against_the_bound() -> None:
    feed = rendered_feed(b"<feed>" + b"news " * 500 + b"</feed>", "text/plain", MOMENT)
    cache = RenderCache(max_bytes=100_000)
    cache.put("k", feed)
    before = cache.size
    gzipped = feed.variant("gzip")
    assert cache.size == before + len(gzipped.body) + VARIANT_OVERHEAD == entry_size("k", feed)
    feed.variant(IDENTITY)  # its bytes were counted from the start
    assert cache.size == before + len(gzipped.body) + VARIANT_OVERHEAD == entry_size("k", feed)
    other = rendered_feed(b"other", "text/plain", MOMENT)
    cache.put("k", other)
    assert cache.size == entry_size("k", other)  # the replaced render's variants went with it


def test_lru_eviction_keeps_within_the_bound() -> None:
    one = rendered_feed(b"a" * 1000, "text/plain", MOMENT)
    cache = RenderCache(max_bytes=entry_size("a", one) * 2)
    for key in "abc":
        cache.put(key, rendered_feed(key.encode() * 1000, "text/plain", MOMENT))
    assert len(cache) == 2 and cache.size <= cache.max_bytes
    assert cache.get("a") is None and cache.get("c") is not None
    assert cache.stats.evictions == 1


def test_recently_used_entries_survive_eviction() -> None:
    one = rendered_feed(b"a" * 1000, "text/plain", MOMENT)
    cache = RenderCache(max_bytes=entry_size("a", one) * 2)
    cache.put("a", one)
    cache.put("b", rendered_feed(b"b" * 1000, "text/plain", MOMENT))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", rendered_feed(b"c" * 1000, "text/plain", MOMENT))
    assert cache.get("a") is not None and cache.get("b") is None


def test_an_entry_larger_than_the_bound_is_still_served_once_rendered() -> None:
    cache = RenderCache(max_bytes=10)
    feed = cache.get_or_render("big", lambda _: rendered_feed(b"x" * 100, "text/plain", MOMENT))
    assert cache.get("big") is feed


def test_get_or_render_renders_once() -> None:
    calls: list[int] = []

    def render(inputs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return rendered_feed(b"body", "text/plain", MOMENT)

    cache = RenderCache(max_bytes=10_000)
    first = cache.get_or_render("k", render)
    assert cache.get_or_render("k", render) is first
    assert len(calls) == 1
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)


def test_a_newer_version_keeps_a_render_whose_inputs_are_unchanged() -> None:
    rendered: list[str] = []

    def render(inputs: str):  # type: ignore[no-untyped-def]
        rendered.append(inputs)
        return rendered_feed(inputs.encode(), "text/plain", MOMENT)

    cache = RenderCache(max_bytes=10_000)
    first = cache.get_or_render("k", render, lambda: "same", version=1)
    assert cache.get("k", 2) is None  # not yet checked against version 2
    assert cache.get_or_render("k", render, lambda: "same", version=2) is first
    assert cache.get("k", 2) is first and cache.stats.carried == 1
    changed = cache.get_or_render("k", render, lambda: "changed", version=3)
    assert changed.body == b"changed" and rendered == ["same", "changed"]
    assert cache.get("k", 3) is changed and cache.stats.carried == 1


def test_fragments_are_bounded_by_their_memory_least_recently_used_first() -> None:
    one = fragment_size("a", b"a" * 10)
    fragments = FragmentCache(max_bytes=one * 5 // 2)
    for key in "abc":
        fragments.put(key, key.encode() * 10)
    assert fragments.get("a") is None and fragments.get("c") == b"c" * 10
    assert len(fragments) == 2 and fragments.size == 2 * one
    fragments.get("b")  # now the most recently used
    fragments.put("d", b"d" * 10)
    assert fragments.get("b") is not None and fragments.get("c") is None


# -- what RENDER_CACHE_BYTES bounds (issue 16, item 10) -----------------------------------------


@pytest.mark.parametrize(
    ("feed_size", "urls", "codings"),
    [
        (1, ["/feeds/topics/{}.atom", "/feeds/topics/{}.json"], ["", "gzip", "br"]),
        (10, ["/topics/{}", "/feeds/topics/{}.rss"], ["br"]),
    ],
)
def test_the_caches_hold_about_what_they_account_and_that_within_the_setting(
    feed_size: int, urls: list[str], codings: list[str]
) -> None:
    """Every distinct Host renders its own copy, as an attacker would make it: small entries,
    where the keys and objects around the bytes weigh most (the body bytes alone were 40% of
    it). What the caches hold is measured with tracemalloc: the memory freed when they evict
    every entry, with both full and evicting before."""
    budget = 600_000
    app = make_app(BASE_URL=None, RENDER_CACHE_BYTES=budget, FEED_SIZE=feed_size)
    client = app.test_client()
    state = app.extensions["feedsvc"]
    slugs = sorted(state.collection.topics)[:4]
    renders, fragments = state.renders, state.fragments
    tracemalloc.start()
    try:
        for n in range(250):
            url = urls[n % len(urls)].format(slugs[n % len(slugs)])
            for coding in codings:
                client.get(url, headers={"Host": f"reader{n}.example", "Accept-Encoding": coding})
        accounted = renders.size + fragments.size
        assert renders.stats.evictions > 0 and budget / 2 < accounted <= budget
        gc.collect()
        full = tracemalloc.get_traced_memory()[0]
        renders.max_bytes = fragments.max_bytes = -1  # the next put evicts all it can
        renders.put("last", rendered_feed(b"", "text/plain", MOMENT))
        fragments.put("last", b"")
        gc.collect()
        held = full - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(renders) == 1 and len(fragments) == 0
    assert 0.8 <= accounted / held <= 1.25, (accounted, held)


# -- the bookkeeping behind the figures above, case by case (mutation testing, tests/README.md) --


def test_each_variant_has_its_representation_headers_and_a_304_repeats_its_etag() -> None:
    link = (("Link", '<https://hub.example/>; rel="hub"'),)
    feed = rendered_feed(b"<feed>" + b"news " * 100 + b"</feed>", "text/xml", MOMENT, link)
    date = "Sat, 01 Jan 2022 00:00:00 GMT"
    for coding in (IDENTITY, "gzip", "br"):
        variant = feed.variant(coding)
        encoding = () if coding == IDENTITY else (("Content-Encoding", coding),)
        assert variant.coding == coding
        assert variant.etag == strong_etag(variant.body) and len(variant.etag) == 32
        assert variant.validators == (("ETag", f'"{variant.etag}"'),)
        assert variant.headers == (
            ("Content-Type", "text/xml"),
            ("Content-Length", str(len(variant.body))),
            *encoding,
            ("ETag", f'"{variant.etag}"'),
            ("Last-Modified", date),
            *link,
        )
    assert feed.headers == link and feed.media_type == "text/xml"
    assert feed.last_modified == MOMENT and feed.modified_at == MOMENT.timestamp()


def test_gzip_bytes_do_not_depend_on_the_clock() -> None:
    """The gzip header's time is zero, so that every render, worker and build makes the same
    bytes (and ETag) whenever it runs."""
    gzipped = rendered_feed(b"<feed/>", "text/xml", MOMENT).variant("gzip").body
    assert gzipped[:2] == b"\x1f\x8b" and gzipped[4:8] == b"\0\0\0\0"


def test_renders_are_equal_by_what_they_serve() -> None:
    feed = rendered_feed(b"body", "text/plain", MOMENT, (("Link", "<x>"),))
    assert feed == rendered_feed(b"body", "text/plain", MOMENT, (("Link", "<x>"),))
    assert feed != rendered_feed(b"other", "text/plain", MOMENT, (("Link", "<x>"),))
    assert feed != rendered_feed(b"body", "text/html", MOMENT, (("Link", "<x>"),))
    assert feed != rendered_feed(b"body", "text/plain", datetime(2023, 1, 1, tzinfo=UTC))
    assert feed != rendered_feed(b"body", "text/plain", MOMENT)
    assert feed != "body" and feed.__eq__("body") is NotImplemented
    with pytest.raises(TypeError):
        hash(feed)


def test_a_bound_that_holds_one_document_keeps_the_newest() -> None:
    one = rendered_feed(b"a" * 1000, "text/plain", MOMENT)
    cache = RenderCache(max_bytes=entry_size("a", one) + 10)
    cache.put("a", one)
    two = rendered_feed(b"b" * 1000, "text/plain", MOMENT)
    cache.put("b", two)
    assert cache.keys() == ["b"] and cache.size == entry_size("b", two)
    assert cache.stats.evictions == 1


def test_a_bound_reached_exactly_evicts_nothing() -> None:
    feeds = {key: rendered_feed(key.encode() * 100, "text/plain", MOMENT) for key in "ab"}
    cache = RenderCache(max_bytes=sum(entry_size(key, feed) for key, feed in feeds.items()))
    for key, feed in feeds.items():
        cache.put(key, feed)
    assert cache.keys() == ["a", "b"] and cache.size == cache.max_bytes
    assert cache.stats.evictions == 0


def test_keys_are_listed_least_recently_used_first() -> None:
    cache = RenderCache(max_bytes=100_000)
    for key in "abc":
        cache.put(key, rendered_feed(key.encode(), "text/plain", MOMENT))
    cache.get("a")
    cache.carry("b", None, 0)
    assert cache.keys() == ["c", "a", "b"] and len(cache) == 3


def test_a_variant_made_after_its_render_left_the_cache_is_not_counted() -> None:
    feed = rendered_feed(b"news " * 200, "text/plain", MOMENT)
    cache = RenderCache(max_bytes=100_000)
    cache.put("a", feed)
    cache.put("a", rendered_feed(b"other", "text/plain", MOMENT))  # replaced
    size = cache.size
    feed.variant("gzip")
    assert cache.size == size
    evicted = rendered_feed(b"news " * 200, "text/plain", MOMENT)
    small = RenderCache(max_bytes=entry_size("a", evicted) + 10)
    small.put("a", evicted)
    small.put("b", rendered_feed(b"b", "text/plain", MOMENT))
    size = small.size
    evicted.variant("br")
    assert small.size == size == entry_size("b", small.get("b"))  # type: ignore[arg-type]


def test_a_render_put_again_under_its_key_is_counted_once() -> None:
    feed = rendered_feed(b"news " * 200, "text/plain", MOMENT)
    cache = RenderCache(max_bytes=100_000)
    cache.put("a", feed)
    cache.put("a", feed)
    feed.variant("gzip")
    assert cache.size == entry_size("a", feed) and len(cache) == 1


def test_a_variant_that_overflows_the_bound_evicts_the_least_recently_used() -> None:
    old = rendered_feed(b"a" * 1000, "text/plain", MOMENT)
    new = rendered_feed(b"<feed>" + b"news " * 500 + b"</feed>", "text/plain", MOMENT)
    cache = RenderCache(max_bytes=entry_size("a", old) + entry_size("b", new) + 100)
    cache.put("a", old)
    cache.put("b", new)
    new.variant("identity")  # there already: nothing grows
    assert cache.keys() == ["a", "b"] and cache.stats.evictions == 0
    new.variant("br")
    assert cache.keys() == ["b"] and cache.size == entry_size("b", new)
    assert cache.stats.evictions == 1


def test_a_miss_asked_again_is_counted_once() -> None:
    cache = RenderCache(max_bytes=100_000)
    assert cache.get("k", count_miss=False) is None
    assert cache.stats.misses == 0
    assert cache.get("k") is None and cache.get("k", 3) is None
    assert (cache.stats.hits, cache.stats.misses) == (0, 2)


def test_a_render_carried_to_a_version_is_counted_once_and_kept_for_two_versions() -> None:
    """A render is valid for the version it was checked against and the one before it (whose
    requests are still being answered while a reload checks the new one), not older ones."""
    cache = RenderCache(max_bytes=100_000)
    feed = rendered_feed(b"body", "text/plain", MOMENT)
    cache.put("k", feed, "inputs", 1)
    assert cache.carry("k", "other inputs", 2) is None
    assert cache.get("k", 2) is None and cache.stats.carried == 0
    assert cache.carry("missing", "inputs", 2) is None
    assert cache.carry("k", "inputs", 2) is feed and cache.carry("k", "inputs", 2) is feed
    assert cache.stats.carried == 1
    assert cache.get("k", 1) is feed and cache.get("k", 2) is feed
    assert cache.carry("k", "inputs", 3) is feed and cache.stats.carried == 2
    assert cache.get("k", 1) is None
    assert cache.get("k", 2) is feed and cache.get("k", 3) is feed


def test_a_carried_render_is_now_the_most_recently_used() -> None:
    feeds = {key: rendered_feed(key.encode() * 500, "text/plain", MOMENT) for key in "abc"}
    cache = RenderCache(max_bytes=entry_size("a", feeds["a"]) * 2 + 10)
    cache.put("a", feeds["a"], "inputs", 1)
    cache.put("b", feeds["b"], "inputs", 1)
    assert cache.carry("a", "inputs", 2) is feeds["a"]
    cache.put("c", feeds["c"], "inputs", 2)
    assert cache.keys() == ["a", "c"]


def test_get_or_render_renders_from_the_inputs_it_was_given_and_keeps_them() -> None:
    rendered: list[object] = []

    def render(inputs: object):  # type: ignore[no-untyped-def]
        rendered.append(inputs)
        return rendered_feed(repr(inputs).encode(), "text/plain", MOMENT)

    cache = RenderCache(max_bytes=100_000)
    made = cache.get_or_render("k", render, lambda: ("page", 1), version=4)
    assert rendered == [("page", 1)] and made.body == b"('page', 1)"
    assert cache.get("k", 4) is made and cache.get("k", 3) is None
    assert cache.carry("k", ("page", 1), 5) is made  # kept with the inputs it was made from
    assert cache.get_or_render("k", render) is not made  # version 0: not checked, rendered
    assert rendered == [("page", 1), None]


def test_a_fragment_bound_reached_exactly_evicts_nothing() -> None:
    one = fragment_size("a", b"a" * 10)
    fragments = FragmentCache(max_bytes=one * 2)
    fragments.put("a", b"a" * 10)
    fragments.put("b", b"b" * 10)
    assert fragments.get("a") == b"a" * 10 and fragments.size == 2 * one


def test_a_fragment_put_again_replaces_the_old_one_and_its_size() -> None:
    fragments = FragmentCache(max_bytes=10_000)
    fragments.put("a", b"a" * 10)
    fragments.put("a", b"a" * 30)
    assert fragments.get("a") == b"a" * 30 and len(fragments) == 1
    assert fragments.size == fragment_size("a", b"a" * 30)
    fragments.put("b", b"b")
    fragments.put("a", b"")  # an empty fragment is kept too, and still replaces
    assert fragments.get("a") == b"" and fragments.size == fragment_size("a", b"") + fragment_size(
        "b", b"b"
    )


def test_a_fragment_larger_than_the_bound_is_not_kept() -> None:
    fragments = FragmentCache(max_bytes=fragment_size("a", b"a" * 10))
    fragments.put("a", b"a" * 10)
    fragments.put("b", b"b" * 11)
    assert len(fragments) == 0 and fragments.size == 0
    assert fragments.get("a") is None and fragments.get("b") is None


def test_memory_accounting_counts_keys_and_their_parts() -> None:
    short, long = ("atom", 1), ("atom", 1, "x" * 1000)
    assert fragment_size(long, b"") - fragment_size(short, b"") >= 1000
    assert fragment_size("k", b"x" * 100) - fragment_size("k", b"") == 100
    feed = rendered_feed(b"x" * 100, "text/plain", MOMENT)
    assert entry_size("k" * 1001, feed) - entry_size("k", feed) == 1000
    assert feed.size == 100 + VARIANT_OVERHEAD


def test_holds_says_what_get_would_find_and_changes_nothing() -> None:
    cache = RenderCache(max_bytes=100_000)
    assert not cache.holds("k", 1)
    cache.put("k", rendered_feed(b"k", "text/plain", MOMENT), "inputs", 1)
    cache.put("other", rendered_feed(b"o", "text/plain", MOMENT), "inputs", 1)
    assert cache.holds("k", 1) and not cache.holds("k", 2) and not cache.holds("missing", 1)
    assert cache.keys() == ["k", "other"]  # not moved
    assert (cache.stats.hits, cache.stats.misses) == (0, 0)


def test_every_eviction_is_counted() -> None:
    one = rendered_feed(b"a" * 1000, "text/plain", MOMENT)
    cache = RenderCache(max_bytes=entry_size("a", one) * 2)
    for key in "abcde":
        cache.put(key, rendered_feed(key.encode() * 1000, "text/plain", MOMENT))
    assert cache.keys() == ["d", "e"] and cache.stats.evictions == 3


def test_get_or_render_of_a_version_checked_before_is_a_plain_hit() -> None:
    asked: list[int] = []

    def inputs() -> str:
        asked.append(1)
        return "inputs"

    cache = RenderCache(max_bytes=100_000)
    made = cache.get_or_render("k", lambda _: rendered_feed(b"k", "text/plain", MOMENT), inputs, 7)
    again = cache.get_or_render("k", lambda _: rendered_feed(b"x", "text/plain", MOMENT), inputs, 7)
    assert again is made and len(asked) == 1  # its inputs were not made again
    assert (cache.stats.hits, cache.stats.misses, cache.stats.carried) == (1, 1, 0)


def test_a_key_is_accounted_as_its_tuple_and_its_parts() -> None:
    key = ("topics", "ai", "atom", 2, "https://news.example")
    parts = sum(sys.getsizeof(part) for part in key)
    assert key_size(key) == sys.getsizeof(key) + parts
    assert key_size("last") == sys.getsizeof("last")


def test_last_modified_is_written_in_gmt_whatever_the_local_time_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        feed = rendered_feed(b"x", "text/plain", datetime(2022, 1, 1, 5, tzinfo=UTC))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert dict(feed.variant(IDENTITY).headers)["Last-Modified"] == "Sat, 01 Jan 2022 05:00:00 GMT"
