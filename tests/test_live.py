"""The production server, started the way the README starts it, read over real HTTP on loopback
by feedparser (a real feed reader's parser) and plain urllib."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest

from feedsvc.server import SERVERS
from tests.conftest import RECORDS, SECRET_MARKER, parse_xml
from tests.servers import fetch, running_feedsvc

pytestmark = pytest.mark.live


@dataclass(frozen=True)
class Server:
    url: str
    log: Path


@pytest.fixture(scope="module", params=SERVERS)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`feedsvc serve` with each supported server, on a free loopback port, stopped by its PID."""
    log = tmp_path_factory.mktemp("live") / "server.log"
    with running_feedsvc(RECORDS, log, server=request.param, workers=2) as url:
        yield Server(url, log)


@pytest.fixture
def server(live: Server) -> str:
    return live.url


def test_collection_is_loaded_once_before_the_workers_start(live: Server) -> None:
    fetch(live.url + "/feeds/all.atom")
    loads = [line for line in live.log.read_text().splitlines() if "loaded 9 records" in line]
    assert len(loads) == 1


@pytest.mark.parametrize(
    "path",
    ["/feeds/all.atom", "/feeds/topics/computer-vision.rss", "/feeds/providers/usnews-com.atom"],
)
def test_feed_readers_get_both_seed_records_with_images(server: str, path: str) -> None:
    parsed = feedparser.parse(server + path)
    assert parsed.status == 200 and not parsed.bozo, parsed.get("bozo_exception")
    links = {entry.link for entry in parsed.entries}
    if "usnews" not in path:
        assert any("theiet.org" in link for link in links)
    assert any("usnews.com" in link for link in links)
    self_link = next(link.href for link in parsed.feed.links if link.rel == "self")
    assert self_link == server + path


def test_images_arrive_as_enclosures_and_thumbnails(server: str) -> None:
    parsed = feedparser.parse(server + "/feeds/all.atom")
    theiet = next(entry for entry in parsed.entries if "theiet.org" in entry.link)
    assert theiet.enclosures[0].type == "image/jpeg"
    assert theiet.media_thumbnail[0]["width"] == "1200"


def test_served_over_http_with_media_types_and_no_secrets(server: str) -> None:
    status, headers, body = fetch(server + "/feeds/all.rss")
    assert status == 200
    assert headers["Content-Type"] == "application/rss+xml; charset=utf-8"
    parse_xml(body)
    assert SECRET_MARKER.encode() not in body


def test_unknown_feed_is_a_plain_404_over_http(server: str) -> None:
    status, headers, body = fetch(server + "/feeds/topics/nothing-here.atom")
    assert status == 404
    assert headers["Content-Type"].startswith("text/plain")
    assert b"Traceback" not in body


def test_a_second_poll_costs_a_304_with_no_body(server: str) -> None:
    first = feedparser.parse(server + "/feeds/all.atom")
    second = feedparser.parse(server + "/feeds/all.atom", etag=first.etag)
    assert second.status == 304 and second.entries == []
    third = feedparser.parse(server + "/feeds/all.atom", modified=first.modified)
    assert third.status == 304
    status, headers, body = fetch(server + "/feeds/all.rss?page=1")
    assert status == 200 and headers["Cache-Control"] == "public, max-age=300"


def test_an_added_record_appears_without_a_restart(tmp_path: Path) -> None:
    """As a publisher would: add a file while the server runs; within one reload interval every
    worker serves it in its topic and provider feeds, and untouched feeds still answer 304."""
    folder = tmp_path / "records"
    shutil.copytree(RECORDS, folder)
    settings = {"RELOAD_INTERVAL": "0.3"}
    with running_feedsvc(folder, tmp_path / "server.log", workers=2, settings=settings) as base:
        untouched = feedparser.parse(base + "/feeds/providers/usnews-com.atom")
        (folder / "2024-05-01-new.md").write_text(NEW_RECORD, encoding="utf-8")
        deadline = time.monotonic() + 10
        seen: set[str] = set()
        while time.monotonic() < deadline:
            found = {
                path
                for path in ("/feeds/topics/robotics.atom", "/feeds/providers/new-example.rss")
                # several requests in a row, so that every worker is asked
                if all(fetch(base + path)[0] == 200 for _ in range(6))
            }
            seen |= found
            if len(found) == 2:
                break
            time.sleep(0.1)
        assert seen == {"/feeds/topics/robotics.atom", "/feeds/providers/new-example.rss"}
        titles = [e.title for e in feedparser.parse(base + "/feeds/all.atom").entries]
        assert titles[0] == "A record added while serving"
        again = feedparser.parse(base + "/feeds/providers/usnews-com.atom", etag=untouched.etag)
        assert again.status == 304


NEW_RECORD = """---
title: A record added while serving
publishedDateTime: 2024-05-01T08:00:00Z
webUrl: https://new.example/article
provider: {name: New Example, domain: new.example}
topics: [Robotics]
---
"""


def test_metrics_add_up_every_worker_and_each_request_is_logged(live: Server) -> None:
    """Two workers, one /metrics: the counts are the sum over both (multiprocess mode)."""
    for _ in range(20):
        assert fetch(live.url + "/feeds/all.atom?page=99")[0] == 404
    status, headers, body = fetch(live.url + "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    wanted = 'feedsvc_http_requests_total{route="feeds.all_items_feed",status="404"} 20.0'
    assert wanted in body.decode().splitlines()
    logged = [line for line in live.log.read_text().splitlines() if "page=99 status=404" in line]
    assert len(logged) == 20 and "feedsvc.access: method=GET path=/feeds/all.atom" in logged[0]
