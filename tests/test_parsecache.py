from __future__ import annotations

import errno
import logging
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from feedsvc import parsecache
from feedsvc.fields import parse_bytes
from feedsvc.parsecache import MAGIC, _header, content_digest, read_cache, write_cache
from feedsvc.records import Record, shared_provider, shared_topic, unpack_related
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
    stamp = path.stat()
    if change == "size":
        write(tmp_records, "a.md", "Title A, longer")
    elif change == "mtime":
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 10_000_000_000))
    else:
        write(tmp_records, "a.md", "Title Z")  # same length
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        assert path.stat().st_size == stamp.st_size
    again = loader(tmp_records, cache)
    collection = again.load()
    # A new time alone: the file is read and hashed, its content found the same, not parsed.
    parsed = 0 if change == "mtime" else 1
    assert (again.stats.parsed, again.stats.cache_hits) == (parsed, 2 - parsed)
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


def test_a_cache_in_nested_folders_that_do_not_exist_yet(tmp_records: Path, tmp_path: Path) -> None:
    cache = tmp_path / "a" / "b" / "parse.cache"
    write(tmp_records, "a.md", "Title A")
    loader(tmp_records, cache).load()
    again = loader(tmp_records, cache)
    again.load()
    assert again.stats.cache_hits == 1


