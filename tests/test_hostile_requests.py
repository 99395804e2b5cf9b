"""Bad requests: whatever a client sends, feedsvc answers with a well-formed response that is
never a 5xx, never a stack trace, never a `secured` value or a filesystem path.

Most cases go through Flask's test client, twice where it matters (a first render through Flask,
then the cache-hit fast path in front of it). What the test client normalizes away (dot segments,
raw bytes in the request line, a missing Host, huge request lines) is sent over a raw socket to
the production servers.

Decisions these tests pin (and the README states):
- `page`: ASCII digits only; 0, negative, empty or non-numeric is 400; a page past the end,
  however huge, is 404; when repeated, the first one wins; leading zeros are allowed.
- Unknown query parameters are ignored.
- Without BASE_URL, links follow the Host header; a Host that is not a host name is 400; the
  X-Forwarded-* headers are never trusted.
- Other methods than GET and HEAD are 405 with `Allow` (OPTIONS is answered, as HTTP intends).
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import brotli
import lxml.html
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from feedsvc.feeds import iter_feeds
from feedsvc.server import SERVERS
from tests.conftest import BASE_URL, RECORDS, SECRET_MARKER, make_app, parse_xml, read_feed
from tests.servers import running_feedsvc

FEEDS = ["/feeds/all.atom", "/feeds/topics/ai.rss", "/feeds/providers/usnews-com.atom"]
LEAKS = [SECRET_MARKER, str(RECORDS), str(Path.home()), "Traceback", 'File "', "site-packages"]


def assert_safe(response: TestResponse) -> None:
    """The promises every response keeps, whatever was asked."""
    assert response.status_code < 500, response.data[:300]
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    body = decoded_body(response)
    text = body.decode("utf-8", "replace")
    for leak in LEAKS:
        assert leak not in text, leak
    assert_well_formed(response.status_code, response.content_type, body)


def decoded_body(response: TestResponse) -> bytes:
    coding = response.headers.get("Content-Encoding")
    if not response.data:  # HEAD, 304
        return b""
    if coding == "gzip":
        return gzip.decompress(response.data)
    if coding == "br":
        return bytes(brotli.decompress(response.data))
    assert coding is None, coding
    return response.data


def assert_well_formed(status: int, content_type: str, body: bytes) -> None:
    """Each media type parses as what it says it is."""
    if status == 304 or not body:
        assert body == b"" or status != 304
        return
    if content_type.startswith(("application/atom+xml", "application/rss+xml")):
        parse_xml(body)
        read_feed(body)
    elif content_type.startswith("application/json") or content_type.startswith(
        "application/feed+json"
    ):
        json.loads(body)
    elif content_type.startswith("text/html"):
        assert body.lstrip().lower().startswith((b"<!doctype html", b"<html")), body[:80]
    else:
        assert content_type.startswith("text/") and content_type.endswith("charset=utf-8")
        body.decode("utf-8")


@pytest.fixture
def host_client() -> FlaskClient:
    """An app without BASE_URL: links come from the request."""
    return make_app(BASE_URL=None).test_client()


def twice(client: FlaskClient, url: str, **kwargs: Any) -> list[TestResponse]:
    """The first answer (rendered through Flask) and the second (the cached fast path)."""
    return [client.get(url, **kwargs), client.get(url, **kwargs)]


# -- slugs and paths ----------------------------------------------------------------------------

TRAVERSALS = [
    "/feeds/topics/..%2f..%2f..%2fetc%2fpasswd.atom",
    "/feeds/topics/%2e%2e%2f%2e%2e%2fetc%2fpasswd.atom",
    "/feeds/topics/%252e%252e%252f%252e%252e%252fetc%252fpasswd.atom",
    "/feeds/topics/..%5c..%5cwindows.atom",
    "/feeds/topics/%c0%ae%c0%ae%c0%afetc.atom",
    "/feeds/topics/x%00y.atom",
    "/feeds/topics/%ff%fe.rss",
    "/feeds/providers/....//....//etc.atom",
    "/feeds/%2e%2e/%2e%2e/records/broken-list.md",
    "/feeds/topics/" + "%2e%2e%2f" * 40 + "records.atom",
    "/broken-list.md",
    "/records/",
    "/seeds/",
    "/tests/data/records/",
    "/feeds/",
    "/feeds/topics/",
    "/static/",
    "/static/%2e%2e/web.py",
    "/static/..%2f..%2fREADME.md",
    "/static/%252e%252e%252fweb.py",
]


@pytest.mark.parametrize("url", TRAVERSALS)
def test_traversal_in_slugs_is_a_plain_404(client: FlaskClient, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert response.content_type == "text/plain; charset=utf-8"
    assert_safe(response)


@pytest.mark.parametrize("length", [2_000, 20_000, 200_000])
def test_very_long_paths_and_queries(client: FlaskClient, length: int) -> None:
    long_slug = client.get(f"/feeds/topics/{'a' * length}.atom")
    assert long_slug.status_code == 404
    assert_safe(long_slug)
    for response in twice(client, f"/feeds/all.atom?q={'x' * length}&page=1"):
        assert response.status_code == 200
        assert_safe(response)


def test_unknown_query_parameters_are_ignored(client: FlaskClient) -> None:
    plain = client.get("/feeds/all.atom").data
    for query in ["utm_source=x&utm_medium=y", "%ff=%fe", "a", "=", "&&&", "page_size=1", "PAGE=9"]:
        for response in twice(client, f"/feeds/all.atom?{query}"):
            assert response.status_code == 200, query
            assert response.data == plain, query


# -- page -----------------------------------------------------------------------------------------

PAGES = [
    ("1", 200),
    ("0001", 200),
    ("1&page=2", 200),  # repeated: the first one wins
    ("2&page=1", 404),
    ("99999999999999999999999", 404),
    ("9" * 5000, 404),  # int() refuses strings of more than 4,300 digits
    ("0" * 5000 + "1", 200),
    ("0", 400),
    ("000", 400),
    ("-1", 400),
    ("+1", 400),
    ("1.0", 400),
    ("1e3", 400),
    (" 1", 400),
    ("", 400),
    ("abc", 400),
    ("%EF%BC%91", 400),  # FULLWIDTH DIGIT ONE
    ("%D9%A1", 400),  # ARABIC-INDIC DIGIT ONE
    ("%C2%B2", 400),  # SUPERSCRIPT TWO: str.isdigit() says yes, int() says no
    ("%00", 400),
    ("%ff", 400),
]


@pytest.mark.parametrize(("page", "status"), PAGES)
def test_page_values(client: FlaskClient, page: str, status: int) -> None:
    client.get("/feeds/all.atom?page=1")  # page 1 cached: the fast path must decide alike
    for response in twice(client, f"/feeds/all.atom?page={page}"):
        assert response.status_code == status
        assert_safe(response)
    if status == 200:
        assert response.data == client.get("/feeds/all.atom").data


def test_the_400_for_a_page_echoes_at_most_a_short_quoted_value(client: FlaskClient) -> None:
    response = client.get("/feeds/all.atom?page=" + "<script>" * 100)
    assert response.status_code == 400
    assert response.data.count(b"<script>") <= 3
    assert_safe(response)


# -- conditional and negotiation headers --------------------------------------------------------

MALFORMED_HEADERS = [
    {"If-Modified-Since": "garbage"},
    {"If-Modified-Since": "Mon, 01 Jan 99999 00:00:00 GMT"},
    {"If-Modified-Since": "Sat, 31 Feb 2023 99:99:99 GMT"},
    {"If-Modified-Since": "\x00\x01"},
    {"If-Modified-Since": "9" * 10_000},
    {"If-None-Match": '"unterminated'},
    {"If-None-Match": "W/"},
    {"If-None-Match": ",,,,"},
    {"If-None-Match": '"a", ' * 2000},
    {"If-None-Match": "\xff\xfe"},
    {"Accept-Encoding": "gzip;q=abc, br;q=-1, *;q=2"},
    {"Accept-Encoding": "\x00\xff"},
    {"Accept-Encoding": ";;;,,,q="},
    {"Accept-Encoding": "br;q=1e400"},
    {"Accept-Encoding": "gzip, " * 5000},
    {"Accept-Encoding": "identity;q=0, *;q=0"},
]


@pytest.mark.parametrize("headers", MALFORMED_HEADERS)
def test_malformed_conditional_and_encoding_headers(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    for url in FEEDS:
        for response in twice(client, url, headers=headers):
            assert response.status_code == 200, headers
            assert_safe(response)


def test_if_none_match_star_is_304(client: FlaskClient) -> None:
    """RFC 9110 §13.1.2: `*` matches any current representation."""
    for response in twice(client, FEEDS[0], headers={"If-None-Match": "*"}):
        assert response.status_code == 304 and response.data == b""
        assert_safe(response)


# -- methods --------------------------------------------------------------------------------------

METHODS = ["POST", "PUT", "DELETE", "PATCH", "TRACE", "CONNECT", "PROPFIND", "BREW"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("url", [*FEEDS, "/healthz", "/feeds/topics/no-such.atom"])
def test_other_methods_are_405_with_allow(client: FlaskClient, method: str, url: str) -> None:
    client.get(url)  # cached where it can be: the fast path must not answer other methods
    response = client.open(url, method=method, data=b"x=1")
    assert response.status_code == 405
    allowed = {name.strip() for name in response.headers["Allow"].split(",")}
    assert {"GET", "HEAD"} <= allowed and method not in allowed
    assert_safe(response)


def test_options_is_answered_with_allow(client: FlaskClient) -> None:
    response = client.options(FEEDS[0])
    assert response.status_code == 200 and response.data == b""
    assert "GET" in response.headers["Allow"]
    assert_safe(response)


# -- Host and proxy headers -----------------------------------------------------------------------


def self_link(body: bytes) -> str:
    parsed = read_feed(body)
    return str(next(link.href for link in parsed.feed.links if link.rel == "self"))


@pytest.mark.parametrize(
    "host", ["a b", "<script>", 'x"y', "evil.example/path", "", "\x00", "a@b", "[::1"]
)
def test_without_base_url_a_host_that_is_no_host_name_is_400(
    host_client: FlaskClient, host: str
) -> None:
    """Otherwise every link in the feed would be `http:///...` (what Werkzeug makes of it)."""
    for response in twice(host_client, FEEDS[0], headers={"Host": host}):
        assert response.status_code == 400
        assert b"Host" in response.data
        assert_safe(response)


def test_without_base_url_host_names_are_lower_cased(host_client: FlaskClient) -> None:
    upper = host_client.get(FEEDS[0], headers={"Host": "READER.Example:8080"})
    assert self_link(upper.data) == "http://reader.example:8080" + FEEDS[0]


def test_forwarded_headers_are_never_trusted(host_client: FlaskClient) -> None:
    headers = {
        "Host": "reader.example",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Port": "444",
        "X-Forwarded-Prefix": "/evil",
        "Forwarded": "host=evil.example;proto=https",
    }
    for response in twice(host_client, FEEDS[0], headers=headers):
        assert self_link(response.data) == "http://reader.example" + FEEDS[0]


def test_base_url_pins_every_link_whatever_the_host(client: FlaskClient) -> None:
    for host in ["evil.example", "a b", ""]:
        for response in twice(client, FEEDS[0], headers={"Host": host}):
            assert response.status_code == 200
            assert self_link(response.data) == BASE_URL + FEEDS[0]
            assert b"evil" not in response.data


# -- nosniff and the response promises everywhere -----------------------------------------------


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/feeds/all.atom", {}),
        ("/feeds/all.rss", {"Accept-Encoding": "gzip"}),
        ("/feeds/topics/ai.atom", {"Accept-Encoding": "br"}),
        ("/feeds/all.atom?page=2", {}),
        ("/feeds/all.atom?page=x", {}),
        ("/feeds/topics/nothing.atom", {}),
        ("/healthz", {}),
        ("/metrics", {}),
        ("/feeds.opml", {}),
        ("/static/style.css", {}),
        ("/", {}),
        ("/nothing", {}),
    ],
)
def test_nosniff_on_every_response(client: FlaskClient, url: str, headers: dict[str, str]) -> None:
    for response in [*twice(client, url, headers=headers), client.head(url, headers=headers)]:
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert_safe(response)
        response.close()  # a static file is sent from an open file


def test_nosniff_on_304_from_the_fast_path(client: FlaskClient) -> None:
    etag = client.get(FEEDS[0]).headers["ETag"]
    response = client.get(FEEDS[0], headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_nosniff_is_prebuilt_for_the_fast_path(client: FlaskClient) -> None:
    """The fast path adds nothing per request: the header is in the headers built at start."""
    state = client.application.extensions["feedsvc"]
    assert ("X-Content-Type-Options", "nosniff") in state.feed_headers


def test_an_unexpected_error_is_a_plain_500_without_a_trace(tmp_path: Path) -> None:
    app = make_app()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError(f"secret detail {tmp_path}")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.content_type == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert b"secret detail" not in response.data and str(tmp_path).encode() not in response.data


# -- property: any request ------------------------------------------------------------------------

# No CR or LF: no client can send them inside a header value.
header_text = st.text(
    st.characters(min_codepoint=1, max_codepoint=255, exclude_characters="\r\n"), max_size=60
)
segments = st.one_of(
    st.sampled_from(["feeds", "all.atom", "all.rss", "topics", "providers", "ai.atom", "healthz"]),
    st.sampled_from(["..", ".", "%2e%2e", "%2f", "%00", "%ff", "usnews-com.rss", ""]),
    st.text(
        st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="?#"), max_size=12
    ),
)
# The test client reads a path starting `//` as a host; RAW_REQUESTS sends those over HTTP.
paths = st.builds(lambda parts: "/" + "/".join(parts).lstrip("/"), st.lists(segments, max_size=5))
queries = st.lists(
    st.tuples(
        st.sampled_from(["page", "PAGE", "q", "", "%ff", "page[]"]),
        st.one_of(
            st.integers(-3, 10**30).map(str),
            st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF), max_size=8),
        ),
    ),
    max_size=3,
).map(lambda pairs: "&".join(f"{name}={value}" for name, value in pairs))
request_headers = st.fixed_dictionaries(
    {},
    optional={
        "Host": st.one_of(
            st.sampled_from(["reader.example", "a.example:80", "[::1]:8080"]), header_text
        ),
        "If-None-Match": st.one_of(st.just("*"), header_text),
        "If-Modified-Since": st.one_of(
            st.sampled_from(["Sat, 01 Apr 2023 17:00:00 GMT", "Thu, 01 Jan 1970 00:00:00 GMT"]),
            header_text,
        ),
        "Accept-Encoding": st.one_of(st.sampled_from(["gzip", "br", "br;q=0, gzip"]), header_text),
    },
)
requests = st.tuples(
    st.sampled_from(["GET", "GET", "GET", "HEAD", "POST", "OPTIONS", "DELETE"]),
    st.one_of(st.sampled_from(FEEDS), paths),
    queries,
    request_headers,
)


@pytest.fixture(scope="module")
def property_apps() -> list[FlaskClient]:
    return [make_app().test_client(), make_app(BASE_URL=None).test_client()]


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(request=requests)
def test_any_request_is_answered_well_formed_and_never_5xx(
    property_apps: list[FlaskClient], request: tuple[str, str, str, dict[str, str]]
) -> None:
    method, path, query, headers = request
    for client in property_apps:
        for _ in range(2):  # a first render, then the fast path
            response = client.open(path, method=method, query_string=query, headers=headers)
            assert_safe(response)
            if method == "HEAD":
                assert response.data == b""


# -- over real HTTP -------------------------------------------------------------------------------


class Served(NamedTuple):
    name: str  # the server, as `feedsvc serve --server` names it
    port: int


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`feedsvc serve` on a free loopback port without BASE_URL, stopped by its PID."""
    log = tmp_path_factory.mktemp("hostile") / "server.log"
    settings = {"RELOAD_INTERVAL": "0"}
    with running_feedsvc(RECORDS, log, server=request.param, settings=settings) as url:
        yield Served(request.param, int(url.rsplit(":", 1)[1]))


