"""What goes into a feed: which records, in which order, under which title, with which links.

Feed kinds are small classes with explicit hooks (`path`, `html_path`, `title`, `subtitle`,
`icon`), in the spirit of Django's `Feed`. `feed_document` turns one page of a feed into a
`FeedDocument`: plain data with absolute URLs, which the render module writes out in any format
without deciding anything.
"""

from __future__ import annotations

import hashlib
import html
import marshal
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from functools import lru_cache
from html import escape
from operator import attrgetter
from typing import Any
from weakref import WeakValueDictionary

from feedsvc.errors import PageNotFound
from feedsvc.records import Image, Record, Related, related_fields
from feedsvc.repository import Collection, Group
from feedsvc.stories import DEFAULT_WINDOW_DAYS, Coverage, Story, stories_of
from feedsvc.urls import identity_key
from feedsvc.values import maker

# An empty feed still needs an `updated`; "now" would change the bytes on every render.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Served by the web module from the package's static folder.
FEED_STYLESHEET_PATH = "/static/feed.xsl"
# A feed's HTML view, which a browser opening the feed gets, is also at the feed's URL plus this
# (`/feeds/all.atom.html`): a URL of its own for its paging links and for a static build's file.
VIEW_SUFFIX = ".html"


@dataclass(frozen=True, slots=True)
class Site:
    """Where and how the feeds are published; `base_url` has no trailing slash."""

    base_url: str
    title: str
    language: str = "en"
    feed_size: int = 50
    search: bool = False  # whether pages offer the search form (the server answers /search)
    hubs: tuple[str, ...] = ()  # WebSub hubs the feeds name

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def stylesheet_url(self) -> str:
        """The XSL stylesheet that makes a feed opened in a browser readable."""
        return self.url(FEED_STYLESHEET_PATH)


@dataclass(frozen=True, slots=True)
class Link:
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class Category:
    term: str
    label: str
    scheme: str


@dataclass(frozen=True, slots=True, weakref_slot=True)  # weakly kept by `_entry`
class Entry:
    """One article (or story) as every format shows it; an article's `updated` equals its
    `published` (records have no modification date, and a made-up one would change ids' meaning
    for aggregators); a story's is its newest coverage (`modified`)."""

    id: str
    title: str
    link: str
    summary: str
    published: datetime
    author: str | None
    categories: tuple[Category, ...]
    images: tuple[Image, ...]
    related: tuple[Link, ...]
    content_html: str | None
    modified: datetime | None = None

    def __hash__(self) -> int:
        # Entries key the rendered fragments; hashing every field (tuples of links and
        # categories, hashed anew each time) cost more than assembling the page. Equal entries
        # have equal ids, titles and dates, so these few fields (strings keep their hash) do.
        return hash((self.id, self.title, self.published, self.modified))

    @property
    def updated(self) -> datetime:
        return self.modified or self.published


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """One page of one feed in one format, with every URL absolute."""

    id: str
    title: str
    subtitle: str
    updated: datetime
    self_url: str
    html_url: str
    author: str
    language: str
    icon: Image | None
    paging: tuple[Link, ...]
    entries: tuple[Entry, ...]
    page: int
    pages: int
    stylesheet_url: str | None = None
    hubs: tuple[str, ...] = ()  # WebSub hubs; first pages only


@dataclass(frozen=True, slots=True)
class FeedListing:
    """One feed as the index page and the OPML outline list it."""

    scope: str
    name: str
    title: str
    html_url: str
    feed_urls: tuple[tuple[str, str], ...]  # (extension, URL), in the format registry's order
    entries: int
    updated: datetime | None

    def feed_url(self, extension: str) -> str:
        return dict(self.feed_urls)[extension]


# What a feed lists: articles (records), or stories of several records each.
Item = Record | Story


