"""The output folder of a build: what a build may replace there, and how it replaces it.

A build writes its manifest, the list of every file it wrote, into the marker file `MARKER` at
the top of its output. The next build replaces that output only if everything in it is either in
the manifest or the marker itself: a file or folder that no build wrote (a CNAME, a `.git`, the
publisher's records) makes it refuse, naming the entries, and nothing is deleted. The old tree is
then removed file by file from its manifest, never as a whole, so that even an entry put there
while the build ran survives it.

A seeds folder equal to the output, inside it or containing it is refused too: the swap would
replace or delete the records.

The new version is written in a work folder beside the output, locked while its build lives, so
that the folders of killed builds can be told apart and removed by the next build.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from feedsvc.errors import FeedsvcError

log = logging.getLogger(__name__)

# Written into every build, so that a later build replaces only what a build made.
MARKER = ".feedsvc-build"
MANIFEST_FORMAT = 1
GZ = ".gz"
# A marker written before manifests existed is one line of text. What such a build could have
# written is known from its layout: the pages, the feeds, the OPML list, the stylesheets.
_LEGACY_FOLDERS = frozenset({"feeds", "feeds/topics", "feeds/providers", "topics", "providers"})
_LEGACY_FOLDERS |= {"static"}
_LEGACY_FILE = re.compile(
    r"(index(\.page-[0-9]+)?\.html|feeds\.opml"
    r"|feeds/(all|topics/[^/]+|providers/[^/]+)\.(atom|rss|json)"
    r"|(topics|providers)/[^/]+\.html|static/[^/]+\.(css|xsl))(\.gz)?"
)
# How many foreign entries a refusal names before "and N more".
_NAMED = 5


class BuildError(FeedsvcError):
    """The site cannot be built."""


class OutputRefused(BuildError):
    """The output folder cannot be used: replacing it would lose something no build wrote."""


class WrittenFile(NamedTuple):
    """One file a build wrote (and its `.gz`): what it was made from, and its size and time
    then, so that a later build can tell it from a file changed since. (A tuple, so that the
    manifest of a large site is written and read fast.)"""

    fingerprint: str
    size: int
    mtime_ns: int
    gz_size: int
    gz_mtime_ns: int


@dataclass(slots=True)
class Manifest:
    """What one build wrote: each file by its path relative to the output (each has its `.gz`),
    and the digest of the settings the files were made with; and by feed (its path), a digest
    of everything its pages were made from, under which the next build finds their
    fingerprints in `files` without working them out again (`build.site_pages`)."""

    settings: str = ""
    files: dict[str, WrittenFile] = field(default_factory=dict)
    feeds: dict[str, str] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Every file of the build, the `.gz` copies and the marker included."""
        return {MARKER, *self.files, *(name + GZ for name in self.files)}

    def dump(self) -> str:
        files = dict(sorted(self.files.items()))
        content = {"feedsvc_build": MANIFEST_FORMAT, "settings": self.settings, "files": files}
        if self.feeds:
            content["feeds"] = dict(sorted(self.feeds.items()))
        return json.dumps(content, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str) -> Manifest | None:
        """The manifest in a marker's text; None for a marker older than manifests."""
        try:
            content = json.loads(text)
            if content["feedsvc_build"] != MANIFEST_FORMAT:
                return None
            files = {name: WrittenFile(*row) for name, row in content["files"].items()}
            feeds = content.get("feeds")
            if type(feeds) is not dict or not all(type(key) is str for key in feeds.values()):
                feeds = {}  # nothing to find fingerprints under: the build works them out
            return cls(str(content["settings"]), files, feeds)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def check_apart(seeds: Path, out: Path) -> None:
    """Refuse an output that is the seeds folder, inside it, or around it (real paths compared,
    so links and `..` do not hide it).

    :raises OutputRefused: the two overlap.
    """
    real_seeds, real_out = Path(os.path.realpath(seeds)), Path(os.path.realpath(out))
    if real_seeds == real_out:
        raise OutputRefused(f"--out {out} is the seeds folder; the build would replace the records")
    if real_out in real_seeds.parents:
        raise OutputRefused(
            f"--out {out} contains the seeds folder {seeds}; the build would delete the records"
        )
    if real_seeds in real_out.parents:
        raise OutputRefused(f"--out {out} is inside the seeds folder {seeds}; choose one apart")


