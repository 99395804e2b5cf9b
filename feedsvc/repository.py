"""A folder of record files loaded into one immutable `Collection`, indexed by topic and provider.

Loading never stops at a bad file: each rejection is kept as a `Problem` and logged once. Records
that share an article URL are one article (one entry, the earliest date, the union of topics).
Every sequence here is newest first, ties broken by entry id, so the order never depends on the
file system or on load order.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import multiprocessing
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from stat import S_ISDIR

from feedsvc.errors import FolderError, Problem
from feedsvc.fields import DEFAULT_MAX_BYTES, parse_bytes, too_large, unreadable
from feedsvc.parsecache import (
    FileState,
    content_digest,
    make_stamp,
    read_cache,
    stamp_mtime,
    stat_part,
    write_cache,
)
from feedsvc.records import Image, ParseResult, Record
from feedsvc.settings import Settings
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
    by_id = sorted(records, key=lambda record: record.id)
    return tuple(sorted(by_id, key=lambda record: record.published, reverse=True))


def merge_duplicates(records: Sequence[Record]) -> tuple[list[Record], list[Problem]]:
    """One record per article URL: the earliest one's fields, with the union of all topics."""
    by_id: dict[str, list[Record]] = {}
    for record in records:
        by_id.setdefault(record.id, []).append(record)
    merged: list[Record] = []
    notes: list[Problem] = []
    for copies in by_id.values():
        if len(copies) == 1:
            merged.append(copies[0])
            continue
        copies.sort(key=lambda record: (record.published, record.path))
        first = copies[0]
        topics = {topic.slug: topic for copy in copies for topic in copy.topics}
        merged.append(replace(first, topics=tuple(topics.values())))
        for copy in copies[1:]:
            message = f"same article URL as {first.path}; merged into one entry"
            notes.append(Problem(copy.path, "webUrl", message, "warning"))
        log.info(
            "merged %d records of %s: %s",
            len(copies),
            first.url,
            ", ".join(copy.path for copy in copies),
        )
    return merged, notes


def _groups(pairs: Iterable[tuple[str, str, tuple[Image, ...], Record]]) -> dict[str, Group]:
    """Group (slug, name, images, record) pairs, newest record first; the name comes from the
    newest record, the images from the newest record that has any."""
    names: dict[str, str] = {}
    logos: dict[str, tuple[Image, ...]] = {}
    members: dict[str, list[Record]] = {}
    for slug, name, images, record in pairs:
        names.setdefault(slug, name)
        if images:
            logos.setdefault(slug, images)
        members.setdefault(slug, []).append(record)
    return {
        slug: Group(slug, names[slug], tuple(members[slug]), logos.get(slug, ()))
        for slug in sorted(members)
    }


def index_by_topic(records: Sequence[Record]) -> dict[str, Group]:
    return _groups(
        (topic.slug, topic.name, (), record) for record in records for topic in record.topics
    )


def index_by_provider(records: Sequence[Record]) -> dict[str, Group]:
    return _groups(
        (record.provider.slug, record.provider.name, record.provider.images, record)
        for record in records
        if record.provider is not None
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
    accepted: list[Record] = []
    rejections: list[Problem] = [*unread]
    warnings: list[Problem] = []
    for result in results:
        if result.record is not None:
            accepted.append(result.record)
        for problem in result.problems:
            (rejections if problem.severity == "error" else warnings).append(problem)
    merged, notes = merge_duplicates(accepted)
    records = newest_first(merged)
    return Collection(
        records=records,
        topics=index_by_topic(records),
        providers=index_by_provider(records),
        rejections=tuple(rejections),
        warnings=(*warnings, *notes),
        version=version,
        loaded_at=datetime.now(UTC),
        modified=modified,
        skipped=tuple(skipped),
    )


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
) -> FileState | None:
    """Stat, read, hash and, if it changed, parse one file; None when it is unchanged since
    `stamp`. With `trust_stat`, an unchanged size and modification time are enough. A file
    over `max_bytes` is rejected without reading more than that."""
    try:
        stat = os.stat(file)
        if trust_stat and stamp and stamp.startswith(stat_part(stat.st_size, stat.st_mtime_ns)):
            return None
        if stat.st_size > max_bytes:
            stamp_now = make_stamp(stat.st_size, stat.st_mtime_ns, b"")
            return FileState.of(stamp_now, too_large(path, stat.st_size, max_bytes))
        with open(file, "rb") as handle:
            raw = handle.read(max_bytes + 1)  # it may have grown since the stat
    except OSError as exc:
        return FileState.of(make_stamp(-1, -1, b""), unreadable(path, exc))
    if len(raw) > max_bytes:
        stamp_now = make_stamp(len(raw), stat.st_mtime_ns, b"")
        return FileState.of(stamp_now, too_large(path, len(raw), max_bytes))
    new_stamp = make_stamp(len(raw), stat.st_mtime_ns, content_digest(raw))
    if new_stamp == stamp:
        return None
    return FileState.of(new_stamp, parse_bytes(raw, path, asset_base_url))


Job = tuple[str, str, bytes | None]


def _read_chunk(
    jobs: list[Job], trust_stat: bool, asset_base_url: str | None, max_bytes: int
) -> list[FileState | None]:
    return [read_file_state(*job, trust_stat, asset_base_url, max_bytes) for job in jobs]


