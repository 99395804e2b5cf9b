"""Static export: the whole site as files that any web server or CDN can serve.

Every file holds exactly the bytes the app answers for its URL, because the app renders it with
the routes' own code (`web.render_url`): the build cannot drift from the server. Beside each
file is its `.gz` (nginx `gzip_static`), and each file's modification time is the response's
Last-Modified.

The server's URLs map to files so that a web server can find them without a program
(`deploy/nginx-static.conf` does):

    /                           index.html
    /?page=2                    index.page-2.html
    /topics/ai                  topics/ai.html
    /topics/ai?page=2           topics/ai.page-2.html
    /feeds/all.atom             feeds/all.atom
    /feeds/all.atom?page=2      feeds/all.page-2.atom
    /feeds/all.atom.html        feeds/all.atom.html    (the feed's HTML view, which a browser
    /feeds/all.atom.html?page=2 feeds/all.page-2.atom.html    opening the feed's URL gets)
    /feeds.opml, /static/...    the same path

The site is written into a temporary folder beside the output, which then takes the output's
place in one rename: a build that fails or is interrupted leaves the previous output as it was.
What a build may replace there, and how, is `feedsvc.output`'s concern.

A build into an earlier build's folder is incremental. Each page's fingerprint (what it is made
from: `feeds.Fingerprints`, plus the build's settings and code) is kept in the manifest; a page
whose fingerprint is unchanged is carried over as a hard link to the old file (and its `.gz`),
without rendering it. Every other page is rendered; one whose bytes come out the same as the old
file's is carried over too, and one whose bytes changed is written with a modification time
later than the old file's (a web server's validators, nginx's ETag of time and size among them,
then change even where its Last-Modified would not).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import gzip
import hashlib
import math
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import zlib
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from importlib.metadata import PackageNotFoundError, version
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask

from feedsvc import digeststate, stories, storystate
from feedsvc.cache import COMPRESSORS, FRAGMENT_OVERHEAD
from feedsvc.errors import PageNotFound
from feedsvc.feeds import (
    VIEW_SUFFIX,
    AllItemsFeed,
    Entries,
    Entry,
    Feed,
    FeedListing,
    Fingerprints,
    Item,
    Site,
    feed_listings,
    feed_page,
    html_page,
    iter_feeds,
    opml_listings,
    page_count,
    story_feeds,
    story_listing_of,
    view_page,
)
from feedsvc.output import (
    MARKER,
    BuildError,
    Manifest,
    WorkFolder,
    WrittenFile,
    check_apart,
    check_entries,
    close_inherited_locks,
    discard,
    lock_folder,
    previous_build,
    remove_build,
    remove_stale_work,
    resolve_output,
    swap_in,
)
from feedsvc.pages import story_listings
from feedsvc.processes import end_with_parent
from feedsvc.render import FORMATS, VERSION
from feedsvc.repository import Collection, CollectionLoader, cache_writes_deferred
from feedsvc.stories import DEFAULT_WINDOW_DAYS, Story, stories_of
from feedsvc.values import collector_paused
from feedsvc.web import render_url, site_for

OPML_PATH = "/feeds.opml"
STATIC_PREFIX = "/static/"
# Below this many URLs, starting processes costs more than it saves (a rebuild after one title
# changed at 10,000 records, 58 URLs: 3.9 s wall in one process, 3.6 s in two); URLs per task.
PARALLEL_MINIMUM = 16
CHUNK = 8
# Below this many URLs, the pages that show every entry are not rendered in a round of their
# own first (`_write_parallel`): the few entries two processes then both render cost less than
# forking a second round (a rebuild after one title changed, 58 URLs).
SHARE_MINIMUM = 1000
GZ = ".gz"
# Besides feedsvc's own code and version, what the bytes of a page depend on.
LIBRARIES = ("feedgen", "lxml", "jinja2", "markupsafe", "isal")
PACKAGE = Path(__file__).parent
# What forked build processes work on, inherited rather than pickled: the renderer, the work
# folder, and the previous output (None when there is none).
_FORKED: tuple[_Renderer, Path, _Previous | None] | None = None
# Tasks sent ahead to each forked process, so that it finds the next one waiting.
IN_FLIGHT = 2
# Below this many URLs, the pages' fingerprints are worked out in this process alone.
FINGERPRINT_PARALLEL_MINIMUM = 5000
# The pages whose fingerprints forked processes work out (`_made_from_all`).
_PAGES: list[SitePage] | None = None
# What the process linking ahead links: the previous build's folder, the new one, and what the
# previous build wrote.
_AHEAD: tuple[Path, Path, Manifest] | None = None


@dataclass(frozen=True, slots=True)
class SitePage:
    """One URL of the site and, computed when asked, its fingerprint: a digest of everything
    its bytes are made from, for the settings of one build. `first` names the page's group
    among the pages that together show every entry once (the all-items and all-stories feeds,
    one group per page number, all formats and views): a parallel build renders those first
    and shares their entries with every process (`_write_parallel`); `shows` gives the items
    of such a page. A `kept` page's fingerprint is the one the previous build wrote in its
    manifest: everything the page is made from is as it was then (`FeedKeys`)."""

    url: str
    made_from: Callable[[], str]
    first: str | None = None
    shows: Callable[[], tuple[Item, ...]] | None = None
    kept: bool = False


@dataclass(slots=True)
class FeedKeys:
    """Each feed's key: a digest of everything the pages of the feed are made from
    (`_feed_key`). The pages of a feed whose key is the previous build's (`before`: of a build
    with these settings and code) take their fingerprints from its manifest (`_write_site`),
    instead of working out each page (35-40 us a page, 20,000 at 10,000 records). `now`
    gathers this build's keys, for the next one (`Manifest.feeds`)."""

    before: dict[str, str] = field(default_factory=dict)
    now: dict[str, str] = field(default_factory=dict)

    def kept(self, feed: Feed, key: str) -> bool:
        """Whether `feed`, whose key is now `key`, had that key in the previous build."""
        self.now[feed.path] = key
        return self.before.get(feed.path) == key


def _feed_key(prints: Fingerprints, feed: Feed, site: Site, *inputs: object) -> str:
    """A digest of everything the pages of `feed` are made from: its kind, its own values (which
    its hooks name, place and date it by), its items' digests, the site, and `inputs` (what else
    its pages are given). Two feeds with the same key have the same pages, whose fingerprints
    are the same."""
    kind = type(feed)
    parts = [f"{kind.__module__}.{kind.__qualname__}", repr(site), *map(repr, inputs)]
    digest = hashlib.blake2b(digest_size=20)
    digest.update(prints.items(feed.records))
    for name, value in sorted(vars(feed).items()):
        if name == "records":
            continue
        if is_dataclass(value) and not isinstance(value, type):  # a group: its own values
            own = {part.name: getattr(value, part.name) for part in fields(value)}
            held = own.pop("records", feed.records)
            if held is not feed.records:
                digest.update(b"%d\n" % len(held) + prints.items(held))
            value = (type(value).__qualname__, own)
        parts.append(f"{name}={value!r}")
    digest.update("\n".join(parts).encode())
    return digest.hexdigest()


