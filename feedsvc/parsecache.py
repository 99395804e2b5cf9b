"""Parse results remembered across restarts, so an unchanged collection is never parsed twice.

Each file's result is keyed by its path, size, modification time and content hash: a file whose
content changed is parsed again even if its size and time did not. The cache is one file, written
atomically; a cache that is corrupt, truncated, from another feedsvc version or made with other
settings is detected and ignored, never trusted. It holds plain values only (text, bytes,
numbers, lists: `encode_states`), from which `decode_states` makes the records; no class or
function can be named in it, so a tampered file cannot make unpickling call anything.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import os
import pickle
import stat
import struct
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, cast

from feedsvc import errors, records
from feedsvc.fields import PARSE_VERSION
from feedsvc.values import collector_paused, pickled_by_fields

log = logging.getLogger(__name__)

MAGIC = b"feedsvc parse cache\n"
_DIGEST_SIZE = 16


def content_digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=_DIGEST_SIZE).digest()


_STAT = struct.Struct("<qq")


def make_stamp(size: int, mtime_ns: int, digest: bytes) -> bytes:
    """A file's size, modification time (ns) and content digest as one small bytes object: a
    collection holds one per file, and compares them whole."""
    return _STAT.pack(size, mtime_ns) + digest


def stamp_mtime(stamp: bytes) -> int:
    """The modification time (ns) a stamp holds."""
    mtime_ns: int = _STAT.unpack_from(stamp)[1]
    return mtime_ns


def stamp_stat(stamp: bytes) -> bytes:
    """The size and modification time a stamp holds, as `stat_part` gives them."""
    return stamp[: _STAT.size]


def stamp_digest(stamp: bytes) -> bytes:
    """The content digest a stamp holds (empty when the file was not read)."""
    return stamp[_STAT.size :]


def stat_part(size: int, mtime_ns: int) -> bytes:
    """The start of a stamp: what a stat alone can tell."""
    return _STAT.pack(size, mtime_ns)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class FileState:
    """What was read from one file (its record and problems, kept unwrapped: one object less per
    record), and the stamp that says whether it is still current."""

    stamp: bytes
    record: records.Record | None
    problems: tuple[errors.Problem, ...]

    @property
    def result(self) -> records.ParseResult:
        return records.ParseResult(self.record, self.problems)

    @property
    def digest(self) -> bytes:
        return stamp_digest(self.stamp)

    @classmethod
    def of(cls, stamp: bytes, result: records.ParseResult) -> FileState:
        return cls(stamp, result.record, result.problems)


def _format_version() -> bytes:
    """Changes whenever the shape of what is pickled changes, or what a file parses to
    (`PARSE_VERSION`), so old caches are ignored."""
    shapes = [
        f"{cls.__name__}:{','.join(f.name for f in fields(cls))}"
        for cls in (
            records.Record,
            records.Image,
            records.Topic,
            records.Provider,
            records.ParseResult,
            errors.Problem,
            FileState,
        )
    ]
    shapes.append(f"parse:{PARSE_VERSION}")
    shapes.append(f"encoding:{_ENCODING}")
    return hashlib.blake2b("|".join(shapes).encode(), digest_size=8).hexdigest().encode()


class _RestrictedUnpickler(pickle.Unpickler):
    """The cache holds plain values only (text, bytes, numbers, lists, tuples, dicts): no class
    or function can be named in it, so a tampered file cannot make unpickling call anything."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a parse cache")


def _header(settings_key: str) -> bytes:
    return MAGIC + _format_version() + b"\n" + settings_key.encode("utf-8", "replace") + b"\n"


def _special_file(path: Path) -> bool:
    """Whether `path` names something other than a regular file: a device such as /dev/null or
    /dev/zero, a FIFO. Read, one may never end or block; replaced, as root, it would be gone
    (`PARSE_CACHE=/dev/null`, meant as "keep nothing", would replace the device)."""
    try:
        return not stat.S_ISREG(path.stat().st_mode)
    except OSError:  # missing, or unreadable: reading and writing report it themselves
        return False


