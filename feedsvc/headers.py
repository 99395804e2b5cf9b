"""The request headers feedsvc acts on (Accept, Accept-Encoding, If-None-Match,
If-Modified-Since), parsed within a bound.

Clients choose these values, and granian accepts header values of hundreds of KB. Werkzeug's
general parsers cost about 15 µs per list item, so one 190 KB `Accept` took 400 ms, and caching
their results keyed on the raw value pinned every value ever sent. Here each header is read in one
pass that looks only for the few names feedsvc serves; a value longer than `MAX_HEADER_CHARS`, or
a list with more than `MAX_HEADER_PARTS` items and parameters, is not read at all (treated as
absent: identity coding, the feed's own type, no 304); only values within the bound are
remembered, in small LRU caches. So the worst value costs about what a browser's does.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache

from feedsvc.cache import CODINGS, IDENTITY

# Browsers send `Accept` values of 100-200 characters with about 12 items and parameters, and
# `Accept-Encoding` of about 25 with 4; feed readers and caches send one ETag. These leave room for
# any real client.
MAX_HEADER_CHARS = 2048
MAX_HEADER_PARTS = 32
# Distinct values remembered per header: aggregators send a handful.
_CACHED_VALUES = 256
# RFC 9110 §12.4.2: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ). All 1,117 of
# them, looked up rather than parsed (a regex and float() cost 20 times as much).
_QVALUES = {
    **{f"0.{n:0{digits}d}": n / 10**digits for digits in (1, 2, 3) for n in range(10**digits)},
    **{text: 0.0 for text in ("0", "0.")},
    **{text: 1.0 for text in ("1", "1.", "1.0", "1.00", "1.000")},
}


def _qualities(value: str, wanted: frozenset[str]) -> dict[str, float]:
    """The q of each `wanted` name that a `#( name *( ; param ) )` list names (the highest when
    named twice). An item whose q is not a qvalue is dropped (RFC 9110 §12.4.2).
    Parameters other than q are ignored, and so are quoted commas, which no client sends here."""
    found: dict[str, float] = {}
    for item in value.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if name not in wanted:
            continue
        quality = 1.0
        for param in params.split(";") if params else ():
            key, _, raw = param.partition("=")
            if key.strip().lower() == "q":
                quality = _QVALUES.get(raw.strip(), -1.0)
        if quality >= 0 and quality > found.get(name, -1.0):
            found[name] = quality
    return found


def _quality(found: dict[str, float], names: tuple[str, ...]) -> float:
    """The q of the first of `names` (most specific first) that the client named, else 0."""
    return next((found[name] for name in names if name in found), 0.0)


def _within_bounds(value: str) -> bool:
    """True when `value` is short enough to be read; counting separators runs at C speed."""
    return len(value) <= MAX_HEADER_CHARS and value.count(",") + value.count(";") < MAX_HEADER_PARTS


def content_coding(accept_encoding: str | None) -> str:
    """The best coding the client accepts (`br` before `gzip` on a tie), else identity."""
    if not accept_encoding or not _within_bounds(accept_encoding):
        return IDENTITY
    return _content_coding(accept_encoding)


@lru_cache(maxsize=_CACHED_VALUES)
def _content_coding(accept_encoding: str) -> str:
    found = _qualities(accept_encoding, _CODING_NAMES)
    qualities = {coding: _quality(found, (coding, "*")) for coding in CODINGS}
    best = max(CODINGS, key=qualities.__getitem__)  # max keeps the first of equals
    return best if qualities[best] > 0 else IDENTITY


_CODING_NAMES = frozenset({*CODINGS, "*"})


def prefers_html(accept: str | None, media_type: str) -> bool:
    """True when the client ranks `text/html` above `media_type` (a browser opening a link)."""
    if not accept or not _within_bounds(accept):
        return False
    return _prefers_html(accept, media_type.split(";")[0].strip().lower())


@lru_cache(maxsize=_CACHED_VALUES)
def _prefers_html(accept: str, media_type: str) -> bool:
    html, feed = _media_ranges("text/html"), _media_ranges(media_type)
    found = _qualities(accept, frozenset(html + feed))
    return _quality(found, html) > _quality(found, feed)


def _media_ranges(media_type: str) -> tuple[str, ...]:
    """`type/subtype`, `type/*`, `*/*`: the ranges that name a media type, most specific first
    (RFC 9110 §12.5.1: the most specific one that names it applies)."""
    return (media_type, media_type.split("/")[0] + "/*", "*/*")


def etag_matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match's weak comparison (RFC 9110 §13.1.2): `*`, or `etag` among the listed tags
    (with or without `W/`). An over-long value matches nothing, so it never earns a 304."""
    if not _within_bounds(if_none_match):
        return False
    if if_none_match.strip() == "*":
        return True
    for item in if_none_match.split(","):
        tag = item.strip()
        if tag.removeprefix("W/").strip('"') == etag:
            return True
    return False


_DAY = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = f"(?P<month>{'|'.join(_MONTHS)})"
_TIME = r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
# RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients must read.
_HTTP_DATES = (
    re.compile(rf"{_DAY}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT"),
    re.compile(
        rf"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
        rf"(?P<day>[0-9]{{2}})-{_MONTH}-(?P<year>[0-9]{{2}}) {_TIME} GMT"
    ),
    re.compile(rf"{_DAY} {_MONTH} (?P<day>[0-9 ][0-9]) {_TIME} (?P<year>[0-9]{{4}})"),
)


def http_date(value: str | None) -> datetime | None:
    """A single HTTP-date in one of its three forms, else None: RFC 9110 §13.1.3 has a recipient
    ignore If-Modified-Since when it is not a valid HTTP-date or holds more than one member
    (`date, date`), which lenient parsers read as its first date."""
    if not value or len(value) > 64:
        return None
    value = value.strip()
    for form in _HTTP_DATES:
        match = form.fullmatch(value)
        if match is not None:
            return _moment(match)
    return None


def _moment(match: re.Match[str]) -> datetime | None:
    year = int(match["year"])
    if (
        len(match["year"]) == 2
    ):  # RFC 850: the year with these digits nearest to now, not > 50 ahead
        now = datetime.now(UTC).year
        year += now - now % 100
        if year > now + 50:
            year -= 100
        elif year < now - 50:
            year += 100
    try:
        return datetime(
            year,
            _MONTHS.index(match["month"]) + 1,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=UTC,
        )
    except ValueError:  # 31 Feb, 25:00:00
        return None
