"""Comparison keys: which URLs are one article, for grouping stories.

Many URL forms point to one article: tracking query parameters (`utm_*`, `fbclid`, `source=`...),
AMP forms (`/amp/` paths, `.amp.html`, the `cdn.ampproject.org` cache), mobile and `www.` hosts,
escapes in either case. `comparison_key` maps them to one key; README, Stories, lists the forms.
The key is for grouping only: entry ids stay those of `urls.entry_id`, never rewritten.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from feedsvc.records import Record, related_urls

# Query parameters that say how a reader arrived, never which article it is.
TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "dclid", "gclsrc", "msclkid", "yclid", "igshid", "twclid", "li_fat_id",
        "mc_cid", "mc_eid", "_ga", "_gl", "ref", "ref_src", "referrer", "source", "src", "cmpid",
        "cmp", "ocid", "ncid", "taid", "smid", "sr_share", "guccounter", "ftag", "ito", "itm",
        "partner", "traffic_source", "share", "amp", "outputtype", "__twitter_impression",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_", "guce_", "pk_", "hsa_", "mkt_", "vero_", "oly_", "at_")
# Host prefixes of mobile and AMP editions of a site, and of its `www.` form.
HOST_PREFIXES = ("www.", "amp.", "m.", "mobile.")
_AMP_CACHE_SUFFIX = ".cdn.ampproject.org"
# livemint's AMP page `.../title/amp-11668444305981.html` is `.../title-11668444305981.html`.
_AMP_NUMBER_SEGMENT = re.compile(r"/amp-([0-9]+\.html?)$")


def comparison_key(url: str) -> str:
    """The key that tells two URLs of one article apart from two articles (see the module
    docstring; README, Stories, lists the forms). `url` is normalized (`urls.normalize_url`:
    lower-case host, no default port), so plain string operations suffice: this runs for every
    URL of every record, and most URLs take the short way (no query, fragment, escape, AMP form
    or edition prefix), which gives what `general_key` gives."""
    rest = url.partition("://")[2]
    host, _, path = rest.partition("/")
    if (
        "?" in rest
        or "#" in rest
        or "%" in path
        or "amp" in path.lower()
        or host.endswith(_AMP_CACHE_SUFFIX)
    ):
        return general_key(url)
    if host.startswith(HOST_PREFIXES):
        if not host.startswith("www."):
            return general_key(url)
        if "." in host[4:]:
            host = host[4:]
    return f"{host}/{path.rstrip('/')}"


def general_key(url: str) -> str:
    """`comparison_key` of any URL, form by form."""
    rest = url.partition("://")[2]
    if "#" in rest:
        rest = rest.partition("#")[0]
    host, _, path_query = rest.partition("/")
    path, _, query = path_query.partition("?")
    path = "/" + path
    if "%" in path or "%" in query:
        path, query = _upper_escapes(path), _upper_escapes(query)
    if host.endswith(_AMP_CACHE_SUFFIX):
        host, path = _from_amp_cache(host, path)
    if host.startswith(HOST_PREFIXES):
        for prefix in HOST_PREFIXES:
            if host.startswith(prefix) and "." in host[len(prefix) :]:
                host = host[len(prefix) :]
                break
    # Every AMP form of a path holds "amp" (most paths do not: they skip the slow way).
    path = _canonical_path(path) if "amp" in path.lower() else (path.rstrip("/") or "/")
    if query:
        query = _kept_query(query)
    return f"{host}{path}" + (f"?{query}" if query else "")


_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")


def _upper_escapes(text: str) -> str:
    return _ESCAPE.sub(lambda match: match.group(0).upper(), text)


def _from_amp_cache(host: str, path: str) -> tuple[str, str]:
    """`https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a` is the article at
    `www.example.com/a` (`/c/` for documents, `/v/` for the viewer, `/s/` for https)."""
    segments = path.split("/")  # "", "c", "s", host, ...
    rest = segments[2:] if len(segments) > 2 and segments[1] in ("c", "v") else []
    if rest and rest[0] == "s":
        rest = rest[1:]
    if len(rest) < 1 or "." not in rest[0]:
        return host, path
    return rest[0].lower(), "/" + "/".join(rest[1:])


def _canonical_path(path: str) -> str:
    """The path without its AMP forms (`/amp/` segments, `amp_articleshow`, `.amp.html`,
    `/amp-123.html`) and without a trailing slash."""
    path = _AMP_NUMBER_SEGMENT.sub(r"-\1", path)
    segments = [
        segment.removeprefix("amp_") for segment in path.split("/") if segment.lower() != "amp"
    ]
    path = "/".join(segments)
    if path.endswith(".amp.html"):
        path = path[: -len(".amp.html")] + ".html"
    elif path.endswith(".amp"):
        path = path[: -len(".amp")]
    return path.rstrip("/") or "/"


@lru_cache(maxsize=1 << 10)
def _kept_query(query: str) -> str:
    """A query's parameters but the tracking ones, sorted. Remembered: most queries are a few
    tracking parameters that many URLs of a feed carry (`utm_source=rss`), and are dropped."""
    return "&".join(sorted(_kept_params(query)))


def _kept_params(query: str) -> Iterable[str]:
    for pair in query.split("&"):
        name = pair.partition("=")[0].lower()
        if pair and name not in TRACKING_PARAMS and not name.startswith(TRACKING_PREFIXES):
            yield pair


def record_keys(record: Record) -> tuple[str, ...]:
    """The comparison keys of a record's own URLs and its related articles, once each, in order.
    Not remembered: a grouping from scratch works them out once per record, and a regrouping
    for the few records it touches (the caches that remembered keys and headline words held
    about 160 MB at 100,000 records, by tracemalloc)."""
    return tuple(dict.fromkeys(map(comparison_key, urls_of(record))))


def urls_of(record: Record) -> list[str]:
    """A record's own URLs and its related articles' URLs, in order."""
    urls = [record.url, record.original_url] if record.original_url else [record.url]
    urls += related_urls(record.coverage)
    return urls


def _own_keys(url: str, original_url: str | None) -> tuple[str, ...]:
    """The comparison keys of a record's own URLs (`webUrl`, `originalUrl`), not of its related
    articles'. Remembered while a grouping runs, as headline words are."""
    if original_url:
        return comparison_key(url), comparison_key(original_url)
    return (comparison_key(url),)


own_keys = lru_cache(maxsize=1 << 17)(_own_keys)


def cluster_of_keys(keys: Iterable[str]) -> int:
    """The aggregator cluster of a record, as a number, from its keys (`record_keys`: its own and
    related articles' keys) as a set. The collection's related lists are per cluster (each member
    lists the others), so its members hold the same keys; a record whose list is its own is a
    cluster of its own. (Python's hash, so a number of this process: only its equality is used,
    and two clusters of one collection colliding in 64 bits is left to chance.)"""
    return hash(frozenset(keys))
