"""A record's fields: how the plain values of one file's front matter become a `Record`.

Every raw key a record may have is converted through one table, `FIELDS` (raw keys -> converter);
the converters clean text (XML-forbidden characters, HTML references), URLs, dates and numbers.
What a converter refuses is collected as a `Problem` naming the file and the field, so that a
check can report every problem of a file, not just the first. Keys that are not in the table
(`secured` above all) never leave this module. `parse_file` and `parse_bytes` are the parse of
one file: bytes -> `frontmatter` (plain values) -> these converters -> a `records.ParseResult`.
"""

from __future__ import annotations

import email.utils
import logging
import os
import re
import reprlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from slugify import slugify

from feedsvc.errors import Problem, RecordError, UrlError
from feedsvc.frontmatter import load_front_matter, yaml_timestamp
from feedsvc.records import (
    Image,
    ParseResult,
    Provider,
    Record,
    Topic,
    join_packed,
    pack_item,
    shared_image,
    shared_provider,
    shared_topic,
)
from feedsvc.urls import (
    FALLBACK_IMAGE_TYPE,
    decode_entities,
    entry_id,
    image_media_type,
    normalize_url,
)

# XML 1.0 forbids these anywhere in a document; feedgen raises on them at render time. DEL and
# the C1 controls (but NEL, which is white space) are allowed but discouraged (XML 1.0 §2.2):
# they come from text decoded with the wrong encoding, and readers show them as boxes.
_XML_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
)
# The characters of _XML_FORBIDDEN that ASCII holds: C0 controls but tab, LF and CR, and DEL.
_ASCII_FORBIDDEN = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_WHITESPACE_RUN = re.compile(r"\s+")
EARLIEST_YEAR = 1900
_SHOWN_CHARS = 60
# Values shown in messages are cut short at every level: an alias bomb is a tiny tree of shared
# lists whose plain repr() would be billions of items long.
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxother = 2, 4, 4, 20
_SHOWN.maxstring = _SHOWN_CHARS
# More are kept out, with a warning: a record has 1-4 topics and up to 40 related articles, and
# each topic is a feed.
MAX_TOPICS = 50
MAX_RELATED = 100
MAX_IMAGES = 20
# What a file may weigh, unless the MAX_RECORD_BYTES setting says otherwise.
DEFAULT_MAX_BYTES = 1024 * 1024

log = logging.getLogger(__name__)

# Bumped whenever the same file may parse to a different result, so parse caches are not trusted.
PARSE_VERSION = 3


@dataclass
class _Context:
    """What converters need besides the value: where relative images resolve, where to warn."""

    path: str
    asset_base_url: str | None
    warnings: list[Problem] = field(default_factory=list)

    def warn(self, field_name: str, message: str) -> None:
        # Interned: a collection repeats the same few warnings (a provider's unusable logo) on
        # thousands of records, and keeps them all for /healthz.
        problem = Problem(self.path, sys.intern(field_name), sys.intern(message), "warning")
        self.warnings.append(problem)


Converter = Callable[[Any, _Context, str], Any]


@lru_cache(maxsize=65536)
def slug_of(name: str) -> str:
    """python-slugify's slug, remembered: a collection has few distinct topics and providers, and
    their slugs are asked for on every record. Interned, so every record shares one string."""
    return sys.intern(slugify(name))


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _SHOWN.repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def clean_text(text: str) -> str:
    """Drop the characters XML 1.0 forbids, so one stray control byte cannot break a feed."""
    # Printable text (most of it) has none of them: one C-level check instead of a regex. Line
    # breaks are allowed but not printable, and every entry's HTML has some, so such text is
    # checked again: ASCII by deleting what XML forbids from its bytes (ASCII is a flag of the
    # string; five times faster than the regex), other text without its line breaks.
    if text.isprintable():
        return text
    if text.isascii():
        raw = text.encode("ascii")
        if len(raw.translate(None, _ASCII_FORBIDDEN)) == len(raw):
            return text
    elif text.replace("\n", "").isprintable():
        return text
    return _XML_FORBIDDEN.sub("", text)


def _text(value: Any, name: str) -> str:
    """Text as a reader should see it: scrapers leave HTML references in records (`Data &amp;
    AI`, `&nbsp;`), which are decoded here, once, so feeds never show them literally."""
    if type(value) is str:
        text = value
    elif isinstance(value, bool) or not isinstance(value, str | int | float | date):
        kind = "a yes/no value (quote it)" if isinstance(value, bool) else type(value).__name__
        raise RecordError(name, f"should be text, not {kind}")
    else:
        text = str(value)
    if "&" in text:
        text = decode_entities(text)
    return clean_text(text).strip()


