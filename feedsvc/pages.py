"""The HTML pages people read: the index, one page per topic and provider, one per story, the
HTML view of each feed (what a browser opening a feed's URL gets) and the 404 page.

Pages show the same entries as the feeds (`html_page` cuts the same pages), through Jinja
templates with autoescaping. They link their feeds for autodiscovery and use no script and no
external asset, so the Content-Security-Policy the web module sends can forbid both.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from jinja2 import Environment
from markupsafe import Markup, escape

from feedsvc.errors import PageNotFound
from feedsvc.feeds import (
    AllItemsFeed,
    Entries,
    Entry,
    Feed,
    FeedDocument,
    FeedListing,
    FeedPage,
    Site,
    StoryFeed,
    feed_listing,
    feed_listings,
    html_page,
    story_listing_of,
    view_page,
)
from feedsvc.render import FORMATS, Format, FragmentStore
from feedsvc.repository import Collection, Group
from feedsvc.search import MAX_QUERY_CHARS, MAX_RESULTS, Question, SearchFeed
from feedsvc.stories import Coverage, Story, stories_of

# No script at all, styles only from the site, images from anywhere (articles' images live on
# their publishers' hosts), forms (the search box) sent only to the site, and nothing may frame
# the pages.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src http: https:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HTML_MEDIA_TYPE = "text/html; charset=utf-8"
CSS_PATH = "/static/style.css"  # the pages' only stylesheet


@dataclass(frozen=True, slots=True)
class Subscription:
    """A link to a feed in one format: the `<link rel="alternate">` and the subscribe link."""

    format: Format
    url: str
    title: str


def subscriptions(listing: FeedListing) -> tuple[Subscription, ...]:
    return tuple(
        Subscription(FORMATS[extension], url, f"{listing.title} ({FORMATS[extension].name})")
        for extension, url in listing.feed_urls
    )


@dataclass(frozen=True, slots=True)
class PageInputs:
    """Everything an HTML page shows: equal inputs give the same bytes, which is how a reload
    tells the pages it changed from the ones it did not."""

    template: str
    site: Site
    page: FeedPage
    listing: FeedListing
    listings: tuple[FeedListing, ...] = ()  # every feed, on the index's first page
    format: str | None = None  # the feed format a feed's HTML view shows
    stories: FeedListing | None = None  # the story feed it links (`feeds.story_listing_of`)


def index_inputs(collection: Collection, site: Site, page: int) -> PageInputs:
    """The site's front page: every feed with its subscribe links, and the newest articles
    (it is the HTML alternate of the all-items feed, paged like it). Only the first page lists
    the feeds: the later ones are the older articles, and a directory of every topic and
    provider on each of them would multiply the cost of rendering them (and of a build).

    :raises PageNotFound: the all-items feed has fewer pages.
    """
    everything = AllItemsFeed(collection)
    shown = html_page(everything, site, page)
    listings = feed_listings(collection, site, FORMATS) if page == 1 else ()
    return PageInputs(
        "index.html",
        site,
        shown,
        feed_listing(everything, site, FORMATS),
        listings,
        stories=story_listing_of(everything, site, FORMATS),
    )


def feed_page_inputs(feed: Feed, site: Site, page: int) -> PageInputs:
    """The page of one topic or provider: its newest entries, paged like its feed.

    :raises PageNotFound: the feed has fewer pages.
    """
    return PageInputs(
        "feed.html",
        site,
        html_page(feed, site, page),
        feed_listing(feed, site, FORMATS),
        stories=story_listing_of(feed, site, FORMATS),
    )


def feed_view_inputs(feed: Feed, site: Site, extension: str, page: int) -> PageInputs:
    """The HTML view of a feed, for a person who opened its link in a browser: what a feed is,
    its address to copy into a feed reader, and its entries, paged like the feed. It replaces
    the XSL stylesheet's view, which browsers are dropping (Chromium shows a banner over it).

    :raises PageNotFound: the feed has fewer pages.
    """
    return PageInputs(
        "feed_view.html",
        site,
        view_page(feed, site, extension, page),
        feed_listing(feed, site, FORMATS),
        format=extension,
    )


def render_page(
    inputs: PageInputs, fragments: FragmentStore | None = None, entries: Entries | None = None
) -> str:
    """The page; with `fragments`, each article's HTML is taken from there when another page
    rendered it (and left there when not), as feeds take their entries; `entries` gives the
    entries made before (`FeedPage.document`)."""
    templates = current_app.jinja_env
    listing, stories = inputs.listing, inputs.stories
    # The page's own feed first: a reader that takes one alternate takes the first.
    linked = (listing, stories) if stories else (listing,)
    document = inputs.page.document(entries)
    return _page(
        inputs.template,
        inputs.site,
        linked,
        document=document,
        entries_html=_entries(inputs.site, document, fragments),
        feed=listing,
        feed_subscribe=_subscribe_links(templates, listing),
        stories=stories,
        stories_subscribe=_subscribe_links(templates, stories) if stories else None,
        # A feed's view: its other formats.
        other_formats_subscribe=(
            _subscribe_links(templates, listing, inputs.format) if inputs.format else None
        ),
        topics=_by_name(inputs.listings, "topics"),
        providers=_by_name(inputs.listings, "providers"),
        subscribe_to=functools.partial(_subscribe_links, templates),
        search_form=_macros(templates).search_form,
        format=FORMATS[inputs.format] if inputs.format else None,
    )


@dataclass(frozen=True, slots=True)
class SearchPageInputs:
    """Everything the search page shows: the form (filled in with the question), and the
    results with their subscribe links once a question is asked, or what was wrong with it."""

    site: Site
    question: Question
    topics: tuple[tuple[str, str], ...]  # (slug, name) of every topic, for the form
    page: FeedPage | None = None
    listing: FeedListing | None = None
    error: str = ""


def search_page_inputs(
    site: Site,
    question: Question,
    topics: tuple[tuple[str, str], ...],
    feed: SearchFeed | None = None,
    page: int = 1,
    error: str = "",
) -> SearchPageInputs:
    """The search page: the form alone, or with page `page` of `feed`'s matches.

    :raises PageNotFound: the matches have fewer pages.
    """
    if feed is None:
        return SearchPageInputs(site, question, topics, error=error)
    shown = html_page(feed, site, page)
    return SearchPageInputs(site, question, topics, shown, feed_listing(feed, site, FORMATS))


def render_search_page(inputs: SearchPageInputs, fragments: FragmentStore | None = None) -> str:
    question = inputs.question
    listing = inputs.listing
    # The form has one topic list; a question with several topics keeps them as hidden fields.
    hidden = [(name, value) for name in _KEPT_FILTERS for value in question.values(name)]
    if len(question.topics) > 1:
        hidden += [("topic", slug) for slug in question.topics]
    if question.since is not None:
        hidden.append(("since", question.since.isoformat()))
    document = inputs.page.document() if inputs.page is not None else None
    macros = _macros(current_app.jinja_env)
    return _page(
        "search.html",
        inputs.site,
        (listing,) if listing is not None else (),
        document=document,
        entries_html=_entries(inputs.site, document, fragments, _NO_MATCH),
        feed=listing,
        subscriptions=subscriptions(listing) if listing is not None else (),
        q=question.q,
        topic=question.topics[0] if len(question.topics) == 1 else "",
        topics=inputs.topics if len(question.topics) <= 1 else (),
        hidden=hidden,
        error=inputs.error,
        max_query_chars=MAX_QUERY_CHARS,
        max_results=MAX_RESULTS,
        search_form=macros.search_form,
        subscribe=macros.subscribe,
    )


_KEPT_FILTERS = ("provider", "not_topic", "not_provider")
_NO_MATCH = "No articles match this search yet; its feed shows them when they come."


@dataclass(frozen=True, slots=True)
class StoryPageInputs:
    """Everything a story's page shows: the story (its records, which are the same objects in
    every version while their files are unchanged) and the story feeds it links."""

    site: Site
    story: Story
    listings: tuple[FeedListing, ...]  # every story, then the story feed of each of its topics


def story_inputs(
    collection: Collection, site: Site, slug: str, window_days: float
) -> StoryPageInputs:
    """The page of the story whose id ends in `slug` (`Story.slug`).

    :raises PageNotFound: the collection has no such story.
    """
    story = stories_of(collection, window_days).story(slug)
    if story is None:
        raise PageNotFound(f"there is no story {slug!r}")
    return StoryPageInputs(site, story, story_listings(collection, site, story.topic_slugs))


def story_listings(
    collection: Collection, site: Site, topic_slugs: Iterable[str]
) -> tuple[FeedListing, ...]:
    """The story feeds a story's page links, given its topics: every story, then the stories
    of each of its topics. The feeds are built empty: the page shows their names and URLs, not
    their entries, so it changes only when its own story does."""
    listings = [_story_listing(site, None)]
    for topic_slug in sorted(topic_slugs):
        topic = collection.topics.get(topic_slug)
        if topic is not None:
            listings.append(_story_listing(site, topic))
    return tuple(listings)


# A story feed's listing by site and topic name and slug, all it shows of them: a story's page
# links two or three, and making them was a tenth of its render. Emptied when full.
_STORY_LISTINGS: dict[tuple[Site, str | None, str | None], FeedListing] = {}
_STORY_LISTINGS_MAX = 4096


def _story_listing(site: Site, topic: Group | None) -> FeedListing:
    key = (site, None, None) if topic is None else (site, topic.name, topic.slug)
    found = _STORY_LISTINGS.get(key)
    if found is None:
        if len(_STORY_LISTINGS) >= _STORY_LISTINGS_MAX:
            _STORY_LISTINGS.clear()
        found = _STORY_LISTINGS[key] = feed_listing(StoryFeed((), topic), site, FORMATS)
    return found


def render_story_page(inputs: StoryPageInputs) -> str:
    story = inputs.story
    templates = current_app.jinja_env
    coverage = story.coverage
    listings = inputs.listings
    return _page(
        "story.html",
        inputs.site,
        listings,
        lead=story.lead,
        coverage=coverage,
        coverage_html=_coverage_items(coverage),
        story_feeds_html=Markup("".join([_story_feed(templates, item) for item in listings])),
    )


def _coverage_items(coverage: Iterable[Coverage]) -> Markup:
    """A story's coverage as the `<li>`s of its list, one a line: made here, not in a loop of
    the template, as it is every story page's longest part (a piece of coverage took as long in
    the template as the rest of the page)."""
    items = []
    for item in coverage:
        provider, published = item.provider, item.published
        if provider or published:
            meta = ' <span class="meta">'
            if provider:
                meta += f'<span class="provider">{_text(provider)}</span>'
            if provider and published:
                meta += " · "
            if published:
                meta += _time(published)
            meta += "</span>"
        else:
            meta = ""
        items.append(f'<li><a href="{_text(item.url)}">{_text(item.title)}</a>{meta}</li>\n')
    return Markup("".join(items))


def time_element(moment: datetime) -> Markup:
    """A date as every page shows it (the templates' `date`): a function, not a macro, as a
    story's page shows a date for each of its articles, and a macro call was a tenth of the
    page's render. The day as `strftime("%-d %B %Y")` writes it in the C locale, at a fraction
    of its cost; neither part has a character to escape."""
    return Markup(_time(moment))


def _time(moment: datetime) -> str:
    day = f"{moment.day} {_MONTH_NAMES[moment.month - 1]} {moment.year}"
    return f'<time datetime="{moment.isoformat()}">{day}</time>'


_MONTH_NAMES = (
    "January February March April May June July August September October November December"
).split()


def _text(text: str) -> str:
    """`escape(text)` as a plain string, returning text with nothing to escape (most titles
    and URLs) after five membership tests, without making a `Markup`."""
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return str(escape(text))
    return text


def render_not_found(site: Site, message: str) -> str:
    return _page(
        "404.html",
        site,
        message=message,
    )


def _page(template: str, site: Site, linked: Iterable[FeedListing] = (), **context: Any) -> str:
    """A template's page in the frame every page shares (base.html): the site, its stylesheet,
    the OPML, and the autodiscovery links of the feeds `linked`, each in every format. The
    frame is rendered once per site (`_frame`) and only the page's own blocks, its title and
    its main part, are rendered for each page (`Template.blocks`); by the templates'
    environment itself, not Flask's `render_template`, which adds its context processors'
    variables and signals, which no template uses."""
    templates = current_app.jinja_env
    page = templates.get_template(template)
    before_title, before_links, before_main, after_main = _frame(templates, site)
    variables = page.new_context({"site": site, **context})
    blocks = page.blocks
    return "".join(
        [
            before_title,
            *blocks["title"](variables),
            before_links,
            *[_alternate_links(templates, item) for item in linked],
            before_main,
            *blocks["main"](variables),
            after_main,
        ]
    )


# Markers of where a page's own parts go in the frame, characters no page can hold: escaped
# text never has a NUL, and the frame's own text is the templates'.
_TITLE, _LINKS, _MAIN = "\x00title\x00", "\x00links\x00", "\x00main\x00"
_FRAME_PAGE = (
    f'{{% extends "base.html" %}}{{% block title %}}{_TITLE}{{% endblock %}}'
    f"{{% block main %}}{_MAIN}{{% endblock %}}"
)


@functools.lru_cache(maxsize=64)
def _frame(templates: Environment, site: Site) -> tuple[str, str, str, str]:
    """base.html for `site` in four pieces: up to the page's title, up to the autodiscovery
    links, up to its main part, and the rest. The same on every page of a site: rendered for
    each page, it was 15 % of a story page's instructions (1.42 M of them, callgrind)."""
    frame = templates.from_string(_FRAME_PAGE).render(
        site=site,
        css_url=site.url(CSS_PATH),
        opml_url=site.url("/feeds.opml"),
        alternate_links=Markup(_LINKS),
    )
    before_title, rest = frame.split(_TITLE)
    before_links, rest = rest.split(_LINKS)
    before_main, after_main = rest.split(_MAIN)
    return before_title, before_links, before_main, after_main


# The parts of a page made only of the feeds it links are the same on every page that links
# those feeds (the story pages of the same topics, the pages of one feed), so each is rendered
# by its macro once per process and feed, not once per page: the head's autodiscovery links
# and a story's list of story feeds were 0.43 of the 0.75 ms a story's page took. By feed, not
# by set of feeds: 10,000 stories link 4,674 sets of story feeds, made of 31 feeds.
# Keyed by the templates' environment too, so that no app gets another's templates.
@functools.lru_cache(maxsize=4096)
def _alternate_links(templates: Environment, listing: FeedListing) -> str:
    """A feed's `<link rel="alternate">`s, one a line, each format's."""
    return str(_macros(templates).alternate_links(subscriptions(listing)))


@functools.lru_cache(maxsize=4096)
def _subscribe_links(
    templates: Environment, listing: FeedListing, leave_out: str | None = None
) -> Markup:
    """A feed's subscribe links (the `subscribe` macro), each format's but `leave_out`'s."""
    subs = [sub for sub in subscriptions(listing) if sub.format.extension != leave_out]
    return Markup(_macros(templates).subscribe(subs))


@functools.lru_cache(maxsize=4096)
def _story_feed(templates: Environment, listing: FeedListing) -> str:
    """A story feed as a story's page lists it: its name and subscribe links, a line."""
    return f"<li>{escape(listing.name)}: {_subscribe_links(templates, listing)}</li>\n"


def _macros(templates: Environment) -> Any:
    return templates.get_template("_macros.html").module


def _entries(
    site: Site,
    document: FeedDocument | None,
    fragments: FragmentStore | None,
    empty: str = "No articles yet.",
) -> Markup:
    """A page's articles, one a line (or `empty` when it has none), then its links to the
    newer and older pages: made here, not by a macro, which every page imported and called."""
    if document is None:
        return Markup("")
    if document.entries:
        parts = [_articles(site, fragments)(document.entries), "\n"]
    else:
        parts = [f"<p>{_text(empty)}</p>\n"]
    if document.pages > 1:
        parts.append('<nav class="paging" aria-label="Pages">\n')
        for link in document.paging:
            if link.rel == "previous":
                parts.append(f'<a rel="prev" href="{_text(link.href)}">Newer articles</a>\n')
            elif link.rel == "next":
                parts.append(f'<a rel="next" href="{_text(link.href)}">Older articles</a>\n')
        parts.append(f"<span>Page {document.page} of {document.pages}</span>\n</nav>\n")
    return Markup("".join(parts))


def _articles(site: Site, fragments: FragmentStore | None) -> Callable[[Iterable[Entry]], Markup]:
    """Entries' `<article>`s, one a line, each rendered
    by the `article` macro once per entry and site. Joined here, not in the template: a page's
    50 calls from its loop were a third of an HTML page's render."""
    templates = current_app.jinja_env

    def article(entry: Entry) -> str:
        if fragments is None:
            return str(_macros(templates).article(site, entry))
        key = (_ARTICLE, site.base_url, entry)
        found = fragments.get(key)
        if found is None:  # the macro only then: on most pages every article is found
            found = str(_macros(templates).article(site, entry)).encode()
            fragments.put(key, found)
        return found.decode()

    def articles(entries: Iterable[Entry]) -> Markup:
        return Markup("\n".join([article(entry) for entry in entries]))

    return articles


_ARTICLE = "html-article"


def _by_name(listings: tuple[FeedListing, ...], scope: str) -> list[FeedListing]:
    return sorted((item for item in listings if item.scope == scope), key=lambda i: i.name.lower())
