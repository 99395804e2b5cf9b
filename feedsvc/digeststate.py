"""The records' digests kept from one build to the next, as the parse cache keeps records.

A rebuild works out every page's fingerprint (`feeds.Fingerprints`), and those are made from
every record's digest: `marshal` and blake2b over each record's fields, 0.2-0.35 s of the build
process's CPU at 10,000 records, on the way to the first page rendered. The digests of the last
build are written beside the parse cache (`state_file`), and the next build takes up those of
the records it read from that very parse cache file, the files unchanged since (`taken_up`).

What is written is plain values: for each record file, its path and the digest of the record
read from it. It names the parse cache file it goes with by that file's digest, and its header
holds a digest of feedsvc's code and Python's version (`storystate.source_digest`: a digest is
`feeds.record_values` through `marshal`). Only a record that is its file's own (the very object
its file's state holds: not a record merged from several files, nor the last good version of a
file that no longer parses) takes up a digest, and only while its file is as the parse cache
held it. Anything else (missing, stale, corrupt, other code) is ignored: the build then works out
every digest, as it always could.
"""

from __future__ import annotations

import hashlib
import io
import logging
import pickle
from collections.abc import Iterable
from pathlib import Path

from feedsvc.parsecache import FileState, _RestrictedUnpickler, read_checked, write_checked
from feedsvc.records import Record
from feedsvc.storystate import source_digest

log = logging.getLogger(__name__)

MAGIC = b"feedsvc record digests 1\n"
_DIGEST_SIZE = 16
_SEPARATOR = "\n"  # between paths; a state with a path that holds one is not written


def state_file(cache_file: Path) -> Path:
    """Where the record digests of a parse cache live: beside it."""
    return cache_file.with_name(cache_file.name + ".digests")


def _header() -> bytes:
    key = hashlib.blake2b(source_digest(), digest_size=_DIGEST_SIZE).hexdigest()
    return MAGIC + key.encode() + b"\n"


def own_records(records: Iterable[Record], states: dict[str, FileState]) -> Iterable[Record]:
    """The records of `records` that are their file's own: the object its state holds."""
    for record in records:
        state = states.get(record.path)
        if state is not None and state.record is record:
            yield record


def save(path: Path, digests: dict[str, bytes], cache: bytes) -> None:
    """Write `digests` (record digest by path, of the records read from the parse cache whose
    digest is `cache`) to `path`, atomically; a failure is a warning (the next build works out
    every digest)."""
    paths = list(digests)
    joined = _SEPARATOR.join(paths)
    if joined.count(_SEPARATOR) != max(len(paths) - 1, 0):
        return
    size = len(next(iter(digests.values()), b""))
    values = b"".join(digests.values())
    if len(values) != len(paths) * size:
        return
    state = {"cache": cache, "paths": joined, "size": size, "digests": values}
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    write_checked(path, _header(), payload, "record digests state")


def load(path: Path, cache: bytes) -> dict[str, bytes] | None:
    """The record digests by path that `path` holds for the parse cache whose digest is `cache`;
    None when there are none usable."""
    payload = read_checked(path, _header(), "record digests state", "working them out again")
    if payload is None:
        return None
    try:
        state = _RestrictedUnpickler(io.BytesIO(payload)).load()
        if state["cache"] != cache:
            return None
        if not state["paths"]:  # no record of its own in any file
            return {} if not state["digests"] else None
        names, values, size = state["paths"].split(_SEPARATOR), state["digests"], state["size"]
        if size <= 0 or len(values) != len(names) * size:
            return None
        return {
            name: values[offset : offset + size]
            for name, offset in zip(names, range(0, len(values), size), strict=True)
        }
    except Exception as exc:  # anything unexpected in it: not to be trusted
        log.warning(
            "record digests state %s cannot be used (%s); working them out again", path, exc
        )
        return None
