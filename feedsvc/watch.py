"""Watching the seeds folder for changes: filesystem events, polling where there are none, and
the folder a root path names, so that a deploy that replaces the folder is followed.

A `FolderWatch` says what changed, batch after batch; the loader (feedsvc.repository) decides
what that means for the collection. The watch runs in a thread of each serving process.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from stat import S_ISDIR

log = logging.getLogger(__name__)

# The folder a root path names: its resolved path, device and inode. A rename swap
# (`mv new current`), a re-pointed release link or a delete-and-recreate changes it.
RootIdentity = tuple[str, int, int]


def root_identity(root: Path) -> RootIdentity | None:
    """Which folder `root` names now; None when it names no folder (gone, or not a folder)."""
    try:
        real = os.path.realpath(root)
        stat = os.stat(real)
    except (OSError, ValueError):
        return None
    return (real, stat.st_dev, stat.st_ino) if S_ISDIR(stat.st_mode) else None


class FolderWatch:
    """What changes under a folder, batch after batch, for ever (iterate it): the paths that
    filesystem events reported (watchfiles), or None when the whole folder must be checked.

    With events, the first None comes once the folder is being watched (within 0.1 s), so that
    changes made since the load are caught up on. When the root path comes to name another
    folder (a deploy's rename swap, a re-pointed release link, a delete-and-recreate), the new
    folder is watched instead and a None follows; while it names no folder, None comes every
    `interval` seconds. Without events (`events` false, watchfiles missing, or watching failed:
    no inotify, too many watches), None comes every `interval` seconds: polling. `mode` says
    which is in force; `stop` ends the iteration."""

    def __init__(self, root: Path, interval: float, *, events: bool = True) -> None:
        self.root = root
        self.interval = interval
        self.events = events
        self.mode = "starting"
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def __iter__(self) -> Iterator[frozenset[str] | None]:
        if self.events:
            try:
                yield from self._events()
            except Exception as exc:  # any failure to watch means: poll instead
                log.warning("no filesystem events for %s (%s); polling", self.root, exc)
        self.mode = "polling"
        while not self._stop.wait(self.interval):
            yield None
        self.mode = "stopped"

    def _events(self) -> Iterator[frozenset[str] | None]:
        """Events from the folder the root names, watched anew each time that folder changes."""
        while not self._stop.is_set():
            identity = root_identity(self.root)
            if identity is None:  # gone (mid-deploy?): poll until a folder is there again
                self.mode = "polling"
                if self._stop.wait(self.interval):
                    return
                yield None
                continue
            try:
                for changed in _event_changes(self.root, self.interval, self._stop, identity):
                    self.mode = "events"
                    yield changed
            except Exception:
                if root_identity(self.root) == identity:
                    raise  # watching this folder failed: poll
                # The folder went away while the watch started on it: watch what is there now.


def _event_changes(
    root: Path, interval: float, stop: threading.Event, identity: RootIdentity
) -> Iterator[frozenset[str] | None]:
    """The batches of events under `root` while it names the folder `identity` says; ends when
    it names another (or none), since the events then still come from the old folder (an edit
    there would be read as the same name in the new one) and none come from the new."""
    import watchfiles  # here: only a serving process that watches needs it

    wait_ms = max(50, round(interval * 1000))
    batches = watchfiles.watch(
        root,
        watch_filter=None,  # _targets applies the scan's own rules
        debounce=wait_ms,  # a burst of changes is reported within one interval
        step=50,
        rust_timeout=100,  # the first time-out says the watch is in place; later ones are idle
        yield_on_timeout=True,
        raise_interrupt=False,
        stop_event=stop,
    )
    folder = os.path.abspath(root)
    caught_up = False
    try:
        for batch in batches:
            # Every batch and every idle time-out (0.1 s): a stat and a readlink or two.
            if stop.is_set() or root_identity(root) != identity:
                return
            if not caught_up:  # the first batch or time-out: the watch is in place
                caught_up = True
                yield None
            elif batch:
                paths = {path for _, path in batch if path != folder}
                # The folder itself deleted or moved away: a new one may have its inode, so
                # the identity check alone would miss it. The loader reads it whole; this
                # watch is dead, so watch anew.
                if (watchfiles.Change.deleted, folder) in batch:
                    yield frozenset({*paths, folder})
                    return
                if paths:
                    yield frozenset(paths)
    finally:
        batches.close()  # stops watching the old folder now, not when garbage is collected


def names_root(root: Path, paths: Iterable[str]) -> bool:
    """Whether `paths` (as events name them: absolute) include the root folder itself."""
    folder = os.path.abspath(root)
    return any(os.path.abspath(path) == folder for path in paths)
