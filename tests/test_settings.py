from __future__ import annotations

import json
from pathlib import Path

import lxml.html
import pytest
from click.testing import CliRunner
from flask import Flask

from feedsvc.cli import cli
from feedsvc.errors import ConfigError
from feedsvc.settings import BUNDLED_SEEDS, Settings, declared, defaults
from tests.conftest import RECORDS, make_app, parse_xml
from tests.servers import serve_refused


def settings_of(app) -> Settings:  # type: ignore[no-untyped-def]
    settings: Settings = app.extensions["feedsvc"].settings
    return settings


def test_defaults_serve_the_bundled_seeds() -> None:
    settings = Settings.from_mapping(defaults())
    assert (
        settings.seeds_dir == BUNDLED_SEEDS
        and (BUNDLED_SEEDS / "000_6533b3114b6f9df0.txt").exists()
    )
    assert settings.feed_size == 50 and settings.base_url is None


def test_every_setting_has_a_default_and_help() -> None:
    names = [name for name, _, _ in declared()]
    assert names == [name.upper() for name in Settings.__dataclass_fields__]
    assert all(help_text.strip() for _, _, help_text in declared())


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDSVC_SEEDS_DIR", str(RECORDS))
    monkeypatch.setenv("FEEDSVC_FEED_SIZE", "7")
    monkeypatch.setenv("FEEDSVC_SITE_TITLE", "Morning News")
    monkeypatch.setenv("FEEDSVC_BASE_URL", "https://news.example.org/")
    from feedsvc import create_app

    settings = settings_of(create_app())
    assert settings.seeds_dir == Path(RECORDS)
    assert settings.feed_size == 7
    assert settings.site_title == "Morning News"
    assert settings.base_url == "https://news.example.org/"


def test_config_given_to_the_factory_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FEEDSVC_FEED_SIZE", "7")
    assert settings_of(make_app(FEED_SIZE=3)).feed_size == 3


