"""Memory a forked serving process shares with the process that loaded the collection: the
workers of `feedsvc serve` inherit it, and each page one of them writes to is copied."""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from feedsvc.repository import CollectionLoader
from feedsvc.values import collector_paused
from tests.conftest import write_record
from tests.test_cli import unreadable_folder

RECORDS = 3000


def private_kib() -> int:
    """This process's pages that no other process maps (copied or its own), in KiB."""
    fields = {}
    for line in Path("/proc/self/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    return fields["Private_Clean"] + fields["Private_Dirty"]


def in_a_fork(work: Callable[[], object]) -> tuple[object, int]:
    """`repr(work())` in a forked child, and how much private memory (KiB) it made the child
    copy or allocate."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports through the pipe and leaves without pytest's teardown
        try:
            before = private_kib()
            result = repr(work())
            os.write(writer, f"{private_kib() - before} {result}".encode())
        finally:
            os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as answer:
        grown, result = answer.read().split(" ", 1)
    os.waitpid(pid, 0)
    return result, int(grown)


def test_a_workers_first_check_for_changes_copies_none_of_the_collection(tmp_path: Path) -> None:
    """Each worker checks the whole folder once when its watch starts. With nothing changed,
    the check reads no file's state, so the collection's pages stay shared: touching every
    state and record copied about 0.8 KB a record (80 MiB a worker at 100,000 records)."""
    (tmp_path / "nested").mkdir()
    for number in range(RECORDS):
        folder = tmp_path / "nested" if number % 10 == 0 else tmp_path
        write_record(folder, f"{number:05d}.md", f"Record {number}", day=number % 28 + 1)
    # What a scan leaves out, the check leaves out: else it would find a change and read all.
    write_record(tmp_path, ".hidden.md", "Hidden")
    (tmp_path / "notes.json").write_text("{}")
    loader = CollectionLoader(tmp_path)
    loader.load()
    edited = write_record(tmp_path, "00001.md", "Record 1 again", day=2)
    assert loader.reload([str(edited)]) is not None  # an event reload keeps the sums up to date
    loader.reload()  # what runs once per process (code warming up, caches) runs here first
    _, forking = in_a_fork(lambda: None)
    result, checking = in_a_fork(loader.reload)
    assert result == "None"  # nothing changed
    assert checking - forking < RECORDS // 4  # KiB: a quarter of a KiB a record at most


def test_the_collector_runs_again_after_a_pause_whatever_happened() -> None:
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError("a bad file")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # paused by someone else: theirs to start again
    finally:
        gc.enable()


@pytest.mark.parametrize("kind", ["link", "unreadable folder"])
def test_links_and_unreadable_folders_stay_reported_after_a_check(
    tmp_path: Path, kind: str
) -> None:
    """A whole check that finds nothing changed keeps what the last scan reported: the links
    skipped and the folders that could not be read stay in every later version."""
    write_record(tmp_path, "a.md", "A")
    if kind == "link":
        (tmp_path / "link.md").symlink_to(tmp_path / "a.md")
    else:
        unreadable_folder(tmp_path)
    loader = CollectionLoader(tmp_path)
    loaded = loader.load()
    assert loader.reload() is None  # a whole check: nothing changed
    edited = write_record(tmp_path, "a.md", "A again")
    reloaded = loader.reload([str(edited)])  # as an event names it
    assert reloaded is not None and reloaded.records[0].title == "A again"
    assert reloaded.skipped == loaded.skipped and reloaded.rejections == loaded.rejections
    assert reloaded.skipped or reloaded.rejections
