"""The stories grouping kept from one build to the next, as the parse cache keeps records.

A build groups its collection's records into stories (`stories`); from scratch that is the
headline words of every title and the comparison keys of every URL (0.5-0.6 s of CPU at 10,000
records, a fifth of a rebuild after one change). The grouping of the last build is written beside
the parse cache (`state_file`), and the next build takes it up for the records the parse cache
held and regroups only what changed since (`stories.resume`: the server's path from one version
to the next, which a hypothesis property holds equal to grouping from scratch).

What is written is plain values (text, whole numbers, bytes), no object: each comparison key with
the positions of the records that hold it (those two or more hold apart from those one holds, as
the grouping keeps them, `stories._Holders`), the stories as positions of records, both in
(published, id) order, and the headline words counted by day. It names the parse cache file it
goes with by that file's digest, and is used only with records read from that very file
(`CollectionLoader.cache_read`); its header holds a digest of feedsvc's code (any change to the
rules groups from scratch), the grouping's settings and a digest of the rest. Anything else
(missing, stale, corrupt, another code or window) is ignored: the build then groups from scratch,
as it always could.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
import pickle
import sys
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from feedsvc.comparison import record_keys
from feedsvc.headlines import WordCounts
from feedsvc.parsecache import _RestrictedUnpickler, read_checked, write_checked
from feedsvc.records import Record
from feedsvc.stories import Story, _Grouping, by_time
from feedsvc.values import collector_paused

log = logging.getLogger(__name__)

MAGIC = b"feedsvc stories state 2\n"
PACKAGE = Path(__file__).parent
_DIGEST_SIZE = 16
# Joins keys and words: normalized URLs and headline words have no line breaks (a state that
# meets one keeps a list instead).
_SEPARATOR = "\n"


def state_file(cache_file: Path) -> Path:
    """Where the stories state of a parse cache lives: beside it."""
    return cache_file.with_name(cache_file.name + ".stories")


@functools.cache
def source_digest() -> bytes:
    """A digest of feedsvc's code (every file of the package: modules, templates, stylesheets)
    and of Python's version."""
    digest = hashlib.blake2b(str(sys.version_info[:2]).encode(), digest_size=20)
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + path.read_bytes())
    return digest.digest()


def _header(grouping_settings: tuple[Any, ...]) -> bytes:
    settings = repr(grouping_settings).encode()
    key = hashlib.blake2b(source_digest() + settings, digest_size=_DIGEST_SIZE).hexdigest()
    return MAGIC + key.encode() + b"\n"


def _settings(grouping: _Grouping) -> tuple[Any, ...]:
    words = grouping.words
    return (
        grouping.window_days,
        grouping.hub_limit,
        grouping.max_records,
        words.share,
        words.minimum,
    )


def save(path: Path, grouping: _Grouping, cache: bytes) -> None:
    """Write the state of `grouping` (of the records read from the parse cache whose digest is
    `cache`) to `path`, atomically; a failure is a warning (the next build groups from scratch)."""
    payload = pickle.dumps(dump(grouping, cache), protocol=pickle.HIGHEST_PROTOCOL)
    write_checked(path, _header(_settings(grouping)), payload, "stories state")


def load(
    path: Path, records: Sequence[Record], cache: bytes, grouping_settings: tuple[Any, ...]
) -> _Grouping | None:
    """The grouping of `records` (read from the parse cache whose digest is `cache`) that the
    state in `path` holds; None when there is no usable state for them."""
    payload = read_checked(
        path, _header(grouping_settings), "stories state", "grouping from scratch"
    )
    if payload is None:
        return None
    try:
        with collector_paused():
            state = _RestrictedUnpickler(io.BytesIO(payload)).load()
            return restore(state, records, cache, grouping_settings)
    except Exception as exc:  # anything unexpected in it: not to be trusted
        log.warning("stories state %s cannot be used (%s); grouping from scratch", path, exc)
        return None


