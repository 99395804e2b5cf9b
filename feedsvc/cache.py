"""Rendered feeds kept as bytes, so that nothing is rendered or compressed twice.

Each (feed, format, page, base URL) is rendered once per collection, compressed once per content
coding, and served from memory afterwards. Every variant carries a strong ETag over its own bytes,
so the gzip and identity representations never share one (RFC 9110 §8.8.3). The caches are bounded
by the memory their entries hold (bytes, keys and the objects around them, see `ENTRY_OVERHEAD`);
the least recently used entries are evicted first.
"""

from __future__ import annotations

import email.utils
import hashlib
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import brotli
from isal import igzip

IDENTITY = "identity"
# Preference order when a client accepts several codings equally.
CODINGS = ("br", "gzip")


# gzip was most of a first render whose entries are rendered (issue 11: <= 5 ms with gzip), and a
# quarter of a static build's CPU. ISA-L's igzip (levels 0-3) at level 2 writes 50-entry pages of
# bench/synth.py (Atom 164 KB, RSS 127 KB, JSON 96 KB, the index 287 KB) in 0.18 ms a page where
# zlib took 1.40 ms at level 5 and 0.68 ms at level 1. Its bytes are as many as zlib's level 1
# (the level nginx's `gzip_comp_level` defaults to): 12.0 % of a page, against 10.0 % at zlib's
# level 5. `python -m bench.rendering --gzip-levels 2,3` shows the trade in one run.
# brotli 6 is 4 ms on a 175 KB page and smaller than gzip 9, while brotli 11 takes 360 ms.
GZIP_LEVEL = 2


def _gzip(body: bytes) -> bytes:
    # mtime=0: the same bytes on every render, in every process and in the static build (igzip
    # writes the same bytes on every x86-64 CPU with SSE4.2, as on any one machine).
    return igzip.compress(body, GZIP_LEVEL, mtime=0)


def _brotli(body: bytes) -> bytes:
    return bytes(brotli.compress(body, quality=6, mode=brotli.MODE_TEXT))


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {"br": _brotli, "gzip": _gzip}


