"""Stories: the records of a collection grouped by the event they cover.

Five providers reporting one event are five records; each lists the others' articles in its
`related` coverage. Records are grouped when they share an article URL (their own `webUrl` or
`originalUrl`, or a related article's) within `window` of each other, comparing URLs by their
*comparison key* (`comparison_key`): tracking parameters, AMP forms and `www.` dropped. The
comparison key is only for grouping: entry ids stay those of `urls.entry_id`, never rewritten.

The grouping is bounded, so that a hub URL (a section front page that hundreds of records list
as related) cannot chain a collection into one story: a key held by more than `HUB_LIMIT` records
links none of them, and a story stops growing at `MAX_STORY_RECORDS`. It is deterministic: records
are taken in (published, id) order, so file and load order never matter. A story is named after
its first record (earliest by (published, id)), so its id stays while coverage grows, and when
two stories merge the older one's id survives.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property, lru_cache

from feedsvc.records import Record, Related, unpack_related

DEFAULT_WINDOW_DAYS = 3.0
# A key that more records than this hold is a hub (a section front, a site's home page), not an
# article: it links none of them. Real stories rarely have 20 records; hubs have hundreds.
HUB_LIMIT = 30
MAX_STORY_RECORDS = 50

# Story ids live in a namespace of their own, so a story's id never equals an article's.
STORY_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://feedsvc.invalid/story-id/v1")

# Query parameters that say how a reader arrived, never which article it is.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gclsrc", "msclkid", "yclid", "igshid", "twclid", "li_fat_id",
        "mc_cid", "mc_eid", "_ga", "_gl", "ref", "ref_src", "referrer", "source", "src", "cmpid",
        "cmp", "ocid", "ncid", "taid", "smid", "sr_share", "guccounter", "ftag", "ito", "itm",
        "partner", "traffic_source", "share", "amp", "outputtype", "__twitter_impression",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "guce_", "pk_", "hsa_", "mkt_", "vero_", "oly_", "at_")
# Host prefixes of mobile and AMP editions of a site, and of its `www.` form.
HOST_PREFIXES = ("www.", "amp.", "m.", "mobile.")
_AMP_CACHE_SUFFIX = ".cdn.ampproject.org"
# livemint's AMP page `.../title/amp-11668444305981.html` is `.../title-11668444305981.html`.
_AMP_NUMBER_SEGMENT = re.compile(r"/amp-([0-9]+\.html?)$")


@lru_cache(maxsize=1 << 19)
def comparison_key(url: str) -> str:
    """The key that tells two URLs of one article apart from two articles (see the module
    docstring; README, Stories, lists the forms). `url` is normalized (`urls.normalize_url`:
    lower-case host, no default port), so plain string operations suffice: this runs for every
    URL of every record."""
    rest = url.partition("://")[2].partition("#")[0]
    host, _, path_query = rest.partition("/")
    path, _, query = path_query.partition("?")
    path = "/" + path
    if "%" in path or "%" in query:
        path, query = _upper_escapes(path), _upper_escapes(query)
    if host.endswith(_AMP_CACHE_SUFFIX):
        host, path = _from_amp_cache(host, path)
    for prefix in HOST_PREFIXES:
        if host.startswith(prefix) and "." in host[len(prefix) :]:
            host = host[len(prefix) :]
            break
    path = _canonical_path(path)
    if query:
        query = "&".join(sorted(_kept_params(query)))
    return f"{host}{path}" + (f"?{query}" if query else "")


_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _upper_escapes(text: str) -> str:
    return _ESCAPE.sub(lambda match: match.group(0).upper(), text)


def _from_amp_cache(host: str, path: str) -> tuple[str, str]:
    """`https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a` is the article at
    `www.example.com/a` (`/c/` for documents, `/v/` for the viewer, `/s/` for https)."""
    segments = path.split("/")  # "", "c", "s", host, ...
    rest = segments[2:] if len(segments) > 2 and segments[1] in ("c", "v") else []
    if rest and rest[0] == "s":
        rest = rest[1:]
    if len(rest) < 1 or "." not in rest[0]:
        return host, path
    return rest[0].lower(), "/" + "/".join(rest[1:])


def _canonical_path(path: str) -> str:
    """The path without its AMP forms (`/amp/` segments, `amp_articleshow`, `.amp.html`,
    `/amp-123.html`) and without a trailing slash."""
    path = _AMP_NUMBER_SEGMENT.sub(r"-\1", path)
    segments = [
        segment.removeprefix("amp_") for segment in path.split("/") if segment.lower() != "amp"
    ]
    path = "/".join(segments)
    if path.endswith(".amp.html"):
        path = path[: -len(".amp.html")] + ".html"
    elif path.endswith(".amp"):
        path = path[: -len(".amp")]
    return path.rstrip("/") or "/"


def _kept_params(query: str) -> Iterable[str]:
    for pair in query.split("&"):
        name = pair.partition("=")[0].lower()
        if pair and name not in TRACKING_PARAMS and not name.startswith(TRACKING_PREFIXES):
            yield pair


@lru_cache(maxsize=1 << 17)
def _record_keys(url: str, original_url: str | None, coverage: str) -> tuple[str, ...]:
    """The comparison keys of a record's own URLs and its related articles, once each, in order.
    Remembered by the three strings (a reload regroups the same records again)."""
    urls = [url, *((original_url,) if original_url else ()), *_related_urls(coverage)]
    return tuple(dict.fromkeys(comparison_key(item) for item in urls))


def _related_urls(coverage: str) -> list[str]:
    return [item.url for item in unpack_related(coverage)]


def record_keys(record: Record) -> tuple[str, ...]:
    return _record_keys(record.url, record.original_url, record.coverage)


def story_id(first: Record) -> str:
    """A story's permanent id: from its first record's entry id, in the stories' namespace."""
    return uuid.uuid5(STORY_ID_NAMESPACE, "story:" + first.id).urn


