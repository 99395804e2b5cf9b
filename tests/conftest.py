"""Shared fixtures: the test collection, the app, its client, helpers that parse feeds, and
helpers that write records into a folder."""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import feedparser
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import Phase, settings
from lxml import etree

from feedsvc import create_app
from feedsvc.metrics import MULTIPROC_ENV
from feedsvc.repository import Collection, load_collection

# `make mutate` runs the tests under mutmut's tracing on a loaded machine, and must judge every
# mutant by the same examples: no deadline, a fixed sequence of examples, no example database.
# No shrinking: a mutant is caught by the first failing example, and shrinking it (minutes for
# the reload properties) only ran the mutant into its time limit.
settings.register_profile(
    "mutate",
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

if os.environ.get("HYPOTHESIS_PROFILE") == "mutate":

    @pytest.fixture(autouse=True)
    def forget_remembered_results() -> None:
        """mutmut runs each mutant in a process forked from that of its clean run: what a
        function's `lru_cache` remembered there would answer for the mutated code (or for the
        mutated functions it calls). Each test starts with every cache of feedsvc empty."""
        for name, module in list(sys.modules.items()):
            if name == "feedsvc" or name.startswith("feedsvc."):
                for value in list(vars(module).values()):
                    if hasattr(type(value), "cache_clear"):  # not getattr: proxies like `request`
                        value.cache_clear()


DATA = Path(__file__).parent / "data"
RECORDS = DATA / "records"
BASE_URL = "http://feeds.test"
ASSET_BASE_URL = "https://assets.example.com/"
ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"
SECRET_MARKER = "SECRET-MARKER"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The developer's FEEDSVC_* variables never leak into a test, and no test's metrics folder
    leaks into the next: `feedsvc serve` run in-process points prometheus_client at its folder
    through the environment (metrics.MULTIPROC_ENV) and removes the folder as it ends, so a
    server or script a later test starts would write into a folder that is gone."""
    for name in list(os.environ):
        if name.startswith("FEEDSVC_"):
            monkeypatch.delenv(name)
    before = os.environ.get(MULTIPROC_ENV)
    yield
    if before is None:
        os.environ.pop(MULTIPROC_ENV, None)
    else:
        os.environ[MULTIPROC_ENV] = before


@pytest.fixture(autouse=True)
def _restore_log_level() -> Iterator[None]:
    """Commands set the feedsvc logger's level; no test inherits another's."""
    logger = logging.getLogger("feedsvc")
    level = logger.level
    yield
    logger.setLevel(level)


def make_app(**config: Any) -> Flask:
    settings = {
        "SEEDS_DIR": RECORDS,
        "BASE_URL": BASE_URL,
        "ASSET_BASE_URL": ASSET_BASE_URL,
        "PARSE_CACHE": "off",
        "RELOAD_INTERVAL": 0,
    }
    settings.update(config)
    return create_app(settings)


@pytest.fixture
def app() -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def collection() -> Collection:
    """The test records loaded as the app loads them. Loaded for each test (some 20 ms): mutation
    testing (`make mutate`) runs, for a mutant, the tests during which the mutated code ran, and a
    shared fixture would credit its load to the first test that asked for it only."""
    return load_collection(RECORDS, ASSET_BASE_URL)


def parse_xml(body: bytes) -> Any:
    """Parse strictly: a feed that is not well-formed XML fails the test here."""
    return etree.fromstring(body, etree.XMLParser(resolve_entities=False, recover=False))


def read_feed(body: bytes) -> Any:
    """Parse as a feed reader does, failing on anything feedparser complains about."""
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


def is_absolute_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


def read_json_feed(body: bytes) -> dict[str, Any]:
    """Parse a JSON Feed, asserting the rules JSON Feed 1.1 states as required (feedparser 6.0
    does not read JSON Feed): version, title, items with unique string ids, one of
    content_html/content_text, absolute URLs, attachments with url and mime_type."""
    feed = json.loads(body.decode("utf-8"))
    assert feed["version"] == JSON_FEED_VERSION
    assert isinstance(feed["title"], str) and feed["title"]
    for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
        assert key not in feed or is_absolute_url(feed[key]), key
    assert all(isinstance(author["name"], str) for author in feed.get("authors", []))
    items = feed["items"]
    ids = [item["id"] for item in items]
    assert all(isinstance(item_id, str) and item_id for item_id in ids)
    assert len(set(ids)) == len(ids)
    for item in items:
        assert "content_html" in item or "content_text" in item, item["id"]
        assert is_absolute_url(item["url"]), item["id"]  # every record has its article URL
        assert all(isinstance(tag, str) for tag in item.get("tags", []))
        for attachment in item.get("attachments", []):
            assert is_absolute_url(attachment["url"]) and "/" in attachment["mime_type"]
        if "date_published" in item:
            assert datetime.fromisoformat(item["date_published"]).tzinfo is not None
    return dict(feed)


def entry_links(body: bytes, extension: str) -> list[tuple[str, str]]:
    """(id, article URL) of each entry of a feed in any format, after checking the feed
    strictly for that format."""
    if extension == "json":
        return [(item["id"], item["url"]) for item in read_json_feed(body)["items"]]
    parse_xml(body)
    return [(entry.id, entry.link) for entry in read_feed(body).entries]


def entry_ids(body: bytes, extension: str) -> list[str]:
    return [entry_id for entry_id, _ in entry_links(body, extension)]


def next_page(body: bytes, extension: str) -> str | None:
    """The feed's link to its next page: `next_url` in JSON Feed, a `next` link otherwise."""
    if extension == "json":
        url: str | None = read_json_feed(body).get("next_url")
        return url
    return next((link.href for link in read_feed(body).feed.links if link.rel == "next"), None)


PAGING_RELS = ("first", "last", "previous", "next")


def paging_links(body: bytes, extension: str) -> dict[str, str]:
    """The feed's RFC 5005 links by relation; JSON Feed has only `next_url`."""
    if extension == "json":
        feed = read_json_feed(body)
        return {"next": feed["next_url"]} if "next_url" in feed else {}
    root = parse_xml(body)
    links = root.iter(f"{ATOM}link")  # Atom's own links, and the atom:link elements of RSS
    return {link.get("rel"): link.get("href") for link in links if link.get("rel") in PAGING_RELS}


def atom_entries(root: Any) -> list[Any]:
    return list(root.iter(f"{ATOM}entry"))


@pytest.fixture
def tmp_records(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "records"
    folder.mkdir()
    yield folder


RECORD = """---
title: {title}
publishedDateTime: 2022-01-{day:02d}T00:00:00Z
webUrl: https://{domain}/{slug}
provider: {{name: {domain}, domain: {domain}}}
topics: [{topic}]
---
"""


def write_record(
    folder: Path, name: str, title: str, day: int = 1, domain: str = "a.example", topic: str = "AI"
) -> Path:
    """A small valid record at `folder/name` (its URL from its name), with a modification time
    moved on, so that a rewrite within one file system time tick is still seen as a change."""
    path = folder / name
    text = RECORD.format(title=title, day=day, slug=name, domain=domain, topic=topic)
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    return path


def missing(message: str) -> NoReturn:
    """A tool a test needs is missing: skip, except under CI (`CI` set, as `.ci/run` does),
    where it is a failure: `make system-deps` and `make install` install them all."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def system_tool(name: str) -> str:
    """The path of a program a test drives (chromium, nginx, newsboat); see `missing`."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        missing(f"{name} is not installed (make system-deps installs it)")
    return path


def python_module(name: str) -> Any:
    """A module a test drives (the browser driver), imported; see `missing`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"{name} cannot be imported (make install installs it)")