def site_pages(
    collection: Collection,
    site: Site,
    static: Path,
    window_days: float = DEFAULT_WINDOW_DAYS,
    prints: Fingerprints | None = None,
    keys: FeedKeys | None = None,
) -> Iterator[SitePage]:
    """Every URL the server answers with content, as its path and query: each feed in every
    format and every page of it, each HTML page and every page of it, the story feeds and the
    page of each story, the OPML list and the files of the `static` folder. The one list of what
    a build writes; a new page or format is added here, with what it is made from (`prints`
    works the fingerprints out; a new one when None). With `keys`, each feed's key is worked out
    and the pages of a feed whose key is the previous build's are `kept`."""
    if prints is None:
        prints = Fingerprints()
    listings = feed_listings(collection, site, FORMATS)  # in iter_feeds order
    every_feed = functools.cache(lambda: prints.listings(listings))
    every_opml_feed = functools.cache(
        lambda: prints.listings(opml_listings(collection, site, FORMATS))
    )
    for feed, listing in zip(iter_feeds(collection), listings, strict=True):
        # An HTML page shows its document and its feed's listing; the index's first page
        # also lists every feed (`pages.render_index`; the build's property test holds
        # this to what the pages show).
        every = every_feed if feed.scope == "all" else None
        kept = False
        if keys is not None:
            inputs = (listing, every() if every is not None else None)
            kept = keys.kept(feed, _feed_key(prints, feed, site, *inputs))
        for page in range(1, page_count(feed, site) + 1):
            query = f"?page={page}" if page > 1 else ""
            first = f"{feed.path}:{page}" if isinstance(feed, AllItemsFeed) else None
            shows = functools.partial(_shown, feed, site, page) if first else None
            for extension in FORMATS:
                made_from = functools.partial(_feed_made_from, prints, feed, site, extension, page)
                url = f"{feed.path}.{extension}{query}"
                yield SitePage(url, made_from, first, shows, kept)
                made_from = functools.partial(
                    _view_made_from, prints, feed, site, extension, page, listing
                )
                url = f"{feed.path}.{extension}{VIEW_SUFFIX}{query}"
                yield SitePage(url, made_from, first, shows, kept)
            also = every if page == 1 else None
            made_from = functools.partial(_page_made_from, prints, feed, site, page, listing, also)
            url = f"{feed.html_path}{query}"
            yield SitePage(url, made_from, first, shows, kept)
    yield from _story_pages(prints, collection, site, window_days, keys)
    yield SitePage(OPML_PATH, lambda: _digest("opml", every_opml_feed()))
    for path in sorted(path for path in static.rglob("*") if path.is_file()):
        made_from = functools.partial(_static_made_from, path)
        yield SitePage(STATIC_PREFIX + path.relative_to(static).as_posix(), made_from)


def _story_pages(
    prints: Fingerprints,
    collection: Collection,
    site: Site,
    window_days: float,
    keys: FeedKeys | None,
) -> Iterator[SitePage]:
    """The story feeds, every page in every format (their entries are stories: a story's
    fingerprint covers all of its records, so all its entry is made from), and each story's
    page."""
    for feed in story_feeds(collection, window_days):
        kept = keys is not None and keys.kept(feed, _feed_key(prints, feed, site))
        for page in range(1, page_count(feed, site) + 1):
            query = f"?page={page}" if page > 1 else ""
            first = f"{feed.path}:{page}" if feed.topic is None else None
            shows = functools.partial(_shown, feed, site, page) if first else None
            for extension in FORMATS:
                made_from = functools.partial(_feed_made_from, prints, feed, site, extension, page)
                url = f"{feed.path}.{extension}{query}"
                yield SitePage(url, made_from, first, shows, kept)
    linked = functools.cache(functools.partial(_linked_story_feeds, prints, collection, site))
    for story in stories_of(collection, window_days).stories:
        made_from = functools.partial(_story_made_from, prints, story, linked)
        yield SitePage(f"/stories/{story.slug}", made_from)


def _shown(feed: Feed, site: Site, page: int) -> tuple[Item, ...]:
    """The items page `page` of `feed` shows."""
    return feed_page(feed, site, next(iter(FORMATS)), page).records


def _story_made_from(
    prints: Fingerprints, story: Story, linked: Callable[[str | None], str]
) -> str:
    """A story's page: its story and the story feeds it links (`pages.story_listings`: the
    feed of every story, then that of each of its topics, in order), each feed's digest made
    once for all the stories that link it (`linked`)."""
    feeds = [linked(None), *(linked(topic) for topic in sorted(story.topic_slugs))]
    return _digest("story", prints.record(story).hex(), *feeds)


def _linked_story_feeds(
    prints: Fingerprints, collection: Collection, site: Site, topic: str | None
) -> str:
    """The digest of the story feed of `topic` (None: of every story) as a story's page links
    it, with the site's settings."""
    listings = story_listings(collection, site, ())
    if topic is not None:
        listings = story_listings(collection, site, (topic,))[len(listings) :]
    return _digest(repr(site), prints.listings(listings))


def site_urls(
    collection: Collection, site: Site, static: Path, window_days: float = DEFAULT_WINDOW_DAYS
) -> Iterator[str]:
    """The URLs of `site_pages`."""
    return (page.url for page in site_pages(collection, site, static, window_days))


def _feed_made_from(prints: Fingerprints, feed: Feed, site: Site, extension: str, page: int) -> str:
    return _digest(extension, prints.page(feed_page(feed, site, extension, page)))


def _view_made_from(
    prints: Fingerprints, feed: Feed, site: Site, extension: str, page: int, listing: FeedListing
) -> str:
    view = prints.page(view_page(feed, site, extension, page))
    return _digest("view", extension, view, prints.listings((listing,)))


def _page_made_from(
    prints: Fingerprints,
    feed: Feed,
    site: Site,
    page: int,
    listing: FeedListing,
    every_feed: Callable[[], str] | None,
) -> str:
    stories = story_listing_of(feed, site, FORMATS)
    listings = prints.listings((listing,) if stories is None else (listing, stories))
    also = every_feed() if every_feed is not None else ""
    return _digest("html", prints.page(html_page(feed, site, page)), listings, also)


def _static_made_from(path: Path) -> str:
    return _digest("static", hashlib.blake2b(path.read_bytes(), digest_size=20).hexdigest())


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=20).hexdigest()


