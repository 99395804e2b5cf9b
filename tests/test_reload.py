"""Live reload: added, changed, removed and broken files, atomic swaps, and ETags that change only
for feeds whose content changed."""

from __future__ import annotations

import itertools
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc import repository
from feedsvc import watch as watching
from feedsvc.cache import strong_etag
from feedsvc.repository import Collection, CollectionLoader
from feedsvc.watch import FolderWatch
from tests.conftest import make_app, parse_xml, read_feed
from tests.conftest import write_record as write
from tests.servers import fetch, running_feedsvc


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll for `condition` (no fixed sleeps): fails the test if it does not hold in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def titles(loader_or_collection) -> set[str]:  # type: ignore[no-untyped-def]
    return {record.title for record in loader_or_collection.records}


def test_reload_sees_added_changed_removed_and_renamed_files(tmp_records: Path) -> None:
    write(tmp_records, "a.md", "A")
    write(tmp_records, "b.md", "B")
    loader = CollectionLoader(tmp_records)
    first = loader.load()
    assert loader.reload() is None  # nothing changed

    write(tmp_records, "c.md", "C")
    added = loader.reload()
    assert added is not None and titles(added) == {"A", "B", "C"}
    assert loader.stats.parsed == 1

    write(tmp_records, "a.md", "A2")
    changed = loader.reload()
    assert changed is not None and titles(changed) == {"A2", "B", "C"}

    (tmp_records / "b.md").unlink()
    removed = loader.reload()
    assert removed is not None and titles(removed) == {"A2", "C"}

    (tmp_records / "c.md").rename(tmp_records / "c-renamed.md")
    renamed = loader.reload()
    assert renamed is not None and titles(renamed) == {"A2", "C"}
    assert renamed.version != first.version