@dataclass(frozen=True, slots=True)
class Coverage:
    """One article about the story: one of its records, or a related article none of them is."""

    title: str
    url: str
    provider: str | None
    published: datetime | None


@dataclass(frozen=True)
class Story:
    """Records about one event, earliest first by (published, id)."""

    records: tuple[Record, ...]

    @property
    def first(self) -> Record:
        return self.records[0]

    @cached_property
    def id(self) -> str:
        return story_id(self.first)

    @property
    def slug(self) -> str:
        """The story's id as a URL path segment (`/stories/<slug>`)."""
        return self.id.rpartition(":")[2]

    @cached_property
    def lead(self) -> Record:
        """The headline: the highest `quality` where any record has one, else the first."""
        rated = [record for record in self.records if record.quality is not None]
        if not rated:
            return self.first
        return min(rated, key=lambda r: (-(r.quality or 0), r.published, r.id))

    @property
    def published(self) -> datetime:
        return self.first.published

    @cached_property
    def updated(self) -> datetime:
        """The newest coverage the collection received: its newest record. (Related articles'
        dates are not read: a record's related coverage is older than the record, or undated.)"""
        return max(record.published for record in self.records)

    @cached_property
    def coverage(self) -> tuple[Coverage, ...]:
        """Every piece of coverage once (by comparison key), newest first; undated last."""
        seen: dict[str, Coverage] = {}
        for record in self.records:
            provider = record.provider.name if record.provider else None
            seen.setdefault(
                comparison_key(record.url),
                Coverage(record.title, record.url, provider, record.published),
            )
        for record in self.records:
            for item in record.related:
                seen.setdefault(comparison_key(item.url), _coverage_of(item))
        undated = [item for item in seen.values() if item.published is None]
        dated = [item for item in seen.values() if item.published is not None]
        dated.sort(key=lambda item: (item.published, item.url), reverse=True)
        return (*dated, *sorted(undated, key=lambda item: item.url))

    @property
    def topic_slugs(self) -> frozenset[str]:
        return frozenset(topic.slug for record in self.records for topic in record.topics)


def _coverage_of(item: Related) -> Coverage:
    return Coverage(item.title, item.url, item.provider, item.published)


def by_time(records: Iterable[Record]) -> list[Record]:
    """Records in the order grouping takes them: (published, id)."""
    return sorted(records, key=lambda record: (record.published, record.id))


def group_stories(
    records: Iterable[Record],
    window_days: float = DEFAULT_WINDOW_DAYS,
    hub_limit: int = HUB_LIMIT,
    max_records: int = MAX_STORY_RECORDS,
) -> tuple[Story, ...]:
    """Every record in exactly one story; stories newest (by `updated`) first, ties by id."""
    ordered = by_time(records)
    holders: dict[str, list[int]] = {}
    for index, record in enumerate(ordered):
        for key in record_keys(record):
            holders.setdefault(key, []).append(index)
    groups = _UnionFind(len(ordered), max_records)
    window = timedelta(days=window_days)
    # Keys in the order records first name them (deterministic, as records are sorted); a
    # key's holders are in time order, so linking neighbours links every pair within the window.
    for indexes in holders.values():
        if 1 < len(indexes) <= hub_limit:
            for earlier, later in zip(indexes, indexes[1:], strict=False):
                if ordered[later].published - ordered[earlier].published <= window:
                    groups.union(earlier, later)
    members: dict[int, list[Record]] = {}
    for index, record in enumerate(ordered):
        members.setdefault(groups.find(index), []).append(record)
    stories = [Story(tuple(group)) for group in members.values()]
    stories.sort(key=lambda story: story.id)
    stories.sort(key=lambda story: story.updated, reverse=True)
    return tuple(stories)


class _UnionFind:
    """Disjoint sets of record indexes whose root is their smallest index (the earliest record),
    and that stop growing at `limit` members."""

    def __init__(self, count: int, limit: int) -> None:
        self.parent = list(range(count))
        self.size = [1] * count
        self.limit = limit

    def find(self, index: int) -> int:
        parent = self.parent
        root = index
        while parent[root] != root:
            root = parent[root]
        while parent[index] != root:
            parent[index], index = root, parent[index]
        return root

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b or self.size[root_a] + self.size[root_b] > self.limit:
            return
        keep, gone = min(root_a, root_b), max(root_a, root_b)
        self.parent[gone] = keep
        self.size[keep] += self.size[gone]


@dataclass(frozen=True)
class StoryIndex:
    """A collection's stories, newest first, and the stories of each topic."""

    stories: tuple[Story, ...]

    @cached_property
    def by_topic(self) -> dict[str, tuple[Story, ...]]:
        topics: dict[str, list[Story]] = {}
        for story in self.stories:
            for slug in sorted(story.topic_slugs):
                topics.setdefault(slug, []).append(story)
        return {slug: tuple(stories) for slug, stories in topics.items()}

    @cached_property
    def by_slug(self) -> dict[str, Story]:
        return {story.slug: story for story in self.stories}


# One collection's stories are grouped once: every story feed and page of a version reads them.
_latest: list[tuple[Sequence[Record], float, StoryIndex]] = []


def stories_of(records: Sequence[Record], window_days: float = DEFAULT_WINDOW_DAYS) -> StoryIndex:
    """The stories of a collection's records (its `records` tuple), grouped once per version."""
    for known, window, index in _latest:
        if known is records and window == window_days:
            return index
    index = StoryIndex(group_stories(records, window_days))
    _latest[:] = [(records, window_days, index)]
    return index
