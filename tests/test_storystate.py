"""The stories grouping kept from one build to the next (`feedsvc.storystate`): taken up for the
same records and followed by their changes, it is the grouping from scratch; for other records,
another code or settings, or a damaged file, it is not used at all."""

from __future__ import annotations

import logging
import os
import pickle
import shutil
from array import array
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feedsvc.storystate
from feedsvc import storystate
from feedsvc.records import Record
from feedsvc.repository import CollectionLoader
from feedsvc.stories import (
    COMMON_MIN,
    COMMON_SHARE,
    DEFAULT_WINDOW_DAYS,
    HUB_LIMIT,
    MAX_STORY_RECORDS,
    _Grouping,
    grouping_of,
    resume,
    stories_of,
)
from tests.conftest import RECORDS
from tests.story_records import make_record
from tests.test_stories import POOL, as_collection, change, holders_of, pool_records

DEFAULTS = (DEFAULT_WINDOW_DAYS, HUB_LIMIT, MAX_STORY_RECORDS, COMMON_SHARE, COMMON_MIN)


def by_ids(grouping: _Grouping) -> tuple[Any, ...]:
    """What a grouping gives and keeps, by record id and path (not object): its stories in
    order, by topic and by id, each key's holders, the headline words' counts."""
    index = grouping.index()
    words = grouping.words
    return (
        [(story.id, [record.id for record in story.records]) for story in index.stories],
        {slug: [story.id for story in stories] for slug, stories in index.by_topic.items()},
        sorted(grouping.by_id),
        holders_of(grouping),
        words.sizes,
        words.holders,
        words.thresholds,
        words.common,
    )


def copies(records: list[Record]) -> list[Record]:
    """The same records as other objects, as the next build loads them."""
    return [replace(record) for record in records]


@settings(max_examples=150, deadline=None)
@given(
    st.data(),
    st.integers(2, 5),
    st.integers(2, 6),
    st.integers(1, 6),
    st.sampled_from([0.0, 0.1, 0.25]),
)
def test_a_kept_grouping_followed_by_changes_is_the_grouping_from_scratch(
    data: st.DataObject, hub_limit: int, cap: int, common_min: int, common_share: float
) -> None:
    """A grouping (from scratch, or followed through a few versions) written as a state and
    taken up for the same records, as other objects, is the same grouping; followed by random
    adds, edits and removals from there, it is the grouping from scratch of the new records.
    A small hub limit, cap and bound on common words make hubs, full stories and common words
    frequent (as in the stories' own property)."""
    options = (3.0, hub_limit, cap, common_share, common_min)
    current: dict[str, Record] = {}
    for url in data.draw(st.lists(st.sampled_from(POOL), max_size=20, unique=True)):
        current[url] = data.draw(pool_records(url))
    grouping = _Grouping.of(current.values(), *options)
    for _ in range(data.draw(st.integers(0, 2))):
        removed, added = change(data, current)
        grouping.update(removed, added)
    grouping.records = tuple(current.values())
    state = pickle.loads(pickle.dumps(storystate.dump(grouping, b"cache")))
    loaded = {url: replace(record) for url, record in current.items()}
    kept = storystate.restore(state, list(loaded.values()), b"cache", options)
    assert kept is not None
    assert by_ids(kept) == by_ids(grouping)
    assert storystate._settings(kept) == options and kept.records == tuple(loaded.values())
    assert kept.holders.mask == _Grouping.of(loaded.values(), *options).holders.mask
    for _ in range(data.draw(st.integers(1, 3))):
        removed, added = change(data, loaded)
        kept.update(removed, added)
        assert by_ids(kept) == by_ids(_Grouping.of(loaded.values(), *options))


def test_a_resumed_grouping_is_the_one_stories_and_the_next_build_take_up() -> None:
    """`resume` follows a kept grouping to a collection: `stories_of` gives its index without
    grouping again, the next build finds the grouping (`grouping_of`), and the two versions
    before stay known, not a third."""
    url = "https://c.example/event"
    one = make_record("https://a.example/1", 0, (url,))
    versions = [as_collection((one,)) for _ in range(3)]
    indexes = [stories_of(version) for version in versions]
    grouping = _Grouping.of([one])
    two = make_record("https://b.example/2", 5, (url,))
    later = as_collection((one, two))
    index = resume(grouping, later, (), (two,))
    assert [story.records for story in index.stories] == [(one, two)]
    assert stories_of(later) is index
    assert grouping_of(later) is grouping
    assert grouping_of(as_collection((one, two))) is None  # the same records, another version
    assert stories_of(versions[2]) is indexes[2] and stories_of(versions[1]) is indexes[1]
    assert stories_of(versions[0]) is not indexes[0]


