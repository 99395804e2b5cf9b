"""WebSub (W3C Recommendation 2018): hubs are told which feeds changed, so that aggregators
subscribed through them hear of a change within seconds instead of polling for it.

A feed's topic is the URL of its first page, in each format. After a reload, `changed_topics`
works out which first pages changed by comparing their `FeedPage` values in the old and the new
collection (no rendering), and a `Notifier` thread tells every hub, in the background, with a
form POST per URL (`hub.mode=publish`, `hub.url`, and `hub.topic` for hubs that read that
name). URLs waiting to be sent are a set per hub, so a feed that changes again before it was
sent is sent once, and memory is bounded by the number of feeds. A hub that fails (an error, a
time-out, a 5xx, 408 or 429) is asked again after 1, 2, 4 ... seconds (at most 5 minutes apart),
16 times in all; a hub that refuses (another 4xx, a redirect) is not asked again for that change.

Every worker process of a server reloads on its own, but a change must be sent once: the
process that sends is the one holding an exclusive lock (`flock`) on a file named after the
collection's folder, base URL and hubs (`SenderLock`). A worker tries to take it when it
reloads; the kernel frees it when its holder exits, and the next worker to reload takes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from feedsvc.errors import ConfigError
from feedsvc.feeds import Feed, Site, feed_page, iter_feeds
from feedsvc.metrics import Metrics, quoted
from feedsvc.render import ATOM, FORMATS, VERSION, FragmentStore
from feedsvc.repository import Collection
from feedsvc.settings import Settings

log = logging.getLogger(__name__)

TIMEOUT = 10.0  # seconds for one POST, the hub's answer included
FIRST_RETRY = 1.0  # seconds; doubled after each failure
LONGEST_RETRY = 300.0
ATTEMPTS = 16  # 1 + 2 + ... + 256 s, then 5 minutes apart: about 40 minutes in all
BUILD_ATTEMPTS = 5  # a build waits 1 + 2 + 4 + 8 seconds at most, then reports
BUILD_SECONDS = 60.0
USER_AGENT = f"feedsvc/{VERSION} (WebSub publisher)"
# Every worker serves a change within RELOAD_INTERVAL of it plus the time its reload takes
# (0.1 s at 10,000 records, 0.8 s at 100,000: bench/README.md); notifications wait that long.
RELOAD_SECONDS = 1.0
# Answers after which asking again may work; any other 4xx (or a redirect) is a refusal.
_RETRIED_STATUSES = frozenset({408, 429})


def topic_url(feed: Feed, site: Site, extension: str) -> str:
    """The feed's topic in one format: its first page."""
    return site.url(f"{feed.path}.{extension}")


def changed_topics(
    old: Collection, new: Collection, site: Site, fragments: FragmentStore | None = None
) -> list[str]:
    """The topics whose bytes `new` changed: the first page, in each format, of each feed whose
    first page changed, and of each new feed. A feed that is gone has nothing to fetch, so it
    is left out. `fragments` keeps the entries rendered to tell (see `_changed_formats`)."""
    store = fragments if fragments is not None else _Fragments()
    before = {feed.path: feed for feed in iter_feeds(old)}
    changed: list[str] = []
    for feed in iter_feeds(new):
        previous = before.get(feed.path)
        extensions = FORMATS if previous is None else _changed_formats(previous, feed, site, store)
        changed.extend(topic_url(feed, site, extension) for extension in extensions)
    return changed


def _changed_formats(old: Feed, new: Feed, site: Site, fragments: FragmentStore) -> list[str]:
    """The formats in which the feed's first page has other bytes. Equal inputs give equal
    bytes, and comparing them is cheap (unchanged records are the same objects), which settles
    almost every feed. Unequal inputs may still give equal bytes: a renamed file or a field no
    feed shows (equal documents), or paging links a format does not write (JSON Feed has no
    `last`), so for the few feeds a change touches the pages are rendered and compared."""
    before, after = (feed_page(feed, site, ATOM.extension, 1) for feed in (old, new))
    if before == after or before.document() == after.document():
        return []
    return [
        extension
        for extension, fmt in FORMATS.items()
        if fmt.assemble(feed_page(old, site, extension, 1).document(), fragments)
        != fmt.assemble(feed_page(new, site, extension, 1).document(), fragments)
    ]


class _Fragments(dict[Hashable, bytes]):
    """A fragment store for one comparison, when the app's is not at hand."""

    def put(self, key: Hashable, fragment: bytes) -> None:
        self[key] = fragment


@dataclass(frozen=True, slots=True)
class Answer:
    """What a hub said to one notification: sent (2xx), or the reason it was not and whether
    asking again may help."""

    sent: bool
    reason: str
    retry: bool = False


