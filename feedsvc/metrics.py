"""What the service tells its operators: one log line per request and per load, and Prometheus
metrics (`GET /metrics`).

Log lines are logfmt (`key=value`, values quoted only when they need it), on the loggers
`feedsvc.access` (requests) and `feedsvc.load` (loads and reloads), so a log pipeline can parse
them and a person can read them.

Server workers are forked processes. When `PROMETHEUS_MULTIPROC_DIR` is set before
prometheus_client is first imported (`feedsvc serve` does this, see `prepare_multiprocess`),
every process writes its samples to files in that folder and `/metrics` on any worker reports the
sum over all of them; otherwise each process reports its own. prometheus_client is therefore
imported here only when an app is built, never at module import.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from feedsvc.errors import ConfigError

if TYPE_CHECKING:
    pass

access_log = logging.getLogger("feedsvc.access")
load_log = logging.getLogger("feedsvc.load")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Renders take 1-50 ms for a 50-entry page; the buckets resolve that range.
FLUSH_SECONDS = 1.0
RENDER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def prepare_multiprocess(metrics_dir: str) -> Callable[[], None] | None:
    """Point prometheus_client at a folder shared by the server's workers, emptied first (files
    left by an earlier run would be summed in). Must run before prometheus_client is imported;
    returns a clean-up for a folder it created or locked, or None.

    :raises ConfigError: METRICS_DIR cannot be used (see `owned_metrics_folder`).
    """
    if metrics_dir == "off":
        return None
    owner = os.getpid()
    if metrics_dir == "auto":
        folder = tempfile.mkdtemp(prefix="feedsvc-metrics-")
        os.environ[MULTIPROC_ENV] = folder

        def remove() -> None:
            # Forked workers unwind through the same code on exit; only the parent removes.
            if os.getpid() == owner:
                shutil.rmtree(folder, ignore_errors=True)

        return remove
    path, lock = owned_metrics_folder(Path(metrics_dir))
    os.environ[MULTIPROC_ENV] = str(path)

    def unlock() -> None:
        if os.getpid() == owner:
            os.close(lock)

    return unlock


# Under a METRICS_DIR given as a path, feedsvc writes only in this subfolder, which it creates
# and marks; it empties that of its own samples and touches nothing else there.
METRICS_SUBFOLDER = "feedsvc-metrics"
METRICS_MARKER = ".feedsvc-metrics"


def owned_metrics_folder(metrics_dir: Path) -> tuple[Path, int]:
    """The subfolder of `metrics_dir` feedsvc owns, emptied of an earlier run's samples, and
    the descriptor of its marker, locked for as long as this server runs (forked workers share
    the lock), so that a second server given the same METRICS_DIR cannot empty it under the
    first.

    :raises ConfigError: the subfolder holds files feedsvc did not write, another server uses
        it, or it cannot be created.
    """
    folder = metrics_dir / METRICS_SUBFOLDER
    marker = folder / METRICS_MARKER
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not marker.exists() and any(folder.iterdir()):
            raise ConfigError(
                f"METRICS_DIR: {folder} holds files feedsvc did not write; move them, or give "
                "another METRICS_DIR"
            )
        lock = os.open(marker, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ConfigError(f"METRICS_DIR cannot be used: {folder}: {exc.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        raise ConfigError(
            f"METRICS_DIR: {folder} is in use by another feedsvc serve; give each server its own"
        ) from None
    for stale in folder.glob("*.db"):
        stale.unlink()
    return folder, lock


class LogFormatter(logging.Formatter):
    """The standard format, with the date part of the time formatted once per second rather than
    once per line: at thousands of requests a second, `strftime` was a fifth of a line's cost."""

    _second = -1
    _date = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._date = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._second = second
        return f"{self._date},{int(record.msecs):03d}"


def log_access(line: str) -> None:
    """Write one access line at INFO. `Logger.info` would also look up the caller's frame, which
    is always this function; skipping that saves a third of a line's cost."""
    record = access_log.makeRecord(access_log.name, logging.INFO, __file__, 0, line, (), None)
    access_log.handle(record)


def quoted(value: str) -> str:
    """A logfmt value: as it is when it is plain, else JSON-quoted, so that a path holding spaces,
    quotes or line breaks cannot forge a second log line."""
    if value.isprintable() and " " not in value and '"' not in value and value:
        return value
    return json.dumps(value)


class Metrics:
    """The Prometheus metrics of one app, in a registry of its own (tests build many apps)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values

        # Decided when prometheus_client was first imported, whatever the environment says now.
        self.multiprocess = values.ValueClass is not values.MutexValue
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "feedsvc_http_requests",
            "HTTP requests answered, by route (Flask endpoint) and status code.",
            ["route", "status"],
            registry=registry,
        )
        self.render_cache = Counter(
            "feedsvc_render_cache_lookups",
            "Feed requests answered from the render cache (hit), from a render of an earlier "
            "version whose inputs are unchanged (carried), or rendered anew (miss).",
            ["result"],
            registry=registry,
        )
        self.render_seconds = Histogram(
            "feedsvc_render_seconds",
            "Time to render and compress one feed page.",
            buckets=RENDER_BUCKETS,
            registry=registry,
        )
        self.records = Gauge(
            "feedsvc_records_loaded",
            "Entries in the collection being served.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.rejected = Gauge(
            "feedsvc_files_rejected",
            "Record files rejected at the last load or reload.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.loads = Counter(
            "feedsvc_loads", "Collection loads (start-up) and reloads.", ["kind"], registry=registry
        )
        self.websub_notifications = Counter(
            "feedsvc_websub_notifications",
            "WebSub publish notifications, by result: sent (the hub answered 2xx), retried "
            "(failed, asked again later) or dropped (refused, or failed too often).",
            ["result"],
            registry=registry,
        )
        self.websub_pending = Gauge(
            "feedsvc_websub_pending",
            "WebSub notifications waiting to be sent (one per hub and feed URL).",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.misses = self.render_cache.labels("miss")
        self.carried = self.render_cache.labels("carried")
        # Requests are tallied in plain ints and added to the counters at most once a second
        # (and before every scrape): a prometheus_client increment costs 0.5-1 µs, a quarter of
        # a cache hit's whole path, and the hit path would need two.
        self._pending: dict[tuple[str, str, bool], int] = {}
        self._lock = threading.Lock()
        self._flush_at = 0.0

    def request(self, route: str, status: str, hit: bool, now: float) -> None:
        """Count one request (`status` is the WSGI status line; `hit`: answered from the render
        cache); `now` is `time.perf_counter()`."""
        key = (route, status, hit)
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + 1
        # Requests through Flask take 80 µs or more: flushing there is free, and it brings an
        # idle worker's tally in at the next request that is not a cache hit (a scrape, say).
        if not hit or now >= self._flush_at:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        """Add the tallied requests to the Prometheus counters."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._flush_at = (now or time.perf_counter()) + FLUSH_SECONDS
        for (route, status, hit), count in pending.items():
            self.requests.labels(route, status[:3]).inc(count)
            if hit:
                self.render_cache.labels("hit").inc(count)

    def loaded(self, kind: str, records: int, rejected: int) -> None:
        self.loads.labels(kind).inc()
        self.records.set(records)
        self.rejected.set(rejected)

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's samples, or every worker's summed (other
        workers' requests of the last second may not be in yet)."""
        self.flush()
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if not self.multiprocess:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
