"""Static export: the whole site as files that any web server or CDN can serve.

Every file holds exactly the bytes the app answers for its URL, because it is fetched from the app
itself (Flask's test client): the build cannot drift from the server. Beside each file is its
`.gz` (nginx `gzip_static`), and each file's modification time is the response's Last-Modified.

The server's URLs map to files so that a web server can find them without a program
(`deploy/nginx-static.conf` does):

    /                           index.html
    /?page=2                    index.page-2.html
    /topics/ai                  topics/ai.html
    /topics/ai?page=2           topics/ai.page-2.html
    /feeds/all.atom             feeds/all.atom
    /feeds/all.atom?page=2      feeds/all.page-2.atom
    /feeds.opml, /static/...    the same path

The site is written into a temporary folder beside the output, which then takes the output's
place in one rename: a build that fails or is interrupted leaves the previous output as it was.
What a build may replace there, and how, is `feedsvc.output`'s concern.
"""

from __future__ import annotations

import contextlib
import ctypes
import email.utils
import gzip
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask

from feedsvc.feeds import Site, iter_feeds, page_count
from feedsvc.output import (
    MARKER,
    BuildError,
    Manifest,
    WorkFolder,
    WrittenFile,
    check_apart,
    close_inherited_locks,
    discard,
    previous_build,
    remove_build,
    remove_stale_work,
    resolve_output,
    swap_in,
)
from feedsvc.render import FORMATS
from feedsvc.repository import Collection

OPML_PATH = "/feeds.opml"
STATIC_PREFIX = "/static/"
# Below this many URLs, starting processes costs more than it saves; URLs per task.
PARALLEL_MINIMUM = 64
CHUNK = 8
# What forked build processes work on, inherited rather than pickled.
_FORKED: tuple[Flask, Path] | None = None


def site_urls(collection: Collection, site: Site, static_files: Iterable[str]) -> Iterator[str]:
    """Every URL the server answers with content, as its path and query: each feed in every
    format and every page of it, each HTML page and every page of it, the OPML list and the
    static files. The one list of what a build writes; a new page or format is added here."""
    for feed in iter_feeds(collection):
        for page in range(1, page_count(feed, site) + 1):
            query = f"?page={page}" if page > 1 else ""
            for extension in FORMATS:
                yield f"{feed.path}.{extension}{query}"
            yield f"{feed.html_path}{query}"
    yield OPML_PATH
    for name in static_files:
        yield STATIC_PREFIX + name


def file_for(url: str) -> str:
    """The file (relative to the output folder) that holds `url`; see the module docstring."""
    parts = urlsplit(url)
    page = parts.query.removeprefix("page=") if parts.query else "1"
    path = parts.path.lstrip("/") or "index"
    folder, _, name = path.rpartition("/")
    stem, dot, extension = name.rpartition(".")
    if not dot:  # an HTML page: /topics/ai
        stem, extension = name, "html"
    suffix = f".page-{page}" if page != "1" else ""
    return f"{folder}/{stem}{suffix}.{extension}" if folder else f"{stem}{suffix}.{extension}"


@dataclass(frozen=True, slots=True)
class BuildResult:
    files: int
    bytes: int


def app_urls(app: Flask) -> list[str]:
    """`site_urls` for the collection and settings `app` serves."""
    state = app.extensions["feedsvc"]
    settings = state.settings
    if not settings.base_url:
        raise BuildError("a build needs BASE_URL (--base-url): the feeds' links are absolute")
    site = Site(
        settings.base_url.rstrip("/"), settings.site_title, settings.language, settings.feed_size
    )
    static = Path(app.static_folder or "")
    names = sorted(
        path.relative_to(static).as_posix() for path in static.rglob("*") if path.is_file()
    )
    return list(site_urls(state.collection, site, names))


def build_site(
    app: Flask,
    out: Path,
    urls: list[str] | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
) -> BuildResult:
    """Write every URL of `app` (default: `app_urls`) under `out`, replacing it whole, in
    `workers` forked processes; `progress` is told how many URLs each step wrote. When `out` is
    a link, its target is replaced.

    :raises OutputRefused: `out` overlaps the seeds folder, or holds something no build wrote.
    :raises BuildError: a URL does not answer 200.
    :raises BuildStopped: SIGTERM arrived (the previous output is left as it was).
    """
    out = resolve_output(out.absolute())
    check_apart(app.extensions["feedsvc"].loader.root, out)
    previous = previous_build(out)
    remove_stale_work(out)
    with _stopped_by_sigterm():
        work = WorkFolder(out)
        try:
            todo = app_urls(app) if urls is None else urls
            if workers > 1 and len(todo) >= PARALLEL_MINIMUM:
                result = _write_parallel(app, work.path, todo, progress, workers)
            else:
                result = _write_all(app, work.path, todo, progress)
            files = {file_for(url): _written(work.path, file_for(url)) for url in todo}
            (work.path / MARKER).write_text(Manifest(files=files).dump(), encoding="utf-8")
            work.path.chmod(0o755)  # mkdtemp makes it private; a web server must read it
            old = swap_in(work.path, out)
        except BaseException:
            discard(work)
            raise
        if old is not None:
            remove_build(old, previous)
        work.release()
    return result


