"""Property-based tests: arbitrary text (control characters, any script, markup-like text) and odd
URLs in, and the service's promises hold for every collection hypothesis can build."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slugify import slugify

from feedsvc.feeds import Site, feed_document, iter_feeds, page_count
from feedsvc.fields import clean_text
from feedsvc.pages import feed_page_inputs, index_inputs, render_page
from feedsvc.render import FORMATS
from feedsvc.urls import entry_id, normalize_url
from tests.conftest import entry_ids, make_app

# Lone surrogates cannot be written to a UTF-8 file at all; clean_text's unit test covers them.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
markup_text = st.sampled_from(["<UBER.N>", "&amp;", "<script>alert(1)</script>", "]]>", "\x00"])
text = st.one_of(any_text, markup_text, st.builds(lambda a, b: a + b, any_text, markup_text))
hosts = st.sampled_from(["example.com", "news.example.org", "bücher.example", "EXAMPLE.net:8080"])
url_path = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30)
urls = st.builds(
    lambda scheme, host, path, query: f"{scheme}://{host}/{path}?{query}",
    st.sampled_from(["http", "https"]),
    hosts,
    url_path,
    st.sampled_from(["", "a=1&#038;b=2", "q=$!;,*+", "x=%20%zz", "u=https://x.example/?y=1"]),
)
offsets = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
dates = st.builds(
    lambda moment, tz: moment.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
    offsets,
)
images = st.fixed_dictionaries(
    {"url": urls, "width": st.integers(1, 5000), "height": st.integers(1, 5000)}
)
records = st.fixed_dictionaries(
    {
        "title": st.builds(lambda t: "T " + t, text),  # always has a letter, so always usable
        "excerpt": text,
        "publishedDateTime": dates,
        "webUrl": urls,
        "provider": st.fixed_dictionaries(
            {
                "name": st.builds(lambda t: "P " + t, text),
                "domain": st.sampled_from(["a.com", "b.org", "ü.de"]),
            }
        ),
        "topics": st.lists(st.builds(lambda t: "Topic " + t, text), max_size=4),
        "images": st.lists(images, max_size=2),
        "related": st.lists(
            st.fixed_dictionaries({"title": st.builds(lambda t: "R " + t, text), "webUrl": urls}),
            max_size=3,
        ),
        "secured": st.just("SECRET-MARKER"),
        "published": st.booleans(),
    }
)


def write_collection(folder: Path, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Write each item as a record file; return the items as YAML reads them back (YAML folds
    some characters, such as U+0085, so expectations are drawn from what the files say)."""
    written = []
    for index, item in enumerate(items):
        front_matter = yaml.safe_dump(item, allow_unicode=True, sort_keys=False)
        (folder / f"{index:03d}.md").write_text(f"---\n{front_matter}---\n", encoding="utf-8")
        written.append(yaml.safe_load(front_matter))
    return written


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records, min_size=1, max_size=6))
def test_every_record_reaches_every_feed_well_formed(items: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        items = write_collection(Path(folder), items)
        app = make_app(SEEDS_DIR=folder)
        collection = app.extensions["feedsvc"].collection
        client = app.test_client()

        expected_ids = {entry_id(normalize_url(item["webUrl"])) for item in items}
        assert {record.id for record in collection.records} == expected_ids
        assert collection.rejections == ()

        ids_by_link: dict[str, set[str]] = {}
        for feed in iter_feeds(collection):
            for extension in FORMATS:
                body = client.get(f"{feed.path}.{extension}").data
                assert b"SECRET-MARKER" not in body
                ids = entry_ids(body, extension)
                assert ids == [r.id for r in feed.records]
                for found in ids:
                    ids_by_link.setdefault(found, set()).add(extension)
        assert all(found == set(FORMATS) for found in ids_by_link.values())
        # Membership worked out from the input alone, not from the repository's indexes. Items
        # sharing an article URL are one entry: the earliest one's provider, every copy's topics.
        copies: dict[str, list[tuple[datetime, int, dict[str, Any]]]] = {}
        for index, item in enumerate(items):
            record_id = entry_id(normalize_url(item["webUrl"]))
            copies.setdefault(record_id, []).append(
                (as_utc(item["publishedDateTime"]), index, item)
            )
        served: dict[str, set[str]] = {}
        for record_id, versions in copies.items():
            first = min(versions, key=lambda version: version[:2])[2]
            paths = ["/feeds/all", f"/feeds/providers/{slugify(first['provider']['domain'])}"]
            for _, _, item in versions:
                paths += [f"/feeds/topics/{topic_slug(name)}" for name in item["topics"]]
            for path in paths:
                if path not in served:
                    response = client.get(f"{path}.atom")
                    assert response.status_code == 200, path
                    served[path] = set(entry_ids(response.data, "atom"))
                assert record_id in served[path], path


def as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def topic_slug(name: str) -> str:
    """The documented rule: the slug of the topic's display name, which is the name without
    forbidden characters and with each run of white space made one space."""
    return str(slugify(" ".join(clean_text(name).split())))


class _Fragments(dict[Any, bytes]):
    """The simplest fragment store: keeps everything."""

    def put(self, key: Any, fragment: bytes) -> None:
        self[key] = fragment


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(records, min_size=1, max_size=8),
    st.integers(1, 3),
    st.randoms(),
    st.sampled_from([(), ("https://hub.example/",), ("https://a.example/h", "http://b.example/")]),
)
def test_pages_put_together_from_entry_fragments_equal_one_shot_renders(
    items: list[dict[str, Any]], feed_size: int, random: Any, hubs: tuple[str, ...]
) -> None:
    """Every page of every feed, in every format and as HTML, assembled from fragments that
    other pages left in the store (in a random order) is byte for byte the document rendered
    whole, WebSub hubs in the head or not."""
    with tempfile.TemporaryDirectory() as folder:
        write_collection(Path(folder), items)
        app = make_app(SEEDS_DIR=folder)
    collection = app.extensions["feedsvc"].collection
    site = Site("https://news.example.org", "Site <&>", feed_size=feed_size, hubs=hubs)
    pages = [
        (feed, extension, page)
        for feed in iter_feeds(collection)
        for extension in [*FORMATS, "html"]
        for page in range(1, page_count(feed, site) + 1)
    ]
    random.shuffle(pages)
    fragments = _Fragments()
    with app.app_context():
        for feed, extension, page in pages:
            if extension == "html":
                inputs = (
                    index_inputs(collection, site, page)
                    if feed.scope == "all"
                    else feed_page_inputs(feed, site, page)
                )
                assert render_page(inputs, fragments) == render_page(inputs)
                continue
            document = feed_document(feed, site, extension, page)
            fmt = FORMATS[extension]
            assert fmt.assemble(document, fragments) == fmt.render(document)
    assert {key[0] for key in fragments} == {*FORMATS, "html-article"}