def strong_etag(body: bytes) -> str:
    """An unquoted strong validator for exactly these bytes."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


Headers = tuple[tuple[str, str], ...]

# What holding an entry costs beyond its bytes and its key, measured with tracemalloc (memory
# freed when the entries are dropped) on the test records and on bench/synth.py collections, with
# and without BASE_URL, 1 to 50 entries a page: 2,100-3,600 bytes a document, 570-760 a fragment.
# A document's entry is its inputs, the RenderedFeed and the LRU's links; each variant adds its
# bytes object, ETag and prebuilt headers; a fragment adds its key's Entry and the LRU's links.
# tests/test_cache.py checks that the accounted size stays within 25% of the measured one.
ENTRY_OVERHEAD = 1_150
VARIANT_OVERHEAD = 730
FRAGMENT_OVERHEAD = 400


def key_size(key: Hashable) -> int:
    """The memory of a cache key: the tuple and its parts (shallow: what they refer to is
    counted with the entry's overhead)."""
    if isinstance(key, tuple):
        return sys.getsizeof(key) + sum(sys.getsizeof(part) for part in key)
    return sys.getsizeof(key)


@dataclass(frozen=True, slots=True)
class Variant:
    """One representation of a rendered feed: its bytes in one content coding, their ETag, and
    the representation headers, built once so that serving it builds nothing."""

    body: bytes
    etag: str
    coding: str
    headers: Headers
    validators: Headers  # what a 304 for this representation repeats


def _variant(
    body: bytes, coding: str, media_type: str, last_modified: str, extra: Headers = ()
) -> Variant:
    etag = strong_etag(body)
    validators = (("ETag", f'"{etag}"'),)
    headers = (
        ("Content-Type", media_type),
        ("Content-Length", str(len(body))),
        *((("Content-Encoding", coding),) if coding != IDENTITY else ()),
        *validators,
        ("Last-Modified", last_modified),
        *extra,
    )
    return Variant(body, etag, coding, headers, validators)


class RenderedFeed:
    """A rendered document in every content coding a client has asked for so far: the identity
    bytes are made at render time, each variant (its ETag, and its bytes when compressed) on
    its first request (most clients ask for one coding, so compressing for all of them up front
    is mostly wasted, and so is digesting the identity bytes for a client that asked for gzip).
    The identity bytes are accounted as a variant from the start: they are held either way."""

    __slots__ = (
        "media_type",
        "last_modified",
        "modified_at",
        "headers",
        "variants",
        "body",
        "_http_date",
        "_owner",
    )

    def __init__(
        self, body: bytes, media_type: str, last_modified: datetime, headers: Headers = ()
    ) -> None:
        self.media_type = media_type
        self.last_modified = last_modified
        self.modified_at = last_modified.timestamp()  # to compare with time.time(), cheaply
        self.headers = headers  # more headers of every variant's 200 (a feed's Link)
        self._http_date = email.utils.format_datetime(last_modified.astimezone(UTC), usegmt=True)
        self.body = body  # the identity bytes
        self.variants: dict[str, Variant] = {}
        self._owner: RenderCache | None = None

    def variant(self, coding: str) -> Variant:
        """The representation in `coding` (one of `CODINGS` or identity), made now (compressed,
        given its ETag) if no client asked for it before. Two threads may both make it; the
        bytes are the same."""
        found = self.variants.get(coding)
        if found is None:
            body = self.body if coding == IDENTITY else COMPRESSORS[coding](self.body)
            found = _variant(body, coding, self.media_type, self._http_date, self.headers)
            self.variants = {**self.variants, coding: found}  # readers never see a dict change
            if self._owner is not None and coding != IDENTITY:
                self._owner.grew(self, len(body) + VARIANT_OVERHEAD)
        return found

    @property
    def size(self) -> int:
        """The memory of every variant: bytes, ETag and headers (see `VARIANT_OVERHEAD`), the
        identity bytes' whether or not a client asked for them yet."""
        compressed = (v for coding, v in self.variants.items() if coding != IDENTITY)
        return (
            len(self.body)
            + VARIANT_OVERHEAD
            + sum(len(v.body) + VARIANT_OVERHEAD for v in compressed)
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RenderedFeed):
            return NotImplemented
        return (self.media_type, self.last_modified, self.headers, self.body) == (
            other.media_type,
            other.last_modified,
            other.headers,
            other.body,
        )

    __hash__ = None  # type: ignore[assignment]


def rendered_feed(
    body: bytes, media_type: str, last_modified: datetime, headers: Headers = ()
) -> RenderedFeed:
    """Wrap freshly rendered bytes; compressed variants and their ETags follow on demand."""
    return RenderedFeed(body, media_type, last_modified, headers)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    carried: int = 0  # renders kept from an earlier version because their inputs were equal


@dataclass(slots=True)
class _Cached:
    rendered: RenderedFeed
    inputs: Hashable  # what the render was made from: equal inputs give equal bytes
    # The newest collection versions the inputs were checked against (at most two: a reload
    # checks the new one while requests of the previous one are still being answered).
    versions: tuple[int, ...]


@dataclass
class RenderCache:
    """A thread-safe LRU of rendered documents, bounded by the memory of their keys and all
    their variants, shared by the versions of the collection.

    Each render is kept with the inputs it was made from and the version they were last checked
    against. A request of another version recomputes the inputs (cheap: no rendering) and keeps
    the render when they are equal (`carry`), so a reload renders again only the documents it
    changed. Two threads missing the same key at once may both render it; the second result
    replaces the first. That is rarer and cheaper than making every reader wait on a lock.
    """

    max_bytes: int
    stats: CacheStats = field(default_factory=CacheStats)
    _entries: OrderedDict[Hashable, _Cached] = field(default_factory=OrderedDict)
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(
        self, key: Hashable, version: int = 0, *, count_miss: bool = True
    ) -> RenderedFeed | None:
        """The render of `key` checked against `version`, now the most recently used;
        `count_miss=False` for a look-up whose miss is asked again through `get_or_render`,
        so that one miss is counted once."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or version not in found.versions:
                self.stats.misses += count_miss
                return None
            self._entries.move_to_end(key)
            self.stats.hits += 1
            return found.rendered

    def holds(self, key: Hashable, version: int) -> bool:
        """Whether `get(key, version)` would find a render (nothing is counted or moved)."""
        with self._lock:
            found = self._entries.get(key)
            return found is not None and version in found.versions

    def carry(self, key: Hashable, inputs: Hashable, version: int) -> RenderedFeed | None:
        """The render of `key` made for another version from these same inputs, now checked
        against `version`; None when there is none or its inputs differ."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found.inputs != inputs:
                return None
            if version not in found.versions:
                found.versions = (*found.versions[-1:], version)
                self.stats.carried += 1
            self._entries.move_to_end(key)
            return found.rendered

    def put(
        self, key: Hashable, feed: RenderedFeed, inputs: Hashable = None, version: int = 0
    ) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._forget(key, old.rendered)
            self._entries[key] = _Cached(feed, inputs, (version,))
            feed._owner = self
            self._bytes += entry_size(key, feed)
            self._evict()

    def _evict(self) -> None:
        """Drop the least recently used entries until the rest fit (the newest always stays)."""
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            evicted_key, evicted = self._entries.popitem(last=False)
            self._forget(evicted_key, evicted.rendered)
            self.stats.evictions += 1

    def _forget(self, key: Hashable, feed: RenderedFeed) -> None:
        if feed._owner is self:
            feed._owner = None
        self._bytes -= entry_size(key, feed)

    def grew(self, feed: RenderedFeed, size: int) -> None:
        """A cached render made a compressed variant: count its memory too, and keep within the
        bound (the render is being served, so it is the most recently used)."""
        with self._lock:
            if feed._owner is self:
                self._bytes += size
                self._evict()

    def get_or_render(
        self,
        key: Hashable,
        render: Callable[[Hashable], RenderedFeed],
        inputs: Callable[[], Hashable] = lambda: None,
        version: int = 0,
    ) -> RenderedFeed:
        """The cached render for `version`, else one carried from an earlier version with equal
        inputs, else a new render from the inputs."""
        found = self.get(key, version)
        if found is None:
            made = inputs()
            found = self.carry(key, made, version)
            if found is None:
                found = render(made)
                self.put(key, found, made, version)
        return found

    def keys(self) -> list[Hashable]:
        """The keys held now, least recently used first."""
        with self._lock:
            return list(self._entries)

    @property
    def size(self) -> int:
        """The memory the entries hold, as accounted (what RENDER_CACHE_BYTES bounds)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


def entry_size(key: Hashable, feed: RenderedFeed) -> int:
    """The memory a cached document is accounted: its key, its variants and the objects around
    them."""
    return ENTRY_OVERHEAD + key_size(key) + feed.size


def fragment_size(key: Hashable, fragment: bytes) -> int:
    """The memory a cached fragment is accounted: its key, its bytes and the objects around
    them."""
    return FRAGMENT_OVERHEAD + key_size(key) + len(fragment)


@dataclass
class FragmentCache:
    """Rendered entries (see `render.Format.assemble`), an LRU bounded by their memory. Entries
    are keyed by their content, so a fragment stays valid across reloads for as long as its
    record does not change."""

    max_bytes: int
    _fragments: OrderedDict[Hashable, bytes] = field(default_factory=OrderedDict)
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            found = self._fragments.get(key)
            if found is not None:
                self._fragments.move_to_end(key)
            return found

    def put(self, key: Hashable, fragment: bytes) -> None:
        with self._lock:
            old = self._fragments.pop(key, None)
            if old is not None:
                self._bytes -= fragment_size(key, old)
            self._bytes += fragment_size(key, fragment)
            self._fragments[key] = fragment
            while self._bytes > self.max_bytes and self._fragments:
                evicted_key, evicted = self._fragments.popitem(last=False)
                self._bytes -= fragment_size(evicted_key, evicted)

    @property
    def size(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._fragments)