@pytest.fixture(scope="module")
def server_port(server: Served) -> int:
    return server.port


def raw_request(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are and read the answer as a client does: the status line, the headers
    (names lower-cased) and Content-Length bytes of body. Every request here asks for
    `Connection: close`, so the server must then close cleanly. Nothing is excused: no answer,
    a reset or a time-out fails the test."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        with sock.makefile("rb") as answer:
            status, headers, body = read_answer(answer)
            assert answer.read(1) == b"", "the server kept the connection open"
    return status, headers, body


def read_answer(answer: BinaryIO) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.x response from a connection; every answer here states its length."""
    status_line = answer.readline()
    assert status_line, "the server closed the connection without answering"
    version, status, *_ = status_line.decode("latin-1").split()
    assert version in ("HTTP/1.1", "HTTP/1.0"), status_line
    headers = {}
    while (line := answer.readline().decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = answer.read(int(headers["content-length"]))
    return int(status), headers, body


class RawCase(NamedTuple):
    """A request as bytes, and the status each server answers it with: the servers refuse some
    requests themselves (gunicorn with a small HTML page, granian with an empty body), and what
    reaches feedsvc is answered by feedsvc."""

    head: bytes
    granian: int
    gunicorn: int
    body: bytes = b""


RAW_REQUESTS = [
    RawCase(b"GET /feeds/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\n", 404, 404),
    RawCase(
        b"GET /feeds/topics/../../../tests/data/records/broken-list.md HTTP/1.1\r\nHost: x\r\n",
        404,
        404,
    ),
    RawCase(b"GET /feeds/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n", 404, 404),
    RawCase(b"GET /static/../../feedsvc/web.py HTTP/1.1\r\nHost: x\r\n", 404, 404),
    RawCase(b"GET /static/%2e%2e/web.py HTTP/1.1\r\nHost: x\r\n", 404, 404),
    RawCase(b"GET /static/ HTTP/1.1\r\nHost: x\r\n", 404, 404),
    RawCase(b"GET /feeds/topics/%252e%252e%252f.atom HTTP/1.1\r\nHost: x\r\n", 404, 404),
    RawCase(b"GET /feeds/topics/\xff\xfe.atom HTTP/1.1\r\nHost: x\r\n", 400, 400),
    RawCase(b"GET /feeds/all.atom?page=\xff HTTP/1.1\r\nHost: x\r\n", 400, 400),
    # gunicorn refuses a request line over 4,094 bytes; feedsvc: a page past the end.
    RawCase(b"GET /feeds/all.atom?page=" + b"9" * 5000 + b" HTTP/1.1\r\nHost: x\r\n", 404, 414),
    # No Host: gunicorn passes its own address as SERVER_NAME, which makes the links.
    RawCase(b"GET /feeds/all.atom HTTP/1.1\r\n", 400, 200),
    RawCase(b"GET /feeds/all.atom HTTP/1.1\r\nHost: \r\n", 400, 400),
    RawCase(b"GET /feeds/all.atom HTTP/1.1\r\nHost: a b\r\n", 400, 400),
    RawCase(
        b"GET /feeds/all.atom HTTP/1.1\r\nHost: one.example\r\nHost: two.example\r\n", 400, 400
    ),
    RawCase(b"GET /feeds/all.atom HTTP/1.0\r\n", 400, 200),
    RawCase(
        b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\nIf-Modified-Since: \x01\x02\r\n", 400, 400
    ),
    # granian counts the request line in its 32 KiB head limit (feedsvc serve sets it).
    RawCase(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n", 431, 414),
    RawCase(b"GET /feeds/all.atom?" + b"q" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n", 431, 414),
    RawCase(
        b"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\nX-Big: " + b"h" * 70_000 + b"\r\n", 431, 431
    ),
    RawCase(
        b"POST /feeds/all.atom HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n", 405, 405, b"hello"
    ),
    RawCase(b"DELETE /healthz HTTP/1.1\r\nHost: x\r\n", 405, 405),
    RawCase(b"TRACE / HTTP/1.1\r\nHost: x\r\n", 405, 405),
    RawCase(b"GET http://evil.example/feeds/all.atom HTTP/1.1\r\nHost: x\r\n", 200, 200),
    RawCase(b"GET * HTTP/1.1\r\nHost: x\r\n", 404, 400),
    RawCase(b"GET //evil.example/feeds/all.atom HTTP/1.1\r\nHost: x\r\n", 404, 404),
    RawCase(b"GARBAGE\r\n", 400, 400),
]


@pytest.mark.live
@pytest.mark.parametrize("case", RAW_REQUESTS, ids=lambda case: case.head[:40].decode("latin-1"))
def test_raw_hostile_requests_over_http(server: Served, case: RawCase) -> None:
    """Each gets its status, then a clean close (never a reset, a hang or a 5xx)."""
    request = case.head + b"Connection: close\r\n\r\n" + case.body
    status, headers, body = raw_request(server.port, request)
    assert status == getattr(case, server.name), (status, body[:300])
    text = body.decode("utf-8", "replace")
    for leak in LEAKS:
        assert leak not in text
    if "server" in headers:
        assert not any(char.isdigit() for char in headers["server"]), headers["server"]
    content_type = headers.get("content-type", "")
    if content_type.startswith(("text/plain", "application/")):
        # An answer from feedsvc; gunicorn refuses what it cannot parse with its own small
        # text/html page (no nosniff, nothing echoed), granian with a bare status.
        assert headers.get("x-content-type-options") == "nosniff", headers
    if status == 200:
        assert b"http:///" not in body and b"evil.example" not in body


@pytest.mark.live
def test_a_post_with_a_body_gets_its_405_and_the_connection_serves_on(server: Served) -> None:
    """HTTP/1.1 keeps a connection open unless asked not to: after the 405 the server has read
    the body, and the next request on the same connection is answered."""
    post = b"POST /feeds/all.atom HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with sock.makefile("rb") as answer:
            sock.sendall(post)
            status, headers, _ = read_answer(answer)
            assert status == 405 and "GET" in headers["allow"]
            sock.sendall(get)
            status, _, body = read_answer(answer)
            assert status == 200 and json.loads(body)["status"] == "ok"
            assert answer.read(1) == b""


@pytest.mark.live
@pytest.mark.parametrize("url", ["/feeds/all.atom", "/feeds/all.rss", "/healthz", "/nothing"])
def test_over_http_nosniff_and_a_server_header_without_versions(server_port: int, url: str) -> None:
    for _ in range(2):  # first render, then the fast path
        status, headers, _ = raw_request(
            server_port, f"GET {url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert status in (200, 404)
        assert headers["x-content-type-options"] == "nosniff"
        server = headers.get("server", "")
        assert not any(char.isdigit() for char in server) and "/" not in server, server


# -- HTML pages: the Content-Security-Policy holds ------------------------------------------------

HOSTILE_RECORD = """---
title: "<script>alert('title')</script><img src=x onerror=alert(1)>"
excerpt: "<script>alert('excerpt')</script>javascript:alert(2)"
publishedDateTime: 2030-01-01T00:00:00Z
webUrl: "https://evil.example/a?<script>=1"
provider: {name: "<script>alert('provider')</script>", domain: evil.example}
topics: ["<script>alert('topic')</script>", "Topic\\" onmouseover=\\"alert(3)"]
images: [{url: "https://evil.example/x.jpg?\\"><script>alert(4)</script>"}]
related: [{title: "<script>alert('related')</script>", webUrl: "https://evil.example/r"}]
---
"""


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name.lower()] = values
    return directives


def assert_csp_forbids_inline_script(response: TestResponse) -> None:
    header = response.headers.get("Content-Security-Policy")
    assert header, response.request.path
    directives = csp_directives(header)
    script = directives.get("script-src", directives.get("default-src"))
    assert script is not None, header
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, header
    assert (
        script == ["'none'"] or "'self'" in script or any(s.startswith("'nonce-") for s in script)
    )


def html_urls(client: FlaskClient) -> list[str]:
    collection = client.application.extensions["feedsvc"].collection
    urls = {feed.html_path for feed in iter_feeds(collection)}
    return sorted(urls | {"/", "/?page=2", "/topics/no-such-topic", "/providers/no-such"})


def test_every_html_response_carries_a_csp_forbidding_inline_script(tmp_records: Path) -> None:
    shutil.copytree(RECORDS, tmp_records, dirs_exist_ok=True)
    (tmp_records / "hostile.md").write_text(HOSTILE_RECORD, encoding="utf-8")
    client = make_app(SEEDS_DIR=tmp_records).test_client()
    urls = html_urls(client)
    assert len(urls) > 5
    for url in urls:
        responses = [*twice(client, url), client.head(url)]
        etag = responses[0].headers.get("ETag")
        if etag:
            responses.append(client.get(url, headers={"If-None-Match": etag}))
        is_html = (responses[0].content_type or "").startswith("text/html")
        assert is_html, url
        for response in responses:  # the 304 and HEAD answers too
            assert_csp_forbids_inline_script(response)
            assert response.headers["X-Content-Type-Options"] == "nosniff"
        body = responses[0].data
        if body:
            document = lxml.html.fromstring(body)
            assert document.xpath("//script") == [], url
            handlers = document.xpath("//@*[starts-with(name(), 'on')]")
            assert handlers == [], (url, handlers)
            for link in document.xpath("//@href | //@src"):
                assert not link.strip().lower().startswith(("javascript:", "data:")), (url, link)


# -- huge negotiation headers over real HTTP (issue 16, item 3) ---------------------------------


def unique_flood(n: int, size: int) -> bytes:
    """A request whose `Accept` and `Accept-Encoding` are unique lists of about `size` bytes."""
    accept = ",".join(f"a/b{n}-{i};q=0.{i % 9}" for i in range(size // 10))[:size]
    encoding = ",".join(f"c{n}-{i};q=0.{i % 9}" for i in range(size // 8))[:size]
    return (
        f"GET /feeds/all.atom HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\n"
        f"Accept-Encoding: {encoding}\r\nConnection: close\r\n\r\n"
    ).encode()


@pytest.mark.live
def test_over_http_a_190_kb_header_is_refused_by_the_server(server_port: int) -> None:
    """granian would take it (its default limit is 408 KB); feedsvc serve sets its limit."""
    status, _, body = raw_request(server_port, unique_flood(0, 190_000))
    assert status == 431 and SECRET_MARKER.encode() not in body


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        state, parent = stat.rsplit(")", 1)[1].split()[:2]
        if int(parent) == pid and state != "Z":
            found.append(int(entry.name))
    return found


def serving_worker(port: int) -> int:
    """The one worker of the `feedsvc serve` this test started on `port`. Where setproctitle is
    installed (mutmut brings it), granian renames the process `granian wsgi 127.0.0.1:PORT`."""
    names = (f"--port\0{port}\0".encode(), f"127.0.0.1:{port} ".encode())
    (serve,) = [
        p for p in children_of(os.getpid()) if any(name in command_line(p) for name in names)
    ]
    (worker,) = [p for p in children_of(serve) if b"tracker" not in command_line(p)]
    return worker


def command_line(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def resident_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


@pytest.mark.live
def test_over_http_unique_long_headers_pin_no_memory(tmp_path: Path) -> None:
    """Values under granian's limit but past feedsvc's bound are not read (identity coding, the
    feed's own type) and not remembered: 300 unique 15 KB pairs leave the worker's memory where
    it was (Werkzeug's parse cached them all: 9 MB)."""
    settings = {"RELOAD_INTERVAL": "0", "LOG_LEVEL": "WARNING"}
    with running_feedsvc(RECORDS, tmp_path / "server.log", settings=settings) as url:
        port = int(url.rsplit(":", 1)[1])
        worker = serving_worker(port)
        for n in range(30):  # the worker's heap and the render cache settle
            raw_request(port, unique_flood(n, 15_000))
        before = resident_kib(worker)
        for n in range(30, 330):
            status, headers, body = raw_request(port, unique_flood(n, 15_000))
            assert status == 200 and "content-encoding" not in headers
            assert headers["content-type"] == "application/atom+xml; charset=utf-8"
        grown = resident_kib(worker) - before
    assert grown < 3 * 1024, f"the worker grew by {grown} KiB"
