"""Versions and reloads: a reload renders again only what it changed, and what it keeps is what
a fresh start would serve, byte for byte."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.build import app_urls
from tests.conftest import make_app

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
