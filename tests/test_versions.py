"""Versions and reloads: a reload renders again only what it changed, and what it keeps is what
a fresh start would serve, byte for byte."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.build import app_urls
from feedsvc.versions import Snapshot
from tests.conftest import make_app
from tests.test_metrics import samples

TOPICS = ["AI", "Robotics", "Computer Vision"]
PROVIDERS = ["a.example", "b.example", "c.example"]


def record_text(title: str, day: int, topics: list[str], provider: str, index: int) -> str:
    topic_lines = "".join(f"  - {topic}\n" for topic in topics)
    return (
        "---\n"
        f"title: {title!r}\n"
        f"excerpt: 'About {title}'\n"
        f"publishedDateTime: 2024-03-{day:02d}T{index % 24:02d}:00:00Z\n"
        f"webUrl: https://{provider}/article/{index}\n"
        f"provider:\n  name: Provider {provider}\n  domain: {provider}\n"
        f"topics:\n{topic_lines}" + ("" if topics else "  []\n") + "---\n"
    )


class Folder:
    """A collection folder that tests change the way publishers do; every write gets a new
    modification time, so that a scan sees it whatever the clock's resolution."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.clock = 1_700_000_000 * 10**9

    def write(self, name: str, text: str) -> None:
        path = self.root / name
        path.write_text(text, encoding="utf-8")
        self.clock += 10**9
        os.utime(path, ns=(self.clock, self.clock))


def served(app: Flask, urls: list[str]) -> dict[tuple[str, str], tuple[bytes, str | None]]:
    """Every URL's body and ETag, uncompressed and gzip-compressed."""
    client = app.test_client()
    answers = {}
    for url in urls:
        for coding in ("identity", "gzip"):
            with client.get(url, headers={"Accept-Encoding": coding}) as response:
                assert response.status_code == 200, url
                answers[url, coding] = (response.data, response.headers.get("ETag"))
    return answers


def app_on(folder: Path, **config: Any) -> Flask:
    return make_app(SEEDS_DIR=folder, FEED_SIZE=2, ASSET_BASE_URL=None, **config)


operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "change", "remove", "rename"]),
        st.integers(0, 7),  # which record
        st.integers(1, 28),  # its new day
        st.lists(st.sampled_from(TOPICS), max_size=2, unique=True),
        st.sampled_from(PROVIDERS),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(operations, min_size=1, max_size=3))
def test_after_any_changes_every_url_serves_what_a_fresh_start_serves(
    batches: list[list[tuple[str, int, int, list[str], str]]],
) -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Folder(Path(name))
        for index in range(4):
            folder.write(
                f"r{index}.md",
                record_text(
                    f"Story {index}",
                    index + 1,
                    TOPICS[: index % 3 + 1],
                    PROVIDERS[index % 3],
                    index,
                ),
            )
        app = app_on(folder.root)
        served(app, app_urls(app))  # every URL rendered and cached
        for batch in batches:
            for kind, index, day, topics, provider in batch:
                path = folder.root / f"r{index}.md"
                if kind in ("add", "change"):
                    folder.write(
                        path.name,
                        record_text(f"Story {index} v{day}", day, topics, provider, index),
                    )
                elif kind == "remove":
                    path.unlink(missing_ok=True)
                elif path.exists():
                    path.rename(folder.root / f"r{index}-renamed.md")
            app.extensions["feedsvc"].reload()
            fresh = app_on(folder.root)
            urls = app_urls(fresh)
            assert app_urls(app) == urls
            assert served(app, urls) == served(fresh, urls)


