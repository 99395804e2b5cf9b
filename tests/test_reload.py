"""Live reload: added, changed, removed and broken files, atomic swaps, and ETags that change only
for feeds whose content changed."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from feedsvc.cache import strong_etag
from feedsvc.repository import CollectionLoader
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
