from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree, html
from werkzeug.test import create_environ, run_wsgi_app

from feedsvc.feeds import find_feed, iter_feeds, story_feeds
from feedsvc.render import FORMATS
from tests.conftest import (
    ATOM,
    BASE_URL,
    MEDIA,
    SECRET_MARKER,
    atom_entries,
    entry_ids,
    entry_links,
    make_app,
    next_page,
    paging_links,
    parse_xml,
    read_feed,
    read_json_feed,
)


def collection_of(app: Flask) -> Any:
    return app.extensions["feedsvc"].collection


def feed_urls(app: Flask) -> list[tuple[str, Any]]:
    return [
        (f"{feed.path}.{extension}", feed)
        for feed in iter_feeds(collection_of(app))
        for extension in FORMATS
    ]


def test_every_feed_in_every_format_is_served_valid_and_complete(
    app: Flask, client: FlaskClient
) -> None:
    urls = feed_urls(app)
    assert len(urls) == len(FORMATS) * (1 + 4 + 6)
    for url, feed in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        fmt = FORMATS[url.rsplit(".", 1)[1]]
        assert response.content_type == fmt.media_type
        ids = entry_ids(response.data, fmt.extension)
        assert ids == [r.id for r in feed.records], url
        assert SECRET_MARKER.encode() not in response.data


def test_self_link_is_the_url_served(client: FlaskClient) -> None:
    for url in ("/feeds/all.atom", "/feeds/topics/ai.rss", "/feeds/providers/usnews-com.atom"):
        parsed = read_feed(client.get(url).data)
        self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
        assert self_links == [BASE_URL + url]


def test_without_base_url_links_follow_the_request_host() -> None:
    client = make_app(BASE_URL=None).test_client()
    body = client.get("/feeds/all.atom", base_url="http://reader.example:8080").data
    root = parse_xml(body)
    self_link = next(li for li in root.findall(f"{ATOM}link") if li.get("rel") == "self")
    assert self_link.get("href") == "http://reader.example:8080/feeds/all.atom"


def test_ids_are_the_same_in_every_format_and_feed(app: Flask, client: FlaskClient) -> None:
    ids_by_link: dict[str, set[str]] = {}
    for url, _ in feed_urls(app):
        for entry_id, link in entry_links(client.get(url).data, url.rsplit(".", 1)[1]):
            ids_by_link.setdefault(link, set()).add(entry_id)
    assert ids_by_link and all(len(ids) == 1 for ids in ids_by_link.values())


def test_every_record_reaches_every_feed_it_belongs_to(app: Flask, client: FlaskClient) -> None:
    collection = collection_of(app)
    for record in collection.records:
        urls = ["/feeds/all"]
        urls += [f"/feeds/topics/{topic.slug}" for topic in record.topics]
        if record.provider:
            urls.append(f"/feeds/providers/{record.provider.slug}")
        for url in urls:
            for extension in FORMATS:
                ids = entry_ids(client.get(f"{url}.{extension}").data, extension)
                assert record.id in ids, (record.path, url, extension)


def test_seed_records_carry_images_as_enclosures_and_thumbnails(client: FlaskClient) -> None:
    atom = parse_xml(client.get("/feeds/topics/computer-vision.atom").data)
    theiet = next(
        e
        for e in atom_entries(atom)
        if any("theiet" in (li.get("href") or "") for li in e.findall(f"{ATOM}link"))
    )
    enclosure = theiet.find(f"{ATOM}link[@rel='enclosure']")
    assert enclosure is not None and enclosure.get("type") == "image/jpeg"
    thumbnail = theiet.find(f"{MEDIA}thumbnail")
    assert thumbnail is not None and thumbnail.attrib["width"] == "1200"
    rss = read_feed(client.get("/feeds/topics/computer-vision.rss").data)
    item = next(e for e in rss.entries if "theiet" in e.link)
    assert item.enclosures[0].type == "image/jpeg"
    assert item.media_thumbnail[0]["height"] == "450"


def test_feed_metadata(client: FlaskClient) -> None:
    parsed = read_feed(client.get("/feeds/providers/usnews-com.rss").data)
    assert parsed.feed.title == "feedsvc: U.S. News & World Report"
    assert parsed.feed.link == BASE_URL + "/providers/usnews-com"
    assert parsed.feed.image.href.endswith("usnews.com-50x50.jpg")
    assert parsed.feed.language == "en"
    atom = read_feed(client.get("/feeds/topics/computer-vision.atom").data)
    assert atom.feed.updated == "2023-02-02T10:00:00+00:00"  # the merged duplicate, newest
    assert atom.feed.generator == "feedsvc"


