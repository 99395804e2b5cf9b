"""Live reload: added, changed, removed and broken files, atomic swaps, and ETags that change only
for feeds whose content changed."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from feedsvc import repository
from feedsvc.cache import strong_etag
from feedsvc.repository import CollectionLoader, FolderWatch
from tests.conftest import make_app, parse_xml, read_feed

RECORD = """---
title: {title}
publishedDateTime: 2022-01-{day:02d}T00:00:00Z
webUrl: https://{domain}/{slug}
provider: {{name: {domain}, domain: {domain}}}
topics: [{topic}]
---
"""


def write(
    folder: Path, name: str, title: str, day: int = 1, domain: str = "a.example", topic: str = "AI"
) -> Path:
    path = folder / name
    text = RECORD.format(title=title, day=day, slug=name, domain=domain, topic=topic)
    path.write_text(text, encoding="utf-8")
    stat = path.stat()  # make sure the change is visible even within one mtime tick
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    return path


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


def test_requests_during_reloads_always_see_one_whole_version(tmp_records: Path) -> None:
    for n in range(5):
        write(tmp_records, f"{n}.md", f"Title {n}", day=n + 1)
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
            write(tmp_records, f"{n}.md", f"Title {n}", day=n + 1)
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
    newest = max(datetime(*entry.updated_parsed[:6], tzinfo=UTC) for entry in entries)
    assert parsedate_to_datetime(response.headers["Last-Modified"]) == newest


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
    for settings, mode, checked in (({}, "events", 1), ({"RELOAD_WATCH": "poll"}, "polling", 4)):
        app = make_app(SEEDS_DIR=tmp_records, RELOAD_INTERVAL=0.2, **settings)
        state = app.extensions["feedsvc"]
        client = app.test_client()
        try:
            client.get("/healthz")  # starts this process's watch
            wait_until(lambda: client.get("/healthz").json["reload_watch"] == mode)  # noqa: B023
            title = f"Added under {mode}"
            write(tmp_records, f"{mode}.md", title)
            wait_until(lambda: title in titles(state.collection))  # noqa: B023
            assert state.loader.stats.checked == checked  # events: only the file they named
            (tmp_records / f"{mode}.md").unlink()
            wait_until(lambda: title not in titles(state.collection))  # noqa: B023
        finally:
            state.watch.stop()


def test_when_watching_fails_it_polls(tmp_records: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def broken(*args: object) -> Iterator[None]:
        raise OSError("inotify watch limit reached")
        yield None

    monkeypatch.setattr(repository, "_event_changes", broken)
    watch = FolderWatch(tmp_records, interval=0.05)
    batches = next_batches(watch)
    try:
        assert batches.get(timeout=10) is None
        assert watch.mode == "polling"
    finally:
        watch.stop()