class Feed(ABC):
    """A feed: its records (or stories), newest first, and the hooks that name and place it."""

    scope: str
    # A query string every URL of the feed carries before its page (a search's question).
    query: str = ""
    # Whether hubs are told of its changes (a WebSub topic); a feed they are never told of
    # must not name them, or its subscribers would wait for news that never comes.
    pushed: bool = True

    def __init__(self, records: tuple[Item, ...]) -> None:
        self.records = records

    @property
    @abstractmethod
    def name(self) -> str:
        """What the feed is about, as a heading or an outline shows it."""

    @property
    @abstractmethod
    def path(self) -> str:
        """URL path of the feed without its format extension, e.g. `/feeds/all`."""

    @property
    @abstractmethod
    def html_path(self) -> str:
        """URL path of the HTML page this feed is the alternate of."""

    @abstractmethod
    def title(self, site: Site) -> str: ...

    @abstractmethod
    def subtitle(self, site: Site) -> str: ...

    def icon(self) -> Image | None:
        return None

    @property
    def id_path(self) -> str:
        """URL path of the feed's id: its HTML page, which no other feed is the alternate of."""
        return self.html_path

    @property
    def updated(self) -> datetime:
        return _item_updated(self.records[0]) if self.records else EPOCH

    @property
    def newest(self) -> datetime | None:
        return _item_updated(self.records[0]) if self.records else None


def _item_updated(item: Item) -> datetime:
    return item.updated if isinstance(item, Story) else item.published


class AllItemsFeed(Feed):
    scope = "all"

    def __init__(self, collection: Collection) -> None:
        super().__init__(collection.records)

    @property
    def name(self) -> str:
        return "All articles"

    @property
    def path(self) -> str:
        return "/feeds/all"

    @property
    def html_path(self) -> str:
        return "/"

    def title(self, site: Site) -> str:
        return site.title

    def subtitle(self, site: Site) -> str:
        return f"Every article published by {site.title}, newest first."


class GroupFeed(Feed):
    """A feed cut from one index of the collection: a topic or a provider."""

    def __init__(self, group: Group) -> None:
        super().__init__(group.records)
        self.group = group

    @property
    def name(self) -> str:
        return self.group.name

    @property
    def path(self) -> str:
        return f"/feeds/{self.scope}/{self.group.slug}"

    @property
    def html_path(self) -> str:
        return f"/{self.scope}/{self.group.slug}"

    def title(self, site: Site) -> str:
        return f"{site.title}: {self.group.name}"


class TopicFeed(GroupFeed):
    scope = "topics"

    def subtitle(self, site: Site) -> str:
        return f"Articles about {self.group.name}, newest first."


class ProviderFeed(GroupFeed):
    scope = "providers"

    def subtitle(self, site: Site) -> str:
        return f"Articles from {self.group.name}, newest first."

    def icon(self) -> Image | None:
        return self.group.images[0] if self.group.images else None


FEED_SCOPES: dict[str, type[GroupFeed]] = {"topics": TopicFeed, "providers": ProviderFeed}


class StoryFeed(Feed):
    """Stories instead of articles: one entry per story (`story_entry`), the story whose newest
    coverage is newest first. Every story, or those of one topic (`topic` set)."""

    scope = "stories"
    pushed = False  # grouped on request, not at reload, so no reload can tell what changed

    def __init__(self, stories: tuple[Story, ...], topic: Group | None = None) -> None:
        super().__init__(stories)
        self.topic = topic

    @property
    def name(self) -> str:
        return f"{self.topic.name} stories" if self.topic else "All stories"

    @property
    def path(self) -> str:
        return f"/feeds/stories/topics/{self.topic.slug}" if self.topic else "/feeds/stories/all"

    @property
    def html_path(self) -> str:
        return f"/topics/{self.topic.slug}" if self.topic else "/"

    @property
    def id_path(self) -> str:
        return self.path  # the HTML page is the article feed's alternate (and id) too

    def title(self, site: Site) -> str:
        scope = f"{self.topic.name} stories" if self.topic else "Stories"
        return f"{site.title}: {scope}"

    def subtitle(self, site: Site) -> str:
        about = f" about {self.topic.name}" if self.topic else ""
        return f"Each story{about} once, with every article covering it; latest news first."


