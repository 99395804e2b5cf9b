"""A folder of record files loaded into one immutable `Collection`, indexed by topic and provider.

Loading never stops at a bad file: each rejection is kept as a `Problem` and logged once. Records
that share an article URL are one article (one entry, the earliest date, the union of topics).
Every sequence here is newest first, ties broken by entry id, so the order never depends on the
file system or on load order.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import hashlib
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from stat import S_ISDIR

from feedsvc.errors import FolderError, Problem
from feedsvc.fields import DEFAULT_MAX_BYTES, parse_bytes, too_large, unreadable
from feedsvc.parsecache import (
    FileState,
    content_digest,
    make_stamp,
    read_cache_digest,
    stamp_digest,
    stamp_mtime,
    stamp_stat,
    stat_part,
    write_cache,
)
from feedsvc.processes import end_with_parent
from feedsvc.records import Image, ParseResult, Record
from feedsvc.settings import Settings
from feedsvc.values import collector_paused
from feedsvc.watch import RootIdentity, names_root, root_identity

log = logging.getLogger(__name__)

RECORD_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".yaml", ".yml"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Below this many files, starting worker processes costs more than it saves.
PARALLEL_MINIMUM = 200


@dataclass(frozen=True, slots=True)
class Group:
    """The records of one topic or one provider, newest first, under the name its feed shows."""

    slug: str
    name: str
    records: tuple[Record, ...]
    images: tuple[Image, ...] = ()

    @property
    def updated(self) -> datetime:
        return self.records[0].published


@dataclass(frozen=True, slots=True)
class RecordChanges:
    """The records a version took out and put in, against the version whose `records` tuple is
    `base`: what an index derived from the records (the stories) needs to follow a reload by its
    changes instead of making itself again."""

    base: tuple[Record, ...]
    removed: tuple[Record, ...]
    added: tuple[Record, ...]


@dataclass(frozen=True, slots=True)
class Collection:
    """Every publishable record of a folder, with the indexes the feeds are cut from."""

    records: tuple[Record, ...]
    topics: Mapping[str, Group]
    providers: Mapping[str, Group]
    rejections: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    version: str = ""
    loaded_at: datetime | None = None
    # The newest modification time of the record files and the folders read, in whole seconds:
    # moves forward on any add, edit, delete or rename (a folder's time moves when a file in it
    # goes), and is the same in every process for the same files.
    modified: datetime = EPOCH
    skipped: tuple[Problem, ...] = ()  # links in the folder, not followed
    # Against the version before, when this one was made from it in place (None after a load).
    changes: RecordChanges | None = None

    @property
    def updated(self) -> datetime | None:
        return self.records[0].published if self.records else None


def find_record_files(root: Path) -> list[Path]:
    """Every record file under `root`, in a stable order; hidden files and folders are skipped,
    and so are links (a link could point outside the collection, or into a loop)."""
    return [Path(path) for path in record_paths(root)]


def record_paths(root: Path) -> list[str]:
    """`find_record_files` as plain strings: a reload scans every file, and building Path
    objects was most of its cost."""
    return scan_folder(root).files


@dataclass(slots=True)
class FolderScan:
    """What one walk of a folder found: its record files, the modification time (ns) of every
    folder read (by its path relative to the root, "" for the root itself), the links skipped,
    and the folders that could not be read."""

    files: list[str] = field(default_factory=list)
    folders: dict[str, int] = field(default_factory=dict)
    skipped: list[Problem] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)


def scan_folder(root: Path) -> FolderScan:
    """Walk `root` for record files, in a stable order; hidden files and folders are skipped, and
    so are links (a link could point outside the collection, or into a loop): those that look
    like records or folders are named in `skipped`, so that `check` can say so."""
    scan = FolderScan()
    pending = [str(root)]
    prefix = len(str(root)) + 1
    while pending:
        folder = pending.pop()
        relative = folder[prefix:].replace(os.sep, "/")
        try:
            scan.folders[relative] = os.stat(folder).st_mtime_ns
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            log.warning("folder %s cannot be read (%s)", folder, exc.strerror)
            message = f"folder cannot be read ({exc.strerror}); its records are left out"
            scan.errors.append(Problem(relative or ".", "", message))
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_symlink():
                if _suffix(entry.name) in RECORD_SUFFIXES or entry.is_dir():
                    path = entry.path[prefix:].replace(os.sep, "/")
                    skipped = Problem(path, "", "a link: links are not followed", "warning")
                    scan.skipped.append(skipped)
            elif entry.is_dir():
                subfolders.append(entry.path)
            elif (
                _suffix(entry.name) in RECORD_SUFFIXES
                and entry.is_file()  # not a FIFO or device: opening one can block for ever
            ):
                scan.files.append(entry.path)
        pending.extend(reversed(subfolders))
    scan.files.sort()
    return scan


def stat_walk(root: Path) -> tuple[int, int, dict[str, int]] | None:
    """What a scan that trusts sizes and times needs of `root`, without keeping anything per
    file: the number of record files, the sum of their `stat_term`s, and the modification times
    of the folders (as `scan_folder` gives them). None when the walk meets what only a full scan
    reports: a link it would list as skipped, or something that cannot be read."""
    count, total = 0, 0
    folders: dict[str, int] = {}
    pending = [str(root)]
    prefix = len(str(root)) + 1
    try:
        while pending:
            folder = pending.pop()
            folders[folder[prefix:].replace(os.sep, "/")] = os.stat(folder).st_mtime_ns
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith("."):
                        continue
                    if entry.is_symlink():
                        if _suffix(name) in RECORD_SUFFIXES or entry.is_dir():
                            return None
                    elif entry.is_dir():
                        pending.append(entry.path)
                    elif _suffix(name) in RECORD_SUFFIXES and entry.is_file():
                        stat = entry.stat()
                        path = entry.path[prefix:].replace(os.sep, "/")
                        total += stat_term(path, stat_part(stat.st_size, stat.st_mtime_ns))
                        count += 1
    except OSError:
        return None
    return count, total % _STAT_SUM_MODULUS, folders


def check_folder(root: Path) -> None:
    """Refuse a root that is not a folder that can be listed (missing, a file, a FIFO, a device
    such as /dev/null, no permission): reading it would publish an empty site without a word.

    :raises FolderError: saying which, in one line.
    """
    try:
        mode = os.stat(root).st_mode
    except FileNotFoundError:
        raise FolderError(f"seeds folder {root} does not exist") from None
    except OSError as exc:
        raise FolderError(f"seeds folder {root} cannot be read ({exc.strerror})") from None
    if not S_ISDIR(mode):
        raise FolderError(f"seeds folder {root} is not a folder")
    try:
        with os.scandir(root):
            pass
    except OSError as exc:
        raise FolderError(f"seeds folder {root} cannot be read ({exc.strerror})") from None


def _suffix(name: str) -> str:
    """`name`'s extension, lower-cased (a scan asks this of every file: splitext cost more)."""
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def newest_first(records: Iterable[Record]) -> tuple[Record, ...]:
    """Newest first; records published at the same moment are ordered by entry id."""
    ordered = sorted(records, key=_ENTRY_ID)
    ordered.sort(key=_PUBLISHED, reverse=True)  # stable: the same moment stays in id order
    return tuple(ordered)