def previous_build(out: Path, scan: bool = True) -> Manifest:
    """What the build in `out` wrote (an empty manifest when `out` is absent or empty). Without
    `scan`, the entries of a build whose manifest lists files are left for `check_entries`.

    :raises OutputRefused: `out` is not a folder, was not made by a build, or holds entries no
        build wrote.
    """
    if not out.exists():
        return Manifest()
    if not out.is_dir():
        raise OutputRefused(f"--out {out} is not a folder")
    marker = out / MARKER
    if not marker.is_file():
        if any(out.iterdir()):
            raise OutputRefused(
                f"{out} is not empty and was not made by feedsvc build; not replacing it"
            )
        return Manifest()
    manifest = Manifest.parse(marker.read_text(encoding="utf-8", errors="replace"))
    if manifest is None or scan or not manifest.files:
        check_entries(out, manifest)
    return manifest or Manifest()


def check_entries(out: Path, manifest: Manifest | None) -> None:
    """Refuse an output that holds entries the build that wrote it (`manifest`; None: a build
    before manifests) did not write.

    :raises OutputRefused: naming them.
    """
    foreign = list(_foreign_entries(out, manifest))
    if foreign:
        named = ", ".join(foreign[:_NAMED])
        more = f" and {len(foreign) - _NAMED} more" if len(foreign) > _NAMED else ""
        raise OutputRefused(
            f"{out} holds entries no build wrote ({named}{more}); a build replaces the whole "
            "folder, so move them out of it or choose another --out"
        )


def _foreign_entries(out: Path, manifest: Manifest | None) -> Iterator[str]:
    """Entries of `out` that the manifest does not list (for an old marker without one: that
    do not fit a build's layout), outermost first; links are never a build's."""
    if manifest is not None:
        names = manifest.names()
        folders = set()
        for name in names:
            folder = os.path.dirname(name)
            while folder and folder not in folders:
                folders.add(folder)
                folder = os.path.dirname(folder)
    pending = [""]
    while pending:
        relative = pending.pop()
        with os.scandir(out / relative) as entries:
            for entry in sorted(entries, key=lambda item: item.name):
                name = f"{relative}/{entry.name}" if relative else entry.name
                if entry.is_dir(follow_symlinks=False):
                    known = name in folders if manifest is not None else name in _LEGACY_FOLDERS
                    if known:
                        pending.append(name)
                    else:
                        yield name + "/"
                elif entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                    yield name
                elif manifest is not None and name not in names:
                    yield name
                elif manifest is None and name != MARKER and not _LEGACY_FILE.fullmatch(name):
                    yield name


def resolve_output(out: Path) -> Path:
    """The folder a build replaces: `out` with every link resolved, so that a link to an
    earlier build stays a link and its target is what is swapped.

    :raises OutputRefused: `out` is a link to nothing.
    """
    real = Path(os.path.realpath(out))
    if out.is_symlink() and not real.exists():
        raise OutputRefused(f"--out {out} is a link to {real}, which does not exist")
    return real


class WorkFolder:
    """A hidden folder beside the output where this build writes the next version of the site.

    It carries the marker from the start (saying which process builds in it) and is locked
    (`flock` on the folder) while this build lives, so that a later build can tell the folder of
    a build that was killed, which it removes, from the folder of one still running.
    """

    def __init__(self, out: Path) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{out.name}{_BUILDING}", dir=out.parent))
        lock = _locked(self.path)
        assert lock is not None  # nobody else knows the folder yet
        self._lock = lock
        _INHERITED.add(lock)
        (self.path / MARKER).write_text(json.dumps({_IN_PROGRESS: os.getpid()}), encoding="utf-8")

    def release(self) -> None:
        """Unlock (the folder is gone or swapped in by now)."""
        _INHERITED.discard(self._lock)
        os.close(self._lock)


# A work folder is named .OUT.building-RANDOM; an output moved aside where the kernel cannot
# exchange two names is .OUT.old-RANDOM.
_BUILDING = ".building-"
_ASIDE = ".old-"
_IN_PROGRESS = "feedsvc_build_in_progress"
# Locks this process holds; a forked worker closes its copies, so that the lock dies with the
# build itself and not with the last of its workers.
_INHERITED: set[int] = set()