def read_cache(path: Path, settings_key: str) -> dict[str, FileState]:
    """The cached states by relative path; empty when there is no usable cache."""
    return read_cache_digest(path, settings_key)[0]


def read_cache_digest(path: Path, settings_key: str) -> tuple[dict[str, FileState], bytes | None]:
    """`read_cache`, and the digest of the cache file read (None when none was usable): what
    is kept beside the cache from the same records (a build's stories) names it."""
    header = _header(settings_key)
    if _special_file(path):
        log.warning("parse cache %s is not a regular file; parsing every file", path)
        return {}, None
    try:
        with path.open("rb") as handle:  # the payload read on its own: no copies of it
            start = handle.read(len(header) + _DIGEST_SIZE)
            payload = handle.read()
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        log.warning("parse cache %s cannot be read (%s); parsing every file", path, exc.strerror)
        return {}, None
    digest = content_digest(payload)
    if start[: len(header)] != header or digest != start[len(header) :]:
        log.warning("parse cache %s is stale or corrupt; ignored", path)
        return {}, None
    try:
        with collector_paused():
            return decode_states(_RestrictedUnpickler(io.BytesIO(payload)).load()), digest
    except Exception as exc:  # any failure to unpickle or decode means: do not trust it
        log.warning("parse cache %s cannot be used (%s); ignored", path, exc)
        return {}, None


def write_cache(path: Path, settings_key: str, states: dict[str, FileState]) -> bytes | None:
    """Write the cache atomically: readers see the old file or the new one, never half of one.
    The digest of what was written (as `read_cache_digest` gives it); None when not written."""
    if _special_file(path):
        log.warning("parse cache %s is not a regular file; not replaced", path)
        return None
    payload = pickle.dumps(encode_states(states), protocol=pickle.HIGHEST_PROTOCOL)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # an unwritable place (a read-only home) costs a restart, no more
        log.warning("parse cache %s cannot be written (%s)", path, exc.strerror)
        return None
    return write_checked(path, _header(settings_key), payload, "parse cache")


def write_checked(path: Path, header: bytes, payload: bytes, what: str) -> bytes | None:
    """Write `header`, the digest of `payload` and `payload` to `path` atomically: readers see
    the old file or the new one, never half of one. The payload's digest; None, with a warning
    naming `what`, when it cannot be written. The parse cache and the states kept beside it
    (a build's stories and record digests) are written this way."""
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    except OSError as exc:
        log.warning("%s %s cannot be written (%s)", what, path, exc.strerror)
        return None
    digest = content_digest(payload)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(header + digest + payload)
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("%s %s cannot be written (%s)", what, path, exc.strerror)
        Path(temporary).unlink(missing_ok=True)
        return None
    return digest


def read_checked(path: Path, header: bytes, what: str, fallback: str) -> bytes | None:
    """The payload `write_checked` wrote to `path` with `header`; None when there is none: no
    file, an unreadable one or one of another header (of other code or settings: nothing to
    say), or one whose digest fails (a warning naming `what` and saying `fallback`)."""
    try:
        with path.open("rb") as handle:  # the payload read on its own: no copies of it
            start = handle.read(len(header) + _DIGEST_SIZE)
            payload = handle.read()
    except OSError:
        return None
    if start[: len(header)] != header:
        return None
    if content_digest(payload) != start[len(header) :]:
        log.warning("%s %s is corrupt; %s", what, path, fallback)
        return None
    return payload


# The cache holds the states as columns of plain values (`encode_states`), from which
# `decode_states` makes the records one after the other. Unpickled as objects, every record's
# arguments stayed alive until the end of the load (the pickle memo holds each object read) and
# were then freed among the records: about 0.27 KB a record of holes at 100,000 records, which
# the server's forked workers copied as they allocated into them.
_ENCODING = "columns-2"
_NONE = -(2**63)  # None, in a column of whole numbers packed 8 bytes each
_HAS_RECORD, _HAS_PROBLEMS = 1, 2
# A datetime's own pickled state (10 bytes), which its constructor takes back in a tenth of the
# time of any other way to make one.
_DATE_SIZE = 10
_NO_DATE = bytes(_DATE_SIZE)
_from_state = cast(Callable[[bytes, tzinfo], datetime], datetime)  # as pickle calls it