_ENTRY_ID, _PUBLISHED = attrgetter("id"), attrgetter("published")


def _position(records: list[Record], record: Record) -> int:
    """Where `record` is, or goes, in a list in `newest_first` order (a binary search: the lists
    of an index are kept sorted as records come and go)."""
    published, entry_id = record.published, record.id
    low, high = 0, len(records)
    while low < high:
        middle = (low + high) // 2
        other = records[middle]
        if other.published > published or (other.published == published and other.id < entry_id):
            low = middle + 1
        else:
            high = middle
    return low


def merge_copies(copies: Iterable[Record]) -> tuple[Record, list[Problem]]:
    """The one record published for an article URL that several files hold: the earliest one's
    fields with the union of all topics, and a note for each other copy. One copy is itself."""
    ordered = sorted(copies, key=lambda record: (record.published, record.path))
    first = ordered[0]
    if len(ordered) == 1:
        return first, []
    topics = {topic.slug: topic for copy in ordered for topic in copy.topics}
    message = f"same article URL as {first.path}; merged into one entry"
    notes = [Problem(copy.path, "webUrl", message, "warning") for copy in ordered[1:]]
    log.info(
        "merged %d records of %s: %s",
        len(ordered),
        first.url,
        ", ".join(copy.path for copy in ordered),
    )
    return replace(first, topics=tuple(topics.values())), notes


def topic_group(slug: str, records: Sequence[Record]) -> Group:
    """A topic's group of `records` (newest first), named as its newest record names it."""
    name = next(topic.name for topic in records[0].topics if topic.slug == slug)
    return Group(slug, name, tuple(records))


def provider_group(slug: str, records: Sequence[Record]) -> Group:
    """A provider's group of `records` (newest first): the newest record's name for it, and the
    images of the newest record that has any."""
    newest = records[0].provider
    assert newest is not None
    images = next((images for record in records if (images := _images(record))), ())
    return Group(slug, newest.name, tuple(records), images)


def _images(record: Record) -> tuple[Image, ...]:
    return record.provider.images if record.provider is not None else ()


def _topic_slugs(record: Record) -> Iterator[str]:
    return (topic.slug for topic in record.topics)


def _provider_slugs(record: Record) -> Iterator[str]:
    if record.provider is not None:
        yield record.provider.slug


