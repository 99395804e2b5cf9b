from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedsvc.errors import FolderError, Problem
from feedsvc.fields import parse_bytes, record_from_mapping
from feedsvc.repository import (
    EPOCH,
    PARALLEL_MINIMUM,
    CollectionLoader,
    build_collection,
    find_record_files,
    load_collection,
    read_file_states,
)
from tests.conftest import ASSET_BASE_URL, RECORDS, make_app
from tests.test_cli import unreadable_folder


def test_finds_record_files_recursively_skipping_hidden_and_other_extensions() -> None:
    names = [path.relative_to(RECORDS).as_posix() for path in find_record_files(RECORDS)]
    assert "2023/nested/2023-02-01-whole-file-yaml.yaml" in names
    assert "2023-01-06-naive-date-http-image.markdown" in names
    assert "000_6533b3114b6f9df0.txt" in names
    assert not any(name.startswith(".") or "/." in name for name in names)
    assert "notes.json" not in names


def test_broken_records_are_rejected_and_the_rest_load(collection) -> None:  # type: ignore[no-untyped-def]
    rejected = {problem.path for problem in collection.rejections}
    assert rejected == {path.name for path in RECORDS.glob("broken-*")}
    assert len(collection.records) == 9
    assert all(not record.path.startswith("broken-") for record in collection.records)


def test_rejections_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="feedsvc.repository"):
        load_collection(RECORDS, ASSET_BASE_URL)
    rejected = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected ")]
    assert len(rejected) == len(set(rejected)) == 9
    assert any("broken-bad-date.md: publishedDateTime: is not a date" in m for m in rejected)


def test_records_sharing_an_article_url_are_one_entry(collection, caplog) -> None:  # type: ignore[no-untyped-def]
    twice = [r for r in collection.records if r.url == "https://news.example.net/twice"]
    assert len(twice) == 1
    merged = twice[0]
    assert merged.published == datetime(2023, 2, 2, 10, 0, tzinfo=UTC)
    assert merged.title == "One article recorded twice"
    assert {t.slug for t in merged.topics} == {"ai", "computer-vision"}
    note = next(p for p in collection.warnings if "merged" in p.message)
    assert note.path == "2023/nested/2023-02-03-duplicate-b.md"


def _copy(path: str, published: str, topic: str):  # type: ignore[no-untyped-def]
    data = {
        "title": f"Copy in {path}",
        "webUrl": "https://x.example/same",
        "publishedDateTime": published,
        "topics": [topic],
    }
    return record_from_mapping(data, path)