def _one_line(text: str) -> str:
    # The only whitespace printable text can hold is the plain space.
    if text.isprintable() and "  " not in text:
        return text
    return _WHITESPACE_RUN.sub(" ", text)


def convert_title(value: Any, ctx: _Context, name: str) -> str:
    title = _one_line(_text(value, name))
    if not title:
        raise RecordError(name, "is empty")
    return title


def convert_text(value: Any, ctx: _Context, name: str) -> str:
    return "" if value is None else _text(value, name)


def convert_datetime(value: Any, ctx: _Context, name: str) -> datetime:
    """Accept YAML timestamps, dates and ISO 8601 or RFC 822 strings; naive times are UTC."""
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        moment = _parse_date_text(value.strip())
    if moment is None:
        raise RecordError(name, f"is not a date: {_shown(value)}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise RecordError(name, f"is out of range: {_shown(value)}") from None
    if moment.year < EARLIEST_YEAR or moment.year > 9998:
        raise RecordError(name, f"is out of range (years {EARLIEST_YEAR}-9998): {_shown(value)}")
    return moment


def _parse_date_text(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    try:
        moment = yaml_timestamp(text)  # YAML forms ISO 8601 lacks (`... -5`)
    except ValueError:
        return None
    if moment is not None:
        return moment
    try:
        return email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None


def _url(value: Any, name: str, base: str | None) -> str:
    if not isinstance(value, str):
        raise RecordError(name, f"should be a URL, not {type(value).__name__}")
    try:
        return normalize_url(value, base)
    except UrlError as exc:
        raise RecordError(name, f"{exc.message}: {_shown(value)}") from None


def convert_url(value: Any, ctx: _Context, name: str) -> str | None:
    return None if value is None else _url(value, name, None)


def convert_int(value: Any, ctx: _Context, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise RecordError(name, f"should be a whole number, not {_shown(value)}")
    try:
        return int(value)
    except ValueError:
        raise RecordError(name, f"should be a whole number, not {_shown(value)}") from None


def convert_bool(value: Any, ctx: _Context, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise RecordError(name, f"should be true or false, not {_shown(value)}")


def _positive_int(value: Any, name: str, ctx: _Context) -> int | None:
    try:
        number = convert_int(value, ctx, name)
    except RecordError as exc:
        ctx.warn(name, f"{exc.message}; size left out")
        return None
    if number is not None and number <= 0:
        ctx.warn(name, f"should be a positive number of pixels, not {number}; size left out")
        return None
    return number


def _list_of(value: Any, name: str, ctx: _Context, limit: int) -> list[Any]:
    """The items of a list field (one item when it is a single text), at most `limit`."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise RecordError(name, f"should be a list, not {type(value).__name__}")
    if len(value) > limit:
        ctx.warn(name, f"has {len(value)} items; only the first {limit} are kept")
        return value[:limit]
    return value


def convert_images(value: Any, ctx: _Context, name: str) -> tuple[Image, ...]:
    """Keep every usable image; an unusable one is left out with a warning, not the record."""
    images: list[Image] = []
    items = _list_of([value] if isinstance(value, Mapping) else value, name, ctx, MAX_IMAGES)
    for index, item in enumerate(items):
        where = f"{name}[{index}]"
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, Mapping):
            ctx.warn(where, f"should be a mapping with a url, not {type(item).__name__}; left out")
            continue
        try:
            url = _url(item.get("url"), f"{where}.url", ctx.asset_base_url)
        except RecordError as exc:
            ctx.warn(exc.field, f"{exc.message}; image left out")
            continue
        media_type = image_media_type(url)
        if media_type is None:
            media_type = FALLBACK_IMAGE_TYPE
            ctx.warn(f"{where}.url", f"media type unknown from the URL; served as {media_type}")
        width = _positive_int(item.get("width"), f"{where}.width", ctx)
        height = _positive_int(item.get("height"), f"{where}.height", ctx)
        images.append(shared_image(url, width, height, media_type))
    return tuple(images)


def convert_topics(value: Any, ctx: _Context, name: str) -> tuple[Topic, ...]:
    topics: dict[str, Topic] = {}
    for index, item in enumerate(_list_of(value, name, ctx, MAX_TOPICS)):
        where = f"{name}[{index}]"
        try:
            topic_name = convert_title(item, ctx, where)
        except RecordError as exc:
            ctx.warn(where, f"{exc.message}; topic left out")
            continue
        slug = slug_of(topic_name)
        if not slug:
            ctx.warn(where, f"has no letters or digits to name a feed: {_shown(item)}; left out")
            continue
        topics.setdefault(slug, shared_topic(topic_name, slug))
    return tuple(topics.values())


def convert_provider(value: Any, ctx: _Context, name: str) -> Provider | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise RecordError(name, f"should be a mapping with name and domain, not {_shown(value)}")
    provider_name, domain = _provider_name(value, ctx, name)
    if not provider_name:
        raise RecordError(name, "has neither a name nor a domain")
    slug = slug_of(domain or provider_name)
    if not slug:
        raise RecordError(name, f"has no letters or digits to name a feed: {_shown(provider_name)}")
    images = convert_images(value.get("images"), ctx, f"{name}.images")
    return shared_provider(provider_name, domain, slug, images)


def _provider_name(value: Mapping[str, Any], ctx: _Context, name: str) -> tuple[str, str | None]:
    """A provider's display name (its domain when it has no name) and its lower-cased domain."""
    domain = convert_text(value.get("domain"), ctx, f"{name}.domain").lower() or None
    provider_name = convert_text(value.get("name"), ctx, f"{name}.name") or domain or ""
    return _one_line(provider_name), domain


def convert_related(value: Any, ctx: _Context, name: str) -> str:
    """The usable related articles, packed (`pack_related`)."""
    related: list[str] = []
    for index, item in enumerate(_list_of(value, name, ctx, MAX_RELATED)):
        where = f"{name}[{index}]"
        try:
            related.append(_related_item(item, ctx, where))
        except RecordError as exc:
            ctx.warn(exc.field, f"{exc.message}; related article left out")
    return join_packed(related)


def _related_item(item: Any, ctx: _Context, where: str) -> str:
    if not isinstance(item, Mapping):
        raise RecordError(where, f"should be a mapping, not {type(item).__name__}")
    title = convert_title(item.get("title"), ctx, f"{where}.title")
    raw_url = item.get("webUrl") or item.get("originalUrl")
    url = _url(raw_url, f"{where}.webUrl", None)
    try:
        published = _optional(
            convert_datetime, item.get("publishedDateTime"), ctx, f"{where}.publishedDateTime"
        )
        provider = _related_provider(item.get("provider"), ctx, f"{where}.provider")
    except RecordError as exc:
        ctx.warn(exc.field, f"{exc.message}; left out")
        published, provider = None, None
    return pack_item(title, url, provider, published)


def _related_provider(value: Any, ctx: _Context, name: str) -> str | None:
    """Only the name of a related article's provider is shown, so only it is kept."""
    if not isinstance(value, Mapping):
        return None
    raw_name, raw_domain = value.get("name"), value.get("domain")
    if isinstance(raw_name, str | None) and isinstance(raw_domain, str | None):
        return _related_provider_name(raw_name, raw_domain)  # the common case, remembered
    provider_name, _ = _provider_name(value, ctx, name)
    return provider_name or None


@lru_cache(maxsize=4096)
def _related_provider_name(raw_name: str | None, raw_domain: str | None) -> str | None:
    """`_provider_name` of text values, which cannot fail or warn."""
    raw = {"name": raw_name, "domain": raw_domain}
    provider_name, _ = _provider_name(raw, _Context("", None), "provider")
    return provider_name or None


def _optional(convert: Converter, value: Any, ctx: _Context, name: str) -> Any:
    return None if value is None else convert(value, ctx, name)


@dataclass(frozen=True, slots=True)
class Field:
    """How one `Record` attribute is read: raw keys tried in order, converter, and whether the
    record is rejected without it (required) or published without it (with a warning)."""

    keys: tuple[str, ...]
    convert: Converter
    required: bool = False
    default: Any = None


def _article_url(value: Any, ctx: _Context, name: str) -> str:
    return _url(value, name, None)


# Raw key -> Record attribute. Anything not named here (`secured`, `cdnAmpWebUrl`, ...) is dropped.
FIELDS: dict[str, Field] = {
    "title": Field(("title",), convert_title, required=True),
    "excerpt": Field(("excerpt",), convert_text, default=""),
    "published": Field(("publishedDateTime",), convert_datetime, required=True),
    "url": Field(("webUrl", "originalUrl"), _article_url, required=True),
    "original_url": Field(("originalUrl",), convert_url),
    "provider": Field(("provider",), convert_provider),
    "topics": Field(("topics",), convert_topics, default=()),
    "images": Field(("images",), convert_images, default=()),
    "coverage": Field(("related",), convert_related, default=""),
    "quality": Field(("quality",), convert_int),
    "heat": Field(("heat",), convert_int),
    "published_flag": Field(("published",), convert_bool),
}


def _read_field(spec: Field, data: Mapping[str, Any], ctx: _Context) -> Any:
    """The converted value of one field; the first raw key that converts wins.

    :raises RecordError: the field is required and no key gave a usable value.
    """
    failures: list[RecordError] = []
    for key in spec.keys:
        if data.get(key) is None:
            continue
        try:
            value = spec.convert(data[key], ctx, key)
        except RecordError as exc:
            failures.append(exc)
            continue
        for failure in failures:
            ctx.warn(failure.field, f"{failure.message}; used {key} instead")
        return value
    if spec.required:
        if len(failures) == 1:
            raise failures[0]
        if failures:
            reasons = "; ".join(f"{failure.field} {failure.message}" for failure in failures)
            raise RecordError(spec.keys[0], f"no usable value ({reasons})")
        raise RecordError(spec.keys[0], "is missing")
    for failure in failures:
        ctx.warn(failure.field, f"{failure.message}; left out")
    return spec.default


def record_from_mapping(data: Any, path: str, asset_base_url: str | None = None) -> ParseResult:
    """Convert one parsed front-matter mapping into a `Record`, collecting every problem."""
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        problem = Problem(path, "", f"front matter should be a mapping of fields, but it is {kind}")
        return ParseResult(None, (problem,))
    ctx = _Context(path, asset_base_url)
    values: dict[str, Any] = {}
    errors: list[Problem] = []
    for attribute, spec in FIELDS.items():
        try:
            values[attribute] = _read_field(spec, data, ctx)
        except RecordError as exc:
            errors.append(Problem(path, exc.field, exc.message))
    if errors:
        return ParseResult(None, (*errors, *ctx.warnings))
    if values["original_url"] == values["url"]:
        values["original_url"] = values["url"]  # one string, not two equal copies
    record = Record(path=path, id=entry_id(values["url"]), **values)
    return ParseResult(record, tuple(ctx.warnings))


def parse_text(text: str, path: str, asset_base_url: str | None = None) -> ParseResult:
    """Parse the text of one record file."""
    try:
        data = load_front_matter(text)
    except RecordError as exc:
        return ParseResult(None, (Problem(path, exc.field, exc.message),))
    return record_from_mapping(data, path, asset_base_url)


def parse_bytes(raw: bytes, path: str, asset_base_url: str | None = None) -> ParseResult:
    """Parse the bytes of one record file; `path` names it in problems. Never raises: whatever
    one file holds, the rest of the collection loads."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ParseResult(
            None, (Problem(path, "", f"is not UTF-8 text (bad byte at offset {exc.start})"),)
        )
    try:
        return parse_text(text, path, asset_base_url)
    except Exception as exc:  # a defect in feedsvc must not take the other records down
        log.exception("parsing %s failed", path)
        message = f"could not be parsed (internal error {type(exc).__name__}; please report it)"
        return ParseResult(None, (Problem(path, "", message),))


def too_large(path: str, size: int, max_bytes: int) -> ParseResult:
    """The rejection of a file over the MAX_RECORD_BYTES setting (it is not read)."""
    message = f"is {size:,} bytes, over the limit of {max_bytes:,} (MAX_RECORD_BYTES)"
    return ParseResult(None, (Problem(path, "", message),))


def unreadable(path: str, error: OSError) -> ParseResult:
    """The rejection of a file that cannot be read (gone, a folder, no permission)."""
    return ParseResult(None, (Problem(path, "", f"cannot be read ({error.strerror})"),))


def parse_file(
    file: Path, root: Path, asset_base_url: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> ParseResult:
    """Read and parse one record file; `root` only shortens the path that problems name."""
    path = file.relative_to(root).as_posix()
    try:
        with file.open("rb") as handle:
            raw = handle.read(max_bytes + 1)  # never more, whatever the file's size
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        return unreadable(path, exc)
    if len(raw) > max_bytes:
        return too_large(path, max(size, len(raw)), max_bytes)
    return parse_bytes(raw, path, asset_base_url)
