from __future__ import annotations

import gzip
from datetime import UTC, datetime

import brotli

from feedsvc.cache import IDENTITY, RenderCache, rendered_feed

MOMENT = datetime(2022, 1, 1, tzinfo=UTC)


def test_every_coding_has_its_own_strong_etag_and_decodes_to_the_same_bytes() -> None:
    body = b"<feed>" + b"news " * 500 + b"</feed>"
    feed = rendered_feed(body, "application/atom+xml", MOMENT)
    assert set(feed.variants) == {IDENTITY, "gzip", "br"}
    assert gzip.decompress(feed.variants["gzip"].body) == body
    assert brotli.decompress(feed.variants["br"].body) == body
    etags = {variant.etag for variant in feed.variants.values()}
    assert len(etags) == 3
    assert rendered_feed(body, "application/atom+xml", MOMENT) == feed  # byte-stable, gzip mtime=0


def test_lru_eviction_keeps_within_the_bound() -> None:
    one = rendered_feed(b"a" * 1000, "text/plain", MOMENT)
    cache = RenderCache(max_bytes=one.size * 2)
    for key in "abc":
        cache.put(key, rendered_feed(key.encode() * 1000, "text/plain", MOMENT))
    assert len(cache) == 2 and cache.size <= cache.max_bytes
    assert cache.get("a") is None and cache.get("c") is not None
    assert cache.stats.evictions == 1


def test_recently_used_entries_survive_eviction() -> None:
    one = rendered_feed(b"a" * 1000, "text/plain", MOMENT)
    cache = RenderCache(max_bytes=one.size * 2)
    cache.put("a", one)
    cache.put("b", rendered_feed(b"b" * 1000, "text/plain", MOMENT))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", rendered_feed(b"c" * 1000, "text/plain", MOMENT))
    assert cache.get("a") is not None and cache.get("b") is None


def test_an_entry_larger_than_the_bound_is_still_served_once_rendered() -> None:
    cache = RenderCache(max_bytes=10)
    feed = cache.get_or_render("big", lambda: rendered_feed(b"x" * 100, "text/plain", MOMENT))
    assert cache.get("big") is feed


def test_get_or_render_renders_once() -> None:
    calls: list[int] = []

    def render():  # type: ignore[no-untyped-def]
        calls.append(1)
        return rendered_feed(b"body", "text/plain", MOMENT)

    cache = RenderCache(max_bytes=10_000)
    first = cache.get_or_render("k", render)
    assert cache.get_or_render("k", render) is first
    assert len(calls) == 1
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
