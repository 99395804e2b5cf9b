"""Stories: the records of a collection grouped by the event they cover.

Five providers reporting one event are five records; each lists the others' articles in its
`related` coverage. Records are grouped when they share an article URL (their own `webUrl` or
`originalUrl`, or a related article's) within `window` of each other, comparing URLs by their
*comparison key* (`comparison_key`): tracking parameters, AMP forms and `www.` dropped. The
comparison key is only for grouping: entry ids stay those of `urls.entry_id`, never rewritten.

The grouping is bounded, so that a hub URL (a section front page that hundreds of records list
as related) cannot chain a collection into one story: a key held by records of more than
`HUB_LIMIT` aggregator clusters (or by more than `HUB_RECORDS_FACTOR` times as many records)
links none of them, and a story stops growing at `MAX_STORY_RECORDS`. It is deterministic:
records are taken in (published, id) order, so file and load order never matter. A story is
named after its first record (earliest by (published, id)), so its id stays while coverage
grows, and when two stories merge the older one's id survives.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from itertools import groupby
from operator import attrgetter, itemgetter
from typing import NamedTuple, TypeVar

from feedsvc.comparison import (
    cluster_of_keys,
    comparison_key,
    own_keys,
    record_keys,
)
from feedsvc.headlines import WordCounts, forget_words, headline_words, same_event
from feedsvc.records import Record, Related
from feedsvc.repository import Collection
from feedsvc.values import collector_paused

DEFAULT_WINDOW_DAYS = 3.0
# A key that the records of more clusters than this hold is a hub (a section front, a site's home
# page), not an article: it links none of them. Real stories rarely have 20 records, and their
# records are of one cluster or a few (`cluster_of_keys`); hubs have hundreds.
HUB_LIMIT = 30
MAX_STORY_RECORDS = 50
# HUB_LIMIT counts clusters (records that list each other count once); a key that more than this
# many times HUB_LIMIT records hold is a hub however they list each other (a bound on the pairs
# one key can cost).
HUB_RECORDS_FACTOR = 10
# A headline word said on more than this share of the days (with records) of a window of time,
# and on at least `COMMON_MIN` days, is common there: no evidence of one event (`WordCounts`).
# The window: `COMMON_WINDOW_PERIODS` periods of `COMMON_PERIOD_DAYS` days (UTC), centred on the
# period of a pair's earlier record.
COMMON_SHARE = 0.25
COMMON_MIN = 5
COMMON_PERIOD_DAYS = 1.0
COMMON_WINDOW_PERIODS = 21

# Story ids live in a namespace of their own, so a story's id never equals an article's.
STORY_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://feedsvc.invalid/story-id/v1")


def story_id(first: Record) -> str:
    """A story's permanent id: from its first record's entry id, in the stories' namespace
    (`uuid.uuid5(STORY_ID_NAMESPACE, "story:" + id)`, written out: a grouping from scratch names
    tens of thousands of stories, and the UUID objects cost more than the hashing)."""
    hexed = hashlib.sha1(_NAMESPACE_BYTES + b"story:" + first.id.encode()).hexdigest()
    # The version (5) is the 13th hex digit; the RFC 4122 variant the top two bits of the 17th.
    return (
        f"urn:uuid:{hexed[:8]}-{hexed[8:12]}-5{hexed[13:16]}-"
        f"{_VARIANT[hexed[16]]}{hexed[17:20]}-{hexed[20:32]}"
    )


_NAMESPACE_BYTES = STORY_ID_NAMESPACE.bytes
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
_ID_PREFIX = "urn:uuid:"  # a story's id without its slug


@dataclass(frozen=True, slots=True)
class Coverage:
    """One article about the story: one of its records, or a related article none of them is."""

    title: str
    url: str
    provider: str | None
    published: datetime | None


@dataclass(frozen=True, slots=True)
class Story:
    """Records about one event, earliest first by (published, id). `id` and `updated` (the
    newest coverage the collection received: its newest record; related articles' dates are not
    read, a record's related coverage being older than the record, or undated) are worked out
    once, as the story is made: every grouping orders stories by them. A story has slots, not
    a dict: a grouping of 100,000 records keeps about 50,000 of them."""

    records: tuple[Record, ...]
    id: str = field(init=False, repr=False, compare=False)
    updated: datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        records = self.records
        object.__setattr__(self, "id", story_id(records[0]))
        updated = records[0].published  # (most stories are of one record)
        if len(records) > 1:
            updated = max(record.published for record in records)
        object.__setattr__(self, "updated", updated)

    @property
    def first(self) -> Record:
        return self.records[0]

    @property
    def slug(self) -> str:
        """The story's id as a URL path segment (`/stories/<slug>`)."""
        return self.id.rpartition(":")[2]

    @property
    def lead(self) -> Record:
        """The headline: the highest `quality` where any record has one, else the first."""
        return _lead(self.records)

    @property
    def published(self) -> datetime:
        return self.first.published

    @property
    def coverage(self) -> tuple[Coverage, ...]:
        """Every piece of coverage once (by comparison key), newest first; undated last.
        (Worked out when asked: a story's entry and page are rendered once and kept.)"""
        return _coverage(self.records)

    @property
    def topic_slugs(self) -> frozenset[str]:
        return frozenset(topic.slug for record in self.records for topic in record.topics)


# A story's properties are worked out by functions of its records (mutmut, `make mutate`, leaves
# decorated functions alone).
def _lead(records: tuple[Record, ...]) -> Record:
    rated = [record for record in records if record.quality is not None]
    if not rated:
        return records[0]
    return min(rated, key=lambda r: (-(r.quality or 0), r.published, r.id))


def _coverage(records: tuple[Record, ...]) -> tuple[Coverage, ...]:
    seen: dict[str, Coverage] = {}
    for record in records:
        provider = record.provider.name if record.provider else None
        seen.setdefault(
            comparison_key(record.url),
            Coverage(record.title, record.url, provider, record.published),
        )
    for record in records:
        for item in record.related:
            seen.setdefault(comparison_key(item.url), _coverage_of(item))
    undated = [item for item in seen.values() if item.published is None]
    dated = [item for item in seen.values() if item.published is not None]
    dated.sort(key=lambda item: (item.published, item.url), reverse=True)
    return (*dated, *sorted(undated, key=lambda item: item.url))


def _coverage_of(item: Related) -> Coverage:
    return Coverage(item.title, item.url, item.provider, item.published)


def by_time(records: Iterable[Record]) -> list[Record]:
    """Records in the order grouping takes them: (published, id)."""
    return sorted(records, key=_TIME_ORDER)


_TIME_ORDER = attrgetter("published", "id")  # `_time_order`, without a call of Python's


def _time_order(record: Record) -> tuple[datetime, str]:
    return record.published, record.id


def _story_order(story: Story) -> tuple[int, str]:
    """Stories newest (by `updated`) first, ties by id: as exact integers, for binary search."""
    return -((story.updated - _EPOCH) // _MICROSECOND), story.id


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def group_stories(
    records: Iterable[Record],
    window_days: float = DEFAULT_WINDOW_DAYS,
    hub_limit: int = HUB_LIMIT,
    max_records: int = MAX_STORY_RECORDS,
    common_share: float = COMMON_SHARE,
    common_min: int = COMMON_MIN,
) -> tuple[Story, ...]:
    """Every record in exactly one story; stories newest (by `updated`) first, ties by id."""
    return (
        _Grouping.of(records, window_days, hub_limit, max_records, common_share, common_min)
        .index()
        .stories
    )


# A record's comparison keys, as `record_keys` gives them (remembered while a regrouping runs).
KeysOf = Callable[[Record], tuple[str, ...]]
_T = TypeVar("_T")


class _Holders:
    """Comparison key -> the records holding it, in (published, id) order.

    Only a key that two records or more hold is kept by its string (`shared`): a key that one
    record holds links nothing, and most keys are such (470,000 of the 500,000 keys of the
    100,000 records of bench/stories.py; their strings and entries cost a kept grouping about
    60 MB). The record holding such a key alone is kept in a bucket found by the key's hash
    (`hash(key) & mask`), once per key; which record of a bucket holds a key is told by working
    their keys out again (`keys_of`). A bucket is only a way in: the stories never depend on it.
    """

    __slots__ = ("buckets", "mask", "shared")

    def __init__(self, bits: int) -> None:
        self.shared: dict[str, list[Record]] = {}
        self.mask = (1 << bits) - 1
        self.buckets: list[tuple[Record, ...]] = [()] * (1 << bits)

    def held_by(self, key: str, keys_of: KeysOf, leaving: Record | None) -> Sequence[Record]:
        """The holders of `key`; `leaving` is a record being taken out, whose other keys still
        put it in buckets (it holds `key` no more)."""
        held = self.shared.get(key)
        if held is not None:
            return held
        alone = self._alone(key, leaving, keys_of)
        return () if alone is None else (alone,)

    def add(self, key: str, record: Record, keys_of: KeysOf) -> None:
        held = self.shared.get(key)
        if held is not None:
            bisect.insort(held, record, key=_time_order)
            return
        bucket = hash(key) & self.mask
        alone = self._alone(key, record, keys_of)
        if alone is None:
            self.buckets[bucket] += (record,)
            return
        self._take(bucket, alone)
        pair = [alone, record] if _time_order(alone) < _time_order(record) else [record, alone]
        self.shared[key] = pair

    def remove(self, key: str, record: Record) -> None:
        held = self.shared.get(key)
        bucket = hash(key) & self.mask
        if held is None:
            self._take(bucket, record)
            return
        del held[_position(held, record)]
        if len(held) == 1:
            del self.shared[key]
            self.buckets[bucket] += (held[0],)

    def _alone(self, key: str, other: Record | None, keys_of: KeysOf) -> Record | None:
        """The record other than `other` that holds `key` alone, if any."""
        for record in self.buckets[hash(key) & self.mask]:
            if record is not other and key in keys_of(record):
                return record
        return None

    def _take(self, bucket: int, record: Record) -> None:
        """Take one of `record`'s places out of a bucket."""
        held = self.buckets[bucket]
        for index, found in enumerate(held):
            if found is record:
                self.buckets[bucket] = held[:index] + held[index + 1 :]
                return
        raise LookupError(f"{record.path} is not where the grouping keeps it")


def _position(held: Sequence[Record], record: Record) -> int:
    index = bisect.bisect_left(held, _time_order(record), key=_time_order)
    if held[index] is not record:
        raise LookupError(f"{record.path} is not where the grouping keeps it")
    return index


class _Grouping:
    """The stories of one collection version, kept so that the next version's stories cost what
    changed (`update`) instead of a grouping from scratch (`of`). Both give the same stories.

    Records are linked when they hold a key (`record_keys`) that 2 or more records of at most
    `hub_limit` clusters hold (`_few`),
    are within the window of each other, and `same_event` accepts the pair: the story of a record
    can only change when a record linked to it, directly or through others, changes. Links join
    stories in the order of their later record, then their earlier one (the order records
    arrive in), so that the cap on a story's size cuts the same way whichever part of the
    collection is regrouped."""

    def __init__(
        self,
        window_days: float,
        hub_limit: int,
        max_records: int,
        common_share: float = COMMON_SHARE,
        common_min: int = COMMON_MIN,
        bucket_bits: int = 0,
    ) -> None:
        self.window_days = window_days
        self.window = timedelta(days=window_days)
        self.hub_limit = hub_limit
        self.max_records = max_records
        self.words = WordCounts(common_share, common_min, *self._periods())
        self.records: tuple[Record, ...] = ()  # the version's `Collection.records`
        self.holders = _Holders(bucket_bits)
        self.hub_clusters: dict[str, bool] = {}  # key -> `_few_clusters`, when many hold it
        self.story_of: dict[int, Story] = {}  # id(record) -> its story
        self.stories: list[Story] = []  # newest first (`_story_order`)
        self.topics: dict[str, list[Story]] = {}  # in the same order
        self.by_id: dict[str, Story] = {}
        self._topic_tuples: dict[str, tuple[Story, ...]] = {}
        self._touched_topics: set[str] = set()
        self._keys: dict[int, tuple[str, ...]] = {}  # id(record) -> its keys, while regrouping

    @classmethod
    def of(
        cls,
        records: Iterable[Record],
        window_days: float = DEFAULT_WINDOW_DAYS,
        hub_limit: int = HUB_LIMIT,
        max_records: int = MAX_STORY_RECORDS,
        common_share: float = COMMON_SHARE,
        common_min: int = COMMON_MIN,
        bucket_bits: int | None = None,
    ) -> _Grouping:
        """The grouping of `records`, from scratch, in two steps: `_plan` works out the stories
        and the keys' holders into a few arrays and one string, and drops every key, link and
        word it made on the way; then the structures the grouping keeps are made from them.
        (Made while the first step's objects were alive, they would sit among the freed ones,
        and the process would stay about 200 MB larger at 100,000 records.)"""
        records = tuple(records)
        if bucket_bits is None:  # about 8 keys held alone in a bucket
            bucket_bits = max(0, len(records).bit_length() - 1)
        grouping = cls(window_days, hub_limit, max_records, common_share, common_min, bucket_bits)
        grouping.records = records
        with collector_paused():  # hundreds of thousands of lists and tuples, no cycles
            ordered = by_time(records)
            # The words are counted before the plan's keys and pairs are made: made among them,
            # the counts would keep their freed blocks resident (see `_plan`).
            periods = grouping.words.periods(ordered)  # each record's, once
            grouping.words = WordCounts.of(
                ordered, common_share, common_min, *grouping._periods(), periods_of=periods
            )
            grouping._take(ordered, grouping._plan(ordered, periods))
        return grouping

    def _periods(self) -> tuple[float, int]:
        """The common words' period and window (`WordCounts`)."""
        return COMMON_PERIOD_DAYS, COMMON_WINDOW_PERIODS

    def _plan(self, ordered: list[Record], periods: Sequence[int]) -> _Plan:
        """The stories of `ordered` and the holders of their keys, by positions in `ordered`
        (`periods`: each one's `WordCounts.period_of`). Each record's keys are worked out once,
        for its cluster (`cluster_of_keys`) and its holders."""
        first: dict[str, int] = {}  # key -> position of its first holder
        shared: dict[str, list[int]] = {}  # key -> positions of its holders, when two or more
        # The cluster of each position, as numbers in an array: made in this loop and freed
        # after it, a list of 100,000 integers among its keys kept the process about 55 MiB
        # larger, as did the buckets filled in it (bench.stories).
        clusters = array("q")
        setdefault, get = first.setdefault, shared.get
        for position, record in enumerate(ordered):
            keys = record_keys(record)
            clusters.append(hash(frozenset(keys)))  # cluster_of_keys
            for key in keys:
                held = setdefault(key, position)
                if held != position:
                    positions = get(key)
                    if positions is None:
                        shared[key] = [held, position]
                    else:
                        positions.append(position)
        # Links join in (later, earlier) order; `same_event` is asked only of a pair that would
        # join two stories (most pairs are of records already joined through others).
        groups = _UnionFind(len(ordered), self.max_records)
        common, none = self.words.common, frozenset[str]()
        commons = [common.get(period, none) for period in periods]  # once, not per pair

        def accept(earlier: int, later: int) -> bool:
            return same_event(ordered[later], ordered[earlier], commons[earlier])

        groups.join(sorted(self._pairs(ordered, shared.values(), clusters)), accept)
        roots = [groups.find(position) for position in range(len(ordered))]
        members = sorted(range(len(ordered)), key=roots.__getitem__)  # stable: earliest first
        mask = self.holders.mask
        alone: list[list[int]] = [[] for _ in range(mask + 1)]  # bucket -> positions
        for key in shared:
            del first[key]  # the keys left are held alone
        buckets = map(mask.__and__, map(hash, first))
        for bucket, position in zip(buckets, first.values(), strict=True):
            alone[bucket].append(position)
        forget_words()  # the words of every title and excerpt `same_event` compared
        own_keys.cache_clear()  # and the own keys of the pairs it asked about
        joined = _KEY_SEPARATOR.join(shared)
        return _Plan(
            array("q", members),
            array("q", map(roots.__getitem__, members)),
            joined if joined.count(_KEY_SEPARATOR) == len(shared) - 1 else list(shared),
            array("q", [position for positions in shared.values() for position in positions]),
            array("q", map(len, shared.values())),
            alone,
        )

    def _pairs(
        self, ordered: list[Record], holders: Iterable[list[int]], clusters: Sequence[int]
    ) -> list[int]:
        """Every pair of records that hold a linking key within the window of each other, as
        (later, earlier) positions in `ordered`: the links, before `same_event` is asked. Each
        pair is one number, `later * len(ordered) + earlier`, which sorts as the pair would (and
        sorting 350,000 numbers costs half what sorting as many tuples does)."""
        pairs = []
        window, count = self.window, len(ordered)
        for positions in holders:
            if len(positions) <= self.hub_limit or self._few_clusters(
                positions, lambda held: {clusters[position] for position in held}
            ):
                for index, later in enumerate(positions):
                    published = ordered[later].published
                    for earlier in positions[:index]:
                        if published - ordered[earlier].published <= window:
                            pairs.append(later * count + earlier)
        return pairs

    def _take(self, ordered: list[Record], plan: _Plan) -> None:
        """Make the structures the grouping keeps from a plan."""
        keys = plan.keys.split(_KEY_SEPARATOR) if isinstance(plan.keys, str) else plan.keys
        start = 0
        for key, count in zip(keys if plan.counts else (), plan.counts, strict=True):
            self.holders.shared[key] = [ordered[p] for p in plan.holders[start : start + count]]
            start += count
        buckets = self.holders.buckets
        take = ordered.__getitem__
        for bucket, positions in enumerate(plan.alone):
            if positions:
                buckets[bucket] = tuple(map(take, positions))
        second = itemgetter(1)
        stories = [
            Story(tuple(map(take, map(second, group))))
            for _, group in groupby(zip(plan.roots, plan.members, strict=True), key=itemgetter(0))
        ]
        self._fill(stories)

    def update(self, removed: Iterable[Record], added: Iterable[Record]) -> None:
        """Follow a version that took out `removed` and put in `added`: regroup the records
        linked, directly or not, to what changed, and only them."""
        try:
            self._update(removed, added)
        finally:
            self._keys.clear()
            forget_words()
            own_keys.cache_clear()

    def _update(self, removed: Iterable[Record], added: Iterable[Record]) -> None:
        seeds: dict[int, Record] = {}
        gone: dict[int, Story] = {}
        for record in removed:
            story = self.story_of.pop(id(record))
            gone[id(story)] = story
            self.words.remove(record)
            for key in self._keys_of(record):
                self._reach(key, record, seeds, adding=False)
        for record in added:
            seeds[id(record)] = record
            self.words.add(record)
            for key in self._keys_of(record):
                self._reach(key, record, seeds, adding=True)
        changed = self.words.settle()
        if changed:  # every link through such a word where it changed may change: seeds
            self._seed_holders(changed, seeds)
        for record in removed:  # a seed when an earlier removal made its key link again
            seeds.pop(id(record), None)
        region = self._region(seeds, gone)
        ordered = by_time(region.values())
        self._place(self._group(ordered, self._links_of(ordered)), gone.values())

    def _seed_holders(self, changed: dict[str, set[int]], seeds: dict[int, Record]) -> None:
        """The records whose headline holds a word that turned common or stopped being around a
        period, and that are in that period or within the window after it: every pair whose
        earlier record is of that period (`WordCounts.common_of`) has both ends among them."""
        words = self.words
        after = math.ceil(self.window_days * 86400 / words.period_seconds)
        for story in self.stories:
            for record in story.records:
                if id(record) not in self.story_of:
                    continue
                held = changed.keys() & headline_words(record.title)
                if held:
                    period = words.period_of(record)
                    if any(
                        period - after <= centre <= period
                        for word in held
                        for centre in changed[word]
                    ):
                        seeds[id(record)] = record

    def _cluster_of(self, record: Record) -> int:
        return cluster_of_keys(self._keys_of(record))

    def _keys_of(self, record: Record) -> tuple[str, ...]:
        keys = self._keys.get(id(record))
        if keys is None:
            keys = self._keys[id(record)] = record_keys(record)
        return keys

    def _reach(self, key: str, record: Record, seeds: dict[int, Record], *, adding: bool) -> None:
        """Add `record` to a key's holders or take it out; the holders whose links through the
        key may change become seeds."""
        linking_before = self._links(key)
        if adding:
            self.holders.add(key, record, self._keys_of)
        else:
            self.holders.remove(key, record)
        self.hub_clusters.pop(key, None)
        if linking_before or self._links(key):
            held = self.holders.held_by(key, self._keys_of, None if adding else record)
            seeds.update((id(holder), holder) for holder in held)

    def _links(self, key: str) -> bool:
        held = self.holders.shared.get(key)
        return held is not None and self._few(key, held)

    def _few(self, key: str, held: list[Record]) -> bool:
        """Whether a key's holders are few enough for it to link them (`_few_clusters`),
        remembered for the keys that more than `hub_limit` records hold, until their holders
        change."""
        if len(held) <= self.hub_limit:
            return True
        few = self.hub_clusters.get(key)
        if few is None:
            few = self.hub_clusters[key] = self._few_clusters(
                held, lambda records: set(map(self._cluster_of, records))
            )
        return few

    def _few_clusters(
        self, held: Sequence[_T], clusters: Callable[[Sequence[_T]], set[int]]
    ) -> bool:
        """Whether holders are of at most `hub_limit` clusters (`cluster_of_keys`, as `clusters`
        gives them), and at most `HUB_RECORDS_FACTOR` times as many records. Counted by cluster,
        as the collection's related lists are: one event of 57 records that all list each other
        is one cluster, a section front page listed by records of many events is a hub."""
        if len(held) > HUB_RECORDS_FACTOR * self.hub_limit:
            return False
        return len(clusters(held)) <= self.hub_limit

    def _region(self, seeds: dict[int, Record], gone: dict[int, Story]) -> dict[int, Record]:
        """The seeds and every record linked to them, directly or not; their stories are
        dissolved into `gone`. (A story's records are linked, and every link that changed has
        both ends among the seeds, so a story dissolved has all its records in the region.)"""
        region: dict[int, Record] = {}
        stack = list(seeds.values())
        while stack:
            record = stack.pop()
            if id(record) in region:
                continue
            region[id(record)] = record
            story = self.story_of.get(id(record))
            if story is not None:  # its other records are linked to it, so in the region too
                gone[id(story)] = story
            stack.extend(self._neighbours(record))
        return region

    def _neighbours(self, record: Record) -> Iterator[Record]:
        """The records a record links to: the other holders of its linking keys within the
        window that `same_event` accepts."""
        for key in self._keys_of(record):
            held = self.holders.shared.get(key)
            if held is not None and self._few(key, held):
                for other in held:
                    if (
                        other is not record
                        and abs(other.published - record.published) <= self.window
                        and same_event(
                            record, other, self.words.common_of(min(record, other, key=_time_order))
                        )
                    ):
                        yield other

    def _links_of(self, ordered: list[Record]) -> list[tuple[int, int]]:
        """The links among a region's records (a region holds both ends of each)."""
        rank = {id(record): index for index, record in enumerate(ordered)}
        links = []
        for index, record in enumerate(ordered):
            for neighbour in self._neighbours(record):
                other = rank[id(neighbour)]
                if other < index:
                    links.append((index, other))
        return links

    def _group(self, ordered: list[Record], links: list[tuple[int, int]]) -> list[list[Record]]:
        """The stories of `ordered`: its links joined in (later, earlier) order, within the cap."""
        groups = _UnionFind(len(ordered), self.max_records)
        links.sort()
        for later, earlier in links:
            groups.union(earlier, later)
        members: dict[int, list[Record]] = {}
        for index, record in enumerate(ordered):
            members.setdefault(groups.find(index), []).append(record)
        return list(members.values())

    def _place(self, groups: list[list[Record]], gone: Iterable[Story]) -> None:
        """Put the stories of `groups` in place of the stories `gone` (a story whose records are
        the same objects stays the same object, so that what was rendered from it is kept)."""
        kept: dict[int, Story] = {}
        for story in gone:
            kept[id(story.first)] = story
        fresh: list[Story] = []
        for group in groups:
            known = kept.get(id(group[0]))
            if (
                known is not None
                and len(known.records) == len(group)
                and all(a is b for a, b in zip(known.records, group, strict=True))
            ):
                story = kept.pop(id(group[0]))
            else:
                story = Story(tuple(group))
                fresh.append(story)
            for record in group:
                self.story_of[id(record)] = story
        for story in kept.values():
            self._withdraw(story)
        for story in fresh:
            self._insert(story)

    def _fill(self, stories: list[Story]) -> None:
        """Take the stories of a grouping from scratch: sorted once (`_place` inserts stories one
        by one, which for 100,000 stories would move lists of 100,000 100,000 times)."""
        stories.sort(key=_story_order)
        self.stories = stories
        for story in stories:
            for record in story.records:
                self.story_of[id(record)] = story
            for slug in story.topic_slugs:
                self.topics.setdefault(slug, []).append(story)
        self.by_id = {story.id: story for story in stories}
        self._touched_topics = set(self.topics)

    def _withdraw(self, story: Story) -> None:
        order = _story_order(story)
        del self.stories[bisect.bisect_left(self.stories, order, key=_story_order)]
        for slug in story.topic_slugs:
            listed = self.topics[slug]
            del listed[bisect.bisect_left(listed, order, key=_story_order)]
            self._touched_topics.add(slug)
        if self.by_id.get(story.id) is story:
            del self.by_id[story.id]

    def _insert(self, story: Story) -> None:
        bisect.insort(self.stories, story, key=_story_order)
        for slug in story.topic_slugs:
            bisect.insort(self.topics.setdefault(slug, []), story, key=_story_order)
            self._touched_topics.add(slug)
        self.by_id[story.id] = story

    def index(self) -> StoryIndex:
        """This version's stories: tuples and mappings of its own (the grouping goes on to the
        next version), sharing each topic's tuple with the version before while it is unchanged."""
        for slug in self._touched_topics:
            stories = self.topics[slug]
            if stories:
                self._topic_tuples[slug] = tuple(stories)
            else:
                del self.topics[slug]
                self._topic_tuples.pop(slug, None)
        self._touched_topics = set()
        return StoryIndex(tuple(self.stories), dict(self._topic_tuples), self.by_id)


# Joins the keys of a plan: normalized URLs have no control characters (`normalize_url`
# percent-encodes them), so neither do keys; a plan that meets one keeps a list instead.
_KEY_SEPARATOR = "\n"


class _Plan(NamedTuple):
    """A grouping from scratch by positions in the records' (published, id) order."""

    members: array[int]  # every position, story after story (by first record), earliest first
    roots: array[int]  # the story of each of `members`: its first record's position
    keys: str | list[str]  # the keys two records or more hold, joined by _KEY_SEPARATOR
    holders: array[int]  # their holders' positions, key after key, earliest first
    counts: array[int]  # how many holders each key has
    alone: list[list[int]]  # bucket -> the positions of the records holding its keys alone


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

    def join(self, pairs: Iterable[int], accept: Callable[[int, int], bool]) -> None:
        """`union(earlier, later, accept)` of each pair, given as `later * count + earlier`
        (`count`: the members), in that order (a loop of its own: 350,000 pairs at 100,000
        records)."""
        parent, size, limit, find = self.parent, self.size, self.limit, self.find
        count = len(parent)
        for pair in pairs:
            later, earlier = divmod(pair, count)
            root_a = earlier if parent[earlier] == earlier else find(earlier)
            root_b = later if parent[later] == later else find(later)
            if root_a == root_b or size[root_a] + size[root_b] > limit:
                continue
            if not accept(earlier, later):
                continue
            keep, gone = (root_a, root_b) if root_a < root_b else (root_b, root_a)
            parent[gone] = keep
            size[keep] += size[gone]

    def union(self, a: int, b: int, accept: Callable[[int, int], bool] | None = None) -> None:
        """Join the sets of `a` and `b`, if that keeps within the limit and `accept(a, b)` (asked
        only then)."""
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b or self.size[root_a] + self.size[root_b] > self.limit:
            return
        if accept is not None and not accept(a, b):
            return
        keep, gone = min(root_a, root_b), max(root_a, root_b)
        self.parent[gone] = keep
        self.size[keep] += self.size[gone]


@dataclass(frozen=True)
class StoryIndex:
    """A collection's stories, newest first, and the stories of each topic (in the same order).

    `story(slug)` finds a story through the grouping's own map of ids, which has moved on when a
    later version was grouped: a story found there is this version's only if its `stories` hold
    it (a binary search), and otherwise this version's map is made (once, for an old version)."""

    stories: tuple[Story, ...]
    by_topic: Mapping[str, tuple[Story, ...]]
    latest_by_id: Mapping[str, Story]

    def story(self, slug: str) -> Story | None:
        found = self.latest_by_id.get(_ID_PREFIX + slug)
        if found is not None and self._holds(found):
            return found
        return self._by_slug.get(slug)

    def _holds(self, story: Story) -> bool:
        order = _story_order(story)
        index = bisect.bisect_left(self.stories, order, key=_story_order)
        return index < len(self.stories) and self.stories[index] is story

    @cached_property
    def _by_slug(self) -> dict[str, Story]:
        return {story.slug: story for story in self.stories}


# The grouping of the collection version stories were last asked of, followed in place from
# version to version (`Collection.changes`), and the stories of the last few versions (a request
# may still be serving the version before).
_lock = threading.Lock()
_grouping: _Grouping | None = None
_recent: list[tuple[tuple[Record, ...], float, StoryIndex]] = []
_RECENT_VERSIONS = 3


def stories_of(collection: Collection, window_days: float = DEFAULT_WINDOW_DAYS) -> StoryIndex:
    """The stories of a collection version: grouped once per version, from the version before
    by what changed when that one was grouped, else from scratch."""
    global _grouping
    records = collection.records
    with _lock:
        for known, window, index in _recent:
            if known is records and window == window_days:
                return index
        grouping, changes = _grouping, collection.changes
        if (
            grouping is not None
            and grouping.window_days == window_days
            and changes is not None
            and changes.base is grouping.records
        ):
            grouping.update(changes.removed, changes.added)
            grouping.records = records
        else:
            grouping = _Grouping.of(records, window_days)
        _grouping = grouping
        index = grouping.index()
        _recent[:] = [(records, window_days, index), *_recent[: _RECENT_VERSIONS - 1]]
        return index


def follow(collection: Collection, window_days: float = DEFAULT_WINDOW_DAYS) -> None:
    """Group a new version before it is served, when stories were asked of an earlier one (a
    reload's preparer: the first story request of the version then finds them grouped)."""
    if _grouping is not None:
        stories_of(collection, window_days)


def grouping_of(collection: Collection) -> _Grouping | None:
    """The grouping `stories_of` follows, if it is of `collection`'s records (a build keeps it
    for the next build: `storystate`)."""
    grouping = _grouping
    return grouping if grouping is not None and grouping.records is collection.records else None


def resume(
    grouping: _Grouping, collection: Collection, removed: Iterable[Record], added: Iterable[Record]
) -> StoryIndex:
    """Follow `collection` from `grouping`, the grouping of an earlier version of it made
    elsewhere (`storystate`: the last build's), which took out `removed` and put in `added`;
    `stories_of(collection)` then gives what this returns."""
    global _grouping
    with _lock:
        grouping.update(removed, added)
        grouping.records = collection.records
        _grouping = grouping
        index = grouping.index()
        _recent[:] = [
            (collection.records, grouping.window_days, index),
            *_recent[: _RECENT_VERSIONS - 1],
        ]
        return index
