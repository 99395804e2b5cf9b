"""URLs from records made safe, absolute and comparable, and image media types guessed from them.

Record URLs are written by hand and by scrapers: quoted or not, with spaces, HTML entities
(`?w=600&#038;h=600`), percent-escapes that must not be escaped twice, site-relative paths. Every
URL that reaches a feed passes through `normalize_url` once, when the record is read.
"""

from __future__ import annotations

import html
import re
import uuid
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit, urlunsplit

from feedsvc.errors import UrlError

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 3986 pchar plus "/" for paths; queries and fragments also allow "?". "%" stays as it is
# because a stray "%" (one not starting an escape) is encoded first, so nothing is escaped twice.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_ESCAPE = re.compile(r"%[0-9a-f]{2}|%[0-9A-F][a-f]|%[a-f][0-9A-F]")

FALLBACK_IMAGE_TYPE = "image/jpeg"
_IMAGE_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "jpe": "image/jpeg",
    "pjpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "svg": "image/svg+xml",
    "bmp": "image/bmp",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "ico": "image/vnd.microsoft.icon",
    "heic": "image/heic",
}
# Query parameters image CDNs use to name the served format (`format=jpeg`, imgix's `fm=webp`).
_FORMAT_PARAMS = ("format", "fm", "f", "ext", "type", "output", "mime")

# Entry ids live in their own UUID namespace so they never collide with another publisher's.
ENTRY_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://feedsvc.invalid/entry-id/v1")


def _quote(component: str, safe: str) -> str:
    return quote(_STRAY_PERCENT.sub("%25", component), safe=safe)


def _host(parts_hostname: str | None) -> str:
    if not parts_hostname:
        raise UrlError("has no host")
    try:
        host = parts_hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UrlError(f"has a host name that cannot be encoded ({exc})") from None
    if ":" in host:  # an IPv6 literal, which urlsplit has checked
        return f"[{host}]"
    # Python's IDNA codec lets NUL, spaces and other controls through (found by fuzzing).
    if not _HOST_NAME.fullmatch(host):
        raise UrlError(f"has a host name with characters no host name has: {host!r}")
    return host


_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9._-]*[a-z0-9_.])?")

# Most URLs in records are already safe: lower-case host, no port, only characters RFC 3986
# allows, escapes well-formed, no HTML entity. Those are returned as they are, which makes loading
# a collection twice as fast; a property test checks the full path would return them unchanged.
_SAFE_URL = re.compile(
    r"https?://[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?"
    r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*"
    r"(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})+)?"
)
# Only references closed by ";" are decoded: html.unescape alone would also turn a query such
# as `?a=1&para=2` into `?a=1¶=2` (HTML's legacy references need no semicolon).
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def decode_entities(text: str) -> str:
    """Decode HTML character references closed by `;` (`&#038;`, `&amp;`, `&nbsp;`)."""
    return _ENTITY.sub(lambda match: html.unescape(match.group(0)), text)


def is_safe_url(text: str) -> bool:
    """True when `normalize_url` would return `text` unchanged (the fast path)."""
    return _SAFE_URL.fullmatch(text) is not None and (
        "&" not in text or _ENTITY.search(text) is None
    )


def normalize_url(raw: str, base: str | None = None) -> str:
    """Return `raw` as a safe absolute http(s) URL, resolving site-relative paths against `base`.

    :raises UrlError: the URL is empty, relative with no base, of another scheme or has no host.
    """
    return raw if is_safe_url(raw) else normalize_in_full(raw, base)


def normalize_in_full(raw: str, base: str | None = None) -> str:
    """`normalize_url` without its fast path."""
    text = decode_entities(raw.strip())
    if not text:
        raise UrlError("is empty")
    if text.startswith("//"):
        text = "https:" + text
    elif text.startswith("/"):
        if base is None:
            raise UrlError("is site-relative and ASSET_BASE_URL is not set", relative=True)
        # The base is a prefix: `/assets/x.jpg` under `https://host/ai/` is `https://host/ai/assets/x.jpg`.
        text = base.rstrip("/") + text
    parts, port, scheme = _split_http(text)
    return urlunsplit(
        (
            scheme,
            _netloc(parts.hostname, port, scheme),
            _quote(parts.path or "/", _PATH_SAFE),
            _quote(parts.query, _QUERY_SAFE),
            _quote(parts.fragment, _QUERY_SAFE),
        )
    )


