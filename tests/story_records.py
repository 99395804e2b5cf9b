"""Records made for the stories tests: a URL, hours after START, related URLs, a headline."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

from feedsvc.records import Record, Related, pack_related, shared_topic
from feedsvc.urls import entry_id

START = datetime(2022, 11, 15, tzinfo=UTC)


def make_record(
    url: str,
    hours: float = 0,
    related: tuple[str, ...] = (),
    quality: int | None = None,
    original_url: str | None = None,
    topics: tuple[str, ...] = (),
    title: str = "",
) -> Record:
    coverage = pack_related(Related(f"about {item}", item, None, None) for item in related)
    # The default titles share "title", "https" and "example", so `same_event` accepts any two of
    # them: the tests built on them are about URLs and dates, not headlines.
    return Record(
        path=f"{url}.md",
        id=entry_id(url),
        title=title or f"title of {url}",
        excerpt="",
        published=START + timedelta(hours=hours),
        url=url,
        original_url=original_url,
        provider=None,
        topics=tuple(shared_topic(name.upper(), name) for name in topics),
        images=(),
        coverage=coverage,
        quality=quality,
    )


def titled(title: str) -> Record:
    """A record of that headline, its URL its own (two records of one URL are one article)."""
    return make_record(f"https://a.example/{zlib.crc32(title.encode())}", title=title)
