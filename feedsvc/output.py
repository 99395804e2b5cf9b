"""The output folder of a build: what a build may replace there, and how it replaces it.

A build writes its manifest, the list of every file it wrote, into the marker file `MARKER` at
the top of its output. The next build replaces that output only if everything in it is either in
the manifest or the marker itself: a file or folder that no build wrote (a CNAME, a `.git`, the
publisher's records) makes it refuse, naming the entries, and nothing is deleted. The old tree is
then removed file by file from its manifest, never as a whole, so that even an entry put there
while the build ran survives it.

A seeds folder equal to the output, inside it or containing it is refused too: the swap would
replace or delete the records.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(frozen=True, slots=True)
class WrittenFile:
    """One file a build wrote (and its `.gz`): what it was made from, and its size and time
    then, so that a later build can tell it from a file changed since."""

    fingerprint: str
    size: int
    mtime_ns: int
    gz_size: int
    gz_mtime_ns: int


@dataclass(slots=True)
class Manifest:
    """What one build wrote: each file by its path relative to the output (each has its `.gz`),
    and the digest of the settings the files were made with."""

    settings: str = ""
    files: dict[str, WrittenFile] = field(default_factory=dict)

    def names(self) -> set[str]:
        """Every file of the build, the `.gz` copies and the marker included."""
        return {MARKER, *self.files, *(name + GZ for name in self.files)}

    def dump(self) -> str:
        files = {name: list(_fields(written)) for name, written in sorted(self.files.items())}
        content = {"feedsvc_build": MANIFEST_FORMAT, "settings": self.settings, "files": files}
        return json.dumps(content, separators=(",", ":"))

    @classmethod
    def parse(cls, text: str) -> Manifest | None:
        """The manifest in a marker's text; None for a marker older than manifests."""
        try:
            content = json.loads(text)
            if content["feedsvc_build"] != MANIFEST_FORMAT:
                return None
            files = {name: WrittenFile(*row) for name, row in content["files"].items()}
            return cls(str(content["settings"]), files)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _fields(written: WrittenFile) -> tuple[str, int, int, int, int]:
    return (
        written.fingerprint,
        written.size,
        written.mtime_ns,
        written.gz_size,
        written.gz_mtime_ns,
    )


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


def previous_build(out: Path) -> Manifest:
    """What the build in `out` wrote (an empty manifest when `out` is absent or empty).

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
    foreign = list(_foreign_entries(out, manifest))
    if foreign:
        named = ", ".join(foreign[:_NAMED])
        more = f" and {len(foreign) - _NAMED} more" if len(foreign) > _NAMED else ""
        raise OutputRefused(
            f"{out} holds entries no build wrote ({named}{more}); a build replaces the whole "
            "folder, so move them out of it or choose another --out"
        )
    return manifest or Manifest()


def _foreign_entries(out: Path, manifest: Manifest | None) -> Iterator[str]:
    """Entries of `out` that the manifest does not list (for an old marker without one: that
    do not fit a build's layout), outermost first; links are never a build's."""
    if manifest is not None:
        names = manifest.names()
        folders = {str(Path(name).parent) for name in names} - {"."}
        folders |= {str(parent) for name in folders for parent in Path(name).parents}
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


def new_work_folder(out: Path) -> Path:
    """An empty hidden folder beside `out`, where the next version of the site is written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))


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
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rename(out, aside / out.name)
    os.rename(work, out)
    return aside / out.name


def remove_build(old: Path, manifest: Manifest) -> None:
    """Delete the files `manifest` lists under `old`, then its folders once empty. Anything else
    found there (put in while the build ran) is left, with a warning."""
    names = manifest.names()
    for name in names:
        with contextlib.suppress(OSError):  # already gone, or not a file any more: left
            os.unlink(old / name)
    folders = {parent for name in names for parent in (old / name).parents if old in parent.parents}
    for folder in sorted(folders, key=lambda path: len(path.parts), reverse=True) + [old]:
        with contextlib.suppress(OSError):  # not empty: something no build wrote is in it
            os.rmdir(folder)
    if old.exists():
        left = sorted(str(path.relative_to(old)) for path in old.rglob("*"))
        log.warning("kept %s: it holds entries no build wrote (%s)", old, ", ".join(left[:_NAMED]))


def discard(work: Path) -> None:
    """Remove a work folder of this build that will not be swapped in (everything in it is the
    build's own)."""
    shutil.rmtree(work, ignore_errors=True)


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