class _GroupIndex:
    """One index (topics or providers): the `Group` of each slug, which versions share until its
    records change. A change works on a list copy of the group's records (kept in place while
    a reload lasts), from which the new group is made: no second list per group is kept."""

    def __init__(
        self,
        slugs_of: Callable[[Record], Iterator[str]],
        group: Callable[[str, Sequence[Record]], Group],
    ) -> None:
        self.slugs_of = slugs_of
        self.group = group
        self.groups: dict[str, Group] = {}  # by slug, in slug order
        self.changed: dict[str, list[Record]] = {}  # slug -> its records, being changed

    def fill(self, records: Iterable[Record]) -> None:
        """Index `records` (newest first) from nothing."""
        members: dict[str, list[Record]] = {}
        for record in records:
            for slug in self.slugs_of(record):
                members.setdefault(slug, []).append(record)
        self.groups = {slug: self.group(slug, members[slug]) for slug in sorted(members)}

    def _members(self, slug: str) -> list[Record]:
        if slug not in self.changed:
            group = self.groups.get(slug)
            self.changed[slug] = list(group.records) if group is not None else []
        return self.changed[slug]

    def remove(self, record: Record) -> None:
        for slug in self.slugs_of(record):
            members = self._members(slug)
            index = _position(members, record)
            assert members[index] is record
            del members[index]

    def insert(self, record: Record) -> None:
        for slug in self.slugs_of(record):
            members = self._members(slug)
            members.insert(_position(members, record), record)

    def refresh(self) -> None:
        """New groups for the slugs whose records changed; the others are kept as they are."""
        added = False
        for slug, members in self.changed.items():
            if members:
                added = added or slug not in self.groups
                self.groups[slug] = self.group(slug, members)
            else:
                self.groups.pop(slug, None)
        if added:
            self.groups = dict(sorted(self.groups.items()))
        self.changed = {}