def test_a_file_broken_mid_edit_keeps_its_last_good_version(tmp_records: Path) -> None:
    write(tmp_records, "a.md", "A")
    loader = CollectionLoader(tmp_records)
    loader.load()
    (tmp_records / "a.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    os.utime(tmp_records / "a.md", ns=(0, 10**18))
    broken = loader.reload()
    assert broken is not None
    assert titles(broken) == {"A"}
    assert broken.rejections and broken.rejections[0].path == "a.md"
    write(tmp_records, "a.md", "A fixed")
    fixed = loader.reload()
    assert fixed is not None and titles(fixed) == {"A fixed"} and not fixed.rejections


def test_only_feeds_whose_content_changed_get_new_etags(tmp_records: Path) -> None:
    write(tmp_records, "a.md", "A", domain="a.example", topic="AI")
    write(tmp_records, "b.md", "B", domain="b.example", topic="Robots")
    app = make_app(SEEDS_DIR=tmp_records)
    client = app.test_client()
    urls = [
        "/feeds/providers/a-example.atom",
        "/feeds/providers/b-example.atom",
        "/feeds/topics/robots.rss",
        "/feeds/all.atom",
    ]
    before = {url: client.get(url).headers["ETag"] for url in urls}

    write(tmp_records, "a2.md", "A two", day=5, domain="a.example", topic="AI")
    assert app.extensions["feedsvc"].reload()

    for url in ("/feeds/providers/b-example.atom", "/feeds/topics/robots.rss"):
        response = client.get(url, headers={"If-None-Match": before[url]})
        assert response.status_code == 304, url
    for url in ("/feeds/providers/a-example.atom", "/feeds/all.atom"):
        response = client.get(url, headers={"If-None-Match": before[url]})
        assert response.status_code == 200, url
        assert "A two" in {entry.title for entry in read_feed(response.data).entries}


# Files and folders dated in the past, an hour apart, so that each version's Last-Modified is known.
PAST = datetime(2024, 1, 1, tzinfo=UTC)


def write_dated(folder: Path, n: int) -> None:
    """Record n, its file and its folder dated PAST + n hours: the version holding records
    0..n has that modification time."""
    path = write(folder, f"{n}.md", f"Title {n}", day=n + 1)
    stamp = (PAST + timedelta(hours=n)).timestamp()
    os.utime(path, (stamp, stamp))
    os.utime(folder, (stamp, stamp))


def test_requests_during_reloads_always_see_one_whole_version(tmp_records: Path) -> None:
    for n in range(5):
        write_dated(tmp_records, n)
    app = make_app(SEEDS_DIR=tmp_records)
    state = app.extensions["feedsvc"]
    stop = threading.Event()
    failures: list[str] = []
    served: list[int] = []

    def hammer() -> None:
        client = app.test_client()
        while not stop.is_set():
            response = client.get("/feeds/all.atom")
            served.append(1)
            try:
                check_consistent(response)
            except Exception as exc:  # collected, reported below
                failures.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for n in range(5, 10):
            write_dated(tmp_records, n)
            seen = len(served)
            assert state.reload()
            # Requests must be answered between reloads, however fast a reload is.
            wait_until(lambda seen=seen: len(served) >= seen + 2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert not failures, failures[:3]
    assert len(served) >= 5


def check_consistent(response) -> None:  # type: ignore[no-untyped-def]
    """Body, ETag and Last-Modified belong to one version, and that version is whole: it holds
    records 0..N-1 (each version in the test adds the next record)."""
    assert response.status_code == 200
    parse_xml(response.data)
    assert response.headers["ETag"] == f'"{strong_etag(response.data)}"'
    entries = read_feed(response.data).entries
    titles = {entry.title for entry in entries}
    assert titles == {f"Title {n}" for n in range(len(entries))}, titles
    last_modified = PAST + timedelta(hours=len(entries) - 1)
    assert parsedate_to_datetime(response.headers["Last-Modified"]) == last_modified


def test_a_reload_reports_only_the_files_it_read(tmp_records: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    (tmp_records / "old-broken.md").write_text("---\ntitle: [x\n---\n", encoding="utf-8")
    write(tmp_records, "a.md", "A")
    loader = CollectionLoader(tmp_records)
    loader.load()
    (tmp_records / "new-broken.md").write_text("---\nexcerpt: no title\n---\n", encoding="utf-8")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="feedsvc.repository"):
        reloaded = loader.reload()
    assert reloaded is not None
    assert {problem.path for problem in reloaded.rejections} == {"old-broken.md", "new-broken.md"}
    reported = [record.getMessage() for record in caplog.records]
    assert reported and all(message.startswith("rejected new-broken.md") for message in reported)


def test_a_reload_of_named_paths_reads_only_them(tmp_records: Path) -> None:
    for name in ("a.md", "b.md", "c.md"):
        write(tmp_records, name, name[0].upper())
    loader = CollectionLoader(tmp_records)
    loader.load()
    write(tmp_records, "a.md", "A2")
    write(tmp_records, "c.md", "C2")  # changed, but not named: left for a later check
    (tmp_records / "b.md").unlink()
    write(tmp_records, "d.md", "D")
    (tmp_records / ".hidden.md").write_text("not YAML: [", encoding="utf-8")
    named = [str(tmp_records / n) for n in ("a.md", "b.md", "d.md", ".hidden.md", "x.json")]
    reloaded = loader.reload(named)
    assert reloaded is not None and titles(reloaded) == {"A2", "C", "D"}
    assert (loader.stats.checked, loader.stats.parsed) == (2, 2)
    assert not reloaded.rejections
    assert loader.reload([str(tmp_records / "b.md")]) is None  # already gone: nothing changed
    full = loader.reload()
    assert full is not None and titles(full) == {"A2", "C2", "D"}
    assert loader.stats.checked == 3


def test_a_named_folder_means_a_full_check(tmp_records: Path) -> None:
    write(tmp_records, "a.md", "A")
    loader = CollectionLoader(tmp_records)
    loader.load()
    (tmp_records / "new").mkdir()
    write(tmp_records / "new", "b.md", "B")
    reloaded = loader.reload([str(tmp_records / "new")])
    assert reloaded is not None and titles(reloaded) == {"A", "B"}
    for file in (tmp_records / "new").iterdir():
        file.unlink()
    (tmp_records / "new").rmdir()
    removed = loader.reload([str(tmp_records / "new")])  # gone: it held records
    assert removed is not None and titles(removed) == {"A"}


def next_batches(watch: FolderWatch) -> queue.Queue[object]:
    """Iterate `watch` in a thread; each batch lands in the queue (the test reads with a
    time-out, so a watch that never reports fails instead of hanging)."""
    batches: queue.Queue[object] = queue.Queue()
    thread = threading.Thread(target=lambda: [batches.put(b) for b in watch], daemon=True)
    thread.start()
    return batches


def test_filesystem_events_name_the_changed_files_without_polling(tmp_records: Path) -> None:
    watch = FolderWatch(tmp_records, interval=60)  # a poll would come only after a minute
    batches = next_batches(watch)
    try:
        write(tmp_records, "a.md", "A")
        assert batches.get(timeout=10) is None  # the watch is in place: check once, catch up
        assert watch.mode == "events"
        write(tmp_records, "b.md", "B")
        batch = batches.get(timeout=10)
        assert isinstance(batch, frozenset)
        assert {Path(path).name for path in batch} == {"b.md"}
    finally:
        watch.stop()


def test_without_events_the_folder_is_polled(tmp_records: Path) -> None:
    watch = FolderWatch(tmp_records, interval=0.05, events=False)
    batches = next_batches(watch)
    try:
        assert batches.get(timeout=10) is None and batches.get(timeout=10) is None
        assert watch.mode == "polling"
    finally:
        watch.stop()


def test_served_collection_follows_events_and_falls_back_to_polling(
    tmp_records: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    for name in ("a.md", "b.md", "c.md"):
        write(tmp_records, name, name[0].upper())
    # Events: the reload checks only the files named (the last one, or with a late event of
    # the first in the same batch); polling checks all five.
    for extra, mode, most in (({}, "events", 2), ({"RELOAD_WATCH": "poll"}, "polling", 5)):
        app = make_app(SEEDS_DIR=tmp_records, RELOAD_INTERVAL=0.2, **extra)
        state = app.extensions["feedsvc"]
        client = app.test_client()
        try:
            client.get("/healthz")  # starts this process's watch
            wait_until(lambda: client.get("/healthz").json["reload_watch"] == mode)  # noqa: B023
            # The watch's first check (it catches up once it is in place) may come after a
            # write on a busy machine, and reads every file: a first record lets it pass.
            first = f"First under {mode}"
            write(tmp_records, f"{mode}-first.md", first)
            wait_until(lambda: first in titles(state.collection))  # noqa: B023
            title = f"Added under {mode}"
            write(tmp_records, f"{mode}.md", title)
            wait_until(lambda: title in titles(state.collection))  # noqa: B023
            checked = state.loader.stats.checked
            assert checked <= most if mode == "events" else checked == most
            for name in (f"{mode}.md", f"{mode}-first.md"):
                (tmp_records / name).unlink()
            wait_until(lambda: title not in titles(state.collection))  # noqa: B023
        finally:
            state.watch.stop()


def test_when_watching_fails_it_polls(tmp_records: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(*args: object) -> Iterator[None]:
        raise OSError("inotify watch limit reached")
        yield None

    monkeypatch.setattr(watching, "_event_changes", broken)
    watch = FolderWatch(tmp_records, interval=0.05)
    batches = next_batches(watch)
    try:
        assert batches.get(timeout=10) is None
        assert watch.mode == "polling"
    finally:
        watch.stop()


# Deploys replace the seeds folder whole. Each function takes the folder served (`seeds`) and the
# folder holding the next release (`release`), and makes `seeds` name the release.
def rename_swap(seeds: Path, release: Path) -> None:
    seeds.rename(seeds.with_name("old"))  # mv current old && mv next current
    release.rename(seeds)


def link_switch(seeds: Path, release: Path) -> None:
    staged = seeds.with_name("current.tmp")  # ln -sfn next current.tmp && mv -T current.tmp current
    staged.symlink_to(release.name)
    staged.replace(seeds)


def delete_and_recreate(seeds: Path, release: Path) -> None:
    """rm -rf current && mkdir current && cp -p next/* current/, trying for the harder case:
    the new folder on the old one's inode (ext4 reuses it most times), so that nothing but the
    deletion's own event tells the two apart."""
    inode = seeds.stat().st_ino
    shutil.rmtree(seeds)
    seeds.mkdir()
    for _ in range(20):
        if seeds.stat().st_ino == inode:
            break
        seeds.rmdir()
        seeds.mkdir()
    for file in release.iterdir():
        shutil.copy2(file, seeds / file.name)


DEPLOYS = [rename_swap, link_switch, delete_and_recreate]


def release_folders(base: Path, deploy: Callable[[Path, Path], None]) -> tuple[Path, Path, Path]:
    """(seeds path served, the folder it names now, the next release): the link switch serves
    `base/current`, a link to a release; the others a folder of that name."""
    first, release = base / "r1", base / "r2"
    first.mkdir()
    release.mkdir()
    seeds = base / "current"
    if deploy is link_switch:
        seeds.symlink_to(first.name)
    else:
        first.rename(seeds)
        first = seeds
    return seeds, first, release


def same_stat_other_content(old: Path, new: Path) -> None:
    """Give `new` the size and modification time of `old` (as `cp -p` or rsync may), so that
    only reading it tells them apart."""
    assert old.stat().st_size == new.stat().st_size
    stat = old.stat()
    os.utime(new, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("deploy", DEPLOYS, ids=lambda deploy: deploy.__name__)
def test_a_reload_after_a_deploy_reads_the_whole_new_folder(
    tmp_path: Path, deploy: Callable[[Path, Path], None]
) -> None:
    seeds, first, release = release_folders(tmp_path, deploy)
    write(first, "a.md", "Old A")
    write(first, "b.md", "Old B")
    write(release, "a.md", "New A")
    write(release, "c.md", "New C")
    same_stat_other_content(first / "a.md", release / "a.md")
    loader = CollectionLoader(seeds)
    loader.load()
    deploy(seeds, release)
    # An event from the old folder names a path the new folder holds too. A folder deleted is
    # named by its own event: the new one may get its inode, and nothing else tells them apart.
    named = [str(seeds / "b.md")]
    if deploy is delete_and_recreate:
        named.append(str(seeds.absolute()))
    reloaded = loader.reload(named)
    assert reloaded is not None and titles(reloaded) == {"New A", "New C"}
    assert loader.reload() is None


def test_while_the_folder_is_gone_the_last_version_is_served(tmp_records: Path) -> None:
    write(tmp_records, "a.md", "A")
    loader = CollectionLoader(tmp_records)
    loaded = loader.load()
    shutil.rmtree(tmp_records)
    assert loader.reload() is None and loader.reload([str(tmp_records / "a.md")]) is None
    tmp_records.mkdir()
    write(tmp_records, "b.md", "B")
    back = loader.reload()
    assert back is not None and titles(back) == {"B"} and back.version != loaded.version


@pytest.mark.parametrize("deploy", DEPLOYS, ids=lambda deploy: deploy.__name__)
def test_live_reload_follows_a_deploy_that_replaces_the_folder(
    tmp_path: Path, deploy: Callable[[Path, Path], None]
) -> None:
    seeds, first, release = release_folders(tmp_path, deploy)
    write(first, "a.md", "Old A")
    write(release, "a.md", "New A")
    write(release, "b.md", "New B")
    same_stat_other_content(first / "a.md", release / "a.md")
    app = make_app(SEEDS_DIR=seeds, RELOAD_INTERVAL=0.2)
    state = app.extensions["feedsvc"]
    client = app.test_client()

    def served() -> set[str]:
        """The titles served, once /healthz has counted the same records. The watch's thread may
        swap in a new version while /healthz answers: then both are read again."""
        while True:
            collection = state.collection
            health = client.get("/healthz").json
            if state.collection is collection:
                assert health["records"] == len(collection.records)
                return titles(collection)

    try:
        client.get("/healthz")  # starts the watch
        wait_until(lambda: client.get("/healthz").json["reload_watch"] == "events")
        deploy(seeds, release)
        wait_until(lambda: served() == {"New A", "New B"})
        wait_until(lambda: client.get("/healthz").json["reload_watch"] == "events")
        # The new folder is watched: an edit there is read by its own event (the first ones may
        # come before the new watch is in place, and be caught up on by a check of every file)...
        edits = itertools.count()

        def an_edit_is_read_by_its_event() -> bool:
            title = f"Later {next(edits)}"
            write(seeds, f"{title}.md", title)
            wait_until(lambda: title in served())
            return state.loader.stats.checked == 1

        wait_until(an_edit_is_read_by_its_event)
        # ... and the old folder, if it is still there, is not: its edit is never read.
        old = tmp_path / ("r1" if deploy is link_switch else "old")
        if old.exists():
            write(old, "b.md", "Edit in the old folder")
            write(seeds, "d.md", "Later D")
            wait_until(lambda: "Later D" in served())
            assert "Edit in the old folder" not in served()
    finally:
        state.watch.stop()


def test_while_the_folder_is_gone_the_watch_polls_and_then_watches_it_again(
    tmp_records: Path,
) -> None:
    write(tmp_records, "a.md", "A")
    app = make_app(SEEDS_DIR=tmp_records, RELOAD_INTERVAL=0.1)
    state = app.extensions["feedsvc"]
    client = app.test_client()
    try:
        client.get("/healthz")
        wait_until(lambda: client.get("/healthz").json["reload_watch"] == "events")
        shutil.rmtree(tmp_records)
        wait_until(lambda: client.get("/healthz").json["reload_watch"] == "polling")
        assert titles(state.collection) == {"A"}
        tmp_records.mkdir()
        write(tmp_records, "b.md", "B")
        wait_until(lambda: titles(state.collection) == {"B"})
        wait_until(lambda: client.get("/healthz").json["reload_watch"] == "events")
        write(tmp_records, "c.md", "C")
        wait_until(lambda: titles(state.collection) == {"B", "C"})
    finally:
        state.watch.stop()


def date_files(folder: Path, when: datetime) -> None:
    """Give every file in `folder`, and the folder, the modification time `when`."""
    stamp = when.timestamp()
    for path in [*folder.iterdir(), folder]:
        os.utime(path, (stamp, stamp))


def last_modified(response) -> datetime:  # type: ignore[no-untyped-def]
    return parsedate_to_datetime(response.headers["Last-Modified"])


# Feeds and pages the edits below change.
CHANGED_URLS = ["/feeds/all.atom", "/feeds/all.json", "/feeds/topics/ai.rss", "/"]


def test_editing_an_older_record_moves_etag_and_last_modified(tmp_records: Path) -> None:
    write(tmp_records, "old.md", "Older", day=1)
    write(tmp_records, "new.md", "Newer", day=5)
    date_files(tmp_records, PAST)
    app = make_app(SEEDS_DIR=tmp_records)
    client = app.test_client()
    before = {url: client.get(url) for url in CHANGED_URLS}
    assert {last_modified(response) for response in before.values()} == {PAST}

    write(tmp_records, "old.md", "Older, edited", day=1)
    assert app.extensions["feedsvc"].reload()
    for url, old in before.items():
        for _ in range(2):  # rendered through Flask, then from the cache before Flask
            response = client.get(url, headers={"If-Modified-Since": old.headers["Last-Modified"]})
            assert response.status_code == 200, url
            assert response.headers["ETag"] != old.headers["ETag"], url
            assert last_modified(response) > last_modified(old), url
        again = client.get(url, headers={"If-Modified-Since": response.headers["Last-Modified"]})
        assert again.status_code == 304, url


def test_deleting_the_newest_record_does_not_move_last_modified_back(tmp_records: Path) -> None:
    write(tmp_records, "old.md", "Older", day=1)
    write(tmp_records, "new.md", "Newer", day=5)
    date_files(tmp_records, datetime(2021, 6, 1, tzinfo=UTC))  # files older than the entries
    app = make_app(SEEDS_DIR=tmp_records)
    client = app.test_client()
    before = {url: client.get(url) for url in [*CHANGED_URLS, "/feeds.opml"]}
    assert last_modified(before["/feeds/all.atom"]) == datetime(2022, 1, 5, tzinfo=UTC)

    (tmp_records / "new.md").unlink()
    state = app.extensions["feedsvc"]
    assert state.reload([str(tmp_records / "new.md")])  # as its event names it: no folder scan
    assert state.collection.modified == CollectionLoader(tmp_records).load().modified
    for url, old in before.items():
        response = client.get(url, headers={"If-Modified-Since": old.headers["Last-Modified"]})
        assert response.status_code == 200, url
        assert last_modified(response) > last_modified(old), url


def test_a_future_dated_record_does_not_push_last_modified_past_date(
    tmp_records: Path, tmp_path: Path
) -> None:
    write(tmp_records, "now.md", "Today", day=1)
    future = write(tmp_records, "future.md", "Far ahead", day=2)
    future.write_text(
        future.read_text(encoding="utf-8").replace("2022-01-02", "9023-12-20"), encoding="utf-8"
    )
    with running_feedsvc(tmp_records, tmp_path / "server.log") as base:
        for url in ["/", "/feeds.opml", "/feeds/topics/ai.json", "/feeds/all.atom"]:
            answers = [fetch(base + url) for _ in range(2)]  # a first render, then a cache hit
            for status, headers, _ in answers:
                assert status == 200
                assert parsedate_to_datetime(headers["Last-Modified"]) <= parsedate_to_datetime(
                    headers["Date"]
                ), url
            assert answers[0][1]["Last-Modified"] == answers[1][1]["Last-Modified"]
        assert "Far ahead" in {entry.title for entry in read_feed(answers[0][2]).entries}


def test_the_version_is_a_function_of_the_files_alone(tmp_records: Path) -> None:
    """A worker that reloaded after an edit and one started after it (a killed worker's
    replacement) serve the same files: they must name the same version."""
    for name in ("a.md", "b.md", "c.md"):
        write(tmp_records, name, name[0].upper())
    running = make_app(SEEDS_DIR=tmp_records)
    edited = write(tmp_records, "a.md", "A edited")
    assert running.extensions["feedsvc"].reload([str(edited)])  # as its event names it
    started_later = make_app(SEEDS_DIR=tmp_records)
    versions = [
        app.test_client().get("/healthz").json["version"] for app in (running, started_later)
    ]
    assert versions[0] == versions[1]


def test_the_version_follows_every_content_and_name_and_comes_back_with_them(
    tmp_records: Path,
) -> None:
    for name in ("a.md", "b.md"):
        write(tmp_records, name, name[0].upper())
    loader = CollectionLoader(tmp_records)
    first = loader.load().version
    edited = write(tmp_records, "a.md", "A edited")
    versions = [first, _reloaded(loader, edited).version]
    (tmp_records / "b.md").rename(tmp_records / "c.md")
    versions.append(_reloaded(loader, tmp_records / "b.md", tmp_records / "c.md").version)
    assert len(set(versions)) == 3
    assert versions[-1] == CollectionLoader(tmp_records).load().version
    (tmp_records / "c.md").rename(tmp_records / "b.md")
    restored = write(tmp_records, "a.md", "A")
    again = _reloaded(loader, restored, tmp_records / "b.md", tmp_records / "c.md")
    assert again.version == first


def _reloaded(loader: CollectionLoader, *paths: Path) -> Collection:
    """The collection after a reload of `paths`, as their events name them."""
    collection = loader.reload([str(path) for path in paths])
    assert collection is not None
    return collection


def test_removing_the_last_record_file_leaves_an_empty_collection(
    tmp_records: Path, caplog: pytest.LogCaptureFixture
) -> None:
    only = write(tmp_records, "a.md", "A")
    loader = CollectionLoader(tmp_records)
    loader.load()
    only.unlink()
    for reload in (lambda: loader.reload([str(only)]), loader.reload):
        emptied = reload()
        assert emptied is not None and emptied.records == () and not emptied.topics
        assert comparable(emptied) == comparable(CollectionLoader(tmp_records).load())
        write(tmp_records, "a.md", "A")
        assert loader.reload() is not None
        only.unlink()
    assert "updating the indexes" not in caplog.text


def test_a_duplicate_made_undone_and_made_again_by_reloads_is_noted_each_time(
    tmp_records: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The "merged" note of a second file with an article's URL follows its file's changes."""

    def at(name: str, slug: str) -> Path:
        """A record file at `name` for the article `slug`, its time moved on."""
        path = write(tmp_records, name, name)
        path.write_text(path.read_text(encoding="utf-8").replace(f"/{name}\n", f"/{slug}\n"))
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
        return path

    at("a.md", "same")
    loader = CollectionLoader(tmp_records)
    loader.load()
    for slug, notes in [("same", ["b.md"]), ("other", []), ("same", ["b.md"]), (None, [])]:
        if slug is None:
            (tmp_records / "b.md").unlink()
            changed = tmp_records / "b.md"
        else:
            changed = at("b.md", slug)
        collection = _reloaded(loader, changed)
        assert [problem.path for problem in collection.warnings] == notes, slug
        assert comparable(collection) == comparable(CollectionLoader(tmp_records).load()), slug
    assert "updating the indexes" not in caplog.text


# Incremental reloads against loads from nothing: random files (duplicated article URLs, equal
# dates, warnings, broken files, two providers' names and images, a subfolder), changed,
# removed and renamed, picked up by reloads named as events name them or by a folder scan.
NAMES = ["a.md", "b.md", "c.md", "d.md", "sub/e.md", "sub/f.md"]
BROKEN = "---\ntitle: [never closed\n---\n"


@st.composite
def record_texts(draw: st.DrawFn) -> str:
    """A good record's text (every field drawn from a few values, so that they collide)."""
    topics = draw(st.lists(st.sampled_from(["AI", "Ai", "Robots", "Space", "!!!"]), max_size=3))
    domain = draw(st.sampled_from(["a.example", "b.example", None]))
    lines = [
        f"title: {draw(st.sampled_from(['Alpha', 'Beta', 'Gamma']))}",
        f"publishedDateTime: 2022-01-0{draw(st.integers(1, 3))}T00:00:00Z",
        f"webUrl: https://news.example/{draw(st.integers(0, 4))}",
        f"topics: [{', '.join(repr(topic) for topic in topics)}]",
    ]
    if domain is not None:
        name = draw(st.sampled_from(["News", "Daily"]))
        images = "[{url: https://img.example/logo.png}]" if draw(st.booleans()) else "[]"
        lines.append(f"provider: {{name: {name}, domain: {domain}, images: {images}}}")
    return "---\n" + "\n".join(lines) + "\n---\n"


# A step: ("write", name, text or BROKEN, a good text), ("remove", name, "", ""),
# ("rename", name, new name, ""), or ("reload", "event" or "scan", "", "").
steps = st.one_of(
    st.tuples(
        st.just("write"),
        st.sampled_from(NAMES),
        st.one_of(record_texts(), st.just(BROKEN)),
        record_texts(),
    ),
    st.tuples(st.just("remove"), st.sampled_from(NAMES), st.just(""), st.just("")),
    st.tuples(st.just("rename"), st.sampled_from(NAMES), st.sampled_from(NAMES), st.just("")),
    st.tuples(st.just("reload"), st.sampled_from(["event", "scan"]), st.just(""), st.just("")),
)


def comparable(collection):  # type: ignore[no-untyped-def]
    """Everything a collection holds but the time it was made, with the indexes' order."""
    return (
        collection.records,
        list(collection.topics.items()),
        list(collection.providers.items()),
        collection.rejections,
        collection.warnings,
        collection.version,
        collection.modified,
        collection.skipped,
    )


class Folder:
    """A folder of records changed by the steps, remembering the paths events would name and
    which files hold a good record. A broken file never takes the place of a good one that the
    loader has seen: its last good version would stay, which a load from nothing cannot know."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.good: dict[str, bool] = {}  # name -> whether it holds a good record
        self.seen: set[str] = set()  # the names that held a good record at the last reload
        self.named: set[str] = set()
        self.ticks = itertools.count()

    def reloaded(self) -> None:
        self.seen = {name for name, good in self.good.items() if good}
        self.named = set()

    def write(self, name: str, text: str, good_text: str) -> None:
        if text == BROKEN and (self.good.get(name) or name in self.seen):
            text = good_text
        path = self.root / name
        if not path.parent.exists():
            path.parent.mkdir()
            self.named.add(str(path.parent))  # a new folder: events name it, and a scan follows
            self.date_folder(self.root)
        path.write_text(text, encoding="utf-8")
        # Every write a time of its own, some older and some newer than the folders' times.
        tick = next(self.ticks)
        when = (1_600_000_000 if tick % 2 else 2_000_000_000) + tick
        os.utime(path, (when, when))
        self.good[name] = text != BROKEN
        self.named.add(str(path))
        self.date_folder(path.parent)

    def date_folder(self, folder: Path) -> None:
        """Time passes between steps: a folder whose entries changed gets a later time."""
        when = 1_800_000_000 + next(self.ticks)
        os.utime(folder, (when, when))

    def remove(self, name: str) -> None:
        if name in self.good:
            (self.root / name).unlink()
            del self.good[name]
            self.named.add(str(self.root / name))
            self.date_folder((self.root / name).parent)

    def rename(self, name: str, new_name: str) -> None:
        if name not in self.good or name == new_name or new_name in self.good:
            return
        if not self.good[name] and new_name in self.seen:
            return
        target = self.root / new_name
        if not target.parent.exists():
            target.parent.mkdir()
            self.named.add(str(target.parent))
            self.date_folder(self.root)
        (self.root / name).rename(target)
        self.good[new_name] = self.good.pop(name)
        self.named |= {str(self.root / name), str(target)}
        self.date_folder((self.root / name).parent)
        self.date_folder(target.parent)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.lists(st.tuples(st.sampled_from(NAMES), record_texts())), changes=st.lists(steps))
def test_reloads_give_what_a_load_from_nothing_gives(initial, changes) -> None:  # type: ignore[no-untyped-def]
    failures = Failures()
    logging.getLogger("feedsvc.repository").addHandler(failures)
    try:
        check_reloads(initial, changes)
    finally:
        logging.getLogger("feedsvc.repository").removeHandler(failures)
    assert not failures.seen  # the indexes were updated, not made again after a failed update


class Failures(logging.Handler):
    """Errors logged (a failed update of the indexes is logged, and they are made again)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def check_reloads(initial, changes) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as temporary:
        folder = Folder(Path(temporary))
        for name, text in initial:
            folder.write(name, text, text)
        loader = CollectionLoader(folder.root)
        collection = loader.load()
        folder.reloaded()
        for action, first, second, third in [*changes, ("reload", "event", "", "")]:
            if action == "write":
                folder.write(first, second, third)
            elif action == "remove":
                folder.remove(first)
            elif action == "rename":
                folder.rename(first, second)
            else:
                named = frozenset(folder.named) if first == "event" else None
                reloaded = loader.reload(named)
                if reloaded is not None:
                    assert_changes_lead_from(collection, reloaded)
                    collection = reloaded
                folder.reloaded()
                assert comparable(collection) == comparable(CollectionLoader(folder.root).load())
                # Memory: the copies of an entry are kept only while several files hold it.
                assert all(len(copies) > 1 for copies in loader.indexes.copies.values())


def assert_changes_lead_from(old: Collection, new: Collection) -> None:
    """`new.changes` takes `old`'s records to `new`'s: exactly the records that went and came."""
    assert new.changes is not None and new.changes.base is old.records
    before = {id(record) for record in old.records}
    after = {id(record) for record in new.records}
    assert sorted(map(id, new.changes.removed)) == sorted(before - after)
    assert sorted(map(id, new.changes.added)) == sorted(after - before)


def test_a_reload_keeps_the_objects_of_what_did_not_change(tmp_records: Path) -> None:
    write(tmp_records, "a.md", "A", day=1, topic="AI")
    write(tmp_records, "b.md", "B", day=2, domain="b.example", topic="Robots")
    write(tmp_records, "c.md", "C", day=3, topic="AI")
    loader = CollectionLoader(tmp_records)
    before = loader.load()
    edited = write(tmp_records, "c.md", "C edited", day=3, topic="AI")
    after = loader.reload([str(edited)])
    assert after is not None
    kept = {record.path: record for record in before.records if record.path != "c.md"}
    assert all(kept[record.path] is record for record in after.records if record.path in kept)
    assert after.topics["robots"] is before.topics["robots"]
    assert after.providers["b-example"] is before.providers["b-example"]
    assert after.topics["ai"] is not before.topics["ai"]


def test_a_record_file_added_and_removed_between_reloads_moves_the_time(tmp_records: Path) -> None:
    """No record changed, but the folder did: the collection's time is its files' time."""
    write(tmp_records, "a.md", "A")
    date_files(tmp_records, PAST)
    loader = CollectionLoader(tmp_records)
    assert loader.load().modified == PAST
    passing = write(tmp_records, "passing.md", "Here and gone")
    passing.unlink()
    reloaded = loader.reload([str(passing)])
    assert reloaded is not None and reloaded.modified > PAST
    assert reloaded.modified == CollectionLoader(tmp_records).load().modified
    assert loader.reload([str(passing)]) is None


def test_a_failed_update_of_the_indexes_makes_them_again(
    tmp_records: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_records, "a.md", "A")
    loader = CollectionLoader(tmp_records)
    loader.load()

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the update")

    monkeypatch.setattr(repository.Indexes, "update", broken)
    added = write(tmp_records, "b.md", "B")
    reloaded = loader.reload([str(added)])
    assert reloaded is not None and titles(reloaded) == {"A", "B"}
    assert "updating the indexes of" in caplog.text
    monkeypatch.undo()
    write(tmp_records, "a.md", "A again")
    again = loader.reload([str(tmp_records / "a.md")])
    assert again is not None and titles(again) == {"A again", "B"}
