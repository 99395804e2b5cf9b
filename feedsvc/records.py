"""The record model: what one publishable article is, as typed immutable values.

`Record` and its parts (`Provider`, `Topic`, `Image`, `Related`) and `ParseResult` (a record or
the problems that keep it out) are what every module above reads; `fields` builds them from a
file's front matter. They are frozen, slotted and small, because a collection holds 100,000 of
them: values records have in common (topics, providers, image sizes and media types) are shared
objects (`shared_topic`, `shared_provider`, `shared_image`), also when a record is unpickled in
another process or from the parse cache, and related articles are kept packed in one string.
The parse cache writes records field by field (`parsecache.encode_states`): a field added to
`Record` must be added there too (tests/test_parsecache.py checks the list).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from feedsvc.errors import Problem
from feedsvc.values import pickled_by_fields


@dataclass(frozen=True, slots=True)
class Image:
    """An image with its size in pixels (None when the record does not say) and media type.
    Built by `shared_image`, which shares the sizes and media types images have in common."""

    url: str
    width: int | None
    height: int | None
    media_type: str

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return shared_image, (self.url, self.width, self.height, self.media_type)


@dataclass(frozen=True, slots=True)
class Topic:
    """A topic; records share one instance per topic (`shared_topic`), even across processes."""

    name: str
    slug: str

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return shared_topic, (self.name, self.slug)


@dataclass(frozen=True, slots=True)
class Provider:
    """Who published the article; `slug` comes from the domain, or the name when there is none."""

    name: str
    domain: str | None
    slug: str
    images: tuple[Image, ...] = ()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return shared_provider, (self.name, self.domain, self.slug, self.images)


@dataclass(frozen=True, slots=True)
class Related:
    """Another article covering the same story, as listed in the record's `related`. Its images
    are not kept: no feed shows them. Records hold these packed (`pack_related`)."""

    title: str
    url: str
    published: datetime | None
    provider: str | None


# A record's related articles are half of its memory as objects, and are only read when a feed
# is rendered (once per version), so a record keeps them as one string: fields separated by
# _UNIT, articles by _GROUP. Neither character survives `fields.clean_text` or `normalize_url`.
_UNIT = "\x1f"
_GROUP = "\x1e"


def pack_related(items: Iterable[Related]) -> str:
    return join_packed(
        pack_item(item.title, item.url, item.provider, item.published) for item in items
    )


def pack_item(title: str, url: str, provider: str | None, published: datetime | None) -> str:
    """One related article packed, without making a `Related` first (`fields` reads thousands)."""
    when = published.isoformat() if published is not None else ""
    return f"{title}{_UNIT}{url}{_UNIT}{provider or ''}{_UNIT}{when}"


def join_packed(items: Iterable[str]) -> str:
    """The `Record.coverage` of articles each packed by `pack_item`, in order."""
    return _GROUP.join(items)


def related_urls(packed: str) -> list[str]:
    """The URLs of a record's related articles, without unpacking the rest (grouping stories
    reads every URL of every record)."""
    if not packed:
        return []
    # Every article is four fields, so its URL is every third piece between _UNITs (an
    # article's last field and the next one's first are one piece, across _GROUP).
    return packed.split(_UNIT)[1::3]


def related_fields(packed: str) -> list[list[str]]:
    """Each related article's title, URL, provider and ISO date (`pack_item`; "" where none),
    without making a `Related` of it."""
    if not packed:
        return []
    return [item.split(_UNIT) for item in packed.split(_GROUP)]


def unpack_related(packed: str) -> tuple[Related, ...]:
    if not packed:
        return ()
    items = []
    for item in packed.split(_GROUP):
        title, url, provider, when = item.split(_UNIT)
        published = datetime.fromisoformat(when) if when else None
        items.append(Related(title, url, published, provider or None))
    return tuple(items)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Record:
    """One publishable article. `path` is relative to the collection and only ever logged."""

    path: str
    id: str
    title: str
    excerpt: str
    published: datetime
    url: str
    original_url: str | None
    provider: Provider | None
    topics: tuple[Topic, ...]
    images: tuple[Image, ...]
    coverage: str  # the related articles, packed: read them as `related`
    quality: int | None = None
    heat: int | None = None
    published_flag: bool | None = None

    @property
    def related(self) -> tuple[Related, ...]:
        """Other articles covering the same story, in the record's order."""
        return unpack_related(self.coverage)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ParseResult:
    """The record read from one file (None when rejected) and every problem found in it."""

    record: Record | None
    problems: tuple[Problem, ...] = ()

    @property
    def rejection(self) -> Problem | None:
        return next((p for p in self.problems if p.severity == "error"), None)


@lru_cache(maxsize=65536)
def shared_topic(name: str, slug: str) -> Topic:
    """The one `Topic` for this name and slug: a collection has few topics and many records."""
    return Topic(sys.intern(name), sys.intern(slug))


_SHARED_SIZE_LIMIT = 10_000


def shared_image(url: str, width: int | None, height: int | None, media_type: str) -> Image:
    """An `Image` whose sizes (a few common ones: 1200, 675...) and media type are the shared
    objects, also when unpickled in another process."""
    if width is not None and width < _SHARED_SIZE_LIMIT:
        width = _SIZES.setdefault(width, width)
    if height is not None and height < _SHARED_SIZE_LIMIT:
        height = _SIZES.setdefault(height, height)
    return Image(url, width, height, sys.intern(media_type))


_SIZES: dict[int, int] = {}


@lru_cache(maxsize=65536)
def shared_provider(
    name: str, domain: str | None, slug: str, images: tuple[Image, ...] = ()
) -> Provider:
    """The one `Provider` for these values, shared by all of its records."""
    return Provider(
        sys.intern(name), sys.intern(domain) if domain else None, sys.intern(slug), images
    )
