"""The version of the collection a process serves, and the reloads that replace it.

A `Snapshot` is one version of the collection, numbered. `Versions` holds the current one, loads
it, and replaces it whole when a reload finds changed files, so that a request, which reads the
current snapshot once, sees the old version or the new one and never a mix. Renders outlive a
version: the render cache keeps each document with the inputs it was made from, and a request of
a newer version keeps it when its inputs are unchanged (`RenderCache.carry`), so a reload costs
the renders of what it changed. Rendered entries (fragments) are shared by every document and
version. Each serving process watches the folder in a thread of its own (`ensure_watching`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from feedsvc.cache import FragmentCache, RenderCache
from feedsvc.metrics import Metrics, load_log
from feedsvc.repository import Collection, CollectionLoader
from feedsvc.settings import Settings
from feedsvc.watch import FolderWatch
from feedsvc.websub import publisher_for

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One version of the collection. A request reads the current snapshot once and uses only
    it, so it sees the old version or the new one, never a mix; `number` tells the render cache
    which version a render was checked against."""

    collection: Collection
    number: int


class Versions:
    """The current snapshot of one app, replaced whole on reload, and the watch that triggers
    reloads."""

    def __init__(self, settings: Settings, loader: CollectionLoader) -> None:
        self.settings = settings
        self.loader = loader
        self.metrics = Metrics()
        # One budget for whole documents and the entries they are put together from. Custom
        # feeds (searches) have an eighth of the documents' half to themselves, so that unique
        # questions evict each other, never a standard feed or page.
        documents = settings.render_cache_bytes // 2
        self.renders = RenderCache(documents - documents // 8)
        self.custom_renders = RenderCache(documents // 8)
        self.fragments = FragmentCache(settings.render_cache_bytes // 2)
        started = time.perf_counter()
        self.snapshot = Snapshot(loader.load(), 1)
        self._loaded("load", started)
        self.reloads = 0
        self._reload_lock = threading.Lock()
        # Run on each new version before it is served (the web module keeps the renders whose
        # inputs did not change valid for it, so its first requests are cache hits).
        self.preparers: list[Callable[[Snapshot], None]] = []
        self._watching_pid: int | None = None
        self.watch = FolderWatch(
            loader.root, settings.reload_interval, events=settings.reload_watch == "events"
        )
        self.websub = publisher_for(settings, self.metrics, self.fragments)

    @property
    def collection(self) -> Collection:
        return self.snapshot.collection

    @property
    def watch_mode(self) -> str:
        """How this process learns of changes: events, polling, starting, or off."""
        return self.watch.mode if self.settings.reload_interval > 0 else "off"

    def reload(self, changed: Iterable[str] | None = None) -> bool:
        """Pick up changed record files (only the paths in `changed`, when events named them);
        True when a new version is now served."""
        with self._reload_lock:
            started = time.perf_counter()
            collection = self.loader.reload(changed)
            if collection is None:
                return False
            old = self.snapshot.collection
            new = Snapshot(collection, self.snapshot.number + 1)
            for prepare in self.preparers:
                try:
                    prepare(new)
                except Exception:  # preparing is an optimization; serving goes on without it
                    log.exception("preparing version %d failed", new.number)
            self.snapshot = new
            self.reloads += 1
            self._loaded("reload", started)
            if self.websub is not None:  # the new version is served: hubs may fetch it
                self.websub.reloaded(old, collection)
            return True

    def _loaded(self, kind: str, started: float) -> None:
        """One log line and the metrics for a load or reload."""
        collection = self.snapshot.collection
        rejected = len({problem.path for problem in collection.rejections})
        self.metrics.loaded(kind, len(collection.records), rejected)
        load_log.info(
            "event=%s records=%d rejected=%d warnings=%d files_parsed=%d duration_ms=%.1f "
            "version=%s",
            kind,
            len(collection.records),
            rejected,
            len(collection.warnings),
            self.loader.stats.parsed,
            (time.perf_counter() - started) * 1000,
            collection.version,
        )

    def ensure_watching(self) -> None:
        """Start this process's reload thread. Called on requests, not at start-up, so that
        server workers forked from the loading process each run their own (threads do not
        survive a fork)."""
        if self._watching_pid == os.getpid() or self.settings.reload_interval <= 0:
            return
        with self._reload_lock:
            if self._watching_pid != os.getpid():
                self._watching_pid = os.getpid()
                # Each worker its own: a forked copy would report the parent's mode.
                watch = self.watch
                self.watch = FolderWatch(watch.root, watch.interval, events=watch.events)
                threading.Thread(target=self._watch, name="feedsvc-reload", daemon=True).start()

    def _watch(self) -> None:
        for changed in self.watch:
            try:
                self.reload(changed)
            except Exception:  # a reload must never stop the next one
                log.exception("reload of %s failed; serving the previous version", self.loader.root)
