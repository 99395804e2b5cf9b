from __future__ import annotations

import gc
import gzip
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
    rendered_feed,
)
from tests.conftest import make_app

MOMENT = datetime(2022, 1, 1, tzinfo=UTC)


def test_every_coding_has_its_own_strong_etag_and_decodes_to_the_same_bytes() -> None:
    body = b"<feed>" + b"news " * 500 + b"</feed>"
    feed = rendered_feed(body, "application/atom+xml", MOMENT)
    assert set(feed.variants) == {IDENTITY}  # compressed on the first request for a coding
    assert gzip.decompress(feed.variant("gzip").body) == body
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