@pytest.mark.parametrize(
    "url",
    [
        "/feeds/topics/no-such-topic.atom",
        "/feeds/providers/no-such-provider.rss",
        "/feeds/all.json-ld",
        "/feeds/all.xml",
        "/feeds/elsewhere/ai.atom",
        "/feeds/topics/ai",
    ],
)
def test_unknown_feeds_are_a_short_plain_404(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert response.content_type == "text/plain; charset=utf-8"
    assert len(response.data) < 200
    assert b"Traceback" not in response.data and b"<html" not in response.data.lower()


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "", "99999999999999999999x"])
def test_bad_page_numbers_are_400(client: FlaskClient, page: str) -> None:
    response = client.get(f"/feeds/all.atom?page={page}")
    assert response.status_code == 400
    assert response.content_type == "text/plain; charset=utf-8"


def test_page_past_the_end_is_404(client: FlaskClient) -> None:
    assert client.get("/feeds/all.rss?page=2").status_code == 404


def test_paging_follows_next_links_through_every_record() -> None:
    app = make_app(FEED_SIZE=2)
    client = app.test_client()
    for extension in FORMATS:
        url: str | None = f"/feeds/all.{extension}"
        seen: list[str] = []
        while url:
            body = client.get(url.removeprefix(BASE_URL)).data
            seen += entry_ids(body, extension)
            url = next_page(body, extension)
        assert seen == [record.id for record in collection_of(app).records]