def read_file_states(
    jobs: list[Job],
    trust_stat: bool,
    asset_base_url: str | None,
    workers: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[FileState | None]:
    """`read_file_state` for every job, in forked worker processes when there are enough jobs:
    workers read, hash and parse, and only the states of changed files travel back."""
    if workers <= 1 or len(jobs) < PARALLEL_MINIMUM:
        return _read_chunk(jobs, trust_stat, asset_base_url, max_bytes)
    size = max(16, len(jobs) // (workers * 8))
    chunks = [jobs[start : start + size] for start in range(0, len(jobs), size)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        done = pool.map(
            _read_chunk,
            chunks,
            [trust_stat] * len(chunks),
            [asset_base_url] * len(chunks),
            [max_bytes] * len(chunks),
        )
        return [state for chunk in done for state in chunk]


class CollectionLoader:
    """Loads a folder into collections and remembers what it read, so that a restart (through the
    parse cache) or a reload (through its memory) parses only the files that changed.

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
        self._root: RootIdentity | None = None  # the folder the last whole read was of

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
            self.states = read_cache(self.cache_file, self._settings_key)
        # Only a full load writes the cache: pickling every record would cost a reload more than
        # the reload itself, and a restart re-parses just the few files changed since.
        if self._scan(trust_stat=False, parallel=True) is not None and self.cache_file is not None:
            write_cache(self.cache_file, self._settings_key, self.states)
        collection = self._build()
        # The records are millions of long-lived objects without reference cycles. Freezing them
        # keeps the cyclic garbage collector from walking them on every full collection (seconds
        # at 100,000 records) and keeps forked workers from copying their pages. Only at a full
        # load: a reload reuses the records of unchanged files, and freezing then could also
        # freeze whatever cyclic garbage a serving process holds at that moment, for good.
        gc.freeze()
        _log_collection(collection, self.root, self.stats)
        return collection

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
                fresh = self._scan(trust_stat=False)
            else:
                fresh = self._scan(trust_stat=True, only=changed)
        except FolderError as exc:
            log.warning("%s; serving the last version", exc)
            return None
        if fresh is None:
            return None
        collection = self._build()
        log.info(
            "reloaded %s: %d files parsed, version %s",
            self.root,
            self.stats.parsed,
            collection.version,
        )
        # Only files read in this reload: the others were reported when they were read.
        for state in fresh:
            if state.result.record is None:
                for problem in state.result.problems:
                    if problem.severity == "error":
                        log.warning("rejected %s", problem)
        return collection

    def _build(self) -> Collection:
        return build_collection(
            self.states.values(),
            _version(self.states),
            self._modified(),
            unread=self.unread,
            skipped=self.skipped,
        )

    def _modified(self) -> datetime:
        """The newest modification time among the record files and the folders read."""
        newest = max(
            max((stamp_mtime(state.stamp) for state in self.states.values()), default=0),
            max(self.folders.values(), default=0),
        )
        return datetime.fromtimestamp(newest // 1_000_000_000, UTC)

    def _scan(
        self, *, trust_stat: bool, only: Iterable[str] | None = None, parallel: bool = False
    ) -> list[FileState] | None:
        """Bring `states` up to date with the folder (or with the paths `only` names); the states
        of the files read anew, or None when nothing changed. With `trust_stat`, a file whose
        size and modification time are unchanged is not read. `parallel` forks readers: only at
        a load, since reloads run in a thread of a serving process, where forking is unsafe."""
        started = time.perf_counter()
        previous = self.states
        targets = None if only is None else self._targets(only)
        current: dict[str, FileState] = {}
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
        else:
            files, touched = targets
            current = {path: state for path, state in previous.items() if path not in touched}
            self._restat_folders(touched)
        prefix = len(str(self.root)) + 1
        jobs: list[Job] = []
        for file in files:
            path = file[prefix:].replace(os.sep, "/")
            old = previous.get(path)
            jobs.append((file, path, old.stamp if old else None))
        workers = self.workers if parallel else 1
        states = read_file_states(jobs, trust_stat, self.asset_base_url, workers, self.max_bytes)
        fresh: list[FileState] = []
        for (_, path, _), state in zip(jobs, states, strict=True):
            old = previous.get(path)
            if state is None and old is not None:
                current[path] = old
                continue
            assert state is not None
            if state.record is None and old is not None and old.record is not None:
                log.warning("%s: keeping its last good version", state.result.rejection)
                state = replace(state, record=old.record)
            # The record's own copy of its path, not a second equal string per file.
            current[state.record.path if state.record is not None else path] = state
            fresh.append(state)
        parsed = len(fresh)
        self.stats = LoadStats(
            len(current), parsed, len(current) - parsed, time.perf_counter() - started, len(jobs)
        )
        if not parsed and current.keys() == previous.keys():
            return None
        self.states = current
        return fresh

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
                folder = "/".join(parts) + "/"
                if any(path.startswith(folder) for path in self.states):
                    return None  # a folder of records went away
                continue
            if not is_record:
                continue
            touched.add("/".join(parts))
            if os.path.isfile(file) and not os.path.islink(file):
                files.append(os.path.join(root, *parts))
        return sorted(files), touched


def _through_link(root: str, folders: list[str]) -> bool:
    """Whether any of the nested `folders` under `root` is a link (a scan does not follow)."""
    path = root
    for folder in folders:
        path = os.path.join(path, folder)
        if os.path.islink(path):
            return True
    return False


def _version(states: dict[str, FileState]) -> str:
    """Names the collection's content: the same files give the same version in every process,
    whatever order they were read in (a sum of one hash per file, so that a reload in which
    files were read in another order, or a worker started later, agrees)."""
    total = sum(file_hash(path, state.digest) for path, state in states.items())
    return f"{total % _VERSION_MODULUS:016x}"


_VERSION_MODULUS = 1 << 64


def file_hash(path: str, digest: bytes) -> int:
    """One file's part of the version: its path and content digest, hashed to 64 bits."""
    hashed = hashlib.blake2b(path.encode() + b"\0" + digest, digest_size=8).digest()
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
