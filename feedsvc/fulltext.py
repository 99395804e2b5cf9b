"""The full-text index of a collection in SQLite FTS5, and the translation of a `Question` into
an FTS5 query.

The index has two parts:

- A *base* file, kept next to the parse cache and read by every worker as an immutable file:
  nothing writes it while it is in use; a change is written into a copy that then replaces it.
  It holds the records of one version of the collection: most of them in `entries`, as built
  from nothing, and the rest in a small `patch` table, for the rows that changed since that
  build (their `entries` rows are *masked*). Each row's *source digest* (a digest of the fields
  it is indexed from) is kept, so that a start whose files changed updates the file by the
  records that differ (`_update_base`) instead of building it again; past `REBUILD_FRACTION` of
  the rows patched or masked, or when the file is missing, corrupt or made by another feedsvc, it
  is built from nothing.
- Per process, an *overlay* in memory: what reloads changed since the base was written. Changed,
  added and removed records *mask* their rows in the base, and their current versions are
  indexed in the overlay, so that a search reads the base minus the masked rows plus the
  overlay. A reload is compared with the previous version a block of records at a time (in C:
  unchanged files keep their record objects, and tuple comparison checks identity first), and
  only the stretch where they differ is diffed record by record, so it costs little more than
  what changed. Past `FOLD_AT` rows, a thread of the process *folds* the overlay: it writes a
  new base file for the version indexed then (updated as at a start), attaches it and only then
  puts it in place of the old one, and swaps it in, keeping in the overlay what reloads changed
  meanwhile; searches and reloads go on while it writes.

Each file written gets a new *generation* (in its `meta` table). A process that attaches the
file to search and finds another generation than the one it indexed (another worker, or another
server sharing the file, replaced it meanwhile) compares the file's source digests with its own
records and overlays the difference, so that a search never reads a file for other records.

Rows are keyed so that their order is the feeds' order: the rowid of a record is its publication
second shifted left by 20 bits, plus the inverse of its rank among the records of that second
(newest first, then by entry id). So FTS5 returns matches newest first on its own, and a search
for a word that is in every record reads only the first `MAX_RESULTS` rows. Ranks are dense, so
the records of one second are found from the rowid of its first one.

`entries` is contentless (`content=''`): it stores the tokens, not the text, which keeps it small
(about 500 bytes a record); to remove a row, FTS5 needs the text it was indexed with, which is why
a changed row is masked rather than removed, and `patch` (small) keeps its text. A query may use
`QUERY_CPU_SECONDS` of CPU (an SQLite progress handler interrupts it).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from feedsvc.errors import FeedsvcError, QueryError
from feedsvc.fields import PARSE_VERSION
from feedsvc.records import Record, unpack_related
from feedsvc.repository import Collection
from feedsvc.search import MAX_RESULTS, SEPARATOR, Question, Term, searchable

log = logging.getLogger(__name__)

# Bumped whenever the indexed text, the tokenizer or the layout changes: older files are rebuilt.
INDEX_FORMAT = 2
# A base file whose patched and masked rows would pass this share of its rows is built again from
# nothing: the patch keeps its text, and masked rows are read and skipped by every search.
REBUILD_FRACTION = 0.1
# A process whose overlay holds more rows (indexed anew or masked) writes a new base file.
FOLD_AT = 1000
QUERY_CPU_SECONDS = 0.1
COLUMNS = ("title", "excerpt", "provider", "topics", "related", "facets")
# What a reader's terms are looked up in; `facets` holds the filters' own tokens.
_TEXT_COLUMNS = "{title excerpt provider topics related}"
_TABLE = (
    "CREATE VIRTUAL TABLE {name} USING fts5({columns}, content='', columnsize=0, "
    "tokenize='unicode61 remove_diacritics 2')"
)
# The base's patch keeps its text, so that a row can be removed from it without the record.
_PATCH_TABLE = (
    "CREATE VIRTUAL TABLE patch USING fts5({columns}, columnsize=0, "
    "tokenize='unicode61 remove_diacritics 2')"
)
_INSERT = "INSERT INTO {name}(rowid, {columns}) VALUES (?, ?, ?, ?, ?, ?, ?)"
_DELETE = "INSERT INTO {name}({name}, rowid, {columns}) VALUES ('delete', ?, ?, ?, ?, ?, ?, ?)"
# Every row has this facet, for a question that requires nothing (only exclusions).
_EVERY_ROW = '"all"'
_RANK_BITS = 20
_RANK_MASK = (1 << _RANK_BITS) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
Document = tuple[str, str, str, str, str, str]


def document(record: Record) -> Document:
    """The text a record is indexed with, one value per column of `COLUMNS`."""
    provider = record.provider
    related = unpack_related(record.coverage)
    facets = ["all", *(_facet("t", topic.slug) for topic in record.topics)]
    if provider is not None:
        facets.append(_facet("p", provider.slug))
    return (
        searchable(record.title),
        searchable(record.excerpt),
        searchable(provider.name) if provider is not None else "",
        SEPARATOR.join(searchable(topic.name) for topic in record.topics),
        SEPARATOR.join(searchable(item.title) for item in related),
        " ".join(facets),
    )


def source_digest(record: Record) -> bytes:
    """A digest of every field `document` reads: records with equal digests are indexed alike."""
    provider = record.provider
    parts = [record.title, record.excerpt, record.coverage]
    parts += [provider.name, provider.slug] if provider is not None else ["", "-"]
    for topic in record.topics:
        parts += [topic.name, topic.slug]
    lengths = ",".join([str(len(part)) for part in parts])  # so that the parts are unambiguous
    return hashlib.blake2b(f"{lengths}:{''.join(parts)}".encode(), digest_size=8).digest()


def _facet(kind: str, slug: str) -> str:
    """A topic's or provider's token: its slug in hex, one token whatever characters it has."""
    return kind + slug.encode().hex()


def fts_query(question: Question) -> str:
    """The FTS5 query for `question`. Every reader's term is an FTS5 string: the only syntax
    here is written by this function."""
    required = [term for term in question.terms if not term.exclude]
    excluded = [term for term in question.terms if term.exclude]
    positive = []
    if required:
        positive.append(f"{_TEXT_COLUMNS} : ({' AND '.join(map(_string, required))})")
    positive += [_facets("t", question.topics), _facets("p", question.providers)]
    negative = []
    if excluded:
        negative.append(f"{_TEXT_COLUMNS} : ({' OR '.join(map(_string, excluded))})")
    negative += [_facets("t", question.not_topics), _facets("p", question.not_providers)]
    expression = " AND ".join(f"({part})" for part in positive if part) or f"facets : {_EVERY_ROW}"
    alternatives = " OR ".join(f"({part})" for part in negative if part)
    return f"({expression}) NOT ({alternatives})" if alternatives else expression


def _string(term: Term) -> str:
    """A term as an FTS5 string (inner quotes doubled), a prefix marked after it."""
    quoted = '"' + searchable(term.text).replace('"', '""') + '"'
    return quoted + " *" if term.prefix else quoted


def _facets(kind: str, slugs: tuple[str, ...]) -> str:
    if not slugs:
        return ""
    return f"facets : ({' OR '.join(chr(34) + _facet(kind, slug) + chr(34) for slug in slugs)})"


def _second(moment: datetime) -> int:
    return (moment - _EPOCH) // _SECOND


def first_rowid(day: datetime) -> int:
    """The smallest rowid of a record published at `day` or later."""
    return _second(day) << _RANK_BITS


class SearchIndex:
    """The index of one app's collection: the base file and this process's overlay.

    Thread-safe: one lock per process guards the overlay and its connection (searches are
    short, and bounded by `QUERY_CPU_SECONDS`; a fold writes its file outside it). A forked
    worker opens its own connection on its first search and indexes the overlay its parent had,
    if any (or adopts the file, if it was replaced meanwhile).
    """

    def __init__(self, base: Path, collection: Collection, *, temporary: bool = False) -> None:
        self.base = base
        self._lock = threading.Lock()
        self._collection = collection
        self._number = 0
        self._record_at: dict[int, Record] = {}  # rowid -> record, as currently served
        self._assign(collection.records)
        # What the base holds at each rowid: the record, or its source digest when the file was
        # written by another process. The served records themselves until the first change.
        self._base_at: dict[int, Record | bytes] = self._record_at  # type: ignore[assignment]
        self._overlay: dict[int, Record] = {}  # rowid -> record indexed in the overlay
        self._masked: set[int] = set()  # rowids of the base that are not served
        self._db: sqlite3.Connection | None = None
        self._db_pid = 0
        self._queries: list[str] = []  # what a search runs on this connection
        self._deadline = 0.0
        self._fold_pid = 0  # the process whose thread is folding the overlay, if any
        self._since_fold: set[int] = set()  # rowids changed while that fold runs
        self.folds = 0  # base files this process wrote by folding its overlay
        if temporary:
            weakref.finalize(self, _remove_folder, base.parent, os.getpid())
        self._generation = _ensure_base(base, collection, self._record_at)

    def _assign(self, records: Iterable[Record]) -> None:
        """Rowids for records in the collection's order (newest first, then by entry id)."""
        second, rank = None, 0
        for record in records:
            now = _second(record.published)
            rank = rank + 1 if now == second else 0
            second = now
            if rank > _RANK_MASK:
                raise FeedsvcError("more than a million records are published in one second")
            rowid = (now << _RANK_BITS) | (_RANK_MASK - rank)
            self._record_at[rowid] = record

    @property
    def overlay_size(self) -> int:
        """Records indexed in this process's overlay (changed since the base was written)."""
        return len(self._overlay)

    @property
    def folding(self) -> bool:
        """Whether a thread of this process is folding the overlay into a new base file."""
        return self._fold_pid == os.getpid()

    def search(self, question: Question, limit: int = MAX_RESULTS) -> tuple[Record, ...]:
        """The newest `limit` records that match `question`, newest first.

        :raises QueryError: the query used more than `QUERY_CPU_SECONDS` of CPU.
        """
        query = fts_query(question)
        since = first_rowid(_midnight(question.since)) if question.since else -(2**63)
        with self._lock:
            db = self._connection()
            self._deadline = time.thread_time() + QUERY_CPU_SECONDS
            try:
                found = []
                for sql in self._queries:
                    found += db.execute(sql, (query, since, limit)).fetchall()
            except sqlite3.OperationalError as exc:
                if "interrupted" not in str(exc):
                    raise
                raise QueryError(
                    "this search takes too long: use longer words, fewer prefixes or a filter"
                ) from None
            finally:
                self._deadline = float("inf")
            return tuple(self._record_at[rowid] for (rowid,) in heapq.nlargest(limit, found))

    def _progress(self) -> bool:
        """SQLite's progress handler: true interrupts the running query."""
        return time.thread_time() > self._deadline

    def follow(self, collection: Collection, number: int) -> None:
        """Index `collection`, version `number` of the app's collection, if it is newer than the
        one indexed (a request still on an older version changes nothing)."""
        with self._lock:
            if number <= self._number or collection is self._collection:
                self._number = max(self._number, number)
                return
            started = time.perf_counter()
            removed, added = self._changed(collection.records)
            if removed or added:
                self._apply(self._reranked(removed, added))
            self._collection, self._number = collection, number
            if len(self._overlay) + len(self._masked) > FOLD_AT and not self.folding:
                self._start_fold()
            log.debug(
                "search index follows version %s: %d removed, %d added, overlay %d, in %.1f ms",
                collection.version,
                len(removed),
                len(added),
                len(self._overlay),
                (time.perf_counter() - started) * 1000,
            )

    def _changed(self, records: tuple[Record, ...]) -> tuple[list[Record], list[Record]]:
        """The records of the indexed version that are not in `records`, and those of
        `records` that are not in it, by identity, within the stretch where the two differ."""
        old = self._collection.records
        start, old_end, new_end = _differing(old, records)
        before, after = old[start:old_end], records[start:new_end]
        staying = set(map(id, after)) & set(map(id, before))
        removed = [record for record in before if id(record) not in staying]
        added = [record for record in after if id(record) not in staying]
        return removed, added

    def _reranked(self, removed: list[Record], added: list[Record]) -> dict[int, Record | None]:
        """The rowids whose record changes (None: no record there any more). Only the seconds
        of removed and added records are ranked again."""
        # By entry id: a record edited in place is the same article, and the index may hold an
        # equal copy of a removed record rather than the record itself.
        gone = {record.id for record in removed}
        arriving: dict[int, list[Record]] = {}
        for record in added:
            arriving.setdefault(_second(record.published), []).append(record)
        seconds = {_second(record.published) for record in removed} | arriving.keys()
        changes: dict[int, Record | None] = {}
        for second in seconds:
            top = (second << _RANK_BITS) | _RANK_MASK
            before: list[Record] = []
            while (found := self._record_at.get(top - len(before))) is not None:
                before.append(found)
            kept = [record for record in before if record.id not in gone]
            after = _newest_first([*kept, *arriving.get(second, ())])
            for rank in range(max(len(before), len(after))):
                old = before[rank] if rank < len(before) else None
                new = after[rank] if rank < len(after) else None
                if old is not new:
                    changes[top - rank] = new
        return changes

    def _apply(self, changes: dict[int, Record | None]) -> None:
        """Serve `changes`: mask the base's rows that differ from them, index in the overlay
        what the base does not hold."""
        if self._base_at is self._record_at:
            self._base_at = dict(self._record_at)
        if self.folding:
            self._since_fold.update(changes)
        for rowid in changes:
            self._record_at.pop(rowid, None)
        db = self._db if self._db_pid == os.getpid() else None
        with db if db is not None else nullcontext():
            for rowid, record in changes.items():
                if record is not None:
                    self._record_at[rowid] = record
                self._overlay_row(db, rowid, record)

    def _overlay_row(
        self, db: sqlite3.Connection | None, rowid: int, record: Record | None
    ) -> None:
        base = self._base_at.get(rowid)
        old = self._overlay.pop(rowid, None)
        if old is not None and db is not None:
            db.execute(
                _DELETE.format(name="overlay", columns=_COLUMN_LIST), (rowid, *document(old))
            )
        in_base = base is not None and record is not None and _same(base, record)
        if record is not None and not in_base:
            self._overlay[rowid] = record
            if db is not None:
                db.execute(
                    _INSERT.format(name="overlay", columns=_COLUMN_LIST), (rowid, *document(record))
                )
        masked = base is not None and not in_base
        if masked != (rowid in self._masked):
            if masked:
                self._masked.add(rowid)
            else:
                self._masked.discard(rowid)
            if db is not None:
                sql = (
                    "INSERT INTO masked VALUES (?)"
                    if masked
                    else "DELETE FROM masked WHERE rowid = ?"
                )
                db.execute(sql, (rowid,))

    def _connection(self) -> sqlite3.Connection:
        """This process's connection: the overlay in memory, the base attached read-only."""
        if self._db is not None and self._db_pid == os.getpid():
            return self._db
        db = self._open(self.base)
        generation = _generation(db)
        if generation != self._generation:  # the file was replaced since it was indexed
            self._adopt(db, generation)
        self._use(db)
        return db

    def _open(self, path: Path) -> sqlite3.Connection:
        """A connection with an empty overlay and the base file at `path` attached."""
        db = sqlite3.connect("file::memory:", uri=True, check_same_thread=False)
        db.execute("ATTACH DATABASE ? AS base", (_read_only_uri(path),))
        db.execute(_TABLE.format(name="overlay", columns=_COLUMN_LIST))
        db.execute("CREATE TABLE masked (rowid INTEGER PRIMARY KEY)")
        return db

    def _use(self, db: sqlite3.Connection) -> None:
        """Search `db` from now on, with this process's overlay and masked rows indexed in it
        (called with the lock held)."""
        with db:
            db.executemany(
                _INSERT.format(name="overlay", columns=_COLUMN_LIST),
                ((rowid, *document(record)) for rowid, record in self._overlay.items()),
            )
            db.executemany("INSERT INTO masked VALUES (?)", ((rowid,) for rowid in self._masked))
        db.set_progress_handler(self._progress, 1000)
        self._db, self._db_pid, self._deadline = db, os.getpid(), float("inf")
        self._queries = _queries(db)

    def _adopt(self, db: sqlite3.Connection, generation: str) -> None:
        """Index the records served now over the base file attached to `db`, which another
        process wrote: the rows whose source digests differ are masked or overlaid."""
        self._base_at = dict(_served_digests(db))
        self._overlay, self._masked = {}, set()
        for rowid in self._base_at.keys() | self._record_at.keys():
            self._overlay_row(None, rowid, self._record_at.get(rowid))
        self._generation = generation
        log.info(
            "search index %s was written elsewhere (generation %s): %d rows overlaid, %d masked",
            self.base,
            generation,
            len(self._overlay),
            len(self._masked),
        )

    def _start_fold(self) -> None:
        """Fold the overlay into a new base file, in a thread (called with the lock held)."""
        self._fold_pid, self._since_fold = os.getpid(), set()
        snapshot, collection = dict(self._record_at), self._collection
        threading.Thread(
            target=self._fold, args=(snapshot, collection), name="feedsvc-search-fold", daemon=True
        ).start()

    def _fold(self, snapshot: dict[int, Record], collection: Collection) -> None:
        """Write a base file serving `snapshot` (the records of `collection`), attach it, put it
        in place of the old file, and swap it in."""
        started = time.perf_counter()
        try:
            db, generation = self._write_folded(snapshot, collection)
            with self._lock:
                self._swap(db, generation, snapshot)
                kept = len(self._overlay)
        except Exception:  # the overlay goes on serving; the next change past the bound retries
            log.exception("search index %s: folding the overlay failed", self.base)
            return
        finally:
            with self._lock:
                self._fold_pid, self._since_fold = 0, set()
        log.info(
            "search index %s: overlay folded into a new file in %.2fs (%d rows changed since)",
            self.base,
            time.perf_counter() - started,
            kept,
        )

    def _write_folded(
        self, snapshot: dict[int, Record], collection: Collection
    ) -> tuple[sqlite3.Connection, str]:
        """The base file for `snapshot`, written beside the old one (updated from it, or built),
        attached, then put in its place; a connection to it and its generation."""
        handle, name = tempfile.mkstemp(prefix=".search-", dir=self.base.parent)
        os.close(handle)
        temporary = Path(name)
        try:
            key = _key(collection)
            if _update_base(self.base, temporary, key, snapshot) is None:
                temporary.write_bytes(b"")
                _build(temporary, key, snapshot)
            db = self._open(temporary)  # before the rename: this file, whoever renames next
            os.replace(temporary, self.base)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return db, _generation(db)

    def _swap(self, db: sqlite3.Connection, generation: str, snapshot: dict[int, Record]) -> None:
        """Search the new base file from now on; the overlay keeps what changed since
        `snapshot` (called with the lock held)."""
        old = self._db if self._db_pid == os.getpid() else None
        self._base_at = snapshot  # type: ignore[assignment]
        self._generation = generation
        self._overlay, self._masked = {}, set()
        for rowid in self._since_fold:
            self._overlay_row(None, rowid, self._record_at.get(rowid))
        self._use(db)
        self.folds += 1
        if old is not None:
            old.close()