def build_settings(site: Site) -> str:
    """A digest of what every page's bytes depend on besides its fingerprint: the site settings
    (base URL, title, language, feed size), feedsvc's version and code (templates and
    stylesheets included, so that a changed renderer renders everything again), the libraries
    that write the bytes, and zlib and isal, which write the .gz files."""
    digest = hashlib.blake2b(repr(site).encode(), digest_size=20)
    digest.update(f"{VERSION} {sys.version_info[:2]} {zlib.ZLIB_RUNTIME_VERSION}".encode())
    for library in LIBRARIES:
        with contextlib.suppress(PackageNotFoundError):
            digest.update(f" {library} {version(library)}".encode())
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(PACKAGE).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def file_for(url: str) -> str:
    """The file (relative to the output folder) that holds `url`; see the module docstring."""
    parts = urlsplit(url)
    page = parts.query.removeprefix("page=") if parts.query else "1"
    path = parts.path.lstrip("/") or "index"
    folder, _, name = path.rpartition("/")
    stem, dot, extension = name.partition(".")  # a feed's view: all.page-2.atom.html
    if not dot:  # an HTML page: /topics/ai
        stem, extension = name, "html"
    suffix = f".page-{page}" if page != "1" else ""
    return f"{folder}/{stem}{suffix}.{extension}" if folder else f"{stem}{suffix}.{extension}"


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What a build did. The site has `files` URLs (each file with its .gz), `bytes` in all
    without the .gz; `written` of them were written, `kept` carried over from the previous build
    as they were (hard links), and `removed` files of the previous build went with their URLs."""

    files: int
    bytes: int
    written: int = 0
    kept: int = 0
    removed: int = 0
    changed: tuple[str, ...] = ()  # the URLs whose files were written (new bytes)


def _app_site(app: Flask) -> tuple[Collection, Site, Path]:
    """The collection `app` serves, the site its settings describe, and its static folder."""
    state = app.extensions["feedsvc"]
    settings = state.settings
    if not settings.base_url:
        raise BuildError("a build needs BASE_URL (--base-url): the feeds' links are absolute")
    # The very Site the app renders with: a setting that changes the pages changes it.
    site = site_for(app, settings.base_url.rstrip("/"))
    return state.collection, site, Path(app.static_folder or "")


def app_urls(app: Flask) -> list[str]:
    """`site_urls` for the collection and settings `app` serves."""
    return list(site_urls(*_app_site(app), _window_days(app)))


def _window_days(app: Flask) -> float:
    window: float = app.extensions["feedsvc"].settings.story_window_days
    return window


def build_site(
    app: Flask | AppMaker,
    out: Path,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    total: Callable[[int], None] | None = None,
    background: bool = False,
) -> BuildResult:
    """Write every URL of `app` under `out`, replacing it, in `workers` forked processes; pages
    unchanged since the build in `out` are carried over (see the module docstring). `total` is
    told how many URLs the site has once they are listed, `progress` how many URLs each step
    did. When `out` is a link, its target is replaced. `app` may be an `AppMaker`: the previous
    build's files are then linked while it loads the collection (`feedsvc build` does this),
    and the parse cache its load would write is written after the swap.

    With `background`, what is left once the new site is in place (removing the old tree,
    writing the parse cache) is done by a process of its own, and this returns at once
    (`_after_swap`; `wait_for_background` waits for it).

    :raises OutputRefused: `out` overlaps the seeds folder, or holds something no build wrote.
    :raises BuildError: a URL does not answer 200.
    :raises BuildStopped: SIGTERM arrived (the previous output is left as it was).
    """
    out = resolve_output(out.absolute())
    seeds = app.seeds if isinstance(app, AppMaker) else app.extensions["feedsvc"].loader.root
    check_apart(seeds, out)
    _reap_background()
    # The previous build's entries are checked while they are linked (`_linked_ahead`).
    previous = previous_build(out, scan=False)
    remove_stale_work(out)
    writes: list[Callable[[], None]] = []  # the parse cache, written once the site is in place
    early = _Early()
    with _stopped_by_sigterm():
        work = WorkFolder(out)
        try:
            with _linked_ahead(out, work.path, previous, workers) as linked:
                if isinstance(app, AppMaker):
                    with _sigterm_held(), cache_writes_deferred() as deferred:
                        try:
                            app = app.make()
                        finally:
                            writes += deferred
                    check_apart(app.extensions["feedsvc"].loader.root, out)
                keep_stories = _stories_resumed(app)
                prints, keep_digests = _digests_resumed(app)
                # What the pages are made from is worked out while the files are linked.
                collection, site, static = _app_site(app)
                settings = build_settings(site)
                # Fingerprints made with other settings or code say nothing.
                keys = FeedKeys(previous.feeds if previous.settings == settings else {})
                window = _window_days(app)
                pages = list(site_pages(collection, site, static, window, prints, keys))
                if total is not None:
                    total(len(pages))
                if not previous.files:  # nothing to carry over: every page is rendered
                    early.start(app, work.path, pages, workers)
                made_from = _made_from_all(pages, workers)
                trees = _Trees(out, work.path, previous, settings, linked())
            manifest, result = _write_site(app, pages, made_from, trees, progress, workers, early)
            manifest.feeds = keys.now
            (work.path / MARKER).write_text(manifest.dump(), encoding="utf-8")
            work.path.chmod(0o755)  # mkdtemp makes it private; a web server must read it
            old = swap_in(work.path, out)
        except BaseException:
            early.stop()
            discard(work)
            _run_all(writes)
            raise
        _after_swap([*writes, keep_stories, keep_digests], old, previous, background)
        work.release()
    return result


def _stories_resumed(app: Flask) -> Callable[[], None]:
    """Take up the stories grouping the last build kept beside the parse cache, for the records
    the parse cache held, and follow it to the collection `app` loaded (`storystate`), instead
    of grouping from scratch; what keeps this build's grouping for the next one, to be done
    once the parse cache is written."""
    state = app.extensions["feedsvc"]
    loader, collection = state.loader, state.collection
    window_days = _window_days(app)
    if loader.cache_file is None:
        return _nothing
    path = storystate.state_file(loader.cache_file)
    cached = loader.cached_records() if loader.cache_read is not None else None
    settings = _grouping_settings(window_days)
    kept = None
    if cached is not None and loader.cache_read is not None:
        kept = storystate.load(path, cached, loader.cache_read, settings)
    if kept is not None:
        before, now = set(map(id, cached or ())), set(map(id, collection.records))
        removed = [record for record in cached or () if id(record) not in now]
        added = [record for record in collection.records if id(record) not in before]
        stories.resume(kept, collection, removed, added)
        if loader.cache_digest == loader.cache_read:  # the same records: the state holds
            return _nothing
    return functools.partial(_keep_stories, loader, collection, path)


def _digests_resumed(app: Flask) -> tuple[Fingerprints, Callable[[], None]]:
    """The pages' fingerprints of this build, with the digests the last build kept beside the
    parse cache (`digeststate`) taken up for the records read from it whose files did not
    change since; what keeps this build's digests for the next one, to be done once the parse
    cache is written."""
    state = app.extensions["feedsvc"]
    loader, collection = state.loader, state.collection
    prints = Fingerprints()
    if loader.cache_file is None:
        return prints, _nothing
    path = digeststate.state_file(loader.cache_file)
    kept = digeststate.load(path, loader.cache_read) if loader.cache_read is not None else None
    if kept is not None:
        changed = {path for path, _, _ in loader.load_changes}
        own = digeststate.own_records(collection.records, loader.states)
        prints.known(
            (record, kept[record.path])
            for record in own
            if record.path in kept and record.path not in changed
        )
        if loader.cache_digest == loader.cache_read:  # the same records: the state holds
            return prints, _nothing
    return prints, functools.partial(_keep_digests, loader, collection, prints, path)


def _keep_digests(
    loader: CollectionLoader, collection: Collection, prints: Fingerprints, path: Path
) -> None:
    """Write this build's record digests beside the parse cache that holds its records."""
    if loader.cache_digest is not None:
        own = digeststate.own_records(collection.records, loader.states)
        digests = {record.path: prints.record(record) for record in own}
        digeststate.save(path, digests, loader.cache_digest)