def dump(grouping: _Grouping, cache: bytes) -> dict[str, Any]:
    """The state of `grouping` as plain values (see the module docstring)."""
    ordered = by_time(grouping.records)
    position = {id(record): index for index, record in enumerate(ordered)}
    held: dict[str, list[int]] = {}  # each key's holders, by position, earliest first
    for index, record in enumerate(ordered):
        for key in record_keys(record):
            positions = held.get(key)
            if positions is None:
                held[key] = [index]
            elif positions[-1] != index:
                positions.append(index)
    shared = [(key, positions) for key, positions in held.items() if len(positions) > 1]
    alone = [(key, positions[0]) for key, positions in held.items() if len(positions) == 1]
    members, sizes = array("q"), array("q")
    for story in grouping.stories:
        sizes.append(len(story.records))
        members.extend(position[id(record)] for record in story.records)
    words = grouping.words
    return {
        "cache": cache,
        "settings": _settings(grouping),
        "ids": _joined([record.id for record in ordered]),
        "shared": _joined([key for key, _ in shared]),
        "shared_counts": array("q", [len(positions) for _, positions in shared]).tobytes(),
        "shared_holders": array("q", [index for _, held in shared for index in held]).tobytes(),
        "alone": _joined([key for key, _ in alone]),
        "alone_holders": array("q", [index for _, index in alone]).tobytes(),
        "members": members.tobytes(),
        "sizes": sizes.tobytes(),
        "periods": array("q", words.sizes).tobytes(),
        "period_sizes": array("q", words.sizes.values()).tobytes(),
        "words": [
            (period, _joined(list(counts)), array("q", counts.values()).tobytes())
            for period, counts in words.holders.items()
        ],
        "thresholds": array("q", [*words.thresholds, *words.thresholds.values()]).tobytes(),
        "common": [(period, _joined(sorted(common))) for period, common in words.common.items()],
    }


def restore(
    state: dict[str, Any], records: Sequence[Record], cache: bytes, settings: tuple[Any, ...]
) -> _Grouping | None:
    """The grouping `dump` wrote, for `records` (the same records, maybe other objects); None
    when the state is of other records or settings."""
    if state["cache"] != cache or tuple(state["settings"]) != settings:
        return None
    ordered = by_time(records)
    if _split(state["ids"]) != [record.id for record in ordered]:
        return None
    window_days, hub_limit, max_records, share, minimum = settings
    bucket_bits = max(0, len(ordered).bit_length() - 1)  # as `_Grouping.of` chooses
    grouping = _Grouping(window_days, hub_limit, max_records, share, minimum, bucket_bits)
    grouping.records = tuple(records)
    # Each key's holders, earliest first: two or more by key, one alone in its bucket.
    shared, counts = _split(state["shared"]), _ints(state["shared_counts"])
    positions = _ints(state["shared_holders"])
    lonely = _split(state["alone"])
    single = _ints(state["alone_holders"])
    if len(shared) != len(counts) or sum(counts) != len(positions) or len(lonely) != len(single):
        return None
    every = positions + single
    if every and not 0 <= min(every) <= max(every) < len(ordered):
        return None
    holders = grouping.holders
    start = 0
    for key, count in zip(shared, counts, strict=True):
        holders.shared[key] = [ordered[index] for index in positions[start : start + count]]
        start += count
    alone: dict[int, list[Record]] = {}
    mask = holders.mask
    for key, index in zip(lonely, single, strict=True):
        found = alone.get(hash(key) & mask)
        if found is None:
            alone[hash(key) & mask] = [ordered[index]]
        else:
            found.append(ordered[index])
    for bucket, records in alone.items():
        holders.buckets[bucket] = tuple(records)
    # The headline words' counts, by period.
    words = WordCounts(share, minimum, *grouping._periods())
    words.sizes = dict(zip(_ints(state["periods"]), _ints(state["period_sizes"]), strict=True))
    for period, named, numbers in state["words"]:
        words.holders[period] = dict(zip(_split(named), _ints(numbers), strict=True))
    thresholds = _ints(state["thresholds"])
    half = len(thresholds) // 2
    words.thresholds = dict(zip(thresholds[:half], thresholds[half:], strict=True))
    words.common = {period: frozenset(_split(named)) for period, named in state["common"]}
    grouping.words = words
    # The stories, as the grouping had them.
    members, sizes = _ints(state["members"]), _ints(state["sizes"])
    if sum(sizes) != len(ordered) or sorted(members) != list(range(len(ordered))):
        return None
    stories = []
    start = 0
    for size in sizes:
        stories.append(Story(tuple(ordered[index] for index in members[start : start + size])))
        start += size
    grouping._fill(stories)
    return grouping


def _joined(texts: list[str]) -> str | list[str]:
    """`texts` as one string, or as they are when empty or when one holds the separator."""
    joined = _SEPARATOR.join(texts)
    return joined if texts and joined.count(_SEPARATOR) == len(texts) - 1 else list(texts)


def _split(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else value.split(_SEPARATOR)


def _ints(packed: bytes) -> list[int]:
    numbers = array("q")
    numbers.frombytes(packed)
    return numbers.tolist()
