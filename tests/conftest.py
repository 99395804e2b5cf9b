"""Shared fixtures: the test collection, the app, its client, and helpers that parse feeds."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from feedsvc import create_app

DATA = Path(__file__).parent / "data"
RECORDS = DATA / "records"
BASE_URL = "http://feeds.test"
ASSET_BASE_URL = "https://assets.example.com/"
ATOM = "{http://www.w3.org/2005/Atom}"
MEDIA = "{http://search.yahoo.com/mrss/}"
SECRET_MARKER = "SECRET-MARKER"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's FEEDSVC_* variables never leak into a test."""
    for name in list(os.environ):
        if name.startswith("FEEDSVC_"):
            monkeypatch.delenv(name)


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


def parse_xml(body: bytes) -> Any:
    """Parse strictly: a feed that is not well-formed XML fails the test here."""
    return etree.fromstring(body, etree.XMLParser(resolve_entities=False, recover=False))


def read_feed(body: bytes) -> Any:
    """Parse as a feed reader does, failing on anything feedparser complains about."""
    parsed = feedparser.parse(body)
    assert not parsed.bozo, parsed.get("bozo_exception")
    return parsed


def atom_entries(root: Any) -> list[Any]:
    return list(root.iter(f"{ATOM}entry"))


@pytest.fixture
def tmp_records(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "records"
    folder.mkdir()
    yield folder


def system_tool(name: str) -> str:
    """The path of a program a test drives (chromium, nginx, newsboat). Where it is missing the
    test skips, except under CI (`CI` set, as `.ci/run` does), where a missing tool is a failure:
    `make system-deps` installs them."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        message = f"{name} is not installed (make system-deps installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