def find_story_feed(
    collection: Collection, slug: str | None, window_days: float = DEFAULT_WINDOW_DAYS
) -> StoryFeed | None:
    """The story feed of every story (`slug` None) or of one topic; None if no such topic."""
    index = stories_of(collection, window_days)
    if slug is None:
        return StoryFeed(index.stories)
    topic = collection.topics.get(slug)
    if topic is None:
        return None
    return StoryFeed(index.by_topic.get(slug, ()), topic)


def story_feeds(
    collection: Collection, window_days: float = DEFAULT_WINDOW_DAYS
) -> Iterator[StoryFeed]:
    """Every story feed: all stories, then each topic's (in `collection.topics` order)."""
    index = stories_of(collection, window_days)
    yield StoryFeed(index.stories)
    for slug, topic in collection.topics.items():
        yield StoryFeed(index.by_topic.get(slug, ()), topic)


def story_listing(topic: Group | None, site: Site, extensions: Iterable[str]) -> FeedListing:
    """The story feed of `topic` (or of every story) by its name and URLs only, as pages and
    the OPML link it: without its stories, so that linking it never groups the collection, and
    a page or list that links it changes only when the topic does."""
    return feed_listing(StoryFeed((), topic), site, extensions)


def story_listing_of(feed: Feed, site: Site, extensions: Iterable[str]) -> FeedListing | None:
    """The story feed an article feed's page links: all stories for the index, the topic's
    stories for a topic's page; None for a provider's page."""
    if isinstance(feed, AllItemsFeed):
        return story_listing(None, site, extensions)
    if isinstance(feed, TopicFeed):
        return story_listing(feed.group, site, extensions)
    return None


def opml_listings(
    collection: Collection, site: Site, extensions: Iterable[str]
) -> tuple[FeedListing, ...]:
    """What the OPML list shows: every article feed (`feed_listings`), then every story feed."""
    extensions = tuple(extensions)
    stories = [story_listing(None, site, extensions)]
    stories.extend(story_listing(topic, site, extensions) for topic in collection.topics.values())
    return (*feed_listings(collection, site, extensions), *stories)


def find_feed(
    collection: Collection,
    scope: str,
    slug: str | None = None,
    window_days: float = DEFAULT_WINDOW_DAYS,
) -> Feed | None:
    """The feed at `/feeds/<scope>/<slug>` (or `/feeds/all`), or None if there is none; scope
    `stories` is `/feeds/stories/all`, `story-topics` `/feeds/stories/topics/<slug>`."""
    if scope == "all":
        return AllItemsFeed(collection)
    if scope in ("stories", "story-topics"):
        return find_story_feed(collection, slug if scope == "story-topics" else None, window_days)
    indexes = {"topics": collection.topics, "providers": collection.providers}
    group = indexes.get(scope, {}).get(slug or "")
    return FEED_SCOPES[scope](group) if group is not None else None


def iter_feeds(collection: Collection) -> Iterator[Feed]:
    """Every feed of the collection: all items, then each topic, then each provider."""
    yield AllItemsFeed(collection)
    yield from (TopicFeed(group) for group in collection.topics.values())
    yield from (ProviderFeed(group) for group in collection.providers.values())