def normalize_base_url(raw: str) -> str:
    """A site's base URL as every link will carry it: scheme and host lower-cased, the default
    port dropped, surrounding white space stripped, unsafe path characters percent-encoded.

    Links are made by appending paths to it, so a query or fragment would swallow them
    (`https://host/?a=1` + `/feeds/all.atom`), and userinfo would publish a password.

    :raises UrlError: not an absolute http(s) URL, or it has a query, fragment or userinfo.
    """
    text = raw.strip()
    parts, port, scheme = _split_http(text, slashes=True)
    for part, name in (("?", "a query"), ("#", "a fragment")):
        if part in text:
            raise UrlError(f"has {name} ({part}...), which would end up in every link")
    if "@" in parts.netloc:
        raise UrlError("has userinfo (user:password@), which would be published in every link")
    netloc = _netloc(parts.hostname, port, scheme)
    return urlunsplit((scheme, netloc, _quote(parts.path or "/", _PATH_SAFE), "", ""))


def _split_http(text: str, *, slashes: bool = False) -> tuple[SplitResult, int | None, str]:
    """`text` split, its port and its scheme in lower case.

    :raises UrlError: it cannot be parsed, has no scheme (with `slashes`, no `//` after it),
        or a scheme other than http(s).
    """
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"cannot be parsed ({exc})") from None
    scheme = parts.scheme.lower()
    if not scheme or (slashes and not text.lower().startswith(f"{scheme}://")):
        raise UrlError("is not an absolute http(s) URL")
    if scheme not in ALLOWED_SCHEMES:
        raise UrlError(f"uses the {scheme!r} scheme; only http and https are published")
    return parts, port, scheme


def _netloc(hostname: str | None, port: int | None, scheme: str) -> str:
    """Host and port as links carry them: the host cleaned (`_host`), the default port dropped."""
    netloc = _host(hostname)
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return netloc


# A URL whose identity key is the URL without its scheme: a lower-case host with no port or
# userinfo, no escape to upper-case, no fragment, no empty query, nothing urlsplit strips. Most
# related articles' URLs are; taking the key by slicing skips urlsplit, which made up most of
# the cost of an entry's other coverage on a first render (a property test checks it is exact).
_PLAIN_URL = re.compile(
    r"https?://[a-z0-9.-]+"
    r"(?:/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*)?"
    r"(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?]+)?"
)


def identity_key(url: str) -> str:
    """The part of a normalized URL that names the article: no scheme, default port or fragment.

    `http://Example.com:80/a#top` and `https://example.com/a` are the same article.
    """
    if _PLAIN_URL.fullmatch(url):
        return "//" + url.partition("://")[2]
    return identity_key_in_full(url)


def identity_key_in_full(url: str) -> str:
    """`identity_key` without its fast path."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port is not None and parts.port != DEFAULT_PORTS.get(parts.scheme):
        netloc += f":{parts.port}"
    path = _ESCAPE.sub(lambda m: m.group(0).upper(), parts.path)
    query = _ESCAPE.sub(lambda m: m.group(0).upper(), parts.query)
    return f"//{netloc}{path}" + (f"?{query}" if query else "")


def entry_id(url: str) -> str:
    """The permanent id of the article at `url`: a `urn:uuid:` from its identity key only."""
    return uuid.uuid5(ENTRY_ID_NAMESPACE, identity_key(url)).urn


def image_media_type(url: str) -> str | None:
    """An image's media type from its URL's extension, else from its query; None if neither."""
    # Plain string operations: this runs for every image of every record at load time.
    rest, _, query = url.partition("#")[0].partition("?")
    last_segment = rest.rpartition("/")[2]
    extension = last_segment.rpartition(".")[2].lower() if "." in last_segment else ""
    if extension in _IMAGE_TYPES:
        return _IMAGE_TYPES[extension]
    if not query:
        return None
    params = {name.lower(): value for name, value in parse_qsl(query)}
    for name in _FORMAT_PARAMS:
        value = params.get(name, "").lower().removeprefix("image/")
        if value in _IMAGE_TYPES:
            return _IMAGE_TYPES[value]
    return None