def _grouping_settings(window_days: float) -> tuple[Any, ...]:
    return (
        window_days,
        stories.HUB_LIMIT,
        stories.MAX_STORY_RECORDS,
        stories.COMMON_SHARE,
        stories.COMMON_MIN,
    )


def _keep_stories(loader: CollectionLoader, collection: Collection, path: Path) -> None:
    """Write this build's stories grouping beside the parse cache that holds its records."""
    grouping = stories.grouping_of(collection)
    if grouping is not None and loader.cache_digest is not None:
        storystate.save(path, grouping, loader.cache_digest)


def _nothing() -> None:
    pass


# The processes `_after_swap` started, until waited for.
_BACKGROUND: list[int] = []


def _after_swap(
    later: list[Callable[[], None]], old: Path | None, previous: Manifest, background: bool
) -> None:
    """Do `later`, then remove the old tree `old` (the previous build's, listed by `previous`):
    here, or with `background` in a process of its own, so that the build returns as soon as
    the new site is in place (removing the old tree is 41,206 unlinks at 10,000 records, 0.3-0.6
    s). That process holds the old tree's lock (`output.lock_folder`) while it works, so that
    the next build leaves the folder to it; if it dies half-way, the next build removes what it
    left (`remove_stale_work`). The served folder is the new site throughout."""
    lock = lock_folder(old) if old is not None else None
    tasks = list(later)
    if old is not None and lock is not None:
        tasks.append(functools.partial(remove_build, old, previous))
    try:
        if not (background and tasks and _forked_off(tasks, [] if lock is None else [lock])):
            _run_all(tasks)
    finally:
        if lock is not None:
            os.close(lock)


def _run_all(tasks: Iterable[Callable[[], None]]) -> None:
    for task in tasks:
        task()


def _forked_off(tasks: list[Callable[[], None]], keep: list[int]) -> bool:
    """Run `tasks` in a forked process that outlives this one if need be: in a session of its
    own (Ctrl-C in the terminal does not reach it), with nothing of this process's open but
    the locks it was given (a pipe of the caller's, such as the stdout a script reads the
    build's output from, would otherwise stay open until it ends). False when it cannot fork."""
    try:
        pid = os.fork()
    except OSError:
        return False
    if pid:
        _BACKGROUND.append(pid)
        return True
    status = 0
    try:  # the child
        os.setsid()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        null = os.open(os.devnull, os.O_RDWR)
        for descriptor in (0, 1, 2):
            os.dup2(null, descriptor)
        start = 3
        for descriptor in sorted(keep):
            os.closerange(start, descriptor)
            start = descriptor + 1
        os.closerange(start, os.sysconf("SC_OPEN_MAX"))
        for task in tasks:
            try:
                task()
            except Exception:  # nobody to tell: the next build does it again
                status = 1
    finally:
        os._exit(status)


def _reap_background() -> None:
    """Collect the processes of earlier builds in this process that have ended."""
    for pid in list(_BACKGROUND):
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        _BACKGROUND.remove(pid)


def wait_for_background() -> None:
    """Wait until the background work of this process's builds (`build_site(background=True)`)
    is done."""
    while _BACKGROUND:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(_BACKGROUND[0], 0)
        del _BACKGROUND[0]