def _same(base: Record | bytes, record: Record) -> bool:
    """Whether the base's row (a record, or its source digest) indexes `record` as it is."""
    if isinstance(base, bytes):
        return base == source_digest(record)
    return base is record or document(base) == document(record)


def _generation(db: sqlite3.Connection) -> str:
    """The generation of the base file attached to `db`."""
    row = db.execute("SELECT value FROM base.meta WHERE name = 'generation'").fetchone()
    return str(row[0]) if row else ""


def _served_digests(db: sqlite3.Connection) -> dict[int, bytes]:
    """Rowid -> source digest of every row the base file attached to `db` serves."""
    served: dict[int, bytes] = dict(db.execute("SELECT rowid, digest FROM base.built").fetchall())
    for (rowid,) in db.execute("SELECT rowid FROM base.masked"):
        served.pop(rowid, None)
    served.update(db.execute("SELECT rowid, digest FROM base.patched").fetchall())
    return served


_COLUMN_LIST = ", ".join(COLUMNS)
_SEARCH_BASE = (
    "SELECT rowid FROM base.entries WHERE entries MATCH ? AND rowid >= ? "
    "AND rowid NOT IN (SELECT rowid FROM masked) {and_not_masked_in_base}"
    "ORDER BY rowid DESC LIMIT ?"
)
_NOT_MASKED_IN_BASE = "AND rowid NOT IN (SELECT rowid FROM base.masked) "
_SEARCH_PATCH = (
    "SELECT rowid FROM base.patch WHERE patch MATCH ? AND rowid >= ? "
    "AND rowid NOT IN (SELECT rowid FROM masked) ORDER BY rowid DESC LIMIT ?"
)
_SEARCH_OVERLAY = (
    "SELECT rowid FROM overlay WHERE overlay MATCH ? AND rowid >= ? ORDER BY rowid DESC LIMIT ?"
)