class BuildStopped(BaseException):
    """SIGTERM stopped the build. A BaseException, as KeyboardInterrupt is: nothing on the way
    (Flask's error handling in particular) may take it for an error of one page."""

    signum = signal.SIGTERM


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """While the build runs, SIGTERM raises BuildStopped, so that the work folder is removed
    and the process pool stopped, as for Ctrl-C (Python's default would just end the process,
    and leave both). Only the main thread can take signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise BuildStopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _written(work: Path, name: str) -> WrittenFile:
    """What the manifest keeps of a file just written: its size and time, and its `.gz`'s."""
    plain, gz = os.stat(work / name), os.stat(work / (name + ".gz"))
    return WrittenFile("", plain.st_size, plain.st_mtime_ns, gz.st_size, gz.st_mtime_ns)


def _write_parallel(
    app: Flask,
    work: Path,
    urls: list[str],
    progress: Callable[[int], None] | None,
    workers: int,
) -> BuildResult:
    """`_write_all` in forked processes, each with its own test client of the same app (the
    collection is shared copy-on-write, as with the server's workers)."""
    global _FORKED
    _FORKED = (app, work)
    chunks = [urls[start : start + CHUNK] for start in range(0, len(urls), CHUNK)]
    files = size = 0
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, _start_worker, (os.getpid(),)) as pool:
            for done in pool.imap_unordered(_write_chunk, chunks):
                files += done.files
                size += done.bytes
                if progress is not None:
                    progress(done.files)
    finally:
        _FORKED = None
    return BuildResult(files, size)


def _start_worker(parent: int) -> None:
    """A worker ends quietly with its build: SIGTERM (how the pool stops its workers) ends it
    at once, with no traceback from a half-sent result; Ctrl-C is left to the build, which
    stops the pool; and it is sent SIGTERM if the build itself dies (SIGKILL included), rather
    than waiting for tasks for ever. It holds no copy of the build's lock."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    close_inherited_locks()
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != parent:  # the build died before the line above
        os._exit(1)


def _write_chunk(urls: list[str]) -> BuildResult:
    assert _FORKED is not None
    return _write_all(*_FORKED, urls, None)


def _write_all(
    app: Flask, work: Path, urls: list[str], progress: Callable[[int], None] | None
) -> BuildResult:
    client = app.test_client()
    files = size = 0
    for url in urls:
        # `Accept: */*` is what feed readers send: the feed's own media type, not the browser
        # view. gzip is asked for separately, so the .gz is the server's own gzip bytes.
        with client.get(url, headers={"Accept": "*/*", "Accept-Encoding": "identity"}) as plain:
            if plain.status_code != 200:
                raise BuildError(f"{url} answered {plain.status}, not 200")
            body = plain.get_data()
            last_modified = plain.headers.get("Last-Modified")
        with client.get(url, headers={"Accept": "*/*", "Accept-Encoding": "gzip"}) as zipped:
            gzipped = zipped.headers.get("Content-Encoding") == "gzip"
            gz = zipped.get_data() if gzipped else None
        target = work / file_for(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        target.with_name(target.name + ".gz").write_bytes(
            gz if gz is not None else gzip.compress(body, compresslevel=9, mtime=0)
        )
        _set_mtime(target, last_modified)
        files += 1
        size += len(body)
        if progress is not None:
            progress(1)
    return BuildResult(files, size)


def _set_mtime(target: Path, last_modified: str | None) -> None:
    """The file's time is the response's Last-Modified, so a web server sends the same one; the
    .gz gets the same time (nginx's gzip_static takes the validators from the .gz file)."""
    if not last_modified:
        return
    stamp = email.utils.parsedate_to_datetime(last_modified).timestamp()
    for path in (target, target.with_name(target.name + ".gz")):
        os.utime(path, (stamp, stamp))