IntColumn = bytes | list[int | None]


def _int_column(values: Sequence[int | None]) -> IntColumn:
    """Whole numbers or None, packed 8 bytes each; as a list when one does not fit."""
    if any(value is not None and not _NONE < value < 2**63 for value in values):
        return list(values)
    return array("q", [_NONE if value is None else value for value in values]).tobytes()


def _ints(column: IntColumn) -> Iterator[int | None]:
    """The values of an `_int_column`, made one at a time (no list of them is kept)."""
    if isinstance(column, list):
        return iter(column)
    packed = array("q")
    packed.frombytes(column)
    if _NONE not in packed:
        return iter(packed)
    return (None if value == _NONE else value for value in packed)


def _date_state(moment: datetime) -> bytes:
    state = moment.__reduce__()[1][0]
    assert isinstance(state, bytes) and len(state) == _DATE_SIZE
    return state


class _Table:
    """Distinct values, each numbered once: the providers, topic lists and media types that
    records share."""

    def __init__(self) -> None:
        self.numbers: dict[Any, int] = {}

    def number(self, value: Any) -> int:
        return self.numbers.setdefault(value, len(self.numbers))

    @property
    def values(self) -> list[Any]:
        return list(self.numbers)


# A file's values as `encode_states` lays them out, one column each (a file without a record has
# None or 0 in the record's): its path and stamp, whether it has a record and problems, then its
# record's fields (`_record_values`), the provider and topics as numbers in tables of their own,
# the images as their count (they follow in columns of their own), the publication time as a
# datetime's state. tests/test_parsecache.py checks these against Record's fields.
_COLUMNS = (
    "path",
    "stamp",
    "flags",
    "record_path",
    "id",
    "title",
    "excerpt",
    "url",
    "original_url",
    "provider",
    "topics",
    "images",
    "coverage",
    "quality",
    "heat",
    "published_flag",
)
_INT_COLUMNS = frozenset(
    {"flags", "provider", "topics", "images", "quality", "heat", "published_flag"}
)
_NO_RECORD = (None, None, None, None, None, None, 0, 0, 0, None, None, None, 0)
_FLAGS: dict[bool | None, int] = {None: 0, False: 1, True: 2}


def _record_values(
    record: records.Record, path: str, provider: int, topics: int
) -> tuple[Any, ...]:
    return (
        None if record.path == path else record.path,  # the state's path, nearly always
        record.id,
        record.title,
        record.excerpt,
        record.url,
        record.original_url,
        provider,
        topics,
        len(record.images),
        record.coverage,
        record.quality,
        record.heat,
        _FLAGS[record.published_flag],
    )


def encode_states(states: dict[str, FileState]) -> dict[str, Any]:
    """`states` as columns of plain values (see `decode_states`). A string several records hold
    (the same object) stays one: the pickle memo writes it once."""
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    published = bytearray()
    problem_counts: list[int] = []
    problems: list[tuple[str, str, str, str]] = []
    images: dict[str, list[Any]] = {"url": [], "width": [], "height": [], "media_type": []}
    providers, topic_lists, media_types = _Table(), _Table(), _Table()
    for path, state in states.items():
        record = state.record
        flags = (_HAS_RECORD if record else 0) | (_HAS_PROBLEMS if state.problems else 0)
        if record is None:
            values = _NO_RECORD
            published += _NO_DATE
        else:
            provider = 0 if record.provider is None else 1 + providers.number(record.provider)
            values = _record_values(record, path, provider, topic_lists.number(record.topics))
            published += _date_state(record.published)
            for image in record.images:
                images["url"].append(image.url)
                images["width"].append(image.width)
                images["height"].append(image.height)
                images["media_type"].append(media_types.number(image.media_type))
        for name, value in zip(_COLUMNS, (path, state.stamp, flags, *values), strict=True):
            columns[name].append(value)
        if state.problems:
            problem_counts.append(len(state.problems))
            problems.extend((p.path, p.field, p.message, p.severity) for p in state.problems)
    return {
        "files": {
            name: _int_column(values) if name in _INT_COLUMNS else values
            for name, values in columns.items()
        },
        "published": bytes(published),
        "problem_counts": _int_column(problem_counts),
        "problems": problems,
        "images": {
            name: values if name == "url" else _int_column(values)
            for name, values in images.items()
        },
        "providers": [
            (p.name, p.domain, p.slug, [_image_values(image) for image in p.images])
            for p in providers.values
        ],
        "topic_lists": [[(t.name, t.slug) for t in topics] for topics in topic_lists.values],
        "media_types": media_types.values,
    }