def _queries(db: sqlite3.Connection) -> list[str]:
    """The queries a search runs on `db`: the base's entries, its patch when it has one, the
    overlay."""
    has_masked, has_patch = db.execute(
        "SELECT EXISTS (SELECT 1 FROM base.masked), EXISTS (SELECT 1 FROM base.patched)"
    ).fetchone()
    base = _SEARCH_BASE.format(and_not_masked_in_base=_NOT_MASKED_IN_BASE if has_masked else "")
    return [base, *([_SEARCH_PATCH] if has_patch else []), _SEARCH_OVERLAY]


_BLOCK = 4096


def _differing(old: tuple[Record, ...], new: tuple[Record, ...]) -> tuple[int, int, int]:
    """Where two versions of the records differ: `old[start:old_end]` became
    `new[start:new_end]`, and the records before and after are equal. Compared a block at a time
    by tuple comparison (in C, identity first), since a reload changes few of many records."""
    shorter = min(len(old), len(new))
    start = 0
    while start < shorter:
        stop = min(start + _BLOCK, shorter)
        if old[start:stop] != new[start:stop]:
            while old[start] is new[start] or old[start] == new[start]:
                start += 1
            break
        start = stop
    same = 0  # records equal at the end of both
    while same < shorter - start:
        step = min(_BLOCK, shorter - start - same)
        tail_old = old[len(old) - same - step : len(old) - same]
        tail_new = new[len(new) - same - step : len(new) - same]
        if tail_old != tail_new:
            last = step - 1
            while tail_old[last] is tail_new[last] or tail_old[last] == tail_new[last]:
                last -= 1
            same += step - 1 - last
            break
        same += step
    return start, len(old) - same, len(new) - same