def test_the_cache_is_written_beside_itself_whatever_tmpdir_says(
    tmp_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written to a temporary file in its own folder, then renamed: a rename across file systems
    would not be atomic (and TMPDIR may not exist at all)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmpdir"))
    cache = tmp_path / "parse.cache"
    write(tmp_records, "a.md", "Title A")
    loader(tmp_records, cache).load()
    assert read_cache(cache, loader(tmp_records, cache)._settings_key)
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_a_settings_key_that_is_not_utf8_still_works(tmp_path: Path) -> None:
    """An ASSET_BASE_URL from the environment may hold an undecodable byte (a surrogate)."""
    cache, key = tmp_path / "parse.cache", "asset_base_url=https://x.example/\udcff"
    write_cache(cache, key, {})
    assert read_cache(cache, key) == {}
    assert b"\nasset_base_url=https://x.example/?\n" in cache.read_bytes()  # the header line


def test_a_cache_made_before_the_records_changed_shape_is_ignored(
    tmp_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "parse.cache"
    write(tmp_records, "a.md", "Title A")
    loader(tmp_records, cache).load()
    monkeypatch.setattr(parsecache, "PARSE_VERSION", parsecache.PARSE_VERSION + 1)
    again = loader(tmp_records, cache)
    again.load()
    assert (again.stats.parsed, again.stats.cache_hits) == (1, 0)


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "feedsvc.parsecache"]


def test_each_reason_a_cache_is_not_used_is_logged_once(
    tmp_records: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="feedsvc.parsecache")
    cache = tmp_path / "parse.cache"
    write(tmp_records, "a.md", "Title A")
    loader(tmp_records, cache).load()
    assert cache_warnings(caplog) == []

    cache.write_bytes(cache.read_bytes()[:-1])
    loader(tmp_records, cache).load()
    payload = pickle.dumps({"a.md": Call(os.system, "true")})
    key = loader(tmp_records, cache)._settings_key
    cache.write_bytes(_header(key) + content_digest(payload) + payload)
    loader(tmp_records, cache).load()
    assert cache_warnings(caplog) == [
        f"parse cache {cache} is stale or corrupt; ignored",
        f"parse cache {cache} cannot be used (posix.system is not allowed in a parse cache); "
        "ignored",
    ]


def test_a_cache_that_cannot_be_read_or_written_only_costs_a_parse(
    tmp_records: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache path that is a folder, or under a file (a read-only home is alike for a user that
    is not root): every file is parsed, the load goes on, and each failure is one warning."""
    caplog.set_level(logging.WARNING, logger="feedsvc.parsecache")
    write(tmp_records, "a.md", "Title A")
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file").write_text("")
    folder, under_a_file = tmp_path / "a-folder", tmp_path / "a-file" / "parse.cache"
    for cache, warnings in [
        (
            folder,
            [
                f"parse cache {folder} is not a regular file; parsing every file",
                f"parse cache {folder} is not a regular file; not replaced",
            ],
        ),
        (
            under_a_file,
            [
                f"parse cache {under_a_file} cannot be read (Not a directory); parsing every file",
                f"parse cache {under_a_file} cannot be written (File exists)",
            ],
        ),
    ]:
        caplog.clear()
        again = loader(tmp_records, cache)
        assert [r.title for r in again.load().records] == ["Title A"]
        assert again.stats.parsed == 1
        assert cache_warnings(caplog) == warnings
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a-file", "a-folder", "records"]


def test_a_cache_that_cannot_be_put_in_place_leaves_no_temporary_file(
    tmp_records: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The file is written beside its place and renamed into it: when the rename fails (the
    folder's file system full or read-only by then), one warning says why and the written file
    is removed, not left beside the cache for every restart to add another."""
    caplog.set_level(logging.WARNING, logger="feedsvc.parsecache")
    write(tmp_records, "a.md", "Title A")
    cache = tmp_path / "parse.cache"

    def refuse(source: str, target: Path) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(parsecache.os, "replace", refuse)
    assert [r.title for r in loader(tmp_records, cache).load().records] == ["Title A"]
    assert cache_warnings(caplog) == [
        f"parse cache {cache} cannot be written ({os.strerror(errno.EROFS)})"
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["records"]


def test_a_cache_path_that_is_no_regular_file_is_neither_read_nor_replaced(
    tmp_records: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`PARSE_CACHE=/dev/null` meant as "keep nothing": run as root, the cache's atomic rename
    replaced the device with a file. A FIFO stands for such a path here (a device cannot be
    risked): read, it blocked the load; written, it was replaced."""
    caplog.set_level(logging.WARNING, logger="feedsvc.parsecache")
    write(tmp_records, "a.md", "Title A")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    loaded: list[list[str]] = []
    load = threading.Thread(
        target=lambda: loaded.append([r.title for r in loader(tmp_records, fifo).load().records]),
        daemon=True,
    )
    load.start()
    load.join(timeout=30)
    if load.is_alive():  # let the blocked reader go before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the load blocked reading the FIFO")
    assert loaded == [["Title A"]]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert cache_warnings(caplog) == [
        f"parse cache {fifo} is not a regular file; parsing every file",
        f"parse cache {fifo} is not a regular file; not replaced",
    ]


def test_a_reload_trusts_an_unchanged_stat_stamp(tmp_records: Path, tmp_path: Path) -> None:
    """A reload compares each file's size and modification time with the start of its stamp."""
    path = write(tmp_records, "a.md", "Title A")
    cached = loader(tmp_records, tmp_path / "parse.cache")
    cached.load()
    assert cached.reload() is None
    stamp = path.stat()
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1))
    # Read and hashed, as its stamp no longer matches: the same content, so not parsed again.
    assert cached.reload() is not None and cached.stats.parsed == 0
    assert cached.reload() is None  # its new stamp is remembered


def test_a_cache_gives_back_every_file_state_as_parsed(tmp_path: Path) -> None:
    """Every kind of file the test collection holds (good, broken, with warnings, merged copies,
    non-ASCII text, several images, dates before 1970): the states read back from the cache
    equal the states parsed, with the values records share still shared."""
    folder = tmp_path / "records"
    shutil.copytree(RECORDS, folder)
    write(folder, "old.md", "Before 1970", day=1)
    text = (folder / "old.md").read_text(encoding="utf-8")
    (folder / "old.md").write_text(text.replace("2022-", "1931-"), encoding="utf-8")
    cache = tmp_path / "parse.cache"
    parsed = loader(folder, cache)
    parsed.load()
    cached = loader(folder, cache)
    cached.load()
    assert cached.stats.parsed == 0
    assert cached.states == parsed.states
    assert any(state.problems and state.record for state in cached.states.values())
    assert any(record.published.year < 1970 for record in records_of(cached))
    assert any(len(record.images) > 1 for record in records_of(cached))
    for record in records_of(cached):
        assert record.published.tzinfo is UTC
        if record.original_url == record.url:
            assert record.original_url is record.url
        for topic in record.topics:
            assert topic is shared_topic(topic.name, topic.slug)
        if record.provider is not None:
            provider = record.provider
            same = shared_provider(provider.name, provider.domain, provider.slug, provider.images)
            assert provider is same


def records_of(cached: CollectionLoader) -> list[Record]:
    return [state.record for state in cached.states.values() if state.record is not None]


def test_the_cache_lays_out_every_field_of_a_record() -> None:
    """The cache writes a record field by field (parsecache._COLUMNS): a field added to Record
    must be added there, or a restart would make records without it."""
    assert [field.name for field in fields(Record)] == [
        "path",
        "id",
        "title",
        "excerpt",
        "published",
        "url",
        "original_url",
        "provider",
        "topics",
        "images",
        "coverage",
        "quality",
        "heat",
        "published_flag",
    ]


def test_a_warm_start_leaves_no_holes_among_the_records(tmp_path: Path) -> None:
    """Reading the cache frees no objects among the records it makes (unpickling records as
    objects kept every record's arguments until the end, then freed them: 16 % of the memory
    the records took was left as holes, which forked workers copy as they fill them)."""
    folder = tmp_path / "records"
    folder.mkdir()
    for n in range(3000):
        write(folder, f"{n:04d}.md", f"Title {n}", day=1 + n % 9)
    cache = tmp_path / "parse.cache"
    loader(folder, cache).load()
    script = f"""
import re, sys, os
from pathlib import Path
from typing import Any
from feedsvc.repository import CollectionLoader
from feedsvc.parsecache import read_cache

def blocks():
    reader, writer = os.pipe()
    saved = os.dup(2)
    os.dup2(writer, 2)
    sys._debugmallocstats()
    os.dup2(saved, 2)
    os.close(writer)
    with os.fdopen(reader) as text:
        stats = text.read()
    return [
        int(re.search(rf"bytes in {{kind}} blocks *= *([0-9,]+)", stats)[1].replace(",", ""))
        for kind in ("allocated", "available")
    ]

settings = CollectionLoader(Path({str(folder)!r}))._settings_key
used, free = blocks()
states = read_cache(Path({str(cache)!r}), settings)
assert len(states) == 3000
used_now, free_now = blocks()
print(used_now - used, free_now - free)
"""
    output = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    used, freed = map(int, output.split())
    assert freed < used / 50


def states_of_the_test_records(cache: Path) -> dict[str, parsecache.FileState]:
    folder = loader(RECORDS, cache)
    folder.load()
    return dict(folder.states)


def test_numbers_that_do_not_fit_eight_bytes_and_paths_of_their_own_come_back(
    tmp_path: Path,
) -> None:
    """A quality or heat past 64 bits (YAML reads any integer), a record whose path is not its
    file's, a state with neither record nor problem: laid out another way than the rest, and
    read back as they were."""
    states = states_of_the_test_records(tmp_path / "parse.cache")
    path, state = next((path, state) for path, state in states.items() if state.record)
    assert state.record is not None
    huge = replace(state.record, quality=2**63, heat=-(2**63), path="elsewhere/" + path)
    states[path] = replace(state, record=huge)
    states["neither.md"] = parsecache.FileState(b"", None, ())  # no record, and no problem
    assert parsecache.decode_states(parsecache.encode_states(states)) == states
    for path, state in states.items():  # and every record's
        if state.record is not None:
            states[path] = replace(state, record=replace(state.record, quality=2**64 + 1))
    assert parsecache.decode_states(parsecache.encode_states(states)) == states


@pytest.mark.parametrize("column", ["title", "flags", "stamp"])
def test_columns_of_different_lengths_are_refused(column: str, tmp_path: Path) -> None:
    """A cache whose checksum holds but whose columns disagree (a tampered or miswritten one)
    raises, so it is ignored, instead of giving records made of other records' fields."""
    states = states_of_the_test_records(tmp_path / "parse.cache")
    record = next(state.record for state in states.values() if state.record)
    # the last file without images or problems: nothing left over tells the rows were cut short
    states["plain.md"] = parsecache.FileState(b"", replace(record, images=()), ())
    columns = parsecache.encode_states(states)
    values = columns["files"][column]
    columns["files"][column] = values[:-8] if isinstance(values, bytes) else values[:-1]
    with pytest.raises(ValueError):
        parsecache.decode_states(columns)


def with_one_more(columns: dict[str, Any], what: str) -> dict[str, Any]:
    """`columns` with one more image, problem, or image width, than the files hold."""
    images = columns["images"]
    if what == "image":
        images["url"] = [*images["url"], "https://x.example/i.png"]
        for name in ("width", "height", "media_type"):
            images[name] = with_zero(images[name])
    elif what == "problem":
        columns["problems"] = [*columns["problems"], ("a.md", "title", "missing", "error")]
    else:
        images["width"] = with_zero(images["width"])
    return columns


def with_zero(column: bytes | list[int | None]) -> bytes | list[int | None]:
    """An `_int_column` (packed, or a list) with one more value."""
    return column + bytes(8) if isinstance(column, bytes) else [*column, 0]


@pytest.mark.parametrize(
    ("what", "reason"),
    [
        ("image", "more images or problems than files hold"),
        ("problem", "more problems than files hold"),
        ("width", "zip() argument 2 is longer"),
    ],
)
def test_values_left_over_make_a_cache_refused_and_logged(
    what: str, reason: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache whose checksum holds but that has more images, problems, or values of one
    column of its images, than its files: refused, and the reason logged."""
    caplog.set_level(logging.WARNING, logger="feedsvc.parsecache")
    states = states_of_the_test_records(tmp_path / "first.cache")
    assert any(state.record and state.record.images for state in states.values())
    assert any(state.problems for state in states.values())
    encode = parsecache.encode_states
    cache = tmp_path / "parse.cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parsecache, "encode_states", lambda s: with_one_more(encode(s), what))
        write_cache(cache, "settings", states)
    assert read_cache(cache, "settings") == {}
    (warning,) = cache_warnings(caplog)
    assert warning.startswith(f"parse cache {cache} cannot be used ({reason}")