def test_a_reload_renders_again_only_the_documents_it_changed(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    for index in range(6):
        folder.write(
            f"r{index}.md",
            record_text(
                f"Story {index}", index + 1, [TOPICS[index % 3]], PROVIDERS[index % 3], index
            ),
        )
    app = app_on(tmp_path)
    urls = app_urls(app)
    client = app.test_client()
    urls = [url for url in urls if "/static/" not in url]
    before = {url: client.get(url) for url in urls}
    state = app.extensions["feedsvc"]
    # An older record of topic AI and provider a.example changes its title.
    folder.write("r0.md", record_text("Story 0, corrected", 1, [TOPICS[0]], PROVIDERS[0], 0))
    carried, hits, misses = (
        state.renders.stats.carried,
        state.renders.stats.hits,
        state.renders.stats.misses,
    )
    assert state.reload()
    after = {url: client.get(url) for url in urls}
    changed = {url for url in urls if after[url].data != before[url].data}
    kept = {url for url in urls if after[url].data == before[url].data}
    assert any("/providers/b-example" in url for url in kept)
    assert any("/topics/ai" in url for url in changed)
    for url in kept:
        assert after[url].headers["ETag"] == before[url].headers["ETag"]
        assert after[url].headers["Last-Modified"] == before[url].headers["Last-Modified"]
    # The reload kept them before serving the new version: each is a plain cache hit, and only
    # the changed ones were rendered again.
    assert state.renders.stats.carried - carried == len(kept)
    assert state.renders.stats.hits - hits == len(kept)
    assert state.renders.stats.misses - misses == len(changed)
    health = client.get("/healthz").get_json()
    assert health["render_cache"]["carried"] == state.renders.stats.carried


def test_a_render_of_a_document_a_reload_changed_is_not_served_for_the_new_version(
    tmp_path: Path,
) -> None:
    """While the reload checks what it can keep, requests of the previous version still get
    its renders, and the new version never gets a render it did not check."""
    folder = Folder(tmp_path)
    folder.write("r0.md", record_text("Story 0", 1, [TOPICS[0]], PROVIDERS[0], 0))
    app = app_on(tmp_path)
    client = app.test_client()
    state = app.extensions["feedsvc"]
    old = client.get("/feeds/topics/ai.atom")
    old_version = state.snapshot.number
    folder.write("r0.md", record_text("Story 0, corrected", 1, [TOPICS[0]], PROVIDERS[0], 0))
    assert state.reload()
    key = ("topics", "ai", "atom", 1, "http://feeds.test")
    assert state.renders.get(key, state.snapshot.number) is None
    assert state.renders.get(key, old_version).body == old.data
    assert b"Story 0, corrected" in client.get("/feeds/topics/ai.atom").data


# -- Versions.reload and its preparers, case by case (mutation testing, tests/README.md) --------


def test_the_render_budget_is_split_between_documents_searches_and_entries() -> None:
    """README, HTTP caching: half for documents, an eighth of that half apart for searches,
    half for entries; whole bytes, rounded down."""
    state = make_app(RENDER_CACHE_BYTES=1_000_003).extensions["feedsvc"]
    bounds = (state.renders.max_bytes, state.custom_renders.max_bytes, state.fragments.max_bytes)
    assert bounds == (437_501, 62_500, 500_001)
    assert all(type(bound) is int for bound in bounds)


def test_a_reload_that_finds_no_change_keeps_the_version_and_one_that_does_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = Folder(tmp_path)
    folder.write("r0.md", record_text("Story 0", 1, [TOPICS[0]], PROVIDERS[0], 0))
    app = app_on(tmp_path)
    client = app.test_client()
    state = app.extensions["feedsvc"]
    first = state.snapshot
    assert first.number == 1 and state.reloads == 0
    assert state.reload() is False
    assert state.snapshot is first and client.get("/healthz").get_json()["reloads"] == 0
    folder.write("r1.md", record_text("Story 1", 2, [TOPICS[1]], PROVIDERS[1], 1))
    caplog.set_level(logging.INFO, logger="feedsvc.load")
    # The reload's time, as its log line gives it, covers its preparers: one that takes 20 ms.
    state.preparers.append(lambda _: time.sleep(0.02))
    started = time.perf_counter()
    assert state.reload() is True
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert state.snapshot.number == 2 and len(state.collection.records) == 2
    assert client.get("/healthz").get_json()["reloads"] == state.reloads == 1
    (line,) = [r.getMessage() for r in caplog.records if r.name == "feedsvc.load"]
    fields = dict(part.split("=", 1) for part in line.split(" "))
    assert (fields["event"], fields["records"], fields["files_parsed"]) == ("reload", "2", "1")
    assert fields["version"] == state.collection.version
    assert 20 <= float(fields["duration_ms"]) <= elapsed_ms
    found = samples(client)
    assert found[("feedsvc_loads_total", (("kind", "reload"),))] == 1
    assert found[("feedsvc_loads_total", (("kind", "load"),))] == 1
    assert found[("feedsvc_records_loaded", ())] == 2
    folder.write("r2.md", record_text("Story 2", 3, [TOPICS[1]], PROVIDERS[1], 2))
    assert state.reload() and state.snapshot.number == 3
    assert client.get("/healthz").get_json()["reloads"] == state.reloads == 2
    assert samples(client)[("feedsvc_loads_total", (("kind", "reload"),))] == 2


def test_a_reload_of_named_paths_reads_those_alone(tmp_path: Path) -> None:
    """Filesystem events name the files that changed: a reload reads them, not the folder."""
    folder = Folder(tmp_path)
    for index in range(2):
        folder.write(f"r{index}.md", record_text(f"Story {index}", 1, [], PROVIDERS[0], index))
    state = app_on(tmp_path).extensions["feedsvc"]
    folder.write("r0.md", record_text("Story 0, named", 1, [], PROVIDERS[0], 0))
    folder.write("r1.md", record_text("Story 1, not named", 1, [], PROVIDERS[0], 1))
    assert state.reload([str(tmp_path / "r0.md")])
    assert sorted(record.title for record in state.collection.records) == [
        "Story 0, named",
        "Story 1",
    ]
    assert state.loader.stats.checked == 1


def test_a_failing_preparer_is_logged_and_the_new_version_served_all_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = Folder(tmp_path)
    folder.write("r0.md", record_text("Story 0", 1, [TOPICS[0]], PROVIDERS[0], 0))
    app = app_on(tmp_path)
    state = app.extensions["feedsvc"]
    prepared: list[Snapshot] = []

    def failing(snapshot: Snapshot) -> None:
        raise RuntimeError("a bug in a preparer")

    state.preparers[:0] = [failing]
    state.preparers.append(prepared.append)
    folder.write("r0.md", record_text("Story 0, corrected", 1, [TOPICS[0]], PROVIDERS[0], 0))
    assert state.reload()
    (failed,) = [r for r in caplog.records if r.name == "feedsvc.versions"]
    assert failed.getMessage() == "preparing version 2 failed" and failed.levelname == "ERROR"
    assert failed.exc_info is not None and "a bug in a preparer" in str(failed.exc_info[1])
    assert prepared == [state.snapshot] and state.snapshot.number == 2
    assert b"Story 0, corrected" in app.test_client().get("/feeds/all.atom").data


def test_preparers_see_the_new_version_before_it_is_served(tmp_path: Path) -> None:
    folder = Folder(tmp_path)
    folder.write("r0.md", record_text("Story 0", 1, [TOPICS[0]], PROVIDERS[0], 0))
    state = app_on(tmp_path).extensions["feedsvc"]
    seen: list[tuple[int, int]] = []
    state.preparers.append(lambda new: seen.append((new.number, state.snapshot.number)))
    folder.write("r1.md", record_text("Story 1", 2, [TOPICS[0]], PROVIDERS[0], 1))
    assert state.reload()
    assert seen == [(2, 1)]


def test_a_document_gone_with_a_reload_does_not_stop_the_others_being_kept(
    tmp_path: Path,
) -> None:
    """The renders are checked least recently used first: one whose feed went (its only record
    removed) is passed over, and the unchanged ones after it are still kept."""
    folder = Folder(tmp_path)
    folder.write("r0.md", record_text("Story 0", 1, [TOPICS[0]], PROVIDERS[0], 0))
    folder.write("r1.md", record_text("Story 1", 2, [TOPICS[1]], PROVIDERS[1], 1))
    app = app_on(tmp_path)
    client = app.test_client()
    state = app.extensions["feedsvc"]
    gone = client.get("/feeds/topics/robotics.atom")
    kept = {
        url: client.get(url) for url in ["/feeds/topics/ai.atom", "/feeds/providers/a-example.rss"]
    }
    assert gone.status_code == 200 and state.renders.keys()[0][1] == "robotics"
    (tmp_path / "r1.md").unlink()
    carried = state.renders.stats.carried
    assert state.reload()
    assert state.renders.stats.carried - carried == len(kept)
    assert client.get("/feeds/topics/robotics.atom").status_code == 404
    for url, before in kept.items():
        hits = state.renders.stats.hits
        assert client.get(url).data == before.data and state.renders.stats.hits == hits + 1


def test_the_folder_watch_is_made_as_the_settings_say(tmp_path: Path) -> None:
    """RELOAD_INTERVAL and RELOAD_WATCH, for the watch each serving process starts (a copy of
    this one, `ensure_watching`)."""
    for config, events in [({}, True), ({"RELOAD_WATCH": "poll"}, False)]:
        app = app_on(tmp_path, RELOAD_INTERVAL=0.7, **config)
        watch = app.extensions["feedsvc"].watch
        assert (watch.root, watch.interval, watch.events) == (tmp_path, 0.7, events)
    off = app_on(tmp_path, RELOAD_INTERVAL=0).test_client()
    assert off.get("/healthz").get_json()["reload_watch"] == "off"