def some_records() -> list[Record]:
    shared = "https://c.example/event"
    return [
        make_record("https://a.example/1", 0, (shared,), topics=("ai",)),
        make_record("https://b.example/2", 5, (shared,)),
        make_record("https://d.example/3", 200),
    ]


def test_a_state_is_used_only_for_the_records_and_settings_it_was_written_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    records = some_records()
    grouping = _Grouping.of(records)
    path = tmp_path / "parse-cache.stories"
    storystate.save(path, grouping, b"cache")
    kept = storystate.load(path, copies(records), b"cache", DEFAULTS)
    assert kept is not None and by_ids(kept) == by_ids(grouping)
    assert len(kept.stories) == 2
    # another parse cache file, other records, another window
    assert storystate.load(path, copies(records), b"other", DEFAULTS) is None
    assert storystate.load(path, copies(records[:2]), b"cache", DEFAULTS) is None
    retitled = [*copies(records[:2]), replace(records[2], id="urn:other")]
    assert storystate.load(path, retitled, b"cache", DEFAULTS) is None
    assert storystate.load(path, copies(records), b"cache", (1.0, *DEFAULTS[1:])) is None
    # another feedsvc (its rules may group otherwise)
    with monkeypatch.context() as patched:
        patched.setattr(feedsvc.storystate, "source_digest", lambda: b"another feedsvc")
        assert storystate.load(path, copies(records), b"cache", DEFAULTS) is None
    # a damaged file: ignored, with a warning
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert storystate.load(path, copies(records), b"cache", DEFAULTS) is None
    assert "corrupt" in caplog.text
    assert storystate.load(tmp_path / "missing", copies(records), b"cache", DEFAULTS) is None


INT = 8  # bytes of one packed number (`storystate._ints`)


def _longer(field: str) -> Callable[[dict[str, Any]], None]:
    def damage(state: dict[str, Any]) -> None:
        state[field] += state[field][:INT] or bytes(INT)

    return damage


def _shorter_words(state: dict[str, Any]) -> None:
    period, named, numbers = state["words"][0]
    state["words"][0] = (period, named, numbers[:-INT])


def _holder_past_the_end(state: dict[str, Any]) -> None:
    holders = array("q", state["alone_holders"])
    holders[0] = len(some_records())
    state["alone_holders"] = holders.tobytes()


def _story_too_big(state: dict[str, Any]) -> None:
    sizes = array("q", state["sizes"])
    sizes[0] += 1
    state["sizes"] = sizes.tobytes()


@pytest.mark.parametrize(
    "damage",
    [
        _longer("shared_counts"),
        _longer("shared_holders"),
        _longer("alone_holders"),
        _holder_past_the_end,
        _story_too_big,
    ],
)
def test_a_state_whose_parts_do_not_fit_together_is_refused(
    damage: Callable[[dict[str, Any]], None],
) -> None:
    """A state whose keys, holders or stories do not add up (a file damaged past its checksum,
    or written by a broken build) gives no grouping, rather than one of other stories."""
    records = some_records()
    state = storystate.dump(_Grouping.of(records), b"cache")
    assert storystate.restore(dict(state), records, b"cache", DEFAULTS) is not None
    damage(state)
    assert storystate.restore(state, records, b"cache", DEFAULTS) is None


@pytest.mark.parametrize("damage", [_longer("period_sizes"), _shorter_words, _longer("thresholds")])
def test_a_state_whose_word_counts_do_not_pair_up_is_an_error(
    damage: Callable[[dict[str, Any]], None],
) -> None:
    """The headline words' counts must pair up (a period with its size, a word with its count, a
    period with its threshold): `load` takes the error for a state not to be trusted."""
    records = some_records()
    state = storystate.dump(_Grouping.of(records), b"cache")
    damage(state)
    with pytest.raises(ValueError, match="zip"):
        storystate.restore(state, records, b"cache", DEFAULTS)


@pytest.mark.parametrize(
    "texts", [[], ["one"], ["one", "two", "three"], ["a\nb", "c"], ["", ""], ["a", "b\n"]]
)
def test_texts_are_kept_joined_when_that_reads_back_and_as_they_are_otherwise(
    texts: list[str],
) -> None:
    """Ids and keys are packed into one string (one object to pickle, not thousands) only when
    splitting it gives them back: not when one holds the separator, nor when there are none."""
    packed = storystate._joined(texts)
    assert storystate._split(packed) == texts
    assert isinstance(packed, str) == (bool(texts) and not any("\n" in text for text in texts))