class Indexes:
    """What a collection is cut from, kept between reloads and changed in place by the files
    that changed, so that a reload costs what it changed (a few binary searches and list
    inserts), not what the collection holds. Nothing a request can see is ever changed: each
    version gets its own tuples and mappings, and shares the `Record` and `Group` objects that
    did not change with the version before. `built` makes them from nothing; the two ways must
    give the same collection (tests/test_reload.py checks it over random changes)."""

    def __init__(self) -> None:
        # entry id -> the records of the files that hold it, for the entries held by more than
        # one file (most are held by one: their copy is the record published)
        self.copies: dict[str, tuple[Record, ...]] = {}
        self.published: dict[str, Record] = {}  # entry id -> the record published (merged)
        self.notes: dict[str, tuple[str, Problem]] = {}  # path -> (entry id, "merged" note)
        self.noted: dict[str, list[str]] = {}  # entry id -> the paths of its notes
        self.records: list[Record] = []  # published, newest first
        self.topics = _GroupIndex(_topic_slugs, topic_group)
        self.providers = _GroupIndex(_provider_slugs, provider_group)
        self.own: dict[str, tuple[Problem, ...]] = {}  # path -> its file's own problems
        # path -> (errors, warnings: its own, then its note), for the paths that have any
        self.problems: dict[str, tuple[tuple[Problem, ...], tuple[Problem, ...]]] = {}
        self.problem_paths: list[str] = []  # the keys of `problems`, sorted
        self._touched: set[str] = set()  # paths whose problems may have changed
        self._records: tuple[Record, ...] | None = None  # `records` as the last version had it
        self._base: tuple[Record, ...] | None = None  # the last version's `records`, if any
        # id(record) -> (record, +1 published / -1 withdrawn since the last version)
        self._moves: dict[int, tuple[Record, int]] = {}
        self._rejections: tuple[Problem, ...] = ()
        self._warnings: tuple[Problem, ...] = ()

    @classmethod
    def built(cls, results: Iterable[tuple[str, ParseResult | FileState]]) -> Indexes:
        """The indexes of every (path, parse result), made from nothing."""
        indexes = cls()
        published, copies = indexes.published, indexes.copies
        for path, result in results:
            record = result.record
            if record is not None:
                first = published.setdefault(record.id, record)  # the first file's, for now
                if first is not record:  # held by more than one file: merged below
                    copies[record.id] = (*copies.get(record.id, (first,)), record)
            if result.problems:
                indexes.own[path] = result.problems
        for entry_id, held in copies.items():
            published[entry_id] = indexes._merge(entry_id, held)
        indexes.records = list(newest_first(indexes.published.values()))
        indexes.topics.fill(indexes.records)
        indexes.providers.fill(indexes.records)
        for path in {*indexes.own, *indexes.notes}:
            indexes._set_problems(path)
        indexes.problem_paths = sorted(indexes.problems)
        indexes._list_problems()
        indexes._touched = set()
        return indexes

    def update(self, changes: Iterable[tuple[str, FileState | None, FileState | None]]) -> None:
        """Take in changed files: (path, its state before or None, its state now or None)."""
        affected: set[str] = set()
        for path, old, new in changes:
            affected |= self._change(path, old, new)
        for entry_id in affected:
            self._republish(entry_id)
        self.topics.refresh()
        self.providers.refresh()
        if self._touched:
            for path in self._touched:
                known = path in self.problems
                listed = self._set_problems(path)
                if listed and not known:
                    bisect.insort(self.problem_paths, path)
                elif known and not listed:
                    del self.problem_paths[bisect.bisect_left(self.problem_paths, path)]
            self._touched = set()
            self._list_problems()

    def _change(self, path: str, old: FileState | None, new: FileState | None) -> set[str]:
        """Take in one file's change; the entry ids whose copies changed."""
        before = old.record if old is not None else None
        after = new.record if new is not None else None
        affected: set[str] = set()
        if before is not after:
            if before is not None:
                copies = self._copies(before.id)
                self.copies[before.id] = tuple(copy for copy in copies if copy is not before)
                affected.add(before.id)
            if after is not None:
                self.copies[after.id] = (*self._copies(after.id), after)
                affected.add(after.id)
        problems = new.problems if new is not None else ()
        if problems != self.own.get(path, ()):
            if problems:
                self.own[path] = problems
            else:
                del self.own[path]
            self._touched.add(path)
        return affected

    def _copies(self, entry_id: str) -> tuple[Record, ...]:
        """The records of the files that hold an entry (as they were before this update, until
        it changes them)."""
        if entry_id in self.copies:
            return self.copies[entry_id]
        published = self.published.get(entry_id)
        return (published,) if published is not None else ()

    def _republish(self, entry_id: str) -> None:
        """Publish the merge of an entry's copies in place of the record published before."""
        copies = self._copies(entry_id)
        if len(copies) <= 1:
            self.copies.pop(entry_id, None)
        before = self.published.pop(entry_id, None)
        self._forget_notes(entry_id)
        after = self._merge(entry_id, copies) if copies else None
        if before is not None:
            index = _position(self.records, before)
            assert self.records[index] is before
            del self.records[index]
            self.topics.remove(before)
            self.providers.remove(before)
            self._move(before, -1)
        if after is not None:
            self.published[entry_id] = after
            self.records.insert(_position(self.records, after), after)
            self.topics.insert(after)
            self.providers.insert(after)
            self._move(after, +1)
        self._records = None

    def _move(self, record: Record, step: int) -> None:
        """Count a record in or out since the last version (in and out again is no change)."""
        _, count = self._moves.pop(id(record), (record, 0))
        if count + step:
            self._moves[id(record)] = (record, count + step)

    def _merge(self, entry_id: str, copies: tuple[Record, ...]) -> Record:
        """The record published for an entry with copies, noting the other copies."""
        record, notes = merge_copies(copies)
        if notes:
            self.noted[entry_id] = [note.path for note in notes]
            for note in notes:
                self.notes[note.path] = (entry_id, note)
                self._touched.add(note.path)
        return record

    def _forget_notes(self, entry_id: str) -> None:
        for path in self.noted.pop(entry_id, ()):
            if self.notes[path][0] == entry_id:  # not yet the note of another entry
                del self.notes[path]
                self._touched.add(path)

    def _set_problems(self, path: str) -> bool:
        """Bring one path's problems up to date; whether it has any."""
        own = self.own.get(path, ())
        errors = tuple(problem for problem in own if problem.severity == "error")
        # A file's own problems are all warnings, mostly: then they are its tuple as it is.
        warnings = (
            tuple(problem for problem in own if problem.severity != "error") if errors else own
        )
        if path in self.notes:
            warnings = (*warnings, self.notes[path][1])
        if errors or warnings:
            self.problems[path] = (errors, warnings)
            return True
        self.problems.pop(path, None)
        return False

    def _list_problems(self) -> None:
        """Rejections, then warnings, in path order (each file's own, then its note)."""
        listed = [self.problems[path] for path in self.problem_paths]
        self._rejections = tuple(problem for errors, _ in listed for problem in errors)
        self._warnings = tuple(problem for _, warnings in listed for problem in warnings)

    def collection(
        self,
        version: str = "",
        modified: datetime = EPOCH,
        unread: Sequence[Problem] = (),
        skipped: Sequence[Problem] = (),
    ) -> Collection:
        """This version as a `Collection`: tuples and mappings of its own, shared records."""
        if self._records is None:
            self._records = tuple(self.records)
        changes = None
        if self._base is not None:
            moves = self._moves.values()
            changes = RecordChanges(
                self._base,
                tuple(record for record, count in moves if count < 0),
                tuple(record for record, count in moves if count > 0),
            )
        self._base, self._moves = self._records, {}
        return Collection(
            records=self._records,
            topics=dict(self.topics.groups),
            providers=dict(self.providers.groups),
            rejections=(*unread, *self._rejections),
            warnings=self._warnings,
            version=version,
            loaded_at=datetime.now(UTC),
            modified=modified,
            skipped=tuple(skipped),
            changes=changes,
        )


def build_collection(
    results: Iterable[ParseResult | FileState],
    version: str = "",
    modified: datetime = EPOCH,
    *,
    unread: Sequence[Problem] = (),
    skipped: Sequence[Problem] = (),
) -> Collection:
    """Assemble parse results into a collection: merge duplicates, sort, index. `unread` names
    the folders that could not be read (rejections too), `skipped` the links not followed."""
    indexes = Indexes.built((_path_of(result), result) for result in results)
    return indexes.collection(version, modified, unread, skipped)


