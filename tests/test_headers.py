"""The bounded request-header parsers: they agree with Werkzeug's general ones on the values
real clients send, and read nothing past their bound, so a hostile value costs what a normal one
does and is never remembered."""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime

import pytest
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_date

from feedsvc import headers
from feedsvc.cache import CODINGS, IDENTITY
from feedsvc.headers import (
    MAX_HEADER_CHARS,
    MAX_HEADER_PARTS,
    content_coding,
    etag_matches,
    http_date,
    prefers_html,
)
from feedsvc.render import ATOM, RSS

CHROME_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)


def werkzeug_coding(value: str) -> str:
    """What feedsvc chose before the bounded parser (Werkzeug's parse, unbounded)."""
    accepted = parse_accept_header(value)
    best = max(CODINGS, key=accepted.quality)
    return best if accepted.quality(best) > 0 else IDENTITY


def werkzeug_prefers_html(value: str, media_type: str) -> bool:
    accepted = parse_accept_header(value, MIMEAccept)
    return accepted.quality("text/html") > accepted.quality(media_type.split(";")[0])


qvalues = st.sampled_from(["", ";q=0", ";q=1", ";q=0.5", ";q=0.001", ";Q=0.8", " ; q=0.25"])
spaces = st.sampled_from(["", " ", "  ", "\t"])
codings = st.sampled_from(["br", "gzip", "GZIP", "*", "identity", "deflate", "zstd", "x-gzip"])
media = st.sampled_from(
    [
        "text/html",
        "TEXT/HTML",
        "text/*",
        "*/*",
        "application/atom+xml",
        "application/rss+xml",
        "application/*",
        "application/xml",
        "image/webp",
    ]
)


def header_of(names: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Well-formed lists within the bound, as clients send them."""
    item = st.builds(lambda a, n, q, b: f"{a}{n}{q}{b}", spaces, names, qvalues, spaces)
    return st.lists(item, max_size=10).map(",".join)


@given(header_of(codings))
def test_the_coding_is_werkzeugs_choice_for_well_formed_values(value: str) -> None:
    assert content_coding(value) == werkzeug_coding(value)


@given(header_of(media), st.sampled_from([ATOM.media_type, RSS.media_type]))
def test_the_browser_view_is_werkzeugs_choice_for_well_formed_values(
    value: str, media_type: str
) -> None:
    assert prefers_html(value, media_type) == werkzeug_prefers_html(value, media_type)


@pytest.mark.parametrize(
    ("value", "coding"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip;q=0.9, br;q=0.8", "gzip"),
        ("*;q=0.5, br;q=0", "gzip"),  # the name itself wins over *
        ("gzip;q=0.5000", IDENTITY),  # more than 3 decimals: not a qvalue, the item is dropped
        ("gzip;q=1e400", IDENTITY),
        (None, IDENTITY),
    ],
)
def test_content_codings(value: str | None, coding: str) -> None:
    assert content_coding(value) == coding


def test_browsers_and_readers_are_told_apart() -> None:
    assert prefers_html(CHROME_ACCEPT, ATOM.media_type)
    assert not prefers_html("application/atom+xml, text/html;q=0.1", ATOM.media_type)
    assert not prefers_html("*/*", RSS.media_type)
    assert not prefers_html(None, RSS.media_type)


# -- the bound ----------------------------------------------------------------------------------

OVER_LONG = "gzip, br, text/html" + " " * MAX_HEADER_CHARS
OVER_LONG_ETAG = '"abc", ' + " " * MAX_HEADER_CHARS
TOO_MANY_PARTS = "text/html, gzip" + ", x" * MAX_HEADER_PARTS


@pytest.mark.parametrize("value", [OVER_LONG, TOO_MANY_PARTS])
def test_a_value_past_the_bound_is_treated_as_absent(value: str) -> None:
    assert content_coding(value) == IDENTITY
    assert not prefers_html(value, ATOM.media_type)
    assert not etag_matches(value.replace("gzip", '"abc"'), "abc")
    # ... while the same names within the bound are read
    assert content_coding("gzip, br") == "br" and prefers_html("text/html", ATOM.media_type)


def test_values_past_the_bound_are_never_remembered() -> None:
    headers._content_coding.cache_clear()
    headers._prefers_html.cache_clear()
    for n in range(50):
        huge = f"gzip;q=0.{n % 10}, br" + " " * 200_000
        content_coding(huge)
        prefers_html(huge.replace("gzip", "text/html"), ATOM.media_type)
    assert headers._content_coding.cache_info().currsize == 0
    assert headers._prefers_html.cache_info().currsize == 0


def test_the_caches_are_bounded_in_entries_too() -> None:
    for n in range(3 * headers._CACHED_VALUES):
        content_coding(f"gzip, x{n}")
    assert headers._content_coding.cache_info().currsize <= headers._CACHED_VALUES


def median_seconds(app: Flask, requests: list[dict[str, str]]) -> float:
    """Median time of GET /feeds/all.atom through the app's WSGI callable with each set of
    headers. The test client is not used: carrying 400 KB of headers costs it 15 ms."""
    times = []
    statuses: list[str] = []
    for request in requests:
        statuses.clear()
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/feeds/all.atom",
            "SERVER_NAME": "feeds.test",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
            **{f"HTTP_{name.upper().replace('-', '_')}": value for name, value in request.items()},
        }
        started = time.perf_counter()
        body = b"".join(app.wsgi_app(environ, lambda status, *_: statuses.append(status)))
        times.append(time.perf_counter() - started)
        assert statuses == ["200 OK"] and body
    return statistics.median(times)


def test_a_200_kb_header_costs_what_a_normal_one_does(app: Flask) -> None:
    """Werkzeug's parse took about 400 ms for a 190 KB `Accept`, 20,000 times a normal cached
    request; past the bound nothing is parsed, so it costs about what a browser's headers do."""
    app.test_client().get("/feeds/all.atom")  # rendered: the rest are cache hits

    def hostile(n: int) -> dict[str, str]:
        accept = ",".join(f"a/b{n}-{i};q=0.{i % 9}" for i in range(15_000))[:200_000]
        encoding = ",".join(f"c{n}-{i};q=0.{i % 9}" for i in range(20_000))[:200_000]
        return {"Accept": accept, "Accept-Encoding": encoding}

    def normal(n: int) -> dict[str, str]:
        return {"Accept": f"{CHROME_ACCEPT},x/y{n}", "Accept-Encoding": f"gzip, br, x{n}"}

    huge = median_seconds(app, [hostile(n) for n in range(15)])
    usual = median_seconds(app, [normal(n) for n in range(15)])
    assert huge < 3 * usual, (huge, usual)


# -- If-None-Match and If-Modified-Since ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
        ('"x", *', False),
        ("", False),
        ('"x","abc"', True),  # no space after the comma
        ('"Xabc"', False),
    ],
)
def test_if_none_match_uses_the_weak_comparison(value: str, matches: bool) -> None:
    assert etag_matches(value, "abc") is matches