def _image_values(image: records.Image) -> tuple[str, int | None, int | None, str]:
    return (image.url, image.width, image.height, image.media_type)


def decode_states(columns: dict[str, Any]) -> dict[str, FileState]:
    """The states `encode_states` laid out, their records made one after the other.

    :raises Exception: (any) the columns are not what `encode_states` makes.
    """
    providers: list[records.Provider | None] = [None]
    for name, domain, slug, logos in columns["providers"]:
        logos = tuple(records.shared_image(*logo) for logo in logos)
        providers.append(records.shared_provider(name, domain, slug, logos))
    topic_lists = [
        tuple(records.shared_topic(name, slug) for name, slug in topics)
        for topics in columns["topic_lists"]
    ]
    images = _images(columns["images"], columns["media_types"])
    problems = _problems(columns["problem_counts"], columns["problems"])
    published = columns["published"]
    files = columns["files"]
    rows = zip(
        *(_ints(files[name]) if name in _INT_COLUMNS else files[name] for name in _COLUMNS),
        strict=True,
    )
    states: dict[str, FileState] = {}
    start = 0
    for path, stamp, flags, own_path, entry_id, title, excerpt, url, original_url, *rest in rows:
        provider, topics, count, coverage, quality, heat, published_flag = rest
        record = None
        if flags & _HAS_RECORD:
            record = records.Record(
                path if own_path is None else own_path,
                entry_id,
                title,
                excerpt,
                _from_state(published[start : start + _DATE_SIZE], UTC),
                url,
                original_url,
                providers[provider],
                topic_lists[topics],
                (next(images),) if count == 1 else tuple(next(images) for _ in range(count)),
                coverage,
                quality,
                heat,
                (None, False, True)[published_flag],
            )
        start += _DATE_SIZE
        states[path] = FileState(stamp, record, next(problems) if flags & _HAS_PROBLEMS else ())
    if next(images, None) is not None or next(problems, None) is not None:
        raise ValueError("more images or problems than files hold")
    return states


def _images(columns: dict[str, Any], media_types: list[str]) -> Iterator[records.Image]:
    """The records' images, in order, as `records.shared_image` shares them."""
    for url, width, height, media_type in zip(
        columns["url"],
        _ints(columns["width"]),
        _ints(columns["height"]),
        _ints(columns["media_type"]),
        strict=True,
    ):
        yield records.shared_image(url, width, height, media_types[media_type or 0])


def _problems(
    counts: IntColumn, problems: list[tuple[str, str, str, str]]
) -> Iterator[tuple[errors.Problem, ...]]:
    """Each file's problems, in order, as `fields` makes them: a warning's field and message
    interned (thousands of records share a few), an error's as they are."""
    rows = iter(problems)
    for count in _ints(counts):
        found = []
        for path, field, message, severity in itertools.islice(rows, count):
            if severity == "warning":
                found.append(
                    errors.Problem(path, sys.intern(field), sys.intern(message), "warning")
                )
            else:
                found.append(errors.Problem(path, field, message, "error"))
        yield tuple(found)
    if next(rows, None) is not None:
        raise ValueError("more problems than files hold")