def page_count(feed: Feed, site: Site) -> int:
    return max(1, -(-len(feed.records) // site.feed_size))


def page_url(site: Site, path: str, page: int, query: str = "") -> str:
    """The URL of page `page` at `path`; a feed's `query` comes first, the page last."""
    parts = [query] if query else []
    if page > 1:
        parts.append(f"page={page}")
    return site.url(path) + ("?" + "&".join(parts) if parts else "")


def paging_links(site: Site, path: str, page: int, pages: int, query: str = "") -> tuple[Link, ...]:
    """RFC 5005 links; a feed that fits on one page has none."""
    if pages == 1:
        return ()
    links = [Link(page_url(site, path, 1, query), "first")]
    links.append(Link(page_url(site, path, pages, query), "last"))
    if page > 1:
        links.append(Link(page_url(site, path, page - 1, query), "previous"))
    if page < pages:
        links.append(Link(page_url(site, path, page + 1, query), "next"))
    return tuple(links)


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of a feed as what it is made from, before any entry is built: two equal values
    give the same document, and comparing them costs little (records of unchanged files are
    the same objects in every version), which is how a reload tells changed pages from kept
    ones without building them."""

    site: Site
    feed_id: str
    title: str
    subtitle: str
    updated: datetime
    self_path: str
    html_path: str
    icon: Image | None
    records: tuple[Item, ...]
    page: int
    pages: int
    stylesheet_url: str | None
    query: str = ""  # the feed's `query`, which every URL of the page carries
    pushed: bool = True  # the feed's `pushed`: its first page names the WebSub hubs

    def document(self, entries: Entries | None = None) -> FeedDocument:
        """The page's document; `entries` gives each item's entry when it made it before."""
        site = self.site
        entry = entries.of if entries is not None and entries.site == site else _entry
        return FeedDocument(
            id=self.feed_id,
            title=self.title,
            subtitle=self.subtitle,
            updated=self.updated,
            self_url=page_url(site, self.self_path, self.page, self.query),
            html_url=page_url(site, self.html_path, 1, self.query),
            author=site.title,
            language=site.language,
            icon=self.icon,
            paging=paging_links(site, self.self_path, self.page, self.pages, self.query),
            entries=tuple([entry(item, site) for item in self.records]),
            page=self.page,
            pages=self.pages,
            stylesheet_url=self.stylesheet_url,
            # Only a feed's first page is a WebSub topic: hubs are told of its changes alone,
            # so later (archive) pages advertise no hub that would never hear of theirs.
            hubs=site.hubs if self.page == 1 and self.pushed else (),
        )


def feed_page(feed: Feed, site: Site, extension: str, page: int = 1) -> FeedPage:
    """Page `page` (1-based) of `feed`, to be written in the format named by `extension`.

    :raises PageNotFound: the feed has fewer pages.
    """
    return _page(feed, site, f"{feed.path}.{extension}", page, site.stylesheet_url)


def feed_document(feed: Feed, site: Site, extension: str, page: int = 1) -> FeedDocument:
    """The document of `feed_page`.

    :raises PageNotFound: the feed has fewer pages.
    """
    return feed_page(feed, site, extension, page).document()


def html_page(feed: Feed, site: Site, page: int = 1) -> FeedPage:
    """Page `page` of `feed` as its HTML page shows it: the same entries as the feed's page,
    with the paging links of the HTML page.

    :raises PageNotFound: the feed has fewer pages.
    """
    return _page(feed, site, feed.html_path, page, None)


def view_page(feed: Feed, site: Site, extension: str, page: int = 1) -> FeedPage:
    """Page `page` of `feed` as the HTML view of its feed in `extension` shows it: the feed's
    entries, with paging links between views.

    :raises PageNotFound: the feed has fewer pages.
    """
    return _page(feed, site, f"{feed.path}.{extension}{VIEW_SUFFIX}", page, None)


def page_document(feed: Feed, site: Site, page: int = 1) -> FeedDocument:
    """The document of `html_page`.

    :raises PageNotFound: the feed has fewer pages.
    """
    return html_page(feed, site, page).document()


def _page(feed: Feed, site: Site, path: str, page: int, stylesheet_url: str | None) -> FeedPage:
    pages = page_count(feed, site)
    if not 1 <= page <= pages:
        raise PageNotFound(f"this feed has {pages} page{'s' if pages > 1 else ''}")
    start = (page - 1) * site.feed_size
    return FeedPage(
        site=site,
        feed_id=page_url(site, feed.id_path, 1, feed.query),
        title=feed.title(site),
        subtitle=feed.subtitle(site),
        updated=feed.updated,
        self_path=path,
        html_path=feed.html_path,
        icon=feed.icon(),
        records=feed.records[start : start + site.feed_size],
        page=page,
        pages=pages,
        stylesheet_url=stylesheet_url,
        query=feed.query,
        pushed=feed.pushed,
    )


# Every field of a FeedPage but its records, as a tuple.
_PAGE_HEAD = attrgetter(*(field.name for field in fields(FeedPage) if field.name != "records"))


class Fingerprints:
    """Stable digests of what a page is made from, to tell without rendering it whether its
    bytes can differ from an earlier render's (a build keeps the file, a server its render).

    A page's fingerprint is a digest of its document's own fields (the site, title, links,
    paging: its `FeedPage` without the records) and one digest per entry. An entry is a function
    of its record and the site alone (`entry_for`), so an entry's digest is its record's,
    without making the entry (making one costs ten times more, and a build needs every entry of
    every page); a story's is its records'. Digests are hashlib's over plain values (Python's
    `hash()` changes with every process), so they are the same in every process and run. How
    the renderers write a document (feedsvc's version, templates, libraries) is not in the
    digest: the caller keys on it.

    One instance per collection version: it remembers each record's digest by the record object,
    as a record is in many pages and every page is in several formats.
    """

    def __init__(self) -> None:
        # By id(record): the records are kept alive here, so no other object can take their ids.
        self._digests: dict[int, bytes] = {}
        self._records: list[Item] = []
        # The entries of the last page asked for: the same page in the next format has them.
        self._last: tuple[tuple[Item, ...], bytes] = ((), b"")

    def page(self, page: FeedPage) -> str:
        """The fingerprint of `page` (from `feed_page` or `html_page`)."""
        records, entries = self._last
        if page.records != records:  # the same objects: compared by identity, at C speed
            entries = self.items(page.records)
            self._last = (page.records, entries)
        head = repr(_PAGE_HEAD(page)).encode()
        return hashlib.blake2b(head + entries, digest_size=20).hexdigest()

    def items(self, items: tuple[Item, ...]) -> bytes:
        """The digests of `items` (`record`), one after the other."""
        try:
            return b"".join(map(self._digests.__getitem__, map(id, items)))
        except KeyError:
            return b"".join([self.record(item) for item in items])

    def record(self, item: Item) -> bytes:
        """The digest of every field of a record, so of the entry made from it; of a story, the
        digest of its records (a story's entry is made from them alone)."""
        known = self._digests.get(id(item))
        if known is None:
            if isinstance(item, Story):
                plain = b"story" + self.items(item.records)
            else:
                # marshal's version 0 writes a value alone: no references to objects met before,
                # no mark on interned strings, which pickle and later versions write (equal
                # records could then differ with the way they were loaded). Three times faster
                # than repr.
                plain = marshal.dumps(record_values(item), 0)
            known = hashlib.blake2b(plain, digest_size=16).digest()
            self._digests[id(item)] = known
            self._records.append(item)
        return known

    def known(self, digests: Iterable[tuple[Item, bytes]]) -> None:
        """Take `digests` (record, its digest as `record` gives it) as worked out already: by
        an earlier build, for the same record values (`digeststate`)."""
        for item, digest in digests:
            if id(item) not in self._digests:
                self._digests[id(item)] = digest
                self._records.append(item)

    @staticmethod
    def listings(listings: Iterable[FeedListing]) -> str:
        """Feeds as the index and the OPML list show them (names, URLs, counts, dates)."""
        return hashlib.blake2b(repr(tuple(listings)).encode(), digest_size=20).hexdigest()


def record_values(record: Record) -> tuple[Any, ...]:
    """Every field of `record` as plain values (strings, numbers, None, tuples), field by field:
    a field added to `Record` (or to its images, topics or provider) is added here, or
    `tests/test_build.py` fails."""
    provider = record.provider
    return (
        record.path,
        record.id,
        record.title,
        record.excerpt,
        record.published.isoformat(),
        record.url,
        record.original_url,
        None
        if provider is None
        else (provider.name, provider.domain, provider.slug, _image_values(provider.images)),
        tuple((topic.name, topic.slug) for topic in record.topics),
        _image_values(record.images),
        record.coverage,
        record.quality,
        record.heat,
        record.published_flag,
    )


def _image_values(images: tuple[Image, ...]) -> tuple[tuple[Any, ...], ...]:
    return tuple((image.url, image.width, image.height, image.media_type) for image in images)


def feed_listing(feed: Feed, site: Site, extensions: Iterable[str]) -> FeedListing:
    """`feed` with its URLs in each format named by `extensions`."""
    return FeedListing(
        scope=feed.scope,
        name=feed.name,
        title=feed.title(site),
        html_url=page_url(site, feed.html_path, 1, feed.query),
        feed_urls=tuple(
            (ext, page_url(site, f"{feed.path}.{ext}", 1, feed.query)) for ext in extensions
        ),
        entries=len(feed.records),
        updated=feed.newest,
    )


def feed_listings(
    collection: Collection, site: Site, extensions: Iterable[str]
) -> tuple[FeedListing, ...]:
    """Every feed of the collection with its URLs in each format, in `iter_feeds` order."""
    extensions = tuple(extensions)
    return tuple(feed_listing(feed, site, extensions) for feed in iter_feeds(collection))


def _entry(item: Item, site: Site) -> Entry:
    if isinstance(item, Story):  # regrouped in place as coverage arrives: made each time
        return story_entry(item, site)
    key = _Shown(item, site)
    found = _SHOWN.get(key)
    if found is None:
        found = _SHOWN[key] = entry_for(item, site)
    return found


class _Shown:
    """A record on a site, the record by its identity: records are immutable, and hashing one
    by its fields would cost about what making its entry costs. The key keeps the record alive,
    so that no other object takes its id while the key is held."""

    __slots__ = ("record", "site", "_hash")

    def __init__(self, record: Record, site: Site) -> None:
        self.record = record
        self.site = site
        self._hash = hash((id(record), site))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Shown) and other.record is self.record and other.site == self.site


# Each record's entry for as long as something else holds it (the fragment store's keys): a
# page whose entries are rendered finds them made, as the very objects the fragments are keyed
# by, so that it makes none (a first render of a 50-entry page made 50 entries, 0.5 ms) and the
# store finds each by identity instead of comparing it field by field. Held weakly, so that it
# keeps no entry beyond what RENDER_CACHE_BYTES accounts.
_SHOWN: WeakValueDictionary[_Shown, Entry] = WeakValueDictionary()


class Entries:
    """Each record's or story's entry for one site, made once: a static build shows every record
    in a dozen documents (feeds in three formats, their HTML views, pages, story feeds), and
    renderers keyed on the entry object (`build`'s fragments) find it again. By the item object,
    which it keeps alive so that no other object takes its id; for one collection version."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self._made: dict[int, tuple[Item, Entry]] = {}

    def of(self, item: Item, site: Site) -> Entry:
        """The entry of `item` on `site` (this memo's site: `FeedPage.document` checks)."""
        found = self._made.get(id(item))
        if found is None:
            found = self._made[id(item)] = (item, _entry(item, site))
        return found[1]

    def made(self) -> list[tuple[Item, Entry]]:
        """Every item and its entry, in the order they were made or added."""
        return list(self._made.values())


def story_entry(story: Story, site: Site) -> Entry:
    """The entry of a story: its lead record's title, link, excerpt, provider and images, the
    topics of all its records, and every piece of coverage as a related link and in the content;
    published at its first coverage, updated at its newest. Its id is the story's."""
    lead = story.lead
    topics = {topic.slug: topic for record in story.records for topic in record.topics}
    coverage = story.coverage
    return Entry(
        id=story.id,
        title=lead.title,
        link=lead.url,
        summary=lead.excerpt,
        published=story.published,
        author=lead.provider.name if lead.provider else None,
        categories=tuple(
            Category(topic.slug, topic.name, site.url("/topics/"))
            for _, topic in sorted(topics.items())
        ),
        images=lead.images,
        related=tuple(Link(item.url, "related", "text/html", item.title) for item in coverage),
        content_html=_story_html(lead.excerpt, coverage, site.url(f"/stories/{story.slug}")),
        modified=story.updated,
    )


def _story_html(excerpt: str, coverage: Iterable[Coverage], page_url: str) -> str:
    """The lead's excerpt and every piece of coverage, newest first, as escaped HTML."""
    parts = [f"<p>{html.escape(excerpt)}</p>"] if excerpt else []
    parts.append(f'<p>Coverage (<a href="{html.escape(page_url)}">the story</a>):</p>\n<ul>')
    parts.extend(f"<li>{_coverage_item(item)}</li>" for item in coverage)
    parts.append("</ul>")
    return "\n".join(parts)


def _coverage_item(item: Related | Coverage) -> str:
    """An article as a link, followed by its provider and date where known."""
    source = ", ".join(
        part for part in (item.provider, item.published and _day(item.published)) if part
    )
    suffix = f" ({html.escape(source)})" if source else ""
    return f'<a href="{html.escape(item.url)}">{html.escape(item.title)}</a>{suffix}'


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


# The month of an ISO date's digits ("01" -> "Jan").
_MONTH_NUMBERS = {f"{number:02d}": name for number, name in enumerate(_MONTHS, 1)}


def _escape(text: str) -> str:
    """`html.escape(text)`, returning text with nothing to escape (most titles and URLs) after
    five membership tests instead of five replacements."""
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return escape(text)
    return text


def _day(moment: datetime) -> str:
    """`moment.strftime("%d %b %Y")` in the C locale, whatever the process's locale, at a
    fifth of its cost (it ran for every article of an entry's coverage on a first render)."""
    return f"{moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year}"


def entry_for(record: Record, site: Site) -> Entry:
    """The entry every feed and format shows for `record`."""
    related, content_html = _coverage(record.url, record.excerpt, record.coverage)
    scheme = site.url("/topics/")
    return _entry_of(
        id=record.id,
        title=record.title,
        link=record.url,
        summary=record.excerpt,
        published=record.published,
        author=record.provider.name if record.provider else None,
        categories=tuple([_category(topic.slug, topic.name, scheme) for topic in record.topics]),
        images=record.images,
        related=related,
        content_html=content_html,
        modified=None,
    )


# `Entry(...)`, `Link(...)` and `Category(...)` at half the cost (`values.maker`): a first render
# makes 50 entries, 300 links and 100 categories.
_entry_of = maker(Entry)
_link = maker(Link)
_category = maker(Category)


# An entry's other coverage costs a URL normalization and a UUID per related article, 90% of
# building an entry; it depends on these three strings alone (whose hashes Python keeps), so it
# is remembered for the entries of recently rendered pages (a few MB at most).
@lru_cache(maxsize=8192)
def _coverage(record_url: str, excerpt: str, coverage: str) -> tuple[tuple[Link, ...], str | None]:
    """The related articles as links (without the article itself and without repeats), and the
    excerpt with the list of them as HTML (`_coverage_item` each). Two URLs have the same entry
    id exactly when their identity keys are equal (`urls.entry_id`), so the keys are compared,
    without making a UUID for each article. Read from the packed fields in one loop, without a
    `Related` (a frozen dataclass, its date parsed) per article: a fresh process's first page
    reads 300 of them."""
    if not coverage:
        return (), None
    seen = {identity_key(record_url)}
    links: list[Link] = []
    parts = [f"<p>{_escape(excerpt)}</p>"] if excerpt else []
    parts.append("<p>Other coverage:</p>\n<ul>")
    for title, url, provider, when in related_fields(coverage):
        key = identity_key(url)
        if key in seen:
            continue
        seen.add(key)
        links.append(_link(url, "related", "text/html", title))
        # `_coverage_item`, with `_day` read from the packed ISO date (YYYY-MM-DD...), which
        # has nothing to escape.
        if when:
            day = f"{when[8:10]} {_MONTH_NUMBERS[when[5:7]]} {when[:4].lstrip('0')}"
            suffix = f" ({_escape(provider)}, {day})" if provider else f" ({day})"
        else:
            suffix = f" ({_escape(provider)})" if provider else ""
        parts.append(f'<li><a href="{_escape(url)}">{_escape(title)}</a>{suffix}</li>')
    if not links:
        return (), None
    parts.append("</ul>")
    return tuple(links), "\n".join(parts)
