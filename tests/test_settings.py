from __future__ import annotations

from pathlib import Path

import pytest

from feedsvc.errors import ConfigError
from feedsvc.settings import BUNDLED_SEEDS, Settings, declared, defaults
from tests.conftest import RECORDS, make_app


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
    ],
)
def test_unusable_values_are_a_clear_config_error(name: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_mapping({name: value})


def test_base_url_path_prefix_is_kept() -> None:
    client = make_app(BASE_URL="https://example.org/news/").test_client()
    assert b'href="https://example.org/news/feeds/all.atom"' in client.get("/feeds/all.atom").data
