"""Search over HTTP: the search feeds in every format (valid, paged, canonical, with the ids of
every other feed), the search page and the index page's search box, canonical redirects, HTTP
caching like every feed (the fast path included), the custom feeds' share of the render cache,
reloads, the load limit, and search turned off."""

from __future__ import annotations

import gzip
import logging
import re
import time
from pathlib import Path
from typing import Any

import brotli
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from lxml import html

from feedsvc import fulltext, web
from feedsvc.cli import cli
from feedsvc.render import FORMATS
from tests.conftest import (
    ATOM,
    BASE_URL,
    RECORDS,
    entry_ids,
    make_app,
    paging_links,
    parse_xml,
    read_feed,
    read_json_feed,
    write_record,
)

VISION = "/feeds/search.atom?q=vision"


def state(client: FlaskClient) -> Any:
    return client.application.extensions["feedsvc"]


def feed_title(body: bytes, extension: str) -> str:
    if extension == "json":
        return str(read_json_feed(body)["title"])
    return str(read_feed(body).feed.title)


def self_link(body: bytes, extension: str) -> str:
    if extension == "json":
        return str(read_json_feed(body)["feed_url"])
    root = parse_xml(body)
    return next(link.get("href") for link in root.iter(f"{ATOM}link") if link.get("rel") == "self")


# -- the feeds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", FORMATS)
def test_a_search_feed_holds_the_matches_newest_first_with_their_usual_ids(
    client: FlaskClient, extension: str
) -> None:
    url = f"/feeds/search.{extension}?q=vision&topic=ai"
    response = client.get(url)
    assert response.status_code == 200
    assert response.content_type == FORMATS[extension].media_type
    body = response.data
    assert feed_title(body, extension) == 'feedsvc: search "vision" in AI'
    assert self_link(body, extension) == BASE_URL + url
    everything = entry_ids(client.get(f"/feeds/all.{extension}").data, extension)
    computer_vision = entry_ids(
        client.get(f"/feeds/topics/computer-vision.{extension}").data, extension
    )
    ai = set(entry_ids(client.get(f"/feeds/topics/ai.{extension}").data, extension))
    # "vision" is in these records through their topic; the order is the all-items feed's
    expected = [entry for entry in everything if entry in set(computer_vision) & ai]
    assert entry_ids(body, extension) == expected and len(expected) == 3


def test_atom_and_rss_hold_what_a_validator_asks_for(client: FlaskClient) -> None:
    atom = parse_xml(client.get(VISION).data)
    assert [element.tag for element in atom if element.tag in (f"{ATOM}id", f"{ATOM}title")] == [
        f"{ATOM}id",
        f"{ATOM}title",
    ]
    assert atom.findtext(f"{ATOM}id") == f"{BASE_URL}/search?q=vision"
    assert len(atom.findall(f"{ATOM}updated")) == 1
    links = {link.get("rel"): link.get("href") for link in atom.findall(f"{ATOM}link")}
    assert links == {"self": BASE_URL + VISION, "alternate": f"{BASE_URL}/search?q=vision"}
    for entry in atom.iter(f"{ATOM}entry"):
        assert entry.findtext(f"{ATOM}id") and entry.findtext(f"{ATOM}updated")
    rss = parse_xml(client.get("/feeds/search.rss?q=vision").data)
    channel = rss.find("channel")
    assert channel.findtext("link") == f"{BASE_URL}/search?q=vision"
    assert channel.findtext("description")
    assert all(item.find("guid") is not None for item in channel.iter("item"))