def _made_from_all(pages: list[SitePage], workers: int) -> dict[str, str]:
    """Each page's fingerprint by URL, but for the `kept` pages; for a large site in
    `workers` forked processes, once the
    pages that show every entry (`SitePage.first`) have made every record's and story's digest
    here, for the processes to share (0.6 s of CPU at 10,000 records, most of a rebuild's
    listing)."""
    global _PAGES
    pages = [page for page in pages if not page.kept]
    if workers < 2 or len(pages) < FINGERPRINT_PARALLEL_MINIMUM:
        return {page.url: page.made_from() for page in pages}
    made_from = {page.url: page.made_from() for page in pages if page.first is not None}
    rest = [page for page in pages if page.first is None]
    size = -(-len(rest) // (workers * 4))
    chunks = [(start, min(start + size, len(rest))) for start in range(0, len(rest), size)]
    _PAGES = rest
    try:
        with contextlib.closing(_forked(_made_from_chunk, chunks, workers)) as results:
            for start, prints in results:
                for page, made in zip(rest[start : start + len(prints)], prints, strict=True):
                    made_from[page.url] = made
    finally:
        _PAGES = None
    return made_from


def _made_from_chunk(chunk: tuple[int, int]) -> tuple[int, list[str]]:
    assert _PAGES is not None
    start, end = chunk
    return start, [page.made_from() for page in _PAGES[start:end]]


@dataclass(frozen=True, slots=True)
class AppMaker:
    """How to make the app to build (`make`), and the folder of the records it will load."""

    make: Callable[[], Flask]
    seeds: Path


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
        if _SIGTERM.holding:
            _SIGTERM.arrived = True
        else:
            raise BuildStopped

    _SIGTERM.arrived = False
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class _HeldSignal:
    holding: bool = False
    arrived: bool = False


_SIGTERM = _HeldSignal()


@contextlib.contextmanager
def _sigterm_held() -> Iterator[None]:
    """SIGTERM stops the build once the block is done, not inside it: loading the collection
    starts a process pool, and an exception raised while it starts its thread breaks its
    shutdown (a traceback and exit 1 instead of a quiet stop)."""
    _SIGTERM.holding = True
    try:
        yield
    finally:
        _SIGTERM.holding = False
    if _SIGTERM.arrived:
        raise BuildStopped


@dataclass(frozen=True, slots=True)
class _Trees:
    """The previous build (its folder and manifest) and the folder of the new one."""

    out: Path
    work: Path
    previous: Manifest
    settings: str
    linked: set[str]  # the previous build's files linked into `work` (`_linked_ahead`)


def _write_site(
    app: Flask,
    pages: list[SitePage],
    made_from: dict[str, str],
    trees: _Trees,
    progress: Callable[[int], None] | None,
    workers: int,
    early: _Early | None = None,
) -> tuple[Manifest, BuildResult]:
    """Keep the files linked ahead whose pages' fingerprints (`made_from`, by URL; a `kept`
    page's is taken from the previous manifest, into `made_from`) are what the previous build
    wrote them from, render the others, drop the files of URLs that are gone; the new manifest
    and what was done."""
    # Fingerprints made with other settings or code say nothing: every page is rendered then,
    # and the bytes decide what is kept.
    known = trees.previous.files if trees.previous.settings == trees.settings else {}
    linked = trees.linked
    files: dict[str, WrittenFile] = {}
    todo: list[SitePage] = []
    names = [file_for(page.url) for page in pages]
    for page, name in zip(pages, names, strict=True):
        before = known.get(name)
        if page.kept:  # made from what the previous build made it from: the fingerprint then
            made_from[page.url] = before.fingerprint if before is not None else page.made_from()
        if before is not None and before.fingerprint == made_from[page.url] and name in linked:
            files[name] = before
        else:
            todo.append(page)
    if progress is not None and files:
        progress(len(files))
    _drop(trees.work, linked.difference(names))
    rendered = (name for name in names if name not in files)
    previous_out = _previous_files(trees, rendered) if trees.previous.files else None
    renderer = _Renderer(app)
    if workers > 1 and len(todo) >= PARALLEL_MINIMUM:  # always when `early` was started
        work, previous = trees.work, previous_out
        outcomes = _write_parallel(renderer, work, todo, previous, progress, workers, early)
    else:
        urls = [page.url for page in todo]
        outcomes = _write_all(renderer, trees.work, urls, previous_out, progress)
    written: set[str] = set()
    url_of = {name: page.url for page, name in zip(pages, names, strict=True)}
    for name, stat, was_written in outcomes:
        files[name] = WrittenFile(made_from[url_of[name]], *stat)
        if was_written:
            written.add(name)
    manifest = Manifest(trees.settings, files)
    result = BuildResult(
        files=len(files),
        bytes=sum(file.size for file in files.values()),
        written=len(written),
        kept=len(files) - len(written),
        removed=len(trees.previous.files.keys() - files.keys()),
        changed=tuple(page.url for page, name in zip(pages, names, strict=True) if name in written),
    )
    return manifest, result


@dataclass(frozen=True, slots=True)
class _Previous:
    """The previous build's folder, and what its manifest says of the files of it that were
    found as it wrote them when they were linked ahead (`_link_all`): their sizes and times,
    so that a page is told from its old file without reading or a `stat` of it
    (`_same_bytes`, `_stamp`)."""

    root: Path
    files: dict[str, WrittenFile]


def _previous_files(trees: _Trees, names: Iterable[str]) -> _Previous:
    """`_Previous` for the files of `names` that were linked ahead."""
    before, linked = trees.previous.files, trees.linked
    return _Previous(trees.out, {name: before[name] for name in names if name in linked})


@contextlib.contextmanager
def _linked_ahead(
    out: Path, work: Path, previous: Manifest, workers: int
) -> Iterator[Callable[[], set[str]]]:
    """Check that `out` holds only what the previous build wrote (`check_entries`), and link
    every file of it into `work` (`_link_all`), in a process of its own when there are
    `workers`, while this one works out what the pages are made from: the kernel's work beside
    the build's. Yields a wait for the names linked (those still as the previous build left
    them), which raises OutputRefused for an output that holds other entries. A page that turns
    out to have changed replaces its link (`_write_all`), a URL that is gone loses it
    (`_drop`)."""
    global _AHEAD
    if not previous.files:  # `previous_build` checked the entries
        yield set
        return
    if workers < 2:
        linked = _link_ahead(out, work, previous)
        yield lambda: linked
        return
    _AHEAD = (out, work, previous)
    try:
        with contextlib.closing(_forked(_link_forked, [0], 1)) as results:
            yield functools.cache(lambda: _only(results))
    finally:
        _AHEAD = None


def _only(results: Iterator[set[str]]) -> set[str]:
    (result,) = results  # to the end, which ends the process
    return result


def _link_forked(_: int) -> set[str]:
    assert _AHEAD is not None
    return _link_ahead(*_AHEAD)


def _link_ahead(out: Path, work: Path, previous: Manifest) -> set[str]:
    """`check_entries`, then `_link_all`."""
    check_entries(out, previous)
    return _link_all(out, work, previous.files)


def _link_all(out: Path, work: Path, files: dict[str, WrittenFile]) -> set[str]:
    """Link each file of `files` (and its .gz) from `out` into `work` if it is still as
    written; the names linked. Folder by folder, each file by its name in its folder's
    descriptor: the kernel then looks up one name per call, not the whole path (41,206 links
    and as many lstat calls at 10,000 records: a fifth less system time)."""
    old, new = os.fspath(out), os.fspath(work)
    by_folder: dict[str, list[tuple[str, str, WrittenFile]]] = {}
    for name, before in files.items():
        folder, _, base = name.rpartition("/")
        by_folder.setdefault(folder, []).append((name, base, before))
    linked: set[str] = set()
    for folder, entries in by_folder.items():
        try:
            source = os.open(os.path.join(old, folder), _FOLDER_FLAGS)
        except OSError:  # gone: nothing in it is carried over
            continue
        target: int | None = None
        try:
            for name, base, before in entries:
                if not _unchanged(source, base, before):
                    continue
                if target is None:
                    os.makedirs(os.path.join(new, folder), exist_ok=True)
                    target = os.open(os.path.join(new, folder), _FOLDER_FLAGS)
                _link_in(source, target, base, os.path.join(old, name), os.path.join(new, name))
                linked.add(name)
        finally:
            os.close(source)
            if target is not None:
                os.close(target)
    return linked


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _unchanged(folder: int, base: str, before: WrittenFile) -> bool:
    """Whether the file `base` of `folder` (a descriptor) and its .gz are still as the previous
    build wrote them (a file changed since, by hand or otherwise, is rendered again)."""
    try:
        plain, gz = os.lstat(base, dir_fd=folder), os.lstat(base + GZ, dir_fd=folder)
    except OSError:
        return False
    return (plain.st_size, plain.st_mtime_ns, gz.st_size, gz.st_mtime_ns) == before[1:]


def _link_in(source: int, target: int, base: str, old: str, new: str) -> None:
    """`_link` of the file `base` (and its .gz) from the folder `source` to `target` (their
    descriptors; `old` and `new` are the files' paths, for a copy where there are no links)."""
    for suffix in ("", GZ):
        try:
            os.link(base + suffix, base + suffix, src_dir_fd=source, dst_dir_fd=target)
        except OSError:
            shutil.copy2(old + suffix, new + suffix)


def _drop(work: Path, names: Iterable[str]) -> None:
    """Unlink the files `names` (and their .gz) from `work`, and the folders they leave empty
    (an empty folder no manifest lists would be refused by the next build)."""
    folders = set()
    for name in names:
        for path in (work / name, work / (name + GZ)):
            path.unlink()
        folders.add((work / name).parent)
    for folder in sorted(folders, key=lambda path: len(path.parts), reverse=True):
        while folder != work and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent


def _link(old: str | Path, new: str | Path) -> None:
    """A hard link (no copy, same time); a copy where the filesystem has no hard links."""
    try:
        os.link(old, new)
    except OSError:
        shutil.copy2(old, new)


# What writing one URL gives: its file's name, the size and time of the file and its .gz, and
# whether it was written (else carried over, its bytes being the same).
Outcome = tuple[str, tuple[int, int, int, int], bool]


class _Fragments:
    """The entries a build process rendered (a `render.FragmentStore`), found again by the
    identity of the `Entry` in their key: `feeds.Entries` gives one object per record wherever
    the record shows, and a look-up then hashes no entry (hashing one walks every field of it).
    Least recently used first out past `max_bytes`; each key is kept with its fragment, so
    that no other entry can take its id while it is here."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._fragments: OrderedDict[Hashable, tuple[bytes, Hashable]] = OrderedDict()
        self._bytes = 0
        # What was put since it was last taken, by key with its entry by identity, while a
        # process shares its renders (`_Renderer.rendered_since`).
        self.journal: list[tuple[Hashable, bytes]] | None = None

    def get(self, key: Hashable) -> bytes | None:
        identity = _by_identity(key)
        found = self._fragments.get(identity)
        if found is None:
            return None
        self._fragments.move_to_end(identity)
        return found[0]

    def put(self, key: Hashable, fragment: bytes) -> None:
        self.put_identity(_by_identity(key), fragment, key)

    def put_identity(self, identity: Hashable, fragment: bytes, key: Hashable = None) -> None:
        """`put` by the key with its entry by identity, from `journal` (the entry then kept
        alive elsewhere: by the `Entries` of the process it was made in before a fork)."""
        old = self._fragments.pop(identity, None)
        if old is not None:
            self._bytes -= len(old[0]) + FRAGMENT_OVERHEAD
        self._fragments[identity] = (fragment, key)
        self._bytes += len(fragment) + FRAGMENT_OVERHEAD
        if self.journal is not None:
            self.journal.append((identity, fragment))
        while self._bytes > self.max_bytes and self._fragments:
            _, (evicted, _) = self._fragments.popitem(last=False)
            self._bytes -= len(evicted) + FRAGMENT_OVERHEAD


def _by_identity(key: Hashable) -> Hashable:
    """A fragment's key with its entry (last, in every key the renderers make) by identity."""
    if type(key) is tuple and key and isinstance(key[-1], Entry):
        return (*key[:-1], id(key[-1]))
    return key


class _Renderer:
    """How a build process renders: the app's own renders (`web.render_url`), with each entry
    made and rendered once per process for every page that shows it. What a forked process
    renders of the entries made before the fork (`make_entries`), the same objects in every
    process, is told to another by their identity (`rendered_since`, `take`)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        _, self.site, _ = _app_site(app)
        self.fragments = _Fragments(app.extensions["feedsvc"].settings.render_cache_bytes)
        self.entries = Entries(self.site)
        self._shared: set[int] = set()
        # Every template compiled here, once, not in each process forked to render (about
        # 50 ms of CPU each).
        templates = app.jinja_env
        for name in templates.list_templates(filter_func=lambda name: name.endswith(".html")):
            templates.get_template(name)

    def make_entries(self, items: Iterable[Item]) -> None:
        """Make the entries of `items` now, before processes are forked that render them."""
        for item in items:
            self.entries.of(item, self.site)

    def share(self) -> None:
        """From now on, keep what is rendered for `rendered_since`."""
        self.fragments.journal = []
        self._shared = {id(entry) for _, entry in self.entries.made()}

    def rendered_since(self) -> list[tuple[Hashable, bytes]]:
        """The fragments rendered since last asked, by key with its entry by identity, of the
        entries that the process this one was forked from has (an entry made after the fork
        has no identity there: another object may have its id)."""
        assert self.fragments.journal is not None
        rendered, self.fragments.journal = self.fragments.journal, []
        shared = self._shared
        return [(key, fragment) for key, fragment in rendered if key[-1] in shared]  # type: ignore[index]

    def take(self, rendered: list[tuple[Hashable, bytes]]) -> None:
        """Fragments another process rendered (`rendered_since`) of this one's entries."""
        for identity, fragment in rendered:
            self.fragments.put_identity(identity, fragment)


def _render(renderer: _Renderer, url: str) -> tuple[bytes, bytes, float]:
    """The bytes the server answers `url` with, its gzip copy and its Last-Modified (a POSIX
    time): the .gz holds the server's own gzip bytes (the plain file is their content), or gzip
    level 9 for the stylesheets, which the server does not compress.

    :raises BuildError: the server has no document at `url`.
    """
    try:
        document = render_url(renderer.app, url, renderer.fragments, renderer.entries)
    except PageNotFound as exc:
        raise BuildError(f"{url} is not a page of the site ({exc})") from None
    body = document.body
    if url.startswith(STATIC_PREFIX):
        gz = gzip.compress(body, compresslevel=9, mtime=0)
    else:
        gz = COMPRESSORS["gzip"](body)
    return body, gz, document.last_modified.timestamp()


def _write_parallel(
    renderer: _Renderer,
    work: Path,
    pages: list[SitePage],
    previous: _Previous | None,
    progress: Callable[[int], None] | None,
    workers: int,
    early: _Early | None = None,
) -> list[Outcome]:
    """`_write_all` in forked processes, each with its own copy of the app (the collection is
    shared copy-on-write, as with the server's workers), in two rounds. The first renders the
    pages that show every entry once (`SitePage.first`), each group of them in one process, so
    that no entry is rendered twice, and sends back the entries rendered: they are made here
    first (making one costs a tenth of rendering it, and a fifth of sending it to another
    process), so that every process has them, as the same objects. The second round's
    processes, forked once the first's are in, find every entry rendered. Below SHARE_MINIMUM
    URLs, one round.

    With `early` started, the pages that show no entry are its (`_Early`): the second round's
    processes help with what its process has not taken yet, once their own pages are done."""
    if early is not None and early.started:
        pages = [page for page in pages if page.url not in early.urls]
    if len(pages) < SHARE_MINIMUM:
        urls = [page.url for page in pages]
        chunks = [urls[start : start + CHUNK] for start in range(0, len(urls), CHUNK)]
        return _in_processes(renderer, work, previous, progress, workers, chunks)
    groups: dict[str, list[str]] = {}
    with collector_paused():  # entries hold no reference cycles
        for page in pages:
            if page.first is not None:
                if page.first not in groups and page.shows is not None:
                    renderer.make_entries(page.shows())
                groups.setdefault(page.first, []).append(page.url)
        # Frozen before the processes fork that share them (as `gc.freeze` advises): the
        # collector here never walks the entries either (0.3 s of 0.55 at 10,000 records).
        gc.freeze()
    rest = [page.url for page in pages if page.first is None]
    chunks = [rest[start : start + CHUNK] for start in range(0, len(rest), CHUNK)]
    first = list(groups.values())
    outcomes = _in_processes(renderer, work, previous, progress, workers, first, share=True)
    if early is not None and early.started:
        chunks += [[] for _ in range(workers)]  # each: the early pages left, until none is
    outcomes += _in_processes(renderer, work, previous, progress, workers, chunks)
    if early is not None and early.started:
        outcomes += early.finish(progress)
    return outcomes


# What a page needs no entry for: the stories' own pages, the OPML list and the static files.
_ENTRYLESS = ("/stories/", OPML_PATH, STATIC_PREFIX)
# The pages of `_Early` that the processes take one chunk at a time.
_POOL: _Pool | None = None


class _Pool:
    """Chunks of URLs that the processes forked after it was made take one at a time, whichever
    is free first (the index of the next one is shared memory)."""

    def __init__(self, chunks: list[list[str]]) -> None:
        self.chunks = chunks
        self._next = multiprocessing.get_context("fork").Value("q", 0)

    def take(self) -> list[str] | None:
        """The next chunk nobody took yet; None when none is left."""
        with self._next.get_lock():
            index = self._next.value
            self._next.value = index + 1
        return self.chunks[index] if index < len(self.chunks) else None


class _Early:
    """A full build's pages that show no entry (10,000 story pages at 10,000 records, a fifth
    of its CPU), rendered in a process of its own from the moment the pages are listed (`start`),
    while this one works out their fingerprints and makes the entries, and while the rounds of
    `_write_parallel` run: no core waits for this process then. The second round's processes
    take what is left once they are done with their own pages (`_write_chunk` of no URL), so
    that all end together."""

    def __init__(self) -> None:
        self.urls: set[str] = set()
        self._results: Generator[_Written, None, None] | None = None

    @property
    def started(self) -> bool:
        return self._results is not None

    def start(self, app: Flask, work: Path, pages: list[SitePage], workers: int) -> None:
        """Start the process, for a site of SHARE_MINIMUM pages or more built by two
        `workers` or more; nothing else."""
        global _FORKED, _POOL
        if workers < 2 or len(pages) < SHARE_MINIMUM:
            return
        urls = [page.url for page in pages if page.url.startswith(_ENTRYLESS)]
        self.urls = set(urls)
        _POOL = _Pool([urls[start : start + CHUNK] for start in range(0, len(urls), CHUNK)])
        _FORKED = (_Renderer(app), work, None)
        try:
            self._results = _forked(_write_chunk, [[]], 1)
        finally:
            _FORKED = None

    def finish(self, progress: Callable[[int], None] | None) -> list[Outcome]:
        """What the process wrote, once it is done."""
        assert self._results is not None
        outcomes: list[Outcome] = []
        try:
            for done, _ in self._results:
                outcomes += done
                if progress is not None:
                    progress(len(done))
        finally:
            self.stop()
        return outcomes

    def stop(self) -> None:
        """End the process (at once if it is not done)."""
        global _POOL
        if self._results is not None:
            self._results.close()
        _POOL = None


def _in_processes(
    renderer: _Renderer,
    work: Path,
    previous: _Previous | None,
    progress: Callable[[int], None] | None,
    workers: int,
    chunks: list[list[str]],
    share: bool = False,
) -> list[Outcome]:
    """Write `chunks` of URLs in `workers` forked processes; with `share`, what each process
    renders comes back to `renderer`."""
    global _FORKED
    if not chunks:
        return []
    _FORKED = (renderer, work, previous)
    outcomes: list[Outcome] = []
    try:
        start = _start_sharing if share else None
        with contextlib.closing(_forked(_write_chunk, chunks, workers, start)) as results:
            for done, rendered in results:
                outcomes += done
                if rendered is not None:
                    renderer.take(rendered)
                if progress is not None:
                    progress(len(done))
    finally:
        _FORKED = None
    return outcomes


def _start_sharing() -> None:
    assert _FORKED is not None
    _FORKED[0].share()


# What `_write_chunk` gives back: the outcomes, and with sharing the fragments rendered.
_Written = tuple[list["Outcome"], list[tuple[Hashable, bytes]] | None]


def _write_chunk(urls: list[str]) -> _Written:
    """Write `urls`; no URL: the chunks of `_POOL`, until none is left."""
    assert _FORKED is not None
    renderer, work, previous = _FORKED
    if urls:
        outcomes = _write_all(renderer, work, urls, previous, None)
    else:
        outcomes = []
        while _POOL is not None and (taken := _POOL.take()) is not None:
            outcomes += _write_all(renderer, work, taken, previous, None)
    if renderer.fragments.journal is None:
        return outcomes, None
    return outcomes, renderer.rendered_since()


Task = TypeVar("Task")
Result = TypeVar("Result")


def _forked(
    work: Callable[[Task], Result],
    tasks: Sequence[Task],
    count: int,
    start: Callable[[], None] | None = None,
) -> Generator[Result, None, None]:
    """`work` done on each of `tasks` in `count` forked processes (each runs `start` first), the
    results as they come in. The processes start now, not when the first result is asked for:
    the previous build's files are linked while this process loads the collection and works
    out the pages (`_linked_ahead`). An exception `work` raises is raised here; a process that
    ends with tasks undone is a BuildError. The processes end when the iteration does; at once
    (SIGTERM) when it is left early (close it: `contextlib.closing`)."""
    results = _results_of_forked(work, tasks, count, start)
    next(results)  # runs until the processes are started
    return cast(Generator[Result, None, None], results)


def _results_of_forked(
    work: Callable[[Task], Result],
    tasks: Sequence[Task],
    count: int,
    start: Callable[[], None] | None,
) -> Generator[Result | None, None, None]:
    """`_forked`'s processes and results: first None, once every process is started, then the
    results.

    Not multiprocessing.Pool: the thread of a pool that looks after its processes waits on its
    result pipe among them, so it spins, holding the GIL, whenever a result waits there to be
    read (CPython 3.11 `Pool._get_sentinels`): 4.5 s of CPU of the build's own process in a full
    build of 10,000 records, on the cores the workers render on."""
    context = multiprocessing.get_context("fork")
    parent = os.getpid()
    pending = deque(tasks)
    in_flight: dict[Connection, int] = {}
    processes = []
    try:
        for _ in range(min(count, len(pending))):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, work, parent, start))
            process.daemon = True
            process.start()
            theirs.close()
            processes.append(process)
            in_flight[ours] = 0
            while pending and in_flight[ours] < IN_FLIGHT:
                ours.send(pending.popleft())
                in_flight[ours] += 1
        yield None
        while any(in_flight.values()):
            for ready in wait([connection for connection, n in in_flight.items() if n]):
                assert isinstance(ready, Connection)
                try:
                    failed, result = ready.recv()
                except EOFError:
                    raise BuildError("a build process ended before its work was done") from None
                in_flight[ready] -= 1
                if failed:
                    raise result
                if pending:
                    ready.send(pending.popleft())
                    in_flight[ready] += 1
                yield result
        for connection in in_flight:
            connection.send(None)
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.exitcode is None:
                process.terminate()
            process.join()
        for connection in in_flight:
            connection.close()


