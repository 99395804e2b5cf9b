"""Rendered feeds kept as bytes, so that nothing is rendered or compressed twice.

Each (feed, format, page, base URL) is rendered once per collection, compressed once per content
coding, and served from memory afterwards. Every variant carries a strong ETag over its own bytes,
so the gzip and identity representations never share one (RFC 9110 §8.8.3). The cache is bounded
by the bytes it holds; the least recently used feeds are evicted first.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime

import brotli

IDENTITY = "identity"
# Preference order when a client accepts several codings equally.
CODINGS = ("br", "gzip")


# Levels measured on a 175 KB Atom feed: gzip 6 is 3 ms for 2% more bytes than gzip 9 (5 ms);
# brotli 6 is 4 ms and smaller than gzip 9, while brotli 11 takes 360 ms.
def _gzip(body: bytes) -> bytes:
    return gzip.compress(body, compresslevel=6, mtime=0)  # mtime=0: same bytes on every render


def _brotli(body: bytes) -> bytes:
    return bytes(brotli.compress(body, quality=6, mode=brotli.MODE_TEXT))


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {"br": _brotli, "gzip": _gzip}


def strong_etag(body: bytes) -> str:
    """An unquoted strong validator for exactly these bytes."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Variant:
    """One representation of a rendered feed: its bytes in one content coding, and their ETag."""

    body: bytes
    etag: str
    coding: str = IDENTITY


@dataclass(frozen=True, slots=True)
class RenderedFeed:
    media_type: str
    last_modified: datetime
    variants: dict[str, Variant]

    @property
    def size(self) -> int:
        return sum(len(variant.body) for variant in self.variants.values())


def rendered_feed(body: bytes, media_type: str, last_modified: datetime) -> RenderedFeed:
    """Wrap freshly rendered bytes with every compressed variant and their ETags."""
    variants = {IDENTITY: Variant(body, strong_etag(body))}
    for coding, compress in COMPRESSORS.items():
        compressed = compress(body)
        variants[coding] = Variant(compressed, strong_etag(compressed), coding)
    return RenderedFeed(media_type, last_modified, variants)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0


@dataclass
class RenderCache:
    """A thread-safe LRU of rendered feeds, bounded by the bytes of all their variants.

    Two threads missing the same key at once may both render it; the second result replaces the
    first. That is rarer and cheaper than making every reader wait on a per-key lock.
    """

    max_bytes: int
    stats: CacheStats = field(default_factory=CacheStats)
    _entries: OrderedDict[Hashable, RenderedFeed] = field(default_factory=OrderedDict)
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable) -> RenderedFeed | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.stats.misses += 1
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return found

    def put(self, key: Hashable, feed: RenderedFeed) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._entries[key] = feed
            self._bytes += feed.size
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= evicted.size
                self.stats.evictions += 1

    def get_or_render(self, key: Hashable, render: Callable[[], RenderedFeed]) -> RenderedFeed:
        found = self.get(key)
        if found is None:
            found = render()
            self.put(key, found)
        return found

    @property
    def size(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