def _newest_first(records: list[Record]) -> list[Record]:
    """The collection's order: newest first, then by entry id."""
    records.sort(key=lambda record: record.id)
    records.sort(key=lambda record: record.published, reverse=True)
    return records


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _read_only_uri(path: Path) -> str:
    """The base as SQLite opens a file nothing writes: no locks, no journal."""
    return f"file:{quote(str(path))}?mode=ro&immutable=1"


def _key(collection: Collection) -> str:
    """What a base file must have been written for to be used for `collection` as it is."""
    return f"{_layout()} records={len(collection.records)} version={collection.version}"


def _layout() -> str:
    """What a base file must share with this feedsvc to be updated rather than built again."""
    return f"format={INDEX_FORMAT} parse={PARSE_VERSION}"


def _ensure_base(path: Path, collection: Collection, record_at: dict[int, Record]) -> str:
    """Reuse the base file at `path` when it was written for these files; else update it by
    the records that differ, or build it from nothing (see the module's docstring). The
    generation of the file then at `path`."""
    key = _key(collection)
    stored = _stored_meta(path)
    if collection.version and stored.get("key") == key and stored.get("generation"):
        log.info("search index %s reused (%d records)", path, len(record_at))
        return stored["generation"]
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _replacing(path) as temporary:
        changed = None
        if stored.get("layout") == _layout():
            changed = _update_base(path, temporary, key, record_at)
        if changed is None:
            temporary.write_bytes(b"")  # an update's copy, if one was begun, goes
            _build(temporary, key, record_at)
    log.info(
        "search index %s %s: %d records in %.2fs, %d bytes",
        path,
        "built" if changed is None else f"updated ({changed} rows changed)",
        len(record_at),
        time.perf_counter() - started,
        path.stat().st_size,
    )
    return _stored_meta(path)["generation"]


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` that replaces it when the block succeeds (readers of the
    old file keep reading it), and is removed when it fails."""
    handle, temporary = tempfile.mkstemp(prefix=".search-", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _stored_meta(path: Path) -> dict[str, str]:
    """What a base file says it was written for (empty when there is no usable file)."""
    if not path.is_file():
        return {}
    try:
        db = sqlite3.connect(_read_only_uri(path), uri=True)
        try:
            return dict(db.execute("SELECT name, value FROM meta").fetchall())
        finally:
            db.close()
    except sqlite3.Error as exc:
        log.warning("search index %s cannot be used (%s); building it again", path, exc)
        return {}


def _build(path: Path, key: str, record_at: dict[int, Record]) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA journal_mode = OFF")  # a failed build is thrown away whole
        db.execute("PRAGMA synchronous = OFF")
        db.execute(_TABLE.format(name="entries", columns=_COLUMN_LIST))
        db.executemany(
            _INSERT.format(name="entries", columns=_COLUMN_LIST),
            ((rowid, *document(record_at[rowid])) for rowid in sorted(record_at)),
        )
        db.execute("INSERT INTO entries(entries) VALUES ('optimize')")
        db.execute("CREATE TABLE built (rowid INTEGER PRIMARY KEY, digest BLOB NOT NULL)")
        db.executemany(
            "INSERT INTO built VALUES (?, ?)",
            ((rowid, source_digest(record)) for rowid, record in record_at.items()),
        )
        db.execute(_PATCH_TABLE.format(columns=_COLUMN_LIST))
        db.execute("CREATE TABLE patched (rowid INTEGER PRIMARY KEY, digest BLOB NOT NULL)")
        db.execute("CREATE TABLE masked (rowid INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT)")
        db.executemany(
            "INSERT INTO meta VALUES (?, ?)",
            [("key", key), ("layout", _layout()), ("generation", uuid.uuid4().hex)],
        )
        db.commit()
    finally:
        db.close()


@dataclass
class _Patch:
    """How a base file's patch and masked rows change to serve other records."""

    unpatch: list[int] = field(default_factory=list)  # rows taken out of the patch
    patch: dict[int, bytes] = field(default_factory=dict)  # rows (re)written into it
    masked: set[int] = field(default_factory=set)  # the masked rows afterwards
    patched: int = 0  # the patch's rows afterwards


def _plan(
    built: dict[int, bytes], patched: dict[int, bytes], masked: set[int], wanted: dict[int, bytes]
) -> _Patch:
    """The changes that make a base file (rows `built` from nothing, `patched` since, `masked`)
    serve the rows `wanted`, each by its source digest."""
    plan = _Patch(masked=set(masked))
    after = dict(patched)
    # Only rows that differ from the build, or were patched or masked, can change.
    differing = {rowid for rowid, digest in wanted.items() if built.get(rowid) != digest}
    for rowid in differing | (built.keys() - wanted.keys()) | patched.keys() | masked:
        want = wanted.get(rowid)
        if want is not None and built.get(rowid) == want:  # as built: the entries' row serves
            plan.masked.discard(rowid)
            if after.pop(rowid, None) is not None:
                plan.unpatch.append(rowid)
            continue
        if rowid in built:
            plan.masked.add(rowid)
        have = after.get(rowid)
        if have == want:
            continue
        if have is not None:
            plan.unpatch.append(rowid)
            del after[rowid]
        if want is not None:
            plan.patch[rowid] = after[rowid] = want
    plan.patched = len(after)
    return plan


def _update_base(
    source: Path, temporary: Path, key: str, record_at: dict[int, Record]
) -> int | None:
    """Write into `temporary` the base file at `source` updated to serve `record_at`: the rows
    whose records differ are masked or patched. The number of rows changed; None (and nothing
    written) when the file is better built again (`REBUILD_FRACTION`) or cannot be read."""
    shutil.copyfile(source, temporary)
    db = sqlite3.connect(temporary)
    try:
        db.execute("PRAGMA journal_mode = OFF")  # a failed update is thrown away whole
        db.execute("PRAGMA synchronous = OFF")
        built: dict[int, bytes] = dict(db.execute("SELECT rowid, digest FROM built").fetchall())
        patched: dict[int, bytes] = dict(db.execute("SELECT rowid, digest FROM patched").fetchall())
        masked = {rowid for (rowid,) in db.execute("SELECT rowid FROM masked")}
        wanted = {rowid: source_digest(record) for rowid, record in record_at.items()}
        plan = _plan(built, patched, masked, wanted)
        if len(plan.masked) + plan.patched > REBUILD_FRACTION * len(wanted):
            return None
        db.executemany("DELETE FROM patch WHERE rowid = ?", ((rowid,) for rowid in plan.unpatch))
        db.executemany("DELETE FROM patched WHERE rowid = ?", ((r,) for r in plan.unpatch))
        db.executemany(
            f"INSERT INTO patch(rowid, {_COLUMN_LIST}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((rowid, *document(record_at[rowid])) for rowid in plan.patch),
        )
        db.executemany("INSERT INTO patched VALUES (?, ?)", plan.patch.items())
        if plan.unpatch or plan.patch:  # merges its segments, and drops what was taken out
            db.execute("INSERT INTO patch(patch) VALUES ('optimize')")
        db.executemany("DELETE FROM masked WHERE rowid = ?", ((r,) for r in masked - plan.masked))
        db.executemany("INSERT INTO masked VALUES (?)", ((r,) for r in plan.masked - masked))
        db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("key", key), ("generation", uuid.uuid4().hex)],
        )
        db.commit()
    except sqlite3.Error as exc:
        log.warning("search index %s cannot be updated (%s); building it again", source, exc)
        return None
    finally:
        db.close()
    return len(plan.unpatch) + len(plan.patch) + len(masked ^ plan.masked)


def _remove_folder(folder: Path, owner: int) -> None:
    """Remove a temporary base's folder, in the process that made it (a forked worker that
    exits must not take it from its siblings)."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


def open_index(path: Path | None, collection: Collection) -> SearchIndex:
    """The index of `collection`, its base at `path`, or in a temporary folder when None."""
    if path is not None:
        return SearchIndex(path, collection)
    folder = Path(tempfile.mkdtemp(prefix="feedsvc-search-"))
    return SearchIndex(folder / "search.sqlite", collection, temporary=True)