@pytest.mark.parametrize("path", ["/feeds/all", "/feeds/topics/ai"])
def test_paging_links_point_at_the_first_last_previous_and_next_pages(path: str) -> None:
    """RFC 5005 on the first, a middle and the last page, in every format (JSON Feed: next_url)."""
    app = make_app(FEED_SIZE=2)
    client = app.test_client()
    feed = find_feed(collection_of(app), *path.removeprefix("/feeds/").split("/"))
    assert feed is not None
    pages = -(-len(feed.records) // 2)
    assert pages >= 3
    for extension in FORMATS:
        url = f"{BASE_URL}{path}.{extension}"
        at = {page: url + (f"?page={page}" if page > 1 else "") for page in range(1, pages + 1)}
        for page in (1, 2, pages):
            expected = {"first": at[1], "last": at[pages]}
            if page > 1:
                expected["previous"] = at[page - 1]
            if page < pages:
                expected["next"] = at[page + 1]
            if extension == "json":
                expected = {rel: href for rel, href in expected.items() if rel == "next"}
            body = client.get(at[page].removeprefix(BASE_URL)).data
            assert paging_links(body, extension) == expected, (extension, page)


SITE_RELATIVE_IMAGES = """---
title: Pictures kept beside the site
publishedDateTime: 2023-06-01T00:00:00Z
webUrl: https://relative.example/pictures
provider: {name: Relative, domain: relative.example, images: [{url: /logos/relative.png}]}
images: [{url: /media/photo one.jpg, width: 800, height: 600}]
---
"""


def image_urls(body: bytes, extension: str) -> set[str]:
    """The feed's icon and its entries' image URLs, as a reader finds them in each format."""
    if extension == "json":
        feed = read_json_feed(body)
        urls = {feed["favicon"]} | {item["image"] for item in feed["items"]}
        return urls | {a["url"] for item in feed["items"] for a in item["attachments"]}
    parsed = read_feed(body)
    urls = {parsed.feed.image.href} if "image" in parsed.feed else {parsed.feed.icon}
    return urls | {link.href for entry in parsed.entries for link in entry.enclosures}


def test_site_relative_images_resolve_under_an_asset_base_url_with_a_path(
    tmp_records: Path,
) -> None:
    """ASSET_BASE_URL is a prefix: its path is kept (urljoin would drop it)."""
    (tmp_records / "relative.md").write_text(SITE_RELATIVE_IMAGES, encoding="utf-8")
    client = make_app(
        SEEDS_DIR=tmp_records, ASSET_BASE_URL="https://cdn.example/site/"
    ).test_client()
    for extension in FORMATS:
        body = client.get(f"/feeds/providers/relative-example.{extension}").data
        assert image_urls(body, extension) == {
            "https://cdn.example/site/logos/relative.png",
            "https://cdn.example/site/media/photo%20one.jpg",
        }, extension


def test_healthz_counts(client: FlaskClient) -> None:
    health = client.get("/healthz").get_json()
    assert {
        key: health[key] for key in ("status", "records", "rejected", "topics", "providers")
    } == {
        "status": "ok",
        "records": 9,
        "rejected": 9,
        "topics": 4,
        "providers": 6,
    }
    assert health["warnings"] == len(client.application.extensions["feedsvc"].collection.warnings)
    assert health["render_cache"]["entries"] == 0
    assert health["pid"] == os.getpid()  # the process that answered: its caches, its counters


def test_opml_lists_every_feed_once_and_each_url_resolves(app: Flask, client: FlaskClient) -> None:
    response = client.get("/feeds.opml")
    assert response.content_type == "text/x-opml; charset=utf-8"
    outlines = parse_xml(response.data).findall("body/outline/outline")
    feeds = [*iter_feeds(collection_of(app)), *story_feeds(collection_of(app))]
    assert [o.get("xmlUrl") for o in outlines] == [f"{BASE_URL}{f.path}.atom" for f in feeds]
    groups = parse_xml(response.data).findall("body/outline")
    assert groups[-1].get("text") == "Stories"
    assert [o.get("xmlUrl") for o in groups[-1]] == [
        f"{BASE_URL}{f.path}.atom" for f in story_feeds(collection_of(app))
    ]
    for outline in outlines:
        feed = client.get(outline.get("xmlUrl").removeprefix(BASE_URL))
        assert read_feed(feed.data).feed.title == outline.get("title")
        assert client.get(outline.get("htmlUrl").removeprefix(BASE_URL)).status_code == 200


def test_feeds_opened_in_a_browser_are_styled_by_the_served_stylesheet(client: FlaskClient) -> None:
    for extension in ("atom", "rss"):
        body = client.get(f"/feeds/topics/computer-vision.{extension}").data
        feed = parse_xml(body)
        href = feed.getroottree().getroot().getprevious().get("href")
        with client.get(href.removeprefix(BASE_URL)) as stylesheet:
            assert stylesheet.status_code == 200
            assert stylesheet.content_type.startswith("application/xslt+xml")
            transform = etree.XSLT(parse_xml(stylesheet.data))
        page = html.document_fromstring(str(transform(feed)))
        parsed = read_feed(body)
        assert page.findtext(".//h1") == parsed.feed.title
        assert page.get_element_by_id("feed-address").text_content() == BASE_URL + (
            f"/feeds/topics/computer-vision.{extension}"
        )
        articles = page.xpath("//article")
        assert [a.find("h2/a").get("href") for a in articles] == [e.link for e in parsed.entries]
        assert [a.find("h2/a").text_content() for a in articles] == [
            e.title for e in parsed.entries
        ]
        assert not list(page.iter("script"))
        assert not page.xpath("//@*[starts-with(name(), 'on')]")


def test_rss_descriptions_read_as_written_in_the_styled_view(client: FlaskClient) -> None:
    with client.get("/static/feed.xsl") as stylesheet:
        transform = etree.XSLT(parse_xml(stylesheet.data))
    feed = parse_xml(client.get("/feeds/providers/chosun-com.rss").data)
    page = html.document_fromstring(str(transform(feed)))
    texts = [p.text_content() for p in page.xpath("//article/p[not(@class)]")]
    assert any("Shares of <UBER.N> rose 3% & analysts" in text for text in texts), texts


@pytest.mark.parametrize("path", ["/", "/feeds/all.atom"])
def test_an_environ_without_empty_path_or_query_is_served(app: Flask, path: str) -> None:
    """PEP 3333 lets a server leave out an empty QUERY_STRING (and CGI an empty PATH_INFO): the
    root, and a feed's first page."""
    environ = create_environ(path, BASE_URL)
    del environ["QUERY_STRING"]
    if path == "/":
        del environ["PATH_INFO"]
    for _ in range(2):  # rendered through Flask, then from the cache
        body, status, _ = run_wsgi_app(app.wsgi_app, environ)
        assert status == "200 OK" and b"".join(body) == app.test_client().get(path).data


def test_every_route_is_matched_once_before_the_first_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Werkzeug compiles a rule's variable parts when a path first reaches them: the app
    matches a path of every rule when it is made, so that no worker's first request pays it."""
    from feedsvc import web

    matched: list[str] = []
    original = web.route_samples

    def recorded(app: Flask) -> list[str]:
        samples = original(app)
        matched.extend(samples)
        return samples

    monkeypatch.setattr(web, "route_samples", recorded)
    app = make_app()
    adapter = app.url_map.bind("localhost")
    rules = [adapter.match(path, "GET", return_rule=True)[0] for path in matched]
    assert rules == list(app.url_map.iter_rules())  # each rule, by a path of its own


FIRST_REQUESTS = """
import sys
from tests.conftest import make_app
app = make_app()
before = set(sys.modules)
client = app.test_client()
for extension in ("atom", "rss", "json"):
    response = client.get(f"/feeds/all.{extension}", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
print(" ".join(sorted(set(sys.modules) - before)))
"""


def test_a_new_process_first_feed_requests_import_nothing() -> None:
    """What a process's first renders would import (feedgen's extensions, lxml's writers) is
    imported when the app is made, before the server says it is ready."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FIRST_REQUESTS],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    assert done.stdout.split() == []


def test_the_warm_up_when_the_app_is_made_leaves_no_trace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """create_app renders a made-up page in every format (feedsvc.warmup): nothing of it is
    logged, counted or kept, and the first feed served is rendered for its request."""
    caplog.set_level(logging.INFO, logger="feedsvc.access")
    app = make_app()
    state = app.extensions["feedsvc"]
    assert [record for record in caplog.records if record.name == "feedsvc.access"] == []
    assert len(state.renders) == 0 and len(state.fragments) == 0
    counted = [
        sample.value
        for metric in (state.metrics.requests, state.metrics.render_cache)
        for family in metric.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    ]
    assert sum(counted) == 0
    response = app.test_client().get("/feeds/all.atom")
    assert response.status_code == 200 and b"warm-up.invalid" not in response.data
    assert len(state.fragments) == len(atom_entries(parse_xml(response.data)))