@pytest.mark.parametrize("extension", FORMATS)
def test_search_feeds_are_paged_with_canonical_links(extension: str) -> None:
    client = make_app(FEED_SIZE=2).test_client()
    base = f"{BASE_URL}/feeds/search.{extension}?q=vision"
    first = client.get(f"/feeds/search.{extension}?q=vision")
    second = client.get(f"/feeds/search.{extension}?q=vision&page=2")
    assert first.status_code == second.status_code == 200
    expected = {"first": base, "last": base + "&page=2", "next": base + "&page=2"}
    if extension == "json":
        expected = {"next": expected["next"]}
    assert paging_links(first.data, extension) == expected
    assert self_link(second.data, extension) == base + "&page=2"
    ids = entry_ids(first.data, extension) + entry_ids(second.data, extension)
    assert len(ids) == len(set(ids)) == 4
    assert client.get(f"/feeds/search.{extension}?q=vision&page=3").status_code == 404


@pytest.mark.parametrize(
    ("asked", "canonical"),
    [
        ("q=Vision", "q=vision"),
        ("topic=AI&q=vision", "q=vision&topic=ai"),
        ("q=vision&topic=Computer+Vision&topic=ai", "q=vision&topic=ai&topic=computer-vision"),
        ("q=vision&topic=", "q=vision"),
        ("q=vision&utm_source=x", "q=vision"),
        ("q=vision%20%20italy", "q=italy+vision"),
        ("q=vision&page=1", "q=vision"),
        ("q=vision&page=02", "q=vision&page=2"),
        ("provider=usnews.com", "provider=usnews-com"),
        ("q=%22facial+recognition%22*", "q=%22facial+recognition%22*"),
    ],
)
def test_every_other_spelling_of_a_question_is_redirected_to_its_one(
    client: FlaskClient, asked: str, canonical: str
) -> None:
    for path in ("/feeds/search.atom", "/search"):
        response = client.get(f"{path}?{asked}")
        if asked == canonical:
            assert response.status_code == 200
            continue
        assert response.status_code == 301, asked
        assert response.headers["Location"] == f"{BASE_URL}{path}?{canonical}"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert client.get(response.headers["Location"]).status_code in (200, 404)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "a search needs words (q) or a filter"),
        ("q=-+%26", "a search needs words (q) or a filter"),  # nothing that could match
        ("q=%22open", "unbalanced quote"),
        ("q=a*", "at least 2 letters"),
        ("q=" + "x" * 300, "longer than 256"),
        ("since=tomorrow", "since must be a day"),
        ("q=x&page=0", "page must be a positive whole number"),
        ("&".join(f"p{i}=1" for i in range(65)), "at most 64 parameters"),
    ],
)
def test_malformed_questions_are_400_with_one_line(
    client: FlaskClient, query: str, reason: str
) -> None:
    response = client.get(f"/feeds/search.rss?{query}")
    assert response.status_code == 400
    assert response.content_type == "text/plain; charset=utf-8"
    text = response.data.decode()
    assert reason in text and text.count("\n") == 1, text
    page = client.get(f"/search?{query}")
    if "needs words" in reason:  # on the page, no question is the form
        expected = (
            ("200 OK", None) if not query else ("301 MOVED PERMANENTLY", f"{BASE_URL}/search")
        )
        assert (page.status, page.headers.get("Location")) == expected
    else:
        assert page.status_code == 400
        document = html.document_fromstring(page.data)
        assert reason in document.findtext(".//p[@class='error']")
        assert document.find(".//form[@action='http://feeds.test/search']") is not None


def test_filters_alone_and_exclusions_make_feeds(client: FlaskClient) -> None:
    def titles(url: str) -> list[str]:
        response = client.get(url)
        assert response.status_code == 200, url
        return [entry.title for entry in read_feed(response.data).entries]

    vision = titles("/feeds/search.atom?topic=computer-vision")
    assert vision == titles("/feeds/topics/computer-vision.atom")
    without = titles("/feeds/search.atom?topic=computer-vision&not_provider=usnews-com")
    assert len(without) == len(vision) - 1 and "Italy Outlaws" not in " ".join(without)
    assert titles("/feeds/search.atom?q=-italy&topic=computer-vision") == [
        title for title in vision if "Italy" not in title
    ]
    assert titles("/feeds/search.atom?q=vision&since=2023-01-01") == vision[:2]
    titled = read_feed(client.get("/feeds/search.atom?topic=ai&not_topic=computer-vision").data)
    assert titled.feed.title == "feedsvc: articles in AI not in Computer Vision"