IMF = "Sun, 06 Nov 1994 08:49:37 GMT"
NOVEMBER_6 = datetime(1994, 11, 6, 8, 49, 37, tzinfo=UTC)


@pytest.mark.parametrize(
    "value", [IMF, "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", f"  {IMF} "]
)
def test_the_three_http_date_forms_are_read(value: str) -> None:
    assert http_date(value) == NOVEMBER_6 == parse_date(value)


@pytest.mark.parametrize(
    "value",
    [
        f"{IMF}, {IMF}",  # two members: RFC 9110 §13.1.3 says to ignore the header
        f"{IMF}, Mon, 07 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT garbage",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 25:00:00 GMT",
        "06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "yesterday",
        "",
        None,
        IMF + " " * 100_000,
    ],
)
def test_anything_else_is_no_date(value: str | None) -> None:
    assert http_date(value) is None


def test_a_two_digit_year_is_the_most_recent_with_those_digits() -> None:
    this_year = datetime.now(UTC).year
    ahead = (this_year + 10) % 100  # within 50 years ahead: this century
    behind = (this_year + 60) % 100  # more than 50 years ahead: the last century
    read_ahead = http_date(f"Sunday, 06-Nov-{ahead:02d} 08:49:37 GMT")
    read_behind = http_date(f"Sunday, 06-Nov-{behind:02d} 08:49:37 GMT")
    assert read_ahead is not None and read_ahead.year == this_year + 10
    assert read_behind is not None and read_behind.year == this_year + 60 - 100


def test_a_two_digit_year_exactly_50_years_ahead_is_ahead() -> None:
    """RFC 9110 §5.6.7: only a year *more than* 50 years ahead is taken as the past century's."""
    this_year = datetime.now(UTC).year
    for years_ahead, year in ((50, this_year + 50), (51, this_year + 51 - 100)):
        digits = (this_year + years_ahead) % 100
        read = http_date(f"Sunday, 06-Nov-{digits:02d} 08:49:37 GMT")
        assert read is not None and read.year == year, years_ahead


class Year2070(datetime):
    """A clock in 2070, when some two-digit years are the next century's; it tells UTC only."""

    @classmethod
    def now(cls, tz: object = None) -> Year2070:  # type: ignore[override]
        assert tz is UTC, "the year is the UTC one"
        return cls(2070, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(("digits", "year"), [("19", 2119), ("20", 2020), ("69", 2069)])
def test_a_two_digit_year_in_the_second_half_of_a_century(
    digits: str, year: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In 2070, `19` is 2119 (2019 is more than 50 years back), `20` still 2020."""
    monkeypatch.setattr(headers, "datetime", Year2070)
    read = http_date(f"Sunday, 06-Nov-{digits} 08:49:37 GMT")
    assert read is not None and read.year == year


def test_an_http_date_is_read_up_to_64_characters() -> None:
    assert http_date(IMF.ljust(64)) == NOVEMBER_6
    assert http_date(IMF.ljust(65)) is None