@pytest.mark.parametrize("load_order", ["forward", "backward"])
def test_a_merged_article_keeps_the_earliest_copy_whatever_the_file_names(
    load_order: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Here the file names sort against the dates (the test records sort alike both ways)."""
    caplog.set_level(logging.INFO, logger="feedsvc.repository")
    copies = [
        _copy("a-later.md", "2022-01-03T00:00:00Z", "Later"),
        _copy("b-middle.md", "2022-01-02T00:00:00Z", "Middle"),
        _copy("z-earliest.md", "2022-01-01T00:00:00Z", "Earliest"),
    ]
    collection = build_collection(copies if load_order == "forward" else reversed(copies))
    (merged,) = collection.records
    assert merged.title == "Copy in z-earliest.md" and merged.path == "z-earliest.md"
    assert merged.published == datetime(2022, 1, 1, tzinfo=UTC)
    assert {topic.slug for topic in merged.topics} == {"later", "middle", "earliest"}
    message = "same article URL as z-earliest.md; merged into one entry"
    assert collection.warnings == (  # problems are listed by file, whatever the load order
        Problem("a-later.md", "webUrl", message, "warning"),
        Problem("b-middle.md", "webUrl", message, "warning"),
    )
    assert caplog.messages == [
        "merged 3 records of https://x.example/same: z-earliest.md, b-middle.md, a-later.md"
    ]


def test_copies_published_at_the_same_moment_merge_into_the_first_file() -> None:
    same = "2022-01-01T00:00:00Z"
    copies = [_copy("b.md", same, "B"), _copy("a.md", same, "A")]
    (merged,) = build_collection(copies).records
    assert merged.path == "a.md"


def test_records_are_newest_first(collection) -> None:  # type: ignore[no-untyped-def]
    dates = [record.published for record in collection.records]
    assert dates == sorted(dates, reverse=True)


def test_indexes_by_topic_and_provider_slug(collection) -> None:  # type: ignore[no-untyped-def]
    assert set(collection.topics) == {"ai", "ai-in-autos", "aws-ai", "computer-vision"}
    assert collection.topics["computer-vision"].name == "Computer Vision"
    assert "usnews-com" in collection.providers and "chosun-com" in collection.providers
    assert collection.providers["usnews-com"].name == "U.S. News & World Report"
    assert collection.providers["usnews-com"].images[0].width == 50
    assert collection.providers["example-net"].images == ()  # no logo: none, not None
    assert all(group.images == () for group in collection.topics.values())
    for group in (*collection.topics.values(), *collection.providers.values()):
        dates = [record.published for record in group.records]
        assert dates == sorted(dates, reverse=True)
    cv = {r.path for r in collection.topics["computer-vision"].records}
    assert {"000_6533b3114b6f9df0.txt", "001_a1e971cc52df9b4c.txt"} <= cv


def _record(url: str, published: str, path: str):  # type: ignore[no-untyped-def]
    data = {"title": path, "webUrl": url, "publishedDateTime": published, "topics": ["T"]}
    return record_from_mapping(data, path)


def test_ties_are_broken_by_entry_id_whatever_the_load_order() -> None:
    results = [_record(f"https://x.example/{n}", "2022-01-01T00:00:00Z", f"{n}.md") for n in "abcd"]
    forward = build_collection(results)
    backward = build_collection(reversed(results))
    assert [r.id for r in forward.records] == [r.id for r in backward.records]
    assert [r.id for r in forward.records] == sorted(r.id for r in forward.records)
    assert forward.topics == backward.topics


def test_a_collection_carries_what_the_loader_says_of_it() -> None:
    """The version, the modification time, the folders not read and the links not followed are
    the loader's to give; the load time is now, in UTC."""
    before = datetime.now(UTC)
    modified = datetime(2023, 1, 2, tzinfo=UTC)
    unread = Problem("locked", "", "cannot be read (Permission denied)")
    link = Problem("link.md", "", "a link: links are not followed", "warning")
    results = [_record("https://x.example/a", "2022-01-01T00:00:00Z", "a.md")]
    collection = build_collection(results, "v1", modified, unread=[unread], skipped=[link])
    assert (collection.version, collection.modified) == ("v1", modified)
    assert collection.rejections == (unread,) and collection.skipped == (link,)
    assert collection.loaded_at is not None
    assert before <= collection.loaded_at <= datetime.now(UTC)
    unversioned = build_collection(results)
    assert (unversioned.version, unversioned.modified) == ("", EPOCH)
    assert unversioned.rejections == () and unversioned.skipped == ()


def test_empty_folder_gives_an_empty_collection(tmp_path: Path) -> None:
    collection = load_collection(tmp_path)
    assert collection.records == () and collection.updated is None


def test_a_root_that_is_not_a_folder_is_refused_at_load_and_by_the_app(tmp_path: Path) -> None:
    """A load of nothing would serve an empty site; `create_app` (and so wsgi.py) refuses too."""
    (tmp_path / "file.md").write_text("x", encoding="utf-8")
    for root, reason in [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "file.md", "is not a folder"),
    ]:
        with pytest.raises(FolderError, match=f"^seeds folder {root} {reason}$"):
            load_collection(root)
        with pytest.raises(FolderError):
            make_app(SEEDS_DIR=root)


def test_links_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text(
        "---\ntitle: Outside\npublishedDateTime: 2022-01-01\nwebUrl: https://o.example/\n---\n"
    )
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "link.md").symlink_to(outside)
    (folder / "loop").symlink_to(folder)
    (folder / "real.md").write_text(outside.read_text().replace("Outside", "Inside"))
    assert [path.name for path in find_record_files(folder)] == ["real.md"]


