"""Parse results remembered across restarts, so an unchanged collection is never parsed twice.

Each file's result is keyed by its path, size, modification time and content hash: a file whose
content changed is parsed again even if its size and time did not. The cache is one file, written
atomically; a cache that is corrupt, truncated, from another feedsvc version or made with other
settings is detected and ignored, never trusted. It is unpickled with an allow-list of classes,
so a tampered file cannot construct anything but feedsvc's own record values.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import struct
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from feedsvc import errors, records
from feedsvc.fields import PARSE_VERSION
from feedsvc.values import pickled_by_fields

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
    return hashlib.blake2b("|".join(shapes).encode(), digest_size=8).hexdigest().encode()


_ALLOWED = {
    ("feedsvc.records", name)
    for name in ("Record", "ParseResult", "shared_image", "shared_topic", "shared_provider")
} | {
    ("feedsvc.errors", "Problem"),
    ("feedsvc.parsecache", "FileState"),
    ("datetime", "datetime"),
    ("datetime", "timezone"),
    ("datetime", "timedelta"),
    ("copyreg", "_reconstructor"),
    ("builtins", "object"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a parse cache")
        return super().find_class(module, name)


def _header(settings_key: str) -> bytes:
    return MAGIC + _format_version() + b"\n" + settings_key.encode("utf-8", "replace") + b"\n"


def read_cache(path: Path, settings_key: str) -> dict[str, FileState]:
    """The cached states by relative path; empty when there is no usable cache."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        log.warning("parse cache %s cannot be read (%s); parsing every file", path, exc.strerror)
        return {}
    header = _header(settings_key)
    body = data[len(header) :]
    checksum, payload = body[:_DIGEST_SIZE], body[_DIGEST_SIZE:]
    if not data.startswith(header) or content_digest(payload) != checksum:
        log.warning("parse cache %s is stale or corrupt; ignored", path)
        return {}
    try:
        states = _RestrictedUnpickler(io.BytesIO(payload)).load()
    except Exception as exc:  # any failure to unpickle means: do not trust it
        log.warning("parse cache %s cannot be used (%s); ignored", path, exc)
        return {}
    if not isinstance(states, dict):
        return {}
    return states


def write_cache(path: Path, settings_key: str, states: dict[str, FileState]) -> None:
    """Write the cache atomically: readers see the old file or the new one, never half of one."""
    payload = pickle.dumps(states, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".parse-cache-", dir=path.parent)
    except OSError as exc:  # an unwritable place (a read-only home) costs a restart, no more
        log.warning("parse cache %s cannot be written (%s)", path, exc.strerror)
        return
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(_header(settings_key) + content_digest(payload) + payload)
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("parse cache %s cannot be written (%s)", path, exc.strerror)
        Path(temporary).unlink(missing_ok=True)
