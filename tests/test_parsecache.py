from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from feedsvc.fields import parse_bytes
from feedsvc.parsecache import MAGIC, _header, content_digest, read_cache
from feedsvc.records import unpack_related
from feedsvc.repository import CollectionLoader
from tests.conftest import ASSET_BASE_URL, RECORD, RECORDS
from tests.conftest import write_record as write


def loader(folder: Path, cache: Path, workers: int = 1) -> CollectionLoader:
    return CollectionLoader(folder, workers=workers, cache_file=cache)


def test_a_restart_with_unchanged_files_parses_nothing(tmp_records: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "parse.cache"
    for n in range(3):
        write(tmp_records, f"{n}.md", f"Title {n}")
    first = loader(tmp_records, cache)
    collection = first.load()
    assert (first.stats.parsed, first.stats.cache_hits) == (3, 0)
    again = loader(tmp_records, cache)
    reloaded = again.load()
    assert reloaded.records == collection.records and reloaded.version == collection.version
    assert (again.stats.parsed, again.stats.cache_hits) == (0, 3)


@pytest.mark.parametrize("change", ["size", "mtime", "content_same_size_and_mtime"])
def test_each_key_part_invalidates(tmp_records: Path, tmp_path: Path, change: str) -> None:
    cache = tmp_path / "parse.cache"
    path = write(tmp_records, "a.md", "Title A")
    write(tmp_records, "b.md", "Title B")
    loader(tmp_records, cache).load()
    stat = path.stat()
    if change == "size":
        write(tmp_records, "a.md", "Title A, longer")
    elif change == "mtime":
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000_000))
    else:
        write(tmp_records, "a.md", "Title Z")  # same length
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert path.stat().st_size == stat.st_size
    again = loader(tmp_records, cache)
    collection = again.load()
    assert (again.stats.parsed, again.stats.cache_hits) == (1, 1)
    expected = (
        "Title A" if change == "mtime" else ("Title A, longer" if change == "size" else "Title Z")
    )
    assert expected in {record.title for record in collection.records}


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated
        lambda data: data[:-5] + b"xxxxx",  # corrupted payload
        lambda data: b"not a cache at all",
        lambda data: data.replace(MAGIC, b"feedsvc parse cache v0\n"),
    ],
)
def test_a_corrupt_cache_is_ignored(tmp_records: Path, tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    cache = tmp_path / "parse.cache"
    write(tmp_records, "a.md", "Title A")
    loader(tmp_records, cache).load()
    cache.write_bytes(damage(cache.read_bytes()))
    again = loader(tmp_records, cache)
    assert [r.title for r in again.load().records] == ["Title A"]
    assert again.stats.parsed == 1


def test_a_cache_made_with_other_settings_is_ignored(tmp_records: Path, tmp_path: Path) -> None:
    cache = tmp_path / "parse.cache"
    write(tmp_records, "a.md", "Title A")
    loader(tmp_records, cache).load()
    other = CollectionLoader(tmp_records, ASSET_BASE_URL, cache_file=cache)
    other.load()
    assert other.stats.parsed == 1


def test_an_edited_cache_is_refused_and_the_file_parsed(tmp_records: Path, tmp_path: Path) -> None:
    """A title changed in place (the same length, so the pickle stays valid) fails the checksum."""
    cache = tmp_path / "parse.cache"
    write(tmp_records, "a.md", "Title A")
    loader(tmp_records, cache).load()
    data = cache.read_bytes()
    assert data.count(b"Title A") == 1
    cache.write_bytes(data.replace(b"Title A", b"Title Z"))
    again = loader(tmp_records, cache)
    assert [r.title for r in again.load().records] == ["Title A"]
    assert (again.stats.parsed, again.stats.cache_hits) == (1, 0)


class Call:
    """Pickles as a call of `function(*args)`: what a tampered cache would make unpickling do."""

    def __init__(self, function: Callable[..., object], *args: object) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        return self.function, self.args


@pytest.mark.parametrize(
    "make_call",
    [
        lambda marker: Call(os.system, f"touch {marker}"),  # a module never allowed
        # Modules that are allowed (for builtins.object, for Record), names that are not.
        lambda marker: Call(eval, f"open({str(marker)!r}, 'w').close()"),
        lambda marker: Call(unpack_related, "made\x1fhttps://by.example/unpickling\x1f\x1f"),
        # The module that parses: never allowed.
        lambda marker: Call(parse_bytes, RECORD.encode(), "made-by-unpickling.md"),
    ],
    ids=[
        "os.system",
        "builtins.eval",
        "feedsvc.records.unpack_related",
        "feedsvc.fields.parse_bytes",
    ],
)
def test_a_tampered_cache_cannot_call_anything(tmp_path: Path, make_call) -> None:  # type: ignore[no-untyped-def]
    cache, marker = tmp_path / "parse.cache", tmp_path / "called"
    payload = pickle.dumps({"a.md": make_call(marker)})
    key = "asset_base_url=None"
    cache.write_bytes(_header(key) + content_digest(payload) + payload)  # a valid checksum
    assert read_cache(cache, key) == {}
    assert not marker.exists()


def test_parallel_and_serial_loads_give_identical_collections(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(260):
        write(folder, f"{n:03d}.md", f"Title {n}", day=1 + n % 9)
    for broken in RECORDS.glob("broken-*"):
        (folder / broken.name).write_bytes(broken.read_bytes())
    serial = CollectionLoader(folder, workers=1).load()
    parallel = CollectionLoader(folder, workers=2).load()
    assert serial.records == parallel.records
    assert serial.topics == parallel.topics and serial.providers == parallel.providers
    assert serial.rejections == parallel.rejections and serial.version == parallel.version


def test_topics_and_providers_are_shared_after_a_parallel_load(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(260):
        write(folder, f"{n:03d}.md", f"Title {n}", day=1 + n % 9)
    collection = CollectionLoader(folder, workers=2).load()
    topics = {id(topic) for record in collection.records for topic in record.topics}
    assert len(topics) == 1