# -- HTTP caching, like every feed ----------------------------------------------------------------


def test_search_feeds_are_cached_conditional_and_compressed(client: FlaskClient) -> None:
    first = client.get(VISION)
    etag = first.headers["ETag"]
    assert (
        first.headers["Last-Modified"] and first.headers["Cache-Control"] == "public, max-age=300"
    )
    assert first.headers["Vary"] == "Accept-Encoding, Accept"
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    again = client.get(VISION)
    assert again.data == first.data and again.headers["ETag"] == etag
    assert client.get(VISION, headers={"If-None-Match": etag}).status_code == 304
    since = {"If-Modified-Since": first.headers["Last-Modified"]}
    assert client.get(VISION, headers=since).status_code == 304
    zipped = client.get(VISION, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == first.data and zipped.headers["ETag"] != etag
    squeezed = client.get(VISION, headers={"Accept-Encoding": "br"})
    assert bytes(brotli.decompress(squeezed.data)) == first.data
    head = client.head(VISION)
    assert head.status_code == 200 and head.data == b"" and head.headers["ETag"] == etag


def flask_requests(app: Flask) -> list[str]:
    """The paths of the requests that reach Flask (the fast path answers the others)."""
    seen: list[str] = []
    app.before_request(lambda: seen.append(web.request.full_path))  # type: ignore[func-returns-value]
    return seen


def test_a_repeated_poll_takes_the_fast_path(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    through_flask = flask_requests(app)
    client = app.test_client()
    caplog.set_level(logging.INFO, "feedsvc.access")
    first, second = client.get(VISION), client.get(VISION)
    assert second.data == first.data and through_flask == [VISION]
    lines = [r.getMessage() for r in caplog.records if r.name == "feedsvc.access"]
    assert "cache=miss" in lines[0] and "cache=hit" in lines[1]
    metrics = client.get("/metrics").data.decode()
    assert re.search(r'route="feeds.search_feed",status="200"} 2', metrics), metrics


@pytest.mark.parametrize(
    ("url", "route"),
    [
        ("/feeds/stories/all.atom", "feeds.all_stories_feed"),
        ("/feeds/stories/topics/ai.rss", "feeds.topic_stories_feed"),
        ("/feeds/topics/ai.json", "feeds.group_feed"),
        ("/feeds/search.atom?q=vision", "feeds.search_feed"),
    ],
)
def test_cache_hits_are_counted_under_their_own_route(
    client: FlaskClient, url: str, route: str
) -> None:
    assert client.get(url).status_code == client.get(url).status_code == 200
    metrics = client.get("/metrics").data.decode()
    assert f'route="{route}",status="200"}} 2.0' in metrics, metrics


def test_unique_questions_evict_each_other_never_the_standard_feeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Sixty searches back to back would be refused (503) past searches' share of the process's
    # time, which a loaded machine reaches (feedsvc.admission; tests/test_search_load.py).
    monkeypatch.setattr(web.SearchLoad, "SHARE", float("inf"))
    app = make_app(RENDER_CACHE_BYTES=400_000)
    client = app.test_client()
    standard = ["/feeds/all.atom", "/feeds/topics/ai.atom", "/feeds/topics/ai.rss", "/"]
    for url in standard:
        assert client.get(url).status_code == 200
    kept = len(state(client).renders)
    for number in range(60):
        assert client.get(f"/feeds/search.atom?q=-nothing{number}").status_code == 200
    caches = state(client)
    assert caches.custom_renders.stats.evictions > 0
    assert caches.renders.stats.evictions == 0 and len(caches.renders) == kept
    assert caches.renders.size + caches.custom_renders.size <= 400_000 // 2


def test_a_reload_adds_and_removes_matches_and_keeps_the_etag_of_unchanged_results(
    tmp_records: Path,
) -> None:
    write_record(tmp_records, "old.md", "Robots at work", day=1)
    app = make_app(SEEDS_DIR=tmp_records)
    client = app.test_client()
    url = "/feeds/search.atom?q=robots"
    before = client.get(url)
    assert [entry.title for entry in read_feed(before.data).entries] == ["Robots at work"]

    write_record(tmp_records, "other.md", "Nothing to see", day=2)
    assert app.extensions["feedsvc"].reload()
    unchanged = client.get(url)
    assert unchanged.headers["ETag"] == before.headers["ETag"]
    assert unchanged.headers["Last-Modified"] == before.headers["Last-Modified"]

    added = write_record(tmp_records, "new.md", "More robots arrive", day=3)
    assert app.extensions["feedsvc"].reload()
    after = client.get(url)
    assert [e.title for e in read_feed(after.data).entries] == [
        "More robots arrive",
        "Robots at work",
    ]
    assert after.headers["ETag"] != before.headers["ETag"]

    added.unlink()
    assert app.extensions["feedsvc"].reload()
    assert [e.title for e in read_feed(client.get(url).data).entries] == ["Robots at work"]


def test_an_overlay_past_its_bound_is_folded_and_healthz_counts_it(
    tmp_records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fulltext, "FOLD_AT", 2)
    write_record(tmp_records, "old.md", "Robots at work", day=1)
    app = make_app(SEEDS_DIR=tmp_records, SEARCH_INDEX=str(tmp_path / "search.sqlite"))
    client = app.test_client()
    url = "/feeds/search.atom?q=robots"
    client.get(url)
    for day in (2, 3, 4):
        write_record(tmp_records, f"new{day}.md", f"Robots on day {day}", day=day)
    assert app.extensions["feedsvc"].reload()
    found = [entry.title for entry in read_feed(client.get(url).data).entries]
    assert found == ["Robots on day 4", "Robots on day 3", "Robots on day 2", "Robots at work"]
    deadline = time.monotonic() + 30
    while client.get("/healthz").json["search"]["folds"] != 1:
        assert time.monotonic() < deadline, "the overlay was not folded"
        time.sleep(0.01)
    assert client.get("/healthz").json["search"]["overlay"] == 0
    again = [entry.title for entry in read_feed(client.get(url + "&topic=ai").data).entries]
    assert again == found


def test_searches_without_a_turn_are_refused_and_cached_feeds_and_searches_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = make_app()
    through_flask = flask_requests(app)
    client = app.test_client()
    cached = client.get(VISION)
    cached_page = client.get("/search?q=vision")
    client.get("/feeds/all.atom")
    monkeypatch.setattr(web.SearchLoad, "SHARE", 0.0)  # no turn is free, and (the app not
    # told of its server's threads) nobody may wait for one
    for url in ("/feeds/search.atom?q=italy", "/search?q=italy"):
        refused = client.get(url)
        assert refused.status_code == 503, url
        assert refused.headers["Retry-After"] == "1"
        assert refused.data.decode().count("\n") == 1
    # A feed is refused before Flask, at the cost of a cached poll; the page goes through it.
    assert through_flask == [VISION, "/search?q=vision", "/feeds/all.atom?", "/search?q=italy"]
    assert client.get(VISION).data == cached.data  # already rendered: answered as ever
    assert client.get("/search?q=vision").data == cached_page.data  # without a turn
    assert client.get("/feeds/all.atom").status_code == 200
    assert state(client).search_load.refused == 2
    assert client.get("/healthz").json["search"]["refused"] == 2


# -- the pages ------------------------------------------------------------------------------------


def page(client: FlaskClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, url
    policy = response.headers["Content-Security-Policy"]
    assert "form-action 'self'" in policy and "script-src" not in policy
    document = html.document_fromstring(response.data)
    assert not list(document.iter("script"))
    return document


def test_the_index_page_has_the_search_box(client: FlaskClient) -> None:
    form = page(client, "/").find(".//form[@role='search']")
    assert form.get("action") == f"{BASE_URL}/search" and form.get("method") == "get"
    assert form.find(".//input[@name='q']").get("type") == "search"


def test_the_search_page_shows_the_matches_and_links_their_feeds(client: FlaskClient) -> None:
    document = page(client, "/search?q=vision&topic=ai")
    alternates = {
        link.get("type"): link.get("href")
        for link in document.iter("link")
        if link.get("rel") == "alternate"
    }
    assert alternates == {
        fmt.mime_type: f"{BASE_URL}/feeds/search.{fmt.extension}?q=vision&topic=ai"
        for fmt in FORMATS.values()
    }
    titles = [a.text_content() for a in document.findall(".//article/h3/a")]
    feed = read_feed(client.get("/feeds/search.atom?q=vision&topic=ai").data)
    assert titles == [entry.title for entry in feed.entries]
    assert document.find(".//input[@name='q']").get("value") == "vision"
    assert document.find(".//option[@selected]").get("value") == "ai"
    assert document.findtext(".//h2") == 'Search "vision" in AI'


def test_the_search_page_without_a_question_is_the_form(client: FlaskClient) -> None:
    document = page(client, "/search")
    assert document.find(".//form[@role='search']") is not None
    assert not document.findall(".//article")
    assert not [link for link in document.iter("link") if link.get("rel") == "alternate"]


def test_the_search_page_keeps_the_other_filters_in_the_form(client: FlaskClient) -> None:
    document = page(client, "/search?q=vision&topic=ai&topic=computer-vision&not_provider=x")
    hidden = {(i.get("name"), i.get("value")) for i in document.findall(".//input[@type='hidden']")}
    assert hidden == {("topic", "ai"), ("topic", "computer-vision"), ("not_provider", "x")}
    assert document.find(".//select") is None


def test_an_empty_result_says_so(client: FlaskClient) -> None:
    document = page(client, "/search?q=zzzzzz")
    assert "No articles match" in document.text_content()
    feed = read_feed(client.get("/feeds/search.atom?q=zzzzzz").data)
    assert feed.entries == [] and feed.feed.title == 'feedsvc: search "zzzzzz"'


# -- search turned off, and where the index lives ---------------------------------------------


def test_search_can_be_turned_off() -> None:
    client = make_app(SEARCH_INDEX="off").test_client()
    assert client.get(VISION).status_code == 404
    assert client.get("/search?q=vision").status_code == 404
    assert page(client, "/").find(".//form") is None
    assert client.get("/healthz").json["search"] is None


def test_the_index_file_lives_beside_the_parse_cache_and_a_restart_reuses_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "feedsvc.fulltext")
    cache = tmp_path / "parse.cache"
    make_app(PARSE_CACHE=str(cache))
    index = tmp_path / "parse.cache.search"
    assert index.is_file() and "built" in caplog.text
    caplog.clear()
    app: Flask = make_app(PARSE_CACHE=str(cache))
    assert "reused" in caplog.text
    assert app.test_client().get(VISION).status_code == 200
    explicit = tmp_path / "elsewhere" / "index.sqlite"
    make_app(SEARCH_INDEX=str(explicit))
    assert explicit.is_file()


def test_a_build_leaves_search_out_unless_asked(tmp_path: Path) -> None:
    for options, has_box in (([], False), (["--search"], True)):
        out = tmp_path / f"site{len(options)}"
        arguments = ["build", "--seeds", str(RECORDS), "--out", str(out), "--base-url", BASE_URL]
        result = CliRunner().invoke(
            cli, [*arguments, "-q", *options], env={"FEEDSVC_PARSE_CACHE": "off"}
        )
        assert result.exit_code == 0, result.output
        index = html.document_fromstring((out / "index.html").read_bytes())
        assert (index.find(".//form[@role='search']") is not None) == has_box
        assert not list(out.glob("feeds/search*")) and not list(out.glob("search*"))