def close_inherited_locks() -> None:
    """In a process forked from a build: drop its copies of the build's locks."""
    for descriptor in _INHERITED:
        os.close(descriptor)
    _INHERITED.clear()


def lock_folder(folder: Path) -> int | None:
    """`folder` locked as a build's (a later build leaves it alone while the lock is held): a
    descriptor to close to unlock it, or None when another holds the lock or it is gone."""
    try:
        return _locked(folder)
    except OSError:
        return None


def _locked(folder: Path) -> int | None:
    """A descriptor holding an exclusive lock on `folder`, or None when another holds one."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def remove_stale_work(out: Path) -> list[Path]:
    """Remove what builds into `out` left beside it when they were killed: work folders and old
    outputs that carry the build's marker and that no running build holds. Returns them."""
    removed: list[Path] = []
    try:
        candidates = sorted(out.parent.iterdir())
    except FileNotFoundError:
        return removed
    for folder in candidates:
        if not folder.name.startswith((f".{out.name}{_BUILDING}", f".{out.name}{_ASIDE}")):
            continue
        if folder.is_symlink() or not (folder / MARKER).is_file():
            continue
        lock = _locked(folder)
        if lock is None:  # a build is running in it
            continue
        try:
            _remove_unused(folder)
        finally:
            os.close(lock)
        removed.append(folder)
    return removed


def _remove_unused(folder: Path) -> None:
    """A killed build's folder: all of it when it was being written (the build made everything
    in it), else an old output, removed from its manifest."""
    text = (folder / MARKER).read_text(encoding="utf-8", errors="replace")
    manifest = Manifest.parse(text)
    if manifest is not None:
        remove_build(folder, manifest)
        return
    try:
        building = _IN_PROGRESS in json.loads(text)
    except (ValueError, TypeError):
        building = False
    if building:
        shutil.rmtree(folder, ignore_errors=True)


def swap_in(work: Path, out: Path) -> Path | None:
    """Put `work` in `out`'s place; returns where the old output now is (None when there was
    none). Where the kernel can exchange two names at once, readers see the old site or the new
    one and never a missing folder; else the old site is moved aside first (a moment without
    it)."""
    if not out.exists():
        os.rename(work, out)
        return None
    if _exchange(work, out):
        return work
    aside = out.parent / f".{out.name}{_ASIDE}{uuid.uuid4().hex[:12]}"
    os.rename(out, aside)
    os.rename(work, out)
    return aside


def remove_build(old: Path, manifest: Manifest) -> None:
    """Delete the files `manifest` lists under `old`, then its folders once empty. Anything else
    found there (put in while the build ran) is left, with a warning. The marker goes last: a
    removal that dies half-way (it may run in a process of its own) leaves a folder that the
    next build still knows as a build's, and removes (`remove_stale_work`)."""
    root = os.fspath(old) + os.sep
    folders: set[str] = set()
    names = manifest.names()
    names.discard(MARKER)
    for name in [*names, MARKER]:  # 41,000 at 10,000 records: plain strings, no helpers
        try:
            os.unlink(root + name)
        except OSError:  # already gone, or not a file any more: left
            pass
        folder = name.rpartition("/")[0]
        while folder and folder not in folders:
            folders.add(folder)
            folder = folder.rpartition("/")[0]
    for folder in sorted(folders, key=lambda name: name.count("/"), reverse=True) + [""]:
        with contextlib.suppress(OSError):  # not empty: something no build wrote is in it
            os.rmdir(os.path.join(root, folder))
    if old.exists():
        left = sorted(str(path.relative_to(old)) for path in old.rglob("*"))
        log.warning("kept %s: it holds entries no build wrote (%s)", old, ", ".join(left[:_NAMED]))


def discard(work: WorkFolder) -> None:
    """Remove this build's work folder when it will not be swapped in (everything in it is the
    build's own)."""
    shutil.rmtree(work.path, ignore_errors=True)
    work.release()


def _exchange(first: Path, second: Path) -> bool:
    """Linux renameat2(RENAME_EXCHANGE): swap two names atomically; False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return bool(done == 0)