def test_numeric_looking_title_stays_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEEDSVC_SITE_TITLE", "2024")
    assert settings_of(make_app()).site_title == "2024"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("FEED_SIZE", "many", "FEED_SIZE must be int"),
        ("FEED_SIZE", 0, "at least 1"),
        ("FEED_SIZE", True, "FEED_SIZE must be int"),
        ("BASE_URL", "ftp://example.org/", "BASE_URL uses the 'ftp' scheme"),
        ("ASSET_BASE_URL", "example.org", "ASSET_BASE_URL is not an absolute"),
        ("SITE_TITLE", "", "SITE_TITLE must be set"),
        ("STORY_GROUPING", "later", "STORY_GROUPING must be start or request, not 'later'"),
    ],
)
def test_unusable_values_are_a_clear_config_error(name: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_mapping({name: value})


def test_base_url_path_prefix_is_kept() -> None:
    client = make_app(BASE_URL="https://example.org/news/").test_client()
    assert b'href="https://example.org/news/feeds/all.atom"' in client.get("/feeds/all.atom").data


# -- BASE_URL and ASSET_BASE_URL are used normalized (issue 16, item 7) --------------------------

NORMALIZED = [
    ("HTTPS://NEWS.Example.ORG/", "https://news.example.org/"),
    ("https://news.example.org:443/", "https://news.example.org/"),
    ("http://news.example.org:80/news", "http://news.example.org/news"),
    ("https://news.example.org:8443/", "https://news.example.org:8443/"),
    ("  https://news.example.org/ \t", "https://news.example.org/"),
    ("https://news.example.org/my news/", "https://news.example.org/my%20news/"),
    ("https://news.example.org", "https://news.example.org/"),
]


@pytest.mark.parametrize(("raw", "normalized"), NORMALIZED)
@pytest.mark.parametrize("name", ["BASE_URL", "ASSET_BASE_URL"])
def test_base_urls_are_kept_normalized(name: str, raw: str, normalized: str) -> None:
    settings = Settings.from_mapping({name: raw})
    assert getattr(settings, name.lower()) == normalized


REFUSED = [
    ("https://news.example.org/?a=1", "has a query"),
    ("https://news.example.org/?", "has a query"),
    ("https://news.example.org/#top", "has a fragment"),
    ("https://user:pw@news.example.org/", "has userinfo"),
    ("https://user@news.example.org/", "has userinfo"),
    ("//news.example.org/", "is not an absolute"),
]


@pytest.mark.parametrize(("raw", "message"), REFUSED)
@pytest.mark.parametrize("name", ["BASE_URL", "ASSET_BASE_URL"])
def test_base_urls_with_a_query_fragment_or_userinfo_are_refused(
    name: str, raw: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=f"{name} {message}"):
        Settings.from_mapping({name: raw})


def all_links(app: Flask) -> list[str]:
    """Every absolute URL feedsvc writes for the all-items feed in each format, the OPML list
    and the index page."""
    client = app.test_client()
    atom = parse_xml(client.get("/feeds/all.atom").data)
    links = [*atom.xpath("//@href"), *atom.xpath("//*[local-name()='id']/text()")]
    rss = parse_xml(client.get("/feeds/all.rss").data)
    links += [*rss.xpath("//@href"), *rss.xpath("//link/text() | //guid/text()")]
    feed = json.loads(client.get("/feeds/all.json").data)
    links += [feed["home_page_url"], feed["feed_url"], *(i["id"] for i in feed["items"])]
    links += parse_xml(client.get("/feeds.opml").data).xpath("//@xmlUrl | //@htmlUrl")
    links += lxml.html.fromstring(client.get("/").data).xpath("//link/@href")
    return [str(link) for link in links]


def test_the_normalized_base_url_is_the_one_in_every_link() -> None:
    app = make_app(BASE_URL="  HTTPS://NEWS.Example.ORG:443/my news/")
    ours = [link for link in all_links(app) if "news.example.org" in link.lower()]
    assert len(ours) > 10
    for link in ours:
        assert link.startswith("https://news.example.org/my%20news/"), link
    self_link = parse_xml(app.test_client().get("/feeds/all.atom").data).xpath(
        "//*[local-name()='link'][@rel='self']/@href"
    )
    assert self_link == ["https://news.example.org/my%20news/feeds/all.atom"]


@pytest.mark.parametrize(("raw", "message"), REFUSED[:5])
def test_build_refuses_such_a_base_url_as_a_usage_error(
    runner: CliRunner, tmp_path: Path, raw: str, message: str
) -> None:
    out = tmp_path / "site"
    args = ["build", "--seeds", str(RECORDS), "--out", str(out), "-q", "--base-url", raw]
    result = runner.invoke(cli, args, env={"FEEDSVC_PARSE_CACHE": "off"})
    assert result.exit_code == 2, result.output
    assert "--base-url" in result.output and message in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_build_writes_the_normalized_base_url(runner: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "site"
    args = ["build", "--seeds", str(RECORDS), "--out", str(out), "-q"]
    args += ["--base-url", " HTTPS://News.Example.ORG:443/my news/"]
    result = runner.invoke(cli, args, env={"FEEDSVC_PARSE_CACHE": "off"})
    assert result.exit_code == 0, result.output
    atom = parse_xml((out / "feeds" / "all.atom").read_bytes())
    self_link = atom.xpath("//*[local-name()='link'][@rel='self']/@href")
    assert self_link == ["https://news.example.org/my%20news/feeds/all.atom"]
    assert b"News.Example" not in (out / "feeds.opml").read_bytes()


def test_serve_refuses_such_a_base_url_at_start_up(tmp_path: Path) -> None:
    """Run as an operator would; in its own process group, so that a server that started
    anyway is stopped (with all its workers) when the test fails."""
    settings = {"BASE_URL": "https://user:secret@news.example.org/"}
    status, stderr = serve_refused("--seeds", str(RECORDS), settings=settings)
    assert status == 1
    assert stderr.startswith("Error: BASE_URL has userinfo") and "Traceback" not in stderr


def test_asset_base_url_option_refuses_a_query_as_a_usage_error(runner: CliRunner) -> None:
    args = ["check", str(RECORDS), "--asset-base-url", "https://cdn.example.org/?token=1"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2 and "has a query" in result.output