def test_each_files_problems_are_listed_under_its_path_in_path_order() -> None:
    """Rejections and warnings, whatever order the results come in: each file's own, in the
    order of the files' paths."""
    good = "---\ntitle: {0}\npublishedDateTime: 2022-01-01\nwebUrl: https://x.example/{0}\n"
    warned = good + "images: [{{url: /assets/x.jpg}}]\n---\n"
    results = [
        parse_bytes(warned.format("d").encode(), "d.md"),
        parse_bytes(b"---\ntitle: [x\n---\n", "c.md"),
        parse_bytes(warned.format("b").encode(), "b.md"),
        parse_bytes(b"---\ntitle: [y\n---\n", "a.md"),
        parse_bytes((good + "---\n").format("e").encode(), "e.md"),
    ]
    collection = build_collection(results)
    assert [problem.path for problem in collection.rejections] == ["a.md", "c.md"]
    assert [problem.path for problem in collection.warnings] == ["b.md", "d.md"]
    assert sorted(record.path for record in collection.records) == ["b.md", "d.md", "e.md"]


def test_a_loaded_or_reloaded_collection_names_the_folders_not_read_and_the_links_skipped(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "real.md").write_text(
        "---\ntitle: Inside\npublishedDateTime: 2022-01-01\nwebUrl: https://o.example/\n---\n"
    )
    (folder / "link.md").symlink_to(folder / "real.md")
    unreadable = unreadable_folder(folder)
    loader = CollectionLoader(folder)
    loaded = loader.load()
    (folder / "real.md").write_text((folder / "real.md").read_text().replace("Inside", "In"))
    reloaded = loader.reload()
    assert reloaded is not None and [r.title for r in reloaded.records] == ["In"]
    for collection in (loaded, reloaded):
        assert [problem.path for problem in collection.skipped] == ["link.md"]
        (rejection,) = collection.rejections
        assert rejection.path.startswith(unreadable) and "cannot be read" in rejection.message
        assert collection.warnings == ()
    assert loaded.changes is None and reloaded.changes is not None


def test_the_modification_time_is_in_whole_seconds(tmp_path: Path) -> None:
    """As Last-Modified says it: a file written at 12:00:00.7 makes the collection's time
    12:00:00, so that a client's If-Modified-Since of 12:00:00 matches it."""
    record = tmp_path / "a.md"
    record.write_text(
        "---\ntitle: A\npublishedDateTime: 2022-01-01\nwebUrl: https://o.example/\n---\n"
    )
    whole = 1_700_000_000
    os.utime(record, ns=(whole * 10**9 + 700_000_000,) * 2)
    os.utime(tmp_path, ns=(whole * 10**9 - 300_000_000,) * 2)
    loader = CollectionLoader(tmp_path)
    expected = datetime.fromtimestamp(whole, UTC)
    assert loader.load().modified == expected
    os.utime(record, ns=((whole + 1) * 10**9 + 700_000_000,) * 2)
    reloaded = loader.reload([str(record)])
    assert reloaded is not None and reloaded.modified == expected + timedelta(seconds=1)
    record.write_text(record.read_text().replace("title: A", "title: B"))
    os.utime(record, ns=((whole + 2) * 10**9 + 700_000_000,) * 2)
    reloaded = loader.reload([str(record)])
    assert reloaded is not None and reloaded.modified == expected + timedelta(seconds=2)


def _children(pid: int) -> list[int]:
    """The PIDs of `pid`'s child processes."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if (
                entry.name.isdigit()
                and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid
            ):
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_loads_readers_end_with_it_when_it_is_killed(tmp_path: Path) -> None:
    """The processes forked to read a folder end when the process loading it is killed mid-load
    (SIGKILL: its pool never shuts down), instead of waiting for work for ever, orphans holding
    the files and a build's lock (`feedsvc build` killed while it loaded left one in about a
    third of runs). Each reader here is held opening a FIFO that no one writes."""
    fifos = []
    for number in range(PARALLEL_MINIMUM):
        fifo = tmp_path / f"{number}.md"
        os.mkfifo(fifo)
        fifos.append(str(fifo))
    loader = os.fork()  # in this process's code, so that mutation testing reaches it
    if loader == 0:
        try:
            read_file_states([(fifo, fifo, None) for fifo in fifos], False, None, 2)
        finally:
            os._exit(0)
    readers: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while len(readers) < 2 and time.monotonic() < deadline:
            readers = _children(loader)
            time.sleep(0.02)
        assert len(readers) == 2, "no readers started"
        os.kill(loader, signal.SIGKILL)
        os.waitpid(loader, 0)
        deadline = time.monotonic() + 10
        while any(map(_running, readers)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not any(map(_running, readers)), "a reader outlived the load"
    finally:
        for pid in [loader, *readers]:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
