"""Every setting feedsvc reads, declared once: name, type, default and a line of help.

Settings are read in one order: these defaults, then `FEEDSVC_*` environment variables, then the
mapping given to `create_app` (tests, the CLI). The README's settings table is checked against
this declaration by a test.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from feedsvc.errors import ConfigError, UrlError
from feedsvc.urls import normalize_base_url

ENV_PREFIX = "FEEDSVC"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def bundled_seeds() -> Path:
    """The seeds that come with feedsvc: `feedsvc/seeds/` in an installed wheel (pyproject maps
    the top-level seeds/ there), else the top-level seeds/ of the checkout (an editable install
    or a source tree), which is the one copy the repository keeps."""
    package = Path(__file__).resolve().parent
    installed = package / "seeds"
    return installed if installed.is_dir() else package.parent / "seeds"


BUNDLED_SEEDS = bundled_seeds()


def setting(default: Any, help: str) -> Any:
    """Declare one setting: its default and the line of help the README and CLI show."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved settings of one app; attribute `feed_size` is read from `FEEDSVC_FEED_SIZE`."""

    seeds_dir: Path = setting(
        BUNDLED_SEEDS, "Folder of record files to publish (read recursively)."
    )
    base_url: str | None = setting(
        None,
        "Absolute URL the site is served at, e.g. `https://news.example.org/`. Pins self links and "
        "feed ids; when unset they are taken from each request's Host header.",
    )
    site_title: str = setting("feedsvc", "Site name, first part of every feed title.")
    language: str = setting("en", "Language of the feeds (RFC 5646 tag).")
    feed_size: int = setting(50, "Entries per feed page.")
    cache_max_age: int = setting(
        300, "Seconds clients and proxies may reuse a feed without asking (Cache-Control max-age)."
    )
    render_cache_bytes: int = setting(
        # 64 MiB could not hold one round of a 10,000-record site's feeds (all items, topics,
        # stories and 100 providers in three formats: 486 URLs), and an LRU smaller than the
        # round polled in a cycle hits nothing.
        256 * 1024 * 1024,
        "Memory for rendered feeds and pages (all encodings) and rendered entries, in bytes: "
        "their bytes, keys and per-item objects; least recently used evicted.",
    )
    reload_interval: float = setting(
        2.0,
        "Seconds between checks for added, changed and removed record files (with filesystem "
        "events: the most a burst of changes waits); 0 turns live reload off.",
    )
    reload_watch: str = setting(
        "events",
        "How live reload notices changes: `events` (filesystem events, read as they come; "
        "polling where there are none) or `poll` (a check every RELOAD_INTERVAL; for network "
        "filesystems, which send no events).",
    )
    parse_cache: str = setting(
        "auto",
        "File that remembers parsed records across restarts: a path, `auto` (a file per "
        "collection under ~/.cache/feedsvc) or `off`.",
    )
    search_index: str = setting(
        "auto",
        "File of the search index (SQLite FTS5), built at start-up and reused by a restart with "
        "unchanged files: a path, `auto` (beside the parse cache, its name plus `.search`; a "
        "temporary file when the parse cache is off) or `off` (no search: `/search` and "
        "`/feeds/search.*` answer 404).",
    )
    load_workers: int = setting(0, "Processes that parse records at start-up; 0 = one per core.")
    asset_base_url: str | None = setting(
        None,
        "Absolute URL that site-relative image URLs in records (`/assets/...`) resolve against, "
        "as a prefix; when unset such images are left out with a warning.",
    )
    max_record_bytes: int = setting(
        1024 * 1024,
        "Largest record file read, in bytes; a larger file is rejected unread (a record is "
        "rarely over 70 KB).",
    )
    log_level: str = setting(
        "INFO",
        "Least severe log messages written (DEBUG, INFO, WARNING, ERROR); INFO logs one line per "
        "request and per load.",
    )

    metrics_dir: str = setting(
        "auto",
        "Folder where server workers write their metrics so that `/metrics` on any worker reports "
        "the sum of all (prometheus_client multiprocess mode): a path (feedsvc writes in a "
        "`feedsvc-metrics` subfolder of it, which it creates), `auto` (a fresh temporary folder "
        "per `feedsvc serve`) or `off` (each worker reports only its own).",
    )
    websub_hub: str | None = setting(
        None,
        "WebSub hub URL, or several separated by spaces: every feed names them, and each is "
        "told when a feed's first page changes. Needs BASE_URL.",
    )

    story_window_days: float = setting(
        3.0,
        "Days within which records that share an article URL are grouped into one story (the "
        "story feeds).",
    )
    story_grouping: str = setting(
        "request",
        "When `feedsvc serve` groups the stories: `start` (once, before its workers start, which "
        "then share the grouping) or `request` (in each worker, on its first story request).",
    )

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> Settings:
        """Build settings from a mapping keyed by upper-case names (Flask's `app.config`).

        :raises ConfigError: a value has the wrong type or is out of range.
        """
        values = {
            spec.name: _coerce(spec.name, spec.type, config[spec.name.upper()])
            for spec in fields(cls)
            if spec.name.upper() in config
        }
        for name in _BASE_URLS:
            if values.get(name) is not None:
                values[name] = _base_url(name, values[name])
        settings = cls(**values)
        settings.validate()
        return settings

    def parse_cache_file(self) -> Path | None:
        """Where the parse cache lives, or None when it is off."""
        if self.parse_cache == "off":
            return None
        if self.parse_cache != "auto":
            return Path(self.parse_cache)
        folder = hashlib.blake2b(str(self.seeds_dir.resolve()).encode(), digest_size=8).hexdigest()
        cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cache_home / "feedsvc" / f"parse-{folder}.cache"

    def search_index_file(self) -> Path | None:
        """Where the search index's base file lives; None for a temporary one (see `search`)."""
        if self.search_index not in ("auto", "off"):
            return Path(self.search_index)
        cache = self.parse_cache_file()
        return cache.with_name(cache.name + ".search") if cache is not None else None

    def validate(self) -> None:
        minimums = (
            ("feed_size", 1),
            ("cache_max_age", 0),
            ("render_cache_bytes", 0),
            ("reload_interval", 0),
            ("load_workers", 0),
            ("max_record_bytes", 1),
            ("story_window_days", 0),
        )
        for name, least in minimums:
            if getattr(self, name) < least:
                raise ConfigError(
                    f"{name.upper()} must be at least {least}, not {getattr(self, name)}"
                )
        if self.story_grouping not in ("start", "request"):
            raise ConfigError(
                f"STORY_GROUPING must be start or request, not {self.story_grouping!r}"
            )
        if self.reload_watch not in ("events", "poll"):
            raise ConfigError(f"RELOAD_WATCH must be events or poll, not {self.reload_watch!r}")
        if self.log_level.upper() not in LOG_LEVELS:
            choices = ", ".join(LOG_LEVELS)
            raise ConfigError(f"LOG_LEVEL must be one of {choices}, not {self.log_level!r}")
        for name in _BASE_URLS:
            if getattr(self, name) is not None:
                _base_url(name, getattr(self, name))
        hub_urls(self.websub_hub or "")

    @property
    def websub_hubs(self) -> tuple[str, ...]:
        """The WebSub hubs, in the order given, each once.

        :raises ConfigError: one is not an absolute http(s) URL.
        """
        return hub_urls(self.websub_hub or "")