def post_publish(hub: str, topic: str, timeout: float = TIMEOUT) -> Answer:
    """POST one publish notification to `hub`. http.client rather than urllib, which would turn
    a redirected POST into a GET."""
    parts = urlsplit(hub)
    body = urlencode({"hub.mode": "publish", "hub.url": topic, "hub.topic": topic}).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": USER_AGENT,
        "Connection": "close",
    }
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = kind(parts.netloc, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body, headers)
        response = connection.getresponse()
        response.read(65536)  # the answer is not used; a bounded read lets the hub finish
    except (OSError, http.client.HTTPException) as exc:
        return Answer(
            False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__, True
        )
    finally:
        connection.close()
    status = response.status
    if 200 <= status < 300:
        return Answer(True, str(status))
    return Answer(
        False, f"{status} {response.reason}", status >= 500 or status in _RETRIED_STATUSES
    )


Poster = Callable[[str, str], Answer]


@dataclass(slots=True)
class _Pending:
    due: float  # time.monotonic() when it may be sent
    attempts: int = 0  # failed so far


class Notifier:
    """Publish notifications waiting to be sent, one set per hub, and the thread that sends
    them when they are due (`publish` starts it on first use)."""

    def __init__(
        self,
        hubs: Iterable[str],
        metrics: Metrics | None = None,
        *,
        post: Poster = post_publish,
        first_retry: float = FIRST_RETRY,
        longest_retry: float = LONGEST_RETRY,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.hubs = tuple(hubs)
        self.metrics = metrics
        self.post = post
        self.first_retry = first_retry
        self.longest_retry = longest_retry
        self.attempts = attempts
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._sending = 0  # taken from _pending, not yet answered
        self.outcomes = {"sent": 0, "retried": 0, "dropped": 0}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def publish(self, topics: Iterable[str], delay: float = 0.0) -> None:
        """Send a notification for each topic to every hub, in the background, not before
        `delay` seconds from now. A topic already waiting is sent once, at the later time."""
        with self._changed:
            self._queue(topics, delay)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="feedsvc-websub", daemon=True
                )
                self._thread.start()
            self._changed.notify()

    def send_now(self, topics: Iterable[str], seconds: float) -> None:
        """Send in this thread, retrying for at most `seconds` (a build, which ends when it is
        done); `outcomes` then says how it went, and `pending()` how many were left."""
        with self._changed:
            self._queue(topics, 0.0)
        self.drain(time.monotonic() + seconds)

    def _queue(self, topics: Iterable[str], delay: float) -> None:
        due = time.monotonic() + delay
        for topic in topics:
            for hub in self.hubs:
                found = self._pending.get((hub, topic))
                if found is None:
                    self._pending[hub, topic] = _Pending(due)
                else:
                    found.due = max(found.due, due)
        self._count_pending()

    def pending(self) -> int:
        """Notifications waiting or being sent."""
        with self._changed:
            return len(self._pending) + self._sending

    def send_due(self) -> None:
        """Send every notification that is due."""
        with self._changed:
            now = time.monotonic()
            due = [key for key, item in self._pending.items() if item.due <= now]
            taken = {key: self._pending.pop(key) for key in due}
            self._sending += len(taken)
        for (hub, topic), item in taken.items():
            try:
                self._send(hub, topic, item)
            finally:
                with self._changed:
                    self._sending -= 1
                    self._count_pending()

    def _next(self) -> float | None:
        """Seconds until the next notification is due (0 when one is), None when none waits;
        called holding the condition's lock."""
        if not self._pending:
            return None
        return max(0.0, min(item.due for item in self._pending.values()) - time.monotonic())

    def drain(self, deadline: float) -> int:
        """Send in this thread until nothing waits or `time.monotonic()` passes `deadline`
        (a build, which ends when it is done); the number of notifications left unsent."""
        while True:
            self.send_due()
            with self._changed:
                wait = self._next()
                if wait is None:
                    return 0
                if time.monotonic() + wait > deadline:
                    return len(self._pending)
            time.sleep(wait)

    def _run(self) -> None:
        while True:
            self.send_due()
            with self._changed:  # no publish can come between the look and the wait
                wait = self._next()
                if wait != 0:
                    self._changed.wait(wait)

    def _send(self, hub: str, topic: str, item: _Pending) -> None:
        try:
            answer = self.post(hub, topic)
        except Exception as exc:  # a notification must never stop the others
            answer = Answer(False, f"{type(exc).__name__}: {exc}", True)
        item.attempts += not answer.sent
        if answer.sent:
            self._count("sent")
            log.info(
                "event=publish hub=%s topic=%s status=%s", quoted(hub), quoted(topic), answer.reason
            )
            return
        if not answer.retry or item.attempts >= self.attempts:
            self._count("dropped")
            log.error(
                "event=publish_dropped hub=%s topic=%s attempts=%d reason=%s",
                quoted(hub),
                quoted(topic),
                item.attempts,
                quoted(answer.reason),
            )
            return
        self._count("retried")
        wait = min(self.first_retry * 2 ** (item.attempts - 1), self.longest_retry)
        log.warning(
            "event=publish_failed hub=%s topic=%s attempts=%d retry_in_s=%.1f reason=%s",
            quoted(hub),
            quoted(topic),
            item.attempts,
            wait,
            quoted(answer.reason),
        )
        with self._changed:
            # A change published meanwhile is sent with the retry, not before it.
            newer = self._pending.get((hub, topic))
            item.due = max(time.monotonic() + wait, newer.due if newer else 0.0)
            self._pending[hub, topic] = item

    def _count(self, result: str) -> None:
        with self._changed:
            self.outcomes[result] += 1
        if self.metrics is not None:
            self.metrics.websub_notifications.labels(result).inc()

    def _count_pending(self) -> None:
        if self.metrics is not None:
            self.metrics.websub_pending.set(len(self._pending) + self._sending)