def test_the_state_of_a_parse_cache_sits_beside_it_under_its_name() -> None:
    """As README.md says: the parse cache's name plus `.stories`, in its folder."""
    cache = Path("/var/cache/feedsvc/parse-cache")
    assert storystate.state_file(cache) == Path("/var/cache/feedsvc/parse-cache.stories")


def test_a_state_that_cannot_be_written_or_used_is_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A build goes on without its state (the next one groups from scratch), and says which file
    and why; no temporary file is left behind."""
    grouping = _Grouping.of(some_records())
    missing = tmp_path / "no-such-folder" / "parse-cache.stories"
    with caplog.at_level(logging.WARNING):
        storystate.save(missing, grouping, b"cache")  # no exception
    assert f"stories state {missing} cannot be written (No such file or directory)" in caplog.text
    caplog.clear()
    taken = tmp_path / "taken"
    (taken / "parse-cache.stories").mkdir(parents=True)  # a folder where the state would go
    with caplog.at_level(logging.WARNING):
        storystate.save(taken / "parse-cache.stories", grouping, b"cache")
    assert f"stories state {taken / 'parse-cache.stories'} cannot be written (Is a directory)" in (
        caplog.text
    )
    assert [child.name for child in taken.iterdir()] == ["parse-cache.stories"]  # no temporary
    caplog.clear()
    path = tmp_path / "parse-cache.stories"
    storystate.save(path, grouping, b"cache")
    assert sorted(child.name for child in tmp_path.iterdir()) == [path.name, "taken"]
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert storystate.load(path, copies(some_records()), b"cache", DEFAULTS) is None
    assert f"stories state {path} is corrupt; grouping from scratch" in caplog.text
    caplog.clear()
    # A state whose digest holds but whose values do not fit: not used, and said so.
    storystate.save(path, grouping, b"cache")
    header = path.read_bytes()[: path.read_bytes().index(b"\n", len(storystate.MAGIC)) + 1]
    payload = pickle.dumps({"cache": b"cache", "settings": DEFAULTS})
    digest = storystate.hashlib.blake2b(payload, digest_size=16).digest()
    path.write_bytes(header + digest + payload)
    with caplog.at_level(logging.WARNING):
        assert storystate.load(path, copies(some_records()), b"cache", DEFAULTS) is None
    assert f"stories state {path} cannot be used (" in caplog.text


def test_a_state_names_no_class_to_unpickle(tmp_path: Path) -> None:
    """Plain values only: a state that names a class or function is refused, not run."""
    path = tmp_path / "parse-cache.stories"
    storystate.save(path, _Grouping.of(some_records()), b"cache")
    header = path.read_bytes()[: path.read_bytes().index(b"\n", len(storystate.MAGIC)) + 1]
    payload = pickle.dumps({"cache": b"cache", "evil": Path("/")})
    digest = storystate.hashlib.blake2b(payload, digest_size=16).digest()
    path.write_bytes(header + digest + payload)
    assert storystate.load(path, some_records(), b"cache", DEFAULTS) is None


def test_the_records_of_the_parse_cache_are_known_only_until_a_reload_changes_them(
    tmp_path: Path,
) -> None:
    """A build takes the stories up for the records the parse cache held (`cached_records`):
    the records loaded, with what the load changed undone. A reload that changes records makes
    that unknown (the state would be taken up for records it was not written for)."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    cache = tmp_path / "cache"
    first = CollectionLoader(seeds, cache_file=cache)
    before = first.load()
    assert first.cached_records() is None  # no cache was read
    record = seeds / "2023-03-01-control-characters.md"
    record.write_text(record.read_text().replace("in text", "in a text"))
    loader = CollectionLoader(seeds, cache_file=cache)
    after = loader.load()
    cached = loader.cached_records()
    assert cached is not None and loader.cache_read is not None
    assert [r.id for r in cached] == [r.id for r in before.records]
    assert cached != after.records and list(cached) == list(before.records)
    record.write_text(record.read_text().replace("in a text", "in the text"))
    os.utime(record, ns=(0, record.stat().st_mtime_ns + 10**9))
    assert loader.reload() is not None
    assert loader.cached_records() is None and loader.cache_digest is None
