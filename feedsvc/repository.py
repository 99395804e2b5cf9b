"""A folder of record files loaded into one immutable `Collection`, indexed by topic and provider.

Loading never stops at a bad file: each rejection is kept as a `Problem` and logged once. Records
that share an article URL are one article (one entry, the earliest date, the union of topics).
Every sequence here is newest first, ties broken by entry id, so the order never depends on the
file system or on load order.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from feedsvc.errors import Problem
from feedsvc.records import Image, ParseResult, Record, parse_files

log = logging.getLogger(__name__)

RECORD_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".yaml", ".yml"})


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

    @property
    def updated(self) -> datetime | None:
        return self.records[0].published if self.records else None


def find_record_files(root: Path) -> list[Path]:
    """Every record file under `root`, in a stable order; hidden files and folders are skipped."""
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        found.extend(
            Path(folder, name)
            for name in sorted(files)
            if not name.startswith(".") and Path(name).suffix.lower() in RECORD_SUFFIXES
        )
    return found


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


def build_collection(results: Iterable[ParseResult]) -> Collection:
    """Assemble parse results into a collection: merge duplicates, sort, index."""
    accepted: list[Record] = []
    rejections: list[Problem] = []
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
    )


def load_collection(root: Path, asset_base_url: str | None = None) -> Collection:
    """Load every record under `root`; bad files are reported and skipped, never fatal."""
    results = parse_files(find_record_files(root), root, asset_base_url)
    collection = build_collection(results)
    rejected_files = {problem.path for problem in collection.rejections}
    for problem in collection.rejections:
        log.warning("rejected %s", problem)
    for problem in collection.warnings:
        log.debug("warning %s", problem)
    log.info(
        "loaded %d records from %s: %d files rejected, %d warnings, %d topics, %d providers",
        len(collection.records),
        root,
        len(rejected_files),
        len(collection.warnings),
        len(collection.topics),
        len(collection.providers),
    )
    return collection