# Links are made by appending to these, so they are used only in their normalized form.
_BASE_URLS = ("base_url", "asset_base_url")


def _base_url(name: str, value: str) -> str:
    """`value` normalized (see `normalize_base_url`).

    :raises ConfigError: it cannot be used as a base URL.
    """
    try:
        return normalize_base_url(value)
    except UrlError as exc:
        raise ConfigError(f"{name.upper()} {exc.message}: {value!r}") from None


# Characters RFC 3986 leaves out of URLs; `<` and `>` would also break a Link header.
_NOT_IN_URLS = frozenset('<>"\\^`{|}')


def hub_urls(value: str) -> tuple[str, ...]:
    """The hub URLs in `value` (separated by white space), as written, each once.

    :raises ConfigError: one is not an absolute http(s) URL with a host, or carries userinfo
        or a fragment (every feed publishes it).
    """
    hubs: dict[str, None] = {}
    for url in value.split():
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 (raises on a port that is not a number)
        except ValueError:
            parts = None
        scheme = parts.scheme.lower() if parts else ""
        if (
            parts is None
            or scheme not in ("http", "https")
            or not url.lower().startswith(f"{scheme}://")
            or not parts.hostname
            or "@" in parts.netloc
            or "#" in url
            or any(char in url for char in _NOT_IN_URLS)
        ):
            raise ConfigError(
                f"WEBSUB_HUB must be absolute http(s) URLs separated by spaces, not {url!r}"
            )
        hubs[url] = None
    return tuple(hubs)


def declared() -> list[tuple[str, Any, str]]:
    """(NAME, default, help) for every setting, in declaration order."""
    return [
        (
            spec.name.upper(),
            None if spec.default is MISSING else spec.default,
            spec.metadata["help"],
        )
        for spec in fields(Settings)
    ]


def defaults() -> dict[str, Any]:
    return {name: default for name, default, _ in declared()}


def environment() -> dict[str, Any]:
    """`FEEDSVC_*` variables by setting name, JSON-decoded where they are JSON, as Flask's
    `from_prefixed_env` reads them, for the commands that build no app."""
    found: dict[str, Any] = {}
    for key, raw in os.environ.items():
        if key.startswith(ENV_PREFIX + "_"):
            try:
                found[key[len(ENV_PREFIX) + 1 :]] = json.loads(raw)
            except ValueError:
                found[key[len(ENV_PREFIX) + 1 :]] = raw
    return found


def resolve(config: Mapping[str, Any] | None = None) -> Settings:
    """Settings in the app's order: defaults, then `FEEDSVC_*` variables, then `config`.

    :raises ConfigError: a value cannot be used.
    """
    return Settings.from_mapping({**defaults(), **environment(), **(config or {})})


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    """Turn a value from the environment (JSON-decoded by Flask, or a string) into its type."""
    kind = str(annotation)
    if value is None or value == "":
        if "None" in kind:
            return None
        raise ConfigError(f"{name.upper()} must be set")
    try:
        if kind.startswith("int"):
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if kind.startswith("Path"):
            return Path(value)
        if kind.startswith("float"):
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name.upper()} must be {kind.split()[0]}, not {value!r}") from None
    return str(value)