def _path_of(result: ParseResult | FileState) -> str:
    if result.record is not None:
        return result.record.path
    return result.problems[0].path if result.problems else ""


def _log_collection(collection: Collection, root: Path, stats: LoadStats) -> None:
    for problem in collection.rejections:
        log.warning("rejected %s", problem)
    for problem in collection.warnings:
        log.debug("warning %s", problem)
    log.info(
        "loaded %d records from %s in %.2fs: %d files (%d parsed, %d from the parse cache), "
        "%d rejected, %d warnings, %d topics, %d providers, version %s",
        len(collection.records),
        root,
        stats.seconds,
        stats.files,
        stats.parsed,
        stats.cache_hits,
        len({p.path for p in collection.rejections}),
        len(collection.warnings),
        len(collection.topics),
        len(collection.providers),
        collection.version,
    )


@dataclass(frozen=True, slots=True)
class LoadStats:
    files: int = 0
    parsed: int = 0
    cache_hits: int = 0
    seconds: float = 0.0
    checked: int = 0  # files looked at: all of them, or those filesystem events named


def read_file_state(
    file: str,
    path: str,
    stamp: bytes | None,
    trust_stat: bool,
    asset_base_url: str | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> FileState | bytes | None:
    """Stat, read, hash and, if it changed, parse one file; None when it is unchanged since
    `stamp`, and only its new stamp when just its size or time changed (its content did not:
    what was parsed from it still holds, and is kept, the same objects). With `trust_stat`, an
    unchanged size and modification time are enough. A file over `max_bytes` is rejected
    without reading more than that."""
    try:
        stat = os.stat(file)
        if trust_stat and stamp and stamp.startswith(stat_part(stat.st_size, stat.st_mtime_ns)):
            return None
        if stat.st_size > max_bytes:
            stamp_now = make_stamp(stat.st_size, stat.st_mtime_ns, b"")
            return FileState.of(stamp_now, too_large(path, stat.st_size, max_bytes))
        raw = read_up_to(file, stat.st_size, max_bytes)
    except OSError as exc:
        return FileState.of(make_stamp(-1, -1, b""), unreadable(path, exc))
    if len(raw) > max_bytes:
        stamp_now = make_stamp(len(raw), stat.st_mtime_ns, b"")
        return FileState.of(stamp_now, too_large(path, len(raw), max_bytes))
    digest = content_digest(raw)
    new_stamp = make_stamp(len(raw), stat.st_mtime_ns, digest)
    if new_stamp == stamp:
        return None
    if stamp is not None and stamp_digest(stamp) == digest:
        return new_stamp
    return FileState.of(new_stamp, parse_bytes(raw, path, asset_base_url))


def read_up_to(file: str, size: int, limit: int) -> bytes:
    """A file's bytes, but never more than `limit` and one (which tells that it is over):
    `size` (as a stat gave it, and one byte more) is asked for first, and a file that grew since
    is read on. Through the OS alone: a buffered reader asked for up to the limit made a buffer
    of that size (1 MiB) for every file, which cost more than reading and hashing it."""
    handle = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
    try:
        parts, left = [], limit + 1
        ask = min(size + 1, left)
        while left and (part := os.read(handle, ask)):
            parts.append(part)
            left -= len(part)
            ask = left
        return b"".join(parts)
    finally:
        os.close(handle)


Job = tuple[str, str, bytes | None]


def _read_chunk(
    jobs: list[Job], trust_stat: bool, asset_base_url: str | None, max_bytes: int
) -> list[FileState | bytes | None]:
    return [read_file_state(*job, trust_stat, asset_base_url, max_bytes) for job in jobs]


def read_file_states(
    jobs: list[Job],
    trust_stat: bool,
    asset_base_url: str | None,
    workers: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[FileState | bytes | None]:
    """`read_file_state` for every job, in forked worker processes when there are enough jobs:
    workers read, hash and parse, and only the states of changed files travel back."""
    if workers <= 1 or len(jobs) < PARALLEL_MINIMUM:
        return _read_chunk(jobs, trust_stat, asset_base_url, max_bytes)
    size = max(16, len(jobs) // (workers * 8))
    chunks = [jobs[start : start + size] for start in range(0, len(jobs), size)]
    context = multiprocessing.get_context("fork")
    # The readers end with this process, even killed mid-load (SIGKILL): the pool's own
    # shutdown never comes then, and each would wait for a chunk for ever.
    with ProcessPoolExecutor(
        workers, mp_context=context, initializer=end_with_parent, initargs=(os.getpid(),)
    ) as pool:
        done = pool.map(
            _read_chunk,
            chunks,
            [trust_stat] * len(chunks),
            [asset_base_url] * len(chunks),
            [max_bytes] * len(chunks),
        )
        return [state for chunk in done for state in chunk]


# One file's change in a reload: its path, its state before (None: new) and now (None: gone).
Change = tuple[str, FileState | None, FileState | None]


class CollectionLoader:
    """Loads a folder into collections and remembers what it read, so that a restart (through the
    parse cache) or a reload (through its memory) parses only the files that changed, and a
    reload updates the indexes by those files alone (`Indexes`).

    A file that stops parsing (a record broken mid-edit) is reported, and its last good version
    keeps serving until it is fixed or removed.
    """

    def __init__(
        self,
        root: Path,
        asset_base_url: str | None = None,
        *,
        workers: int = 1,
        cache_file: Path | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.root = root
        self.asset_base_url = asset_base_url
        self.max_bytes = max_bytes
        self.workers = workers
        self.cache_file = cache_file
        self.states: dict[str, FileState] = {}
        self.folders: dict[str, int] = {}  # modification times (ns) of the folders read
        self.unread: list[Problem] = []  # folders the last whole scan could not read
        self.skipped: list[Problem] = []  # links the last whole scan did not follow
        self.stats = LoadStats()
        self.indexes = Indexes()
        self._root: RootIdentity | None = None  # the folder the last whole read was of
        self._version = 0  # the sum of the files' hashes (see `_file_hash`)
        self._stat_sum = 0  # the sum of the files' `stat_term`s
        self._newest = 0  # the newest modification time (ns) among the files
        self._last_modified = EPOCH  # the `modified` of the last collection made
        # The digest of the parse cache file the last load read (None: none was usable), and of
        # the one that holds `states` now (None until written); what the last load changed.
        self.cache_read: bytes | None = None
        self.cache_digest: bytes | None = None
        self.load_changes: list[Change] = []

    @property
    def _settings_key(self) -> str:
        return f"asset_base_url={self.asset_base_url} max_bytes={self.max_bytes}"

    def load(self) -> Collection:
        """Read the whole folder; every file's content is hashed and checked against the cache.

        :raises FolderError: the root is not a folder that can be listed (a reload, by
            contrast, keeps the last version while the folder is away).
        """
        check_folder(self.root)
        self._root = root_identity(self.root)
        if self.cache_file is not None and not self.states:
            self.states, self.cache_read = read_cache_digest(self.cache_file, self._settings_key)
            self.cache_digest = self.cache_read
        # Only a full load writes the cache: pickling every record would cost a reload more than
        # the reload itself, and a restart re-parses just the few files changed since.
        self.load_changes = self._scan(trust_stat=False, parallel=True) or []
        if self.load_changes and self.cache_file is not None:
            self.cache_digest = None
            if _DEFERRED_WRITES is not None:
                _DEFERRED_WRITES.append(self._write_cache)
            else:
                self._write_cache()
        self._index_all()
        collection = self._collection()
        # The records are millions of long-lived objects without reference cycles. Freezing them
        # keeps the cyclic garbage collector from walking them on every full collection (seconds
        # at 100,000 records) and keeps forked workers from copying their pages. Only at a full
        # load: a reload reuses the records of unchanged files, and freezing then could also
        # freeze whatever cyclic garbage a serving process holds at that moment, for good.
        gc.freeze()
        _log_collection(collection, self.root, self.stats)
        return collection

    def _write_cache(self) -> None:
        assert self.cache_file is not None
        self.cache_digest = write_cache(self.cache_file, self._settings_key, self.states)

    def cached_records(self) -> tuple[Record, ...] | None:
        """The records of the version the parse cache held when the last load read it (its
        `cache_read`), newest first, as a collection of those files has them; None when none
        was read."""
        if self.cache_read is None:
            return None
        states = dict(self.states)
        for path, old, new in self.load_changes:
            if new is not None:
                del states[new.record.path if new.record is not None else path]
            if old is not None:
                states[path] = old
        with collector_paused():
            return tuple(Indexes.built(sorted(states.items())).records)

    def reload(self, changed: Iterable[str] | None = None) -> Collection | None:
        """Re-read files whose size or modification time changed, and pick up added and removed
        files; None when nothing changed. `changed` names the paths filesystem events reported:
        only they are looked at, and the folder is not scanned (unless one may be a folder).

        When the root path names another folder than the last whole read (a deploy swapped it,
        re-pointed a link to it, or deleted and recreated it; `changed` names the root itself
        when events saw it go), every file of the new folder is read, whatever else `changed`
        says. While it names no folder, the last version stays."""
        root = root_identity(self.root)
        if root is None:
            if self._root is not None:
                log.warning("%s is not a folder now; serving its last version", self.root)
            self._root = None  # whatever folder comes back is read whole
            return None
        try:
            if root != self._root or (changed is not None and names_root(self.root, changed)):
                log.info("%s is another folder now (%s): reading all of it", self.root, root[0])
                self._root = root
                changes = self._scan(trust_stat=False)
            else:
                changes = self._scan(trust_stat=True, only=changed)
        except FolderError as exc:
            log.warning("%s; serving the last version", exc)
            return None
        if changes is None:
            # No record changed, but a folder's time may have moved (a record file added and
            # removed again): a new version then, as `modified` is the files' time.
            if self._modified() == self._last_modified:
                return None
            changes = []
        if changes:  # `states` are no longer what the last load read or wrote
            self.cache_read = self.cache_digest = None
        try:
            self._index(changes)
        except Exception:  # the indexes are not to be trusted now: made again from the files
            log.exception("updating the indexes of %s failed; indexing every file", self.root)
            self._index_all()
        collection = self._collection()
        log.info(
            "reloaded %s: %d files parsed, version %s",
            self.root,
            self.stats.parsed,
            collection.version,
        )
        # Only files read in this reload: the others were reported when they were read.
        for _, _, state in changes:
            if state is not None and state.record is None:
                for problem in state.problems:
                    if problem.severity == "error":
                        log.warning("rejected %s", problem)
        return collection

    def _index_all(self) -> None:
        """Indexes, version and modification time from every file's state."""
        with collector_paused():
            self.indexes = Indexes.built(sorted(self.states.items()))
        self._version = sum(_file_hash(path, state) for path, state in self.states.items())
        self._stat_sum = (
            sum(stat_term(path, stamp_stat(state.stamp)) for path, state in self.states.items())
            % _STAT_SUM_MODULUS
        )
        self._newest = max((stamp_mtime(state.stamp) for state in self.states.values()), default=0)

    def _index(self, changes: list[Change]) -> None:
        """Indexes, version and modification time updated by the files that changed."""
        self.indexes.update(changes)
        newest, lost = 0, False
        for path, old, new in changes:
            if old is not None:
                self._version -= _file_hash(path, old)
                self._stat_sum -= stat_term(path, stamp_stat(old.stamp))
                lost = lost or stamp_mtime(old.stamp) >= self._newest
            if new is not None:
                self._version += _file_hash(path, new)
                self._stat_sum += stat_term(path, stamp_stat(new.stamp))
                newest = max(newest, stamp_mtime(new.stamp))
        self._stat_sum %= _STAT_SUM_MODULUS
        if lost and newest < self._newest:  # the newest file went: look for the next
            self._newest = max(
                (stamp_mtime(state.stamp) for state in self.states.values()), default=0
            )
        else:
            self._newest = max(self._newest, newest)

    def _modified(self) -> datetime:
        """The newest modification time among the record files and the folders read."""
        newest = max(self._newest, max(self.folders.values(), default=0))
        return datetime.fromtimestamp(newest // 1_000_000_000, UTC)

    def _collection(self) -> Collection:
        self._last_modified = self._modified()
        version = f"{self._version % _VERSION_MODULUS:016x}"
        return self.indexes.collection(version, self._last_modified, self.unread, self.skipped)

    def _scan(
        self, *, trust_stat: bool, only: Iterable[str] | None = None, parallel: bool = False
    ) -> list[Change] | None:
        """Bring `states` up to date with the folder (or with the paths `only` names); what
        changed, or None when nothing did. With `trust_stat`, a file whose size and modification
        time are unchanged is not read. `parallel` forks readers: only at a load, since reloads
        run in a thread of a serving process, where forking is unsafe."""
        started = time.perf_counter()
        states = self.states
        targets = None if only is None else self._targets(only)
        if targets is None and trust_stat and self._unchanged(started):
            return None
        if targets is None:
            scan = scan_folder(self.root)
            if scan.errors and scan.errors[0].path == ".":
                raise FolderError(f"seeds folder {self.root} cannot be read")
            files, self.folders, self.unread, self.skipped = (
                scan.files,
                scan.folders,
                scan.errors,
                scan.skipped,
            )
            named: Iterable[str] = states.keys()
        else:
            files, named = targets
            self._restat_folders(named)
        prefix = len(str(self.root)) + 1
        jobs: list[Job] = []
        for file in files:
            path = file[prefix:].replace(os.sep, "/")
            old = states.get(path)
            jobs.append((file, path, old.stamp if old else None))
        workers = self.workers if parallel else 1
        read = read_file_states(jobs, trust_stat, self.asset_base_url, workers, self.max_bytes)
        changes: list[Change] = []
        parsed = 0
        for (_, path, _), state in zip(jobs, read, strict=True):
            if state is None:
                continue
            old = states.get(path)
            if isinstance(state, bytes):  # the same content under a new size or time
                assert old is not None
                changes.append((path, old, replace(old, stamp=state)))
                continue
            parsed += 1
            if state.record is None and old is not None and old.record is not None:
                log.warning("%s: keeping its last good version", state.result.rejection)
                state = replace(state, record=old.record)
            changes.append((path, old, state))
        found = {path for _, path, _ in jobs}
        changes += [
            (path, states[path], None) for path in named if path in states and path not in found
        ]
        for path, _, new in changes:
            if new is None:
                del states[path]
            else:  # the record's own copy of its path as the key, not a second equal string
                states[new.record.path if new.record is not None else path] = new
        seconds = time.perf_counter() - started
        self.stats = LoadStats(len(states), parsed, len(states) - parsed, seconds, len(jobs))
        return changes or None

    def _unchanged(self, started: float) -> bool:
        """Whether every record file has the size and modification time of its state (and no
        file came or went), told by `stat_walk` from sums, without reading a state: the first
        check of a forked worker (see FolderWatch) would otherwise touch every state and
        record, and copy every memory page they share with the process that loaded them."""
        walked = stat_walk(self.root)
        if walked is None or walked[:2] != (len(self.states), self._stat_sum):
            return False
        self.folders, self.unread, self.skipped = walked[2], [], []
        files = len(self.states)
        self.stats = LoadStats(files, 0, files, time.perf_counter() - started, files)
        return True

    def _restat_folders(self, paths: Iterable[str]) -> None:
        """Bring the modification times of the folders holding `paths` up to date: adding,
        removing or renaming a file changes its folder's."""
        for folder in {path.rpartition("/")[0] for path in paths}:
            try:
                self.folders[folder] = os.stat(os.path.join(self.root, folder)).st_mtime_ns
            except OSError:
                self.folders.pop(folder, None)

    def _targets(self, paths: Iterable[str]) -> tuple[list[str], set[str]] | None:
        """The record files among `paths` that exist now, and the collection paths of all the
        record paths named (those not found are removed); None when a path may be a folder
        (added, moved or removed whole), which only a full scan settles. Paths a scan skips
        (hidden, through a link, another suffix) are skipped here too."""
        root = str(self.root)
        files: list[str] = []
        touched: set[str] = set()
        for file in paths:
            relative = os.path.relpath(file, root)
            parts = relative.split(os.sep)
            if relative == "." or parts[0] == ".." or any(p.startswith(".") for p in parts):
                continue
            if _through_link(root, parts[:-1]):
                continue
            is_record = _suffix(parts[-1]) in RECORD_SUFFIXES
            if os.path.isdir(file) and not os.path.islink(file):
                return None
            if not os.path.lexists(file) and not is_record:
                if "/".join(parts) in self.folders:
                    return None  # a folder went away, and the records in it
                continue
            if not is_record:
                continue
            touched.add("/".join(parts))
            if os.path.isfile(file) and not os.path.islink(file):
                files.append(os.path.join(root, *parts))
        return sorted(files), touched


# Parse cache writes a load leaves to its caller (`cache_writes_deferred`), or None.
_DEFERRED_WRITES: list[Callable[[], None]] | None = None


@contextlib.contextmanager
def cache_writes_deferred() -> Iterator[list[Callable[[], None]]]:
    """Within the block, a load does not write the parse cache: it adds the write to the list
    yielded, for the caller to run when it suits it. `feedsvc build` writes it once the new site
    is in place, beside removing the old one, not while the build waits (0.15-0.45 s at 10,000
    records). Not thread-safe: for a command's own load, not a server's reloads."""
    global _DEFERRED_WRITES
    outer, _DEFERRED_WRITES = _DEFERRED_WRITES, []
    try:
        yield _DEFERRED_WRITES
    finally:
        _DEFERRED_WRITES = outer


def _through_link(root: str, folders: list[str]) -> bool:
    """Whether any of the nested `folders` under `root` is a link (a scan does not follow)."""
    path = root
    for folder in folders:
        path = os.path.join(path, folder)
        if os.path.islink(path):
            return True
    return False


# A version is the sum of one 64-bit hash per file (path and content digest), so that it is the
# same for the same files whatever order they were read in, and a reload updates it by the files
# that changed.
_VERSION_MODULUS = 1 << 64


# A trust-the-stat scan sees no change when the files' (path, size, modification time) are the
# same: the sum of one 128-bit hash of each tells it without a look at any file's state.
_STAT_SUM_MODULUS = 1 << 128


def stat_term(path: str, stat: bytes) -> int:
    """One file's share of the stat sum: its path with its size and time (`stat_part`)."""
    hashed = hashlib.blake2b(path.encode() + b"\0" + stat, digest_size=16).digest()
    return int.from_bytes(hashed, "little")


def _file_hash(path: str, state: FileState) -> int:
    hashed = hashlib.blake2b(path.encode() + b"\0" + state.digest, digest_size=8).digest()
    return int.from_bytes(hashed, "little")


def load_collection(
    root: Path,
    asset_base_url: str | None = None,
    *,
    workers: int = 1,
    cache_file: Path | None = None,
) -> Collection:
    """Load every record under `root`; bad files are reported and skipped, never fatal."""
    return CollectionLoader(root, asset_base_url, workers=workers, cache_file=cache_file).load()


def loader_for(settings: Settings) -> CollectionLoader:
    """The loader the settings describe; the server and the commands load the same way."""
    return CollectionLoader(
        settings.seeds_dir,
        settings.asset_base_url,
        workers=settings.load_workers or os.cpu_count() or 1,
        cache_file=settings.parse_cache_file(),
        max_bytes=settings.max_record_bytes,
    )