def _serve(
    connection: Connection,
    work: Callable[[Any], Any],
    parent: int,
    start: Callable[[], None] | None,
) -> None:
    """A forked process of `_forked`: `work` on each task received, until None."""
    _start_worker(parent)
    if start is not None:
        start()
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        try:
            connection.send((False, work(task)))
        except Exception as exc:
            try:
                connection.send((True, exc))
            except Exception:  # it cannot be pickled: its text then
                connection.send((True, BuildError(f"{type(exc).__name__}: {exc}")))


def _start_worker(parent: int) -> None:
    """A worker ends quietly with its build: SIGTERM (how the build stops its workers) ends it
    at once, with no traceback from a half-sent result; Ctrl-C is left to the build, which
    stops the workers; and it is sent SIGTERM if the build itself dies (SIGKILL included),
    rather than waiting for tasks for ever. It holds no copy of the build's lock. What it
    inherits is frozen: its garbage collector's full passes walk only what it makes itself (the
    build's entries, stories and pages were walked again and again, 0.35 s of a first-round
    process's CPU at 10,000 records), and leave the inherited objects' pages shared."""
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    close_inherited_locks()
    end_with_parent(parent)


def _write_all(
    renderer: _Renderer,
    work: Path,
    urls: list[str],
    previous: _Previous | None,
    progress: Callable[[int], None] | None,
) -> list[Outcome]:
    """Render each URL into `work`; a file whose bytes are those of the file of the same name in
    the previous build is carried over instead. Plain strings and file descriptors, not Paths:
    this runs for every file of the site, and each system call saved is saved 41,000 times."""
    outcomes = []
    root = os.fspath(work)
    old_root = os.fspath(previous.root) if previous is not None else None
    checked = previous.files if previous is not None else {}
    folders: set[str] = set()
    with renderer.app.app_context():  # the templates' context, once for every page
        for url in urls:
            body, gz, last_modified = _render(renderer, url)
            name = file_for(url)
            folder = os.path.dirname(name)
            if folder not in folders:
                os.makedirs(os.path.join(root, folder), exist_ok=True)
                folders.add(folder)
            target = os.path.join(root, name)
            old = os.path.join(old_root, name) if old_root is not None else None
            before = checked.get(name)
            was_written = old is None or not _same_bytes(old, body, gz, before)
            if was_written:
                stamp = _stamp(last_modified, old, before)
                if old is not None:  # a link to the old file, made ahead: never written into
                    _unlink(target)
                    _unlink(target + GZ)
                stat = (*_write_file(target, body, stamp), *_write_file(target + GZ, gz, stamp))
            else:
                assert old is not None
                if not os.path.lexists(target):  # else linked ahead
                    _link(old, target)
                    _link(old + GZ, target + GZ)
                plain, zipped = os.stat(target), os.stat(target + GZ)
                stat = (plain.st_size, plain.st_mtime_ns, zipped.st_size, zipped.st_mtime_ns)
            outcomes.append((name, stat, was_written))
            if progress is not None:
                progress(1)
    return outcomes


