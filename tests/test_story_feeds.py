"""The story feeds: one entry per story, with all of its coverage, in every format."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from feedsvc.cli import cli
from feedsvc.stories import stories_of, story_id
from feedsvc.urls import entry_id
from feedsvc.web import prepare_workers
from tests.conftest import make_app, parse_xml, read_feed, read_json_feed

ATOM_NS = "{http://www.w3.org/2005/Atom}"
SHARED = "https://wire.example/robotaxi-launch"


def record(url: str, when: str, related: list[str], quality: int | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "title": f"Robotaxis launch ({url.split('/')[2]})",
        "excerpt": f"Excerpt of {url}",
        "publishedDateTime": when,
        "webUrl": url,
        "provider": {"name": url.split("/")[2], "domain": url.split("/")[2]},
        "topics": ["AI"],
        "images": [{"url": f"{url}/lead.jpg", "width": 1200, "height": 675}],
        "related": [
            {
                "title": f"Related {item}",
                "webUrl": item,
                "publishedDateTime": "2022-11-15T08:00:00Z",
                "provider": {"name": "Wire"},
            }
            for item in related
        ],
    }
    if quality is not None:
        fields["quality"] = quality
    return fields


def write(folder: Path, name: str, fields: dict[str, Any]) -> None:
    folder.joinpath(name).write_text(f"---\n{yaml.safe_dump(fields)}---\n", encoding="utf-8")


@pytest.fixture
def records(tmp_path: Path) -> Path:
    write(tmp_path, "a.md", record("https://a.example/1", "2022-11-15T10:00:00Z", [SHARED]))
    write(
        tmp_path,
        "b.md",
        record("https://b.example/2", "2022-11-16T09:00:00Z", [f"{SHARED}?utm_source=rss"], 9),
    )
    write(tmp_path, "c.md", record("https://c.example/3", "2022-11-15T12:00:00Z", []))
    return tmp_path


def client_for(folder: Path) -> FlaskClient:
    return make_app(SEEDS_DIR=str(folder)).test_client()


def test_a_story_feed_has_one_entry_per_story_with_its_coverage(records: Path) -> None:
    client = client_for(records)
    response = client.get("/feeds/stories/topics/ai.atom")
    assert response.status_code == 200
    assert response.mimetype == "application/atom+xml"
    feed = read_feed(response.data)
    assert len(feed.entries) == 2  # a and b are one story, c another
    story = feed.entries[0]
    assert story.id == story_id_of("https://a.example/1")
    assert story.title == "Robotaxis launch (b.example)"  # the lead: the rated record
    assert story.link == "https://b.example/2"
    assert story.published.startswith("2022-11-15T10:00")
    assert story.updated.startswith("2022-11-16T09:00")
    related = [link.href for link in story.links if link.rel == "related"]
    assert related == ["https://b.example/2", "https://a.example/1", SHARED]
    assert "https://b.example/2" in story.content[0].value
    root = parse_xml(response.data)
    assert root.find(f"{ATOM_NS}id").text.endswith("/feeds/stories/topics/ai")
    enclosures = root.findall(f"{ATOM_NS}entry/{ATOM_NS}link[@rel='enclosure']")
    assert enclosures[0].get("href") == "https://b.example/2/lead.jpg"


def story_id_of(first_url: str) -> str:
    from feedsvc.records import Record

    first = Record("", entry_id(first_url), "", "", None, "", None, None, (), (), "")  # type: ignore[arg-type]
    return story_id(first)


def test_story_ids_are_not_article_ids(records: Path) -> None:
    client = client_for(records)
    stories = {entry.id for entry in read_feed(client.get("/feeds/stories/all.atom").data).entries}
    articles = {entry.id for entry in read_feed(client.get("/feeds/all.atom").data).entries}
    assert len(articles) == 3 and len(stories) == 2
    assert not stories & articles


def test_story_id_survives_new_coverage(records: Path) -> None:
    before = read_feed(client_for(records).get("/feeds/stories/all.atom").data).entries
    write(records, "d.md", record("https://d.example/4", "2022-11-17T09:00:00Z", [SHARED]))
    after = read_feed(client_for(records).get("/feeds/stories/all.atom").data).entries
    assert {entry.id for entry in after} == {entry.id for entry in before}
    grown = next(entry for entry in after if entry.id == story_id_of("https://a.example/1"))
    assert grown.updated.startswith("2022-11-17T09:00")


def test_story_feeds_in_rss_and_json(records: Path) -> None:
    client = client_for(records)
    rss = read_feed(client.get("/feeds/stories/topics/ai.rss").data)
    assert len(rss.entries) == 2
    assert rss.entries[0].id == story_id_of("https://a.example/1")
    json_feed = read_json_feed(client.get("/feeds/stories/all.json").data)
    first = json_feed["items"][0]
    assert first["id"] == story_id_of("https://a.example/1")
    assert first["date_modified"] == "2022-11-16T09:00:00Z"
    assert first["date_published"] == "2022-11-15T10:00:00Z"


def test_story_feeds_are_conditional(records: Path) -> None:
    client = client_for(records)
    first = client.get("/feeds/stories/all.atom")
    again = client.get("/feeds/stories/all.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.headers["ETag"] == first.headers["ETag"]


def test_unknown_story_topic_is_404(records: Path) -> None:
    assert client_for(records).get("/feeds/stories/topics/nothing.atom").status_code == 404


def test_paged_like_every_feed(records: Path) -> None:
    client = make_app(SEEDS_DIR=str(records), FEED_SIZE=1).test_client()
    assert len(read_feed(client.get("/feeds/stories/all.atom?page=2").data).entries) == 1
    assert client.get("/feeds/stories/all.atom?page=3").status_code == 404


def test_stories_grouped_before_the_workers_fork_are_the_workers_stories(records: Path) -> None:
    """`feedsvc serve` groups once before forking (STORY_GROUPING `start`): a story request then
    finds the stories grouped, and a worker made by `fork` shares them instead of grouping."""
    app = make_app(SEEDS_DIR=str(records), STORY_GROUPING="start")
    prepare_workers(app)
    with mock.patch("feedsvc.stories._Grouping.of", side_effect=AssertionError("grouped again")):
        read, write_end = os.pipe()
        child = os.fork()
        if child == 0:  # the worker: answers story requests from the grouping it inherited
            try:
                feed = read_feed(app.test_client().get("/feeds/stories/all.atom").data)
                os.write(write_end, str(len(feed.entries)).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        answer = os.read(read, 100)
        os.waitpid(child, 0)
        assert answer == b"2"
        assert len(read_feed(app.test_client().get("/feeds/stories/all.atom").data).entries) == 2


def test_stories_grouped_on_request_are_not_grouped_before_the_workers(records: Path) -> None:
    app = make_app(SEEDS_DIR=str(records))  # the default, STORY_GROUPING=request
    with mock.patch("feedsvc.stories.stories_of", side_effect=AssertionError("grouped")):
        prepare_workers(app)
    assert len(read_feed(app.test_client().get("/feeds/stories/all.atom").data).entries) == 2


def test_serve_groups_the_stories_before_it_starts_the_workers(
    records: Path, runner: CliRunner
) -> None:
    served: list[int] = []

    def run(app: Flask, *args: object) -> None:
        collection = app.extensions["feedsvc"].snapshot.collection
        with mock.patch("feedsvc.stories._Grouping.of", side_effect=AssertionError("grouped")):
            served.append(len(stories_of(collection).stories))

    with mock.patch("feedsvc.cli.run", run):
        result = runner.invoke(
            cli,
            ["serve", "--seeds", str(records), "--port", "0"],
            env={"FEEDSVC_STORY_GROUPING": "start"},
        )
    assert result.exit_code == 0, result.output
    assert served == [2]
