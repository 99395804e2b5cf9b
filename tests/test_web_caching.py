"""HTTP that aggregators rely on: conditional GET, content codings, HEAD, and the render cache."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import brotli
import pytest
from flask.testing import FlaskClient

from feedsvc.pages import CONTENT_SECURITY_POLICY
from feedsvc.render import FORMATS
from tests.conftest import make_app, read_feed

URL = "/feeds/topics/computer-vision.atom"


def first_response(client: FlaskClient, **headers: str):  # type: ignore[no-untyped-def]
    response = client.get(URL, headers=headers)
    assert response.status_code == 200
    return response


def test_feed_responses_carry_validators_and_cache_headers(client: FlaskClient) -> None:
    response = first_response(client)
    etag, weak = response.get_etag()
    assert etag and not weak
    assert response.headers["Last-Modified"]
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.headers["Vary"] == "Accept-Encoding, Accept"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_last_modified_is_the_files_time_or_the_newest_entry_whichever_is_later(
    client: FlaskClient,
) -> None:
    modified = client.application.extensions["feedsvc"].collection.modified
    for url in ("/feeds/providers/usnews-com.rss", "/feeds/all.rss", "/", "/feeds.opml"):
        response = client.get(url)
        if url.endswith(".rss"):
            newest = max(e.published_parsed for e in read_feed(response.data).entries)
            expected = max(modified, datetime(*newest[:6], tzinfo=UTC))
        else:
            expected = modified  # the records are older than their files
        assert parsedate_to_datetime(response.headers["Last-Modified"]) == expected
        assert expected <= datetime.now(UTC)


def conditional(client: FlaskClient, **headers: str):  # type: ignore[no-untyped-def]
    return client.get(URL, headers={key.replace("_", "-"): value for key, value in headers.items()})


SHARED_HEADERS = ("ETag", "Cache-Control", "Vary", "Access-Control-Allow-Origin")


def assert_answered(response, full, status: int) -> None:  # type: ignore[no-untyped-def]
    """A 304 is the full answer's validators and caching headers without a body; a 200 is the
    full answer again."""
    assert response.status_code == status
    for header in SHARED_HEADERS:
        assert response.headers[header] == full.headers[header], header
    if status == 304:
        assert response.data == b"" and "Content-Encoding" not in response.headers
    else:
        assert response.data == full.data
        assert response.headers["Last-Modified"] == full.headers["Last-Modified"]


def test_matching_etag_is_304_with_the_same_headers_and_no_body(client: FlaskClient) -> None:
    full = first_response(client)
    response = conditional(client, If_None_Match=full.headers["ETag"])
    assert response.status_code == 304
    assert response.data == b""
    for header in ("ETag", "Cache-Control", "Vary", "Access-Control-Allow-Origin"):
        assert response.headers[header] == full.headers[header]
    # RFC 9110 §15.4.5: with an ETag present, a 304 need not repeat Last-Modified.


@pytest.mark.parametrize(
    ("make_header", "status"),
    [
        (lambda etag: etag, 304),
        (lambda etag: f"W/{etag}", 304),  # If-None-Match uses the weak comparison
        (lambda etag: f'"other", {etag}', 304),
        (lambda etag: "*", 304),
        (lambda etag: '"other"', 200),
        (lambda etag: "not a valid etag list", 200),
    ],
)
def test_if_none_match(client: FlaskClient, make_header, status: int) -> None:  # type: ignore[no-untyped-def]
    full = first_response(client)
    response = conditional(client, If_None_Match=make_header(full.headers["ETag"]))
    assert_answered(response, full, status)


@pytest.mark.parametrize(("offset", "status"), [(-1, 200), (0, 304), (1, 304)])
def test_if_modified_since(client: FlaskClient, offset: int, status: int) -> None:
    full = first_response(client)
    modified = parsedate_to_datetime(full.headers["Last-Modified"])
    since = format_datetime(modified + timedelta(seconds=offset), usegmt=True)
    assert_answered(conditional(client, If_Modified_Since=since), full, status)


@pytest.mark.parametrize("value", ["yesterday", "", "Thu, 99 Foo 2023 99:00:00 GMT", "0"])
def test_malformed_if_modified_since_is_ignored(client: FlaskClient, value: str) -> None:
    assert_answered(conditional(client, If_Modified_Since=value), first_response(client), 200)


def test_if_none_match_takes_priority_over_if_modified_since(client: FlaskClient) -> None:
    full = first_response(client)
    fresh = full.headers["Last-Modified"]
    stale = conditional(client, If_None_Match='"stale"', If_Modified_Since=fresh)
    assert_answered(stale, full, 200)
    both = conditional(client, If_None_Match=full.headers["ETag"], If_Modified_Since="garbage")
    assert_answered(both, full, 304)


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip", "gzip"),
        ("gzip, deflate, br", "br"),
        ("br;q=0.5, gzip", "gzip"),
        ("*", "br"),
        ("gzip;q=0, br;q=0", None),
        ("identity", None),
        ("", None),
        ("gzip;q=nonsense", None),  # malformed: identity is always safe
    ],
)
def test_content_codings(client: FlaskClient, accept: str, coding: str | None) -> None:
    identity = client.get(URL, headers={"Accept-Encoding": ""}).data
    response = client.get(URL, headers={"Accept-Encoding": accept})
    assert response.status_code == 200
    assert response.headers.get("Content-Encoding") == coding
    decode = {"gzip": gzip.decompress, "br": brotli.decompress, None: bytes}[coding]
    assert decode(response.data) == identity
    assert response.headers["Vary"] == "Accept-Encoding, Accept"


def test_each_coding_has_its_own_etag_and_304s_only_on_its_own(client: FlaskClient) -> None:
    plain = client.get(URL, headers={"Accept-Encoding": ""}).headers["ETag"]
    zipped = client.get(URL, headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    assert plain != zipped
    again = client.get(URL, headers={"Accept-Encoding": "gzip", "If-None-Match": zipped})
    assert again.status_code == 304 and again.headers["ETag"] == zipped
    other = client.get(URL, headers={"Accept-Encoding": "", "If-None-Match": zipped})
    assert other.status_code == 200


def test_head_has_the_headers_of_get_and_no_body(client: FlaskClient) -> None:
    get = client.get(URL, headers={"Accept-Encoding": "gzip"})
    head = client.head(URL, headers={"Accept-Encoding": "gzip"})
    assert head.status_code == 200 and head.data == b""
    for header in ("ETag", "Last-Modified", "Content-Length", "Content-Type", "Content-Encoding"):
        assert head.headers[header] == get.headers[header]


def test_a_second_request_renders_nothing(client: FlaskClient) -> None:
    renders = client.application.extensions["feedsvc"].renders
    first = client.get(URL)
    misses = renders.stats.misses
    for accept in ("", "gzip", "br"):
        client.get(URL, headers={"Accept-Encoding": accept})
    assert renders.stats.misses == misses
    assert renders.stats.hits == 3
    assert client.get(URL).data == first.data


def test_pages_formats_and_hosts_are_cached_apart() -> None:
    client = make_app(FEED_SIZE=2, BASE_URL=None).test_client()
    bodies = {
        client.get("/feeds/all.atom").data,
        client.get("/feeds/all.atom?page=2").data,
        client.get("/feeds/all.rss").data,
        client.get("/feeds/all.atom", base_url="http://other.example").data,
    }
    assert len(bodies) == 4


def test_cache_stays_within_its_bound() -> None:
    client = make_app(RENDER_CACHE_BYTES=8_000, FEED_SIZE=1).test_client()
    for page in range(1, 10):
        client.get(f"/feeds/all.atom?page={page}")
    renders = client.application.extensions["feedsvc"].renders
    assert renders.stats.evictions > 0
    assert renders.size <= 8_000
    before = renders.stats.misses
    client.get("/feeds/all.atom?page=1")  # evicted long ago: rendered again
    assert renders.stats.misses == before + 1


def test_errors_are_not_cached(client: FlaskClient) -> None:
    assert client.get("/feeds/all.atom?page=5").status_code == 404
    assert len(client.application.extensions["feedsvc"].renders) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Accept-Encoding": "gzip"},
        {"Accept-Encoding": "br, gzip"},
        {"If-None-Match": "*"},
        {"If-Modified-Since": "Thu, 02 Feb 2023 10:00:00 GMT"},
        {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
    ],
)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_first_render_and_cache_hits_answer_alike(headers: dict[str, str], method: str) -> None:
    """The first request renders through Flask; later ones are answered before Flask. Both
    must send the same status, headers and body."""
    client = make_app().test_client()
    answers = []
    for _ in range(2):
        response = client.open(URL + "?unrelated=1", method=method, headers=headers)
        answers.append((response.status_code, sorted(response.headers.items()), response.data))
    renders = client.application.extensions["feedsvc"].renders
    assert (renders.stats.misses, renders.stats.hits) == (1, 1)
    assert answers[0] == answers[1]


def test_bad_page_is_refused_even_when_page_one_is_cached(client: FlaskClient) -> None:
    assert client.get(URL).status_code == 200
    assert client.get(URL + "?page=0").status_code == 400
    assert client.get(URL + "?page=1&page=x").status_code == 200  # the first value counts


@pytest.mark.parametrize(
    "path",
    [*(f"/feeds/topics/computer-vision.{ext}" for ext in FORMATS), "/feeds.opml", "/"],
)
def test_every_format_the_opml_and_pages_answer_conditional_requests(
    client: FlaskClient, path: str
) -> None:
    first = client.get(path)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "public, max-age=300"
    by_etag = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    by_date = client.get(path, headers={"If-Modified-Since": first.headers["Last-Modified"]})
    assert by_etag.status_code == by_date.status_code == 304
    assert by_etag.headers["ETag"] == first.headers["ETag"] and by_etag.data == b""


CHROME_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
FEEDPARSER_ACCEPT = (
    "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,"
    "application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1"
)


# A feed reader that takes HTML too, but less than Atom and RSS: it gets every feed, JSON too.
HTML_TOO_ACCEPT = "application/rss+xml, application/atom+xml, text/html;q=0.5, */*;q=0.1"


@pytest.mark.parametrize("extension", list(FORMATS))
def test_a_browser_gets_the_feeds_html_view_and_readers_the_unchanged_feed(
    client: FlaskClient, extension: str
) -> None:
    path = f"/feeds/topics/ai.{extension}"
    readers = [
        client.get(path, headers={"Accept": accept})
        for accept in (FEEDPARSER_ACCEPT, "*/*", FORMATS[extension].mime_type, HTML_TOO_ACCEPT)
    ]
    readers.append(client.get(path))  # no Accept at all
    renders = client.application.extensions["feedsvc"].renders
    browser = client.get(path, headers={"Accept": CHROME_ACCEPT})
    rendered = renders.stats.misses
    assert {reader.content_type for reader in readers} == {FORMATS[extension].media_type}
    assert len({reader.data for reader in readers}) == 1
    assert "Content-Security-Policy" not in readers[0].headers
    assert browser.content_type == "text/html; charset=utf-8"
    assert browser.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY  # no script
    assert browser.headers["ETag"] != readers[0].headers["ETag"]  # another representation
    assert browser.headers["Vary"] == readers[0].headers["Vary"] == "Accept-Encoding, Accept"
    # The view's own URL gives the same document, whatever the Accept.
    own = client.get(f"{path}.html", headers={"Accept": FEEDPARSER_ACCEPT})
    assert (own.data, own.headers["ETag"]) == (browser.data, browser.headers["ETag"])
    # Conditional GET, through Flask and then the cache-hit path; a reader never gets a 304
    # for the view's ETag.
    for _ in range(2):
        again = client.get(
            path, headers={"Accept": CHROME_ACCEPT, "If-None-Match": browser.headers["ETag"]}
        )
        assert again.status_code == 304 and again.headers["ETag"] == browser.headers["ETag"]
        crossed = client.get(
            path, headers={"Accept": FEEDPARSER_ACCEPT, "If-None-Match": browser.headers["ETag"]}
        )
        assert crossed.status_code == 200 and crossed.data == readers[0].data
    gzipped = client.get(path, headers={"Accept": CHROME_ACCEPT, "Accept-Encoding": "gzip"})
    assert gzip.decompress(gzipped.data) == browser.data
    assert gzipped.headers["ETag"] not in (browser.headers["ETag"], readers[0].headers["ETag"])
    # Rendered once, then served from the render cache like the feed.
    assert renders.stats.misses == rendered


def test_pages_keep_their_type_for_browsers(client: FlaskClient) -> None:
    assert client.get("/", headers={"Accept": CHROME_ACCEPT}).content_type.startswith("text/html")
    assert client.get("/", headers={"Accept": "*/*"}).content_type.startswith("text/html")


def test_if_modified_since_with_two_dates_is_ignored(client: FlaskClient) -> None:
    """RFC 9110 §13.1.3: a value with more than one member is ignored, not read as its first
    date (issue 16, item 16)."""
    fresh = first_response(client).headers["Last-Modified"]
    assert conditional(client, If_Modified_Since=fresh).status_code == 304
    for value in (f"{fresh}, {fresh}", f"{fresh}, Thu, 01 Jan 1970 00:00:00 GMT"):
        for _ in range(2):  # through Flask, then the cache-hit path
            assert conditional(client, If_Modified_Since=value).status_code == 200