def _write_file(path: str, data: bytes, stamp: float) -> tuple[int, int]:
    """A new file at `path` holding `data`, modified at `stamp`; its size and time. Never an
    existing file (O_EXCL): a link to the previous build's file must not be written into."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
        os.utime(descriptor, (stamp, stamp))
        stat = os.fstat(descriptor)
    finally:
        os.close(descriptor)
    return stat.st_size, stat.st_mtime_ns


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _same_bytes(old: str, body: bytes, gz: bytes, before: WrittenFile | None) -> bool:
    """Whether the file `old` and its .gz hold `body` and `gz`. Not when the sizes `before`
    gives (`_Previous`: the file was found with them) are not theirs: most pages that are
    rendered again change length, and reading their old files (a quarter of a GB in a rebuild
    after one record was added at 10,000 records, often from the disk: they are linked, never
    read, from one build to the next) cost more than rendering them."""
    if before is not None and (before.size, before.gz_size) != (len(body), len(gz)):
        return False
    try:
        with open(old, "rb") as plain:
            if plain.read() != body:
                return False
        with open(old + GZ, "rb") as zipped:
            return zipped.read() == gz
    except OSError:
        return False


def _stamp(last_modified: float, old: str | None, before: WrittenFile | None = None) -> float:
    """The file's time is the response's Last-Modified, so a web server sends the same one;
    but always a second later than the file it replaces (`old`, whose bytes differ; its time
    is the one `before` gives, when given), so that a web server's validators change with the
    bytes. The .gz gets the same time (nginx's gzip_static takes the validators from the .gz
    file)."""
    stamp = last_modified
    if before is not None:
        seconds, nanoseconds = divmod(before.mtime_ns, 1_000_000_000)
        # `os.stat(old).st_mtime`, the same float: `stat` makes it as seconds + ns * 1e-9.
        stamp = max(stamp, math.floor(seconds + nanoseconds * 1e-9) + 1)
    elif old is not None:
        with contextlib.suppress(OSError):
            stamp = max(stamp, math.floor(os.stat(old).st_mtime) + 1)
    return stamp