class SenderLock:
    """The exclusive lock that makes one process the sender of a collection's notifications.

    It is a `flock` on a file in the parse cache's folder (else the temporary folder), named
    after the collection's folder, base URL and hubs, so that the workers of one server, and any
    other server on this machine publishing the same site to the same hubs, elect one sender.
    The kernel releases it when the holder exits. A lock taken before a fork would be shared
    with the child (same open file), so a process only ever counts a lock it took itself."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid: int | None = None
        self._warned = False

    @classmethod
    def for_site(cls, settings: Settings) -> SenderLock:
        key = "\n".join(
            [str(settings.seeds_dir.resolve()), settings.base_url or "", *settings.websub_hubs]
        )
        name = f"websub-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}.lock"
        cache = settings.parse_cache_file()
        folders = [cache.parent] if cache is not None else []
        folders.append(Path(tempfile.gettempdir()))
        for folder in folders:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                if os.access(folder, os.W_OK):
                    return cls(folder / name)
            except OSError:
                continue
        return cls(None)

    def held(self) -> bool:
        """True when this process holds the lock, taking it if it is free."""
        if self._pid == os.getpid():
            return True
        if self._fd is not None:  # inherited through a fork: the parent's, not ours
            os.close(self._fd)
            self._fd = self._pid = None
        if self.path is None:
            return self._alone("no folder to keep the lock in")
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            return self._alone(f"cannot open {self.path}: {exc.strerror}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False  # another process sends
        self._fd, self._pid = fd, os.getpid()
        log.info("event=websub_sender pid=%d lock=%s", self._pid, quoted(str(self.path)))
        return True

    def _alone(self, reason: str) -> bool:
        """Without a lock every process sends: a change may be sent once per worker, which
        hubs absorb, rather than never."""
        if not self._warned:
            self._warned = True
            log.warning("WebSub: %s; this process sends notifications without a lock", reason)
        return True


def built_topics(collection: Collection, base_url: str, written: Iterable[str]) -> list[str]:
    """The topics among the URLs (paths) a static build wrote anew, absolute under `base_url`
    (without its trailing slash)."""
    written = set(written)
    paths = (f"{feed.path}.{extension}" for feed in iter_feeds(collection) for extension in FORMATS)
    return [base_url + path for path in paths if path in written]


def publisher_for(
    settings: Settings, metrics: Metrics, fragments: FragmentStore | None = None
) -> Publisher | None:
    """The app's publisher when WEBSUB_HUB is set.

    :raises ConfigError: BASE_URL is not set (a topic is the URL hubs fetch: it must be the
        canonical one, not whatever Host a request named).
    """
    hubs = settings.websub_hubs
    if not hubs:
        return None
    if not settings.base_url:
        raise ConfigError("WEBSUB_HUB needs BASE_URL: hubs fetch the feeds at their own URLs")
    base_url = settings.base_url.rstrip("/")
    site = Site(base_url, settings.site_title, settings.language, settings.feed_size, hubs=hubs)
    notifier = Notifier(hubs, metrics)
    lock = SenderLock.for_site(settings)
    delay = settings.reload_interval + RELOAD_SECONDS
    return Publisher(site, lock, notifier, delay, fragments)


class Publisher:
    """What one app does for WebSub: after each reload, if this process is the sender, queue
    the changed topics for `delay` seconds later (every worker serves the new version by then)."""

    def __init__(
        self,
        site: Site,
        lock: SenderLock,
        notifier: Notifier,
        delay: float,
        fragments: FragmentStore | None = None,
    ) -> None:
        self.site = site
        self.lock = lock
        self.notifier = notifier
        self.delay = delay
        self.fragments = fragments

    def reloaded(self, old: Collection, new: Collection) -> None:
        if not self.lock.held():
            return
        topics = changed_topics(old, new, self.site, self.fragments)
        if topics:
            log.info("event=publish_queued topics=%d", len(topics))
            self.notifier.publish(topics, self.delay)
