"""HTTP: the Flask app factory and the feed routes; the only module that touches Flask's request.

Feeds are served from the render cache. A poll for a feed that is already rendered is answered by
`_CachedFeeds`, a thin WSGI layer in front of Flask that does nothing but look the response up;
everything else (first renders, errors, other routes) goes through Flask. Both paths derive the
cache key with `_feed_key` and answer with `_feed_response`, so they cannot disagree.

A browser opening a feed gets the feed's HTML view (`pages.feed_view_inputs`), a document of
its own in the same cache; `_feed_key` decides which a request gets.

Routes are generated from the format registry, so a new format is served, linked and tested
without a new branch here.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import gc
import logging
import mimetypes
import os
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    has_app_context,
    jsonify,
    request,
)
from werkzeug.exceptions import HTTPException, ServiceUnavailable
from werkzeug.sansio.utils import get_host
from werkzeug.security import safe_join
from werkzeug.utils import get_content_type
from werkzeug.wrappers import Response as WerkzeugResponse

from feedsvc import stories
from feedsvc.admission import Refused, SearchLoad, waiting_for
from feedsvc.cache import (
    Headers,
    RenderCache,
    RenderedFeed,
    rendered_feed,
    strong_etag,
)
from feedsvc.errors import FeedsvcError, PageNotFound, QueryError
from feedsvc.feeds import (
    EPOCH,
    VIEW_SUFFIX,
    Entries,
    FeedDocument,
    FeedListing,
    FeedPage,
    Site,
    feed_page,
    find_feed,
    opml_listings,
)
from feedsvc.fulltext import SearchIndex, open_index
from feedsvc.headers import content_coding, etag_matches, http_date, prefers_html
from feedsvc.metrics import CONTENT_TYPE, access_log, log_access, quoted
from feedsvc.pages import (
    CONTENT_SECURITY_POLICY,
    HTML_MEDIA_TYPE,
    PageInputs,
    StoryPageInputs,
    feed_page_inputs,
    feed_view_inputs,
    index_inputs,
    render_not_found,
    render_page,
    render_search_page,
    render_story_page,
    search_page_inputs,
    story_inputs,
    time_element,
)
from feedsvc.render import FORMATS, OPML_MEDIA_TYPE, FragmentStore, render_opml
from feedsvc.repository import Collection, CollectionLoader, loader_for
from feedsvc.search import Question, SearchFeed, describe, read_question
from feedsvc.settings import ENV_PREFIX, Settings, defaults
from feedsvc.versions import Snapshot, Versions
from feedsvc.warmup import warm_up_rendering

bp = Blueprint("feeds", __name__)
_EXTENSION_KEY = "feedsvc"

# (scope, slug, extension, page, base URL): everything a rendered feed depends on. A feed's
# HTML view has its own key, whose extension is the feed's plus VIEW_SUFFIX ("atom.html").
FeedKey = tuple[str, str | None, str, int, str]
_FEED_PATH = re.compile(
    rf"/feeds/(?:(?P<all>all)|(?P<scope>topics|providers)/(?P<slug>[^/]+)"
    rf"|stories/(?:(?P<stories>all)|topics/(?P<story_topic>[^/]+)))"
    rf"\.(?P<extension>{'|'.join(map(re.escape, FORMATS))})(?P<view>{re.escape(VIEW_SUFFIX)})?"
)
_NOT_MODIFIED = "304 Not Modified"
_OK = "200 OK"
# Every response carries it (feeds through the fast path too), so that no browser guesses a type.
NOSNIFF = ("X-Content-Type-Options", "nosniff")
_PAGE_HEADERS: Headers = (("Content-Security-Policy", CONTENT_SECURITY_POLICY),)
_PAGE_DIGITS = re.compile(r"[0-9]+")
# Past the end of any feed: a page number longer than this is not converted (Python refuses
# int() on more than 4,300 digits, and nothing needs that many).
_HUGE_PAGE = 10**18
# Set in the WSGI environ by Flask-side code for the access log and the metrics.
_ROUTE = "feedsvc.route"
_CACHE = "feedsvc.cache"


class _State(Versions):
    """What one app serves: the current version (see feedsvc.versions) and the headers and base
    URL every response needs, built once."""

    def __init__(self, settings: Settings, loader: CollectionLoader) -> None:
        super().__init__(settings, loader)
        self.base_url = settings.base_url.rstrip("/") if settings.base_url else None
        self.hubs = settings.websub_hubs
        # The same on every feed response, 200 or 304; built once.
        self.feed_headers: Headers = (
            ("Cache-Control", f"public, max-age={settings.cache_max_age}"),
            ("Vary", "Accept-Encoding, Accept"),
            ("Access-Control-Allow-Origin", "*"),
            NOSNIFF,
        )
        self.search = _open_search(settings, self.collection)
        self.search_load = SearchLoad()
        # HTML (pages, feeds' views) also carries the pages' policy: no script, no framing.
        self.page_headers: Headers = (*self.feed_headers, *_PAGE_HEADERS)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then `FEEDSVC_*` environment variables, then `config`."""
    app = Flask(__name__)
    app.view_functions["static"] = _static_file
    app.config.from_mapping(defaults())
    app.config.from_prefixed_env(ENV_PREFIX)
    app.config.update(config or {})
    settings = Settings.from_mapping(app.config)
    loader = loader_for(settings)
    state = _State(settings, loader)
    app.extensions[_EXTENSION_KEY] = state
    app.jinja_env.trim_blocks = True  # templates read like HTML without leaving blank lines
    app.jinja_env.lstrip_blocks = True
    app.jinja_env.globals["date"] = time_element  # a page's dates, in every template
    app.register_blueprint(bp)
    app.before_request(_note_route)
    app.register_error_handler(HTTPException, _plain_error)
    app.after_request(_security_headers)
    app.wsgi_app = _CachedFeeds(app.wsgi_app, state)  # type: ignore[method-assign]
    # Stories first (when any were asked for): the renders kept next may be story feeds.
    window = state.settings.story_window_days
    state.preparers.append(lambda snapshot: stories.follow(snapshot.collection, window))
    state.preparers.append(lambda snapshot: _keep_unchanged_renders(state, snapshot))
    _warm_up_routes(app)
    warm_up_rendering()
    return app


def _warm_up_routes(app: Flask) -> None:
    """Werkzeug compiles its URL matcher on the first match, and the regular expression of each
    rule's variable parts when a path first reaches it (4 ms for a first feed request, measured
    with bench/rendering.py); done here for every rule, it happens once in the process that
    forks the workers instead of in each worker's first requests."""
    adapter = app.url_map.bind("localhost")
    for path in route_samples(app):
        with contextlib.suppress(HTTPException):
            adapter.match(path, "GET")


_VARIABLE = re.compile(r"<any\((?P<first>[^,)]+)[^>]*>|<[^>]*>")


def route_samples(app: Flask) -> list[str]:
    """A path each rule of `app` matches: its first choice for an `any` part, `x` for others."""
    return [
        _VARIABLE.sub(lambda match: match["first"] or "x", rule.rule)
        for rule in app.url_map.iter_rules()
    ]


def _static_file(filename: str) -> WerkzeugResponse:
    """A stylesheet (/static/...) with an ETag over its bytes: Flask's own is made of the
    installed file's path and time, which differ from one machine or install to the next, and
    instances behind one address must agree. Last-Modified stays the file's time (the static
    build gives its copy that time)."""
    found = _static_bytes(current_app.static_folder or "", filename)
    if found is None:
        abort(404)
    body, media_type, etag, modified = found
    response = Response(body, content_type=media_type, headers={"Cache-Control": "no-cache"})
    response.set_etag(etag)
    response.last_modified = modified
    return response.make_conditional(request)


@functools.lru_cache(maxsize=32)
def _static_bytes(folder: str, filename: str) -> tuple[bytes, str, str, datetime] | None:
    """A static file's bytes, media type, ETag and modification time, read once per process;
    None when there is no such file in `folder`."""
    path = safe_join(folder, filename)
    if path is None or not os.path.isfile(path):
        return None
    with open(path, "rb") as handle:
        body = handle.read()
        modified = datetime.fromtimestamp(os.fstat(handle.fileno()).st_mtime, UTC)
    guessed = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    return body, get_content_type(guessed, "utf-8"), strong_etag(body), modified


def _state() -> _State:
    state: _State = current_app.extensions[_EXTENSION_KEY]
    return state


def _note_route() -> None:
    """The matched endpoint names the route in the access log and metrics (None: no route)."""
    request.environ[_ROUTE] = request.endpoint or "unmatched"


def _plain_error(error: HTTPException) -> WerkzeugResponse:
    """Errors are short plain text: no HTML page, no stack trace, no file path."""
    response = error.get_response()  # keeps headers such as a 405's Allow
    response.set_data(f"{error.code} {error.name}: {error.description}\n")
    response.content_type = "text/plain; charset=utf-8"
    return response


def _security_headers(response: WerkzeugResponse) -> WerkzeugResponse:
    """Every response Flask makes (errors, health, first renders) gets what the fast path's
    prebuilt headers carry."""
    response.headers[NOSNIFF[0]] = NOSNIFF[1]
    return response


def _page(query: str) -> int | None:
    """The `page` query parameter (1 when absent; the first one when repeated); None when it is
    not a positive whole number in ASCII digits. Other parameters are ignored."""
    if not query:
        return 1
    raw = next(
        (value for name, value in parse_qsl(query, keep_blank_values=True) if name == "page"), "1"
    )
    if not _PAGE_DIGITS.fullmatch(raw):  # str.isdigit() would take "²" and "١"
        return None
    digits = raw.lstrip("0")
    if not digits:
        return None
    return int(digits) if len(digits) < 18 else _HUGE_PAGE


def _base_url(state: _State, environ: dict[str, Any]) -> str | None:
    """Absolute URLs come from BASE_URL when set, else from the request's own scheme and host
    (as Werkzeug's `request.host_url` would give them); None when the Host header is not a
    valid host, which would make every link in the feed `http:///...`."""
    if state.base_url:
        return state.base_url
    scheme = environ["wsgi.url_scheme"]
    server = (environ.get("SERVER_NAME", ""), int(environ.get("SERVER_PORT") or 0) or None)
    host = get_host(scheme, environ.get("HTTP_HOST"), server)
    if not host:
        return None
    return f"{scheme}://{host.lower()}{environ.get('SCRIPT_NAME', '').rstrip('/')}"


def _feed_key(state: _State, environ: dict[str, Any]) -> FeedKey | None:
    """The cache key of the feed a request asks for, or of the feed's HTML view when its URL
    names the view or the request prefers HTML to the feed's type (a browser opening the
    link); None if it is not a well-formed feed URL or its host is unusable."""
    match = _FEED_PATH.fullmatch(environ.get("PATH_INFO", ""))
    if match is None:  # before the query is read: other paths' queries can be long
        return None
    page = _page(environ.get("QUERY_STRING", ""))
    if page is None:
        return None
    base_url = _base_url(state, environ)
    if base_url is None:
        return None
    if match["stories"] or match["story_topic"]:
        scope, slug = (
            ("story-topics", match["story_topic"]) if match["story_topic"] else ("stories", None)
        )
    else:
        scope, slug = "all" if match["all"] else match["scope"], match["slug"]
    extension = match["extension"]
    if match["view"] or _wants_view(environ.get("HTTP_ACCEPT")):
        extension += VIEW_SUFFIX
    return (scope, slug, extension, page, base_url)


# A request gets a feed's HTML view when it prefers text/html to every feed type, as a browser
# opening a link does; not merely to this feed's own type, so that a feed reader that asks for
# Atom and RSS, and for HTML less, still gets a JSON feed. Readers that ask for `*/*` or for
# no type at all get the feed.
_FEED_MEDIA_TYPES = tuple(fmt.media_type for fmt in FORMATS.values())


def _wants_view(accept: str | None) -> bool:
    if not accept:
        return False
    for media_type in _FEED_MEDIA_TYPES:  # a loop, not all(): on every feed request
        if not prefers_html(accept, media_type):
            return False
    return True


def _not_modified(etag: str, last_modified: datetime, environ: dict[str, Any]) -> bool:
    """RFC 9110 §13.1: If-None-Match (weak comparison) decides when present, else a current
    If-Modified-Since; a malformed date is ignored."""
    if_none_match = environ.get("HTTP_IF_NONE_MATCH")
    if if_none_match is not None:
        return etag_matches(if_none_match, etag)
    since = http_date(environ.get("HTTP_IF_MODIFIED_SINCE"))
    return since is not None and last_modified.replace(microsecond=0) <= since


def _feed_response(
    state: _State, rendered: RenderedFeed, environ: dict[str, Any]
) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body for a rendered document: the client's coding, or 304."""
    variant = rendered.variant(content_coding(environ.get("HTTP_ACCEPT_ENCODING")))
    shared = state.page_headers if rendered.media_type == HTML_MEDIA_TYPE else state.feed_headers
    modified, headers = rendered.last_modified, variant.headers
    if rendered.modified_at > time.time():
        modified, headers = _not_ahead(state.snapshot.collection.modified, headers)
    if _not_modified(variant.etag, modified, environ):
        return _NOT_MODIFIED, [*variant.validators, *shared], b""
    return _OK, [*headers, *shared], variant.body


def _not_ahead(files_modified: datetime, headers: Headers) -> tuple[datetime, Headers]:
    """A Last-Modified ahead of the clock (a record dated in the future) may not be sent (RFC
    9110 §8.8.2.1: never later than Date): the files' modification time is sent instead (or the
    time of the answer, if that too is ahead). Decided when answering, from the files alone, so
    that every worker, instance and restart sends the same one, and it holds still between
    changes."""
    now = datetime.now(UTC).replace(microsecond=0)
    modified = min(files_modified, now)
    date = email.utils.format_datetime(modified, usegmt=True)
    return modified, tuple(
        (name, date if name == "Last-Modified" else value) for name, value in headers
    )


StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _CachedFeeds:
    """Answers GET and HEAD for feeds already in the render cache without entering Flask."""

    def __init__(self, app: WsgiApp, state: _State) -> None:
        self.app = app
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD")
        if method == "GET" or method == "HEAD":
            key = _feed_key(self.state, environ)
            renders = self.state.renders
            if key is None:
                key, renders = _search_key(self.state, environ), self.state.custom_renders
            self.state.ensure_watching()
            number = self.state.snapshot.number
            rendered = renders.get(key, number, count_miss=False) if key is not None else None
            if rendered is not None and key is not None:
                status, headers, body = _feed_response(self.state, rendered, environ)
                start_response(status, headers)
                size = len(body) if method == "GET" else 0
                route = _FAST_ROUTES.get(key[0], "feeds.group_feed")
                self._answered(environ, route, status, size, started, "hit")
                return [body] if method == "GET" else []
            if key is not None and key[0] == SEARCH and self.state.search_load.crowded():
                return self._too_busy(environ, start_response, started)
        return self._through_flask(environ, start_response, started)

    def _too_busy(
        self, environ: dict[str, Any], start_response: StartResponse, started: float
    ) -> Iterable[bytes]:
        """A 503 for a search this process has no time for now, answered here: refusing it
        must cost what a cached poll costs, or a flood of refusals would slow the polls."""
        body = f"503 Service Unavailable: {_TOO_BUSY}\n".encode()
        status = "503 Service Unavailable"
        start_response(status, [*_TOO_BUSY_HEADERS, ("Content-Length", str(len(body)))])
        self._answered(environ, "feeds.search_feed", status, len(body), started, "-")
        return [body] if environ.get("REQUEST_METHOD") == "GET" else []

    def _through_flask(
        self, environ: dict[str, Any], start_response: StartResponse, started: float
    ) -> Iterable[bytes]:
        answer: list[Any] = ["500", ()]

        def recording(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            answer[:] = status, headers
            return start_response(status, headers, *exc_info)

        body = self.app(environ, recording)
        status, headers = answer
        size = 0
        if environ.get("REQUEST_METHOD") != "HEAD":
            size = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        cache = environ.get(_CACHE, "-")
        route = environ.get(_ROUTE, "unmatched")
        self._answered(environ, route, status, size, started, cache)
        return body

    def _answered(
        self,
        environ: dict[str, Any],
        route: str,
        status: str,
        size: int,
        started: float,
        cache: str,
    ) -> None:
        """Count the request and write its access log line (cheap when INFO is off)."""
        self.state.metrics.request(route, status, cache == "hit", started)
        if access_log.isEnabledFor(logging.INFO):
            path = environ.get("PATH_INFO", "")
            query = environ.get("QUERY_STRING")
            method = quoted(environ.get("REQUEST_METHOD", ""))
            target = quoted(f"{path}?{query}" if query else path)
            duration = (time.perf_counter() - started) * 1000
            log_access(
                f"method={method} path={target} status={status[:3]} bytes={size} "
                f"duration_ms={duration:.3f} cache={cache}"
            )


def serve_with_threads(app: Flask, threads: int) -> None:
    """Tell `app` that its server runs `threads` threads per worker: searches may then wait for
    their turn on some of them (feedsvc.admission) instead of being refused at once."""
    state: _State = app.extensions[_EXTENSION_KEY]
    state.search_load.waiting = waiting_for(threads)


def prepare_workers(app: Flask) -> None:
    """Work done once in the process that forks the workers (`feedsvc serve`), so that they
    share it instead of each doing it: the stories grouped (STORY_GROUPING `start`), then the
    objects made so far frozen (a worker's collector would otherwise walk them, and writing to
    their pages copies them). Reloads regroup in place, in each worker, what they change."""
    state: _State = app.extensions[_EXTENSION_KEY]
    if state.settings.story_grouping == "start":
        stories.stories_of(state.snapshot.collection, state.settings.story_window_days)
        gc.freeze()


def site_for(app: Flask, base_url: str) -> Site:
    """The site `app` renders for `base_url` (the static build fingerprints the same pages)."""
    return _site(app.extensions[_EXTENSION_KEY], base_url)


def _site(state: _State, base_url: str) -> Site:
    settings = state.settings
    return Site(
        base_url,
        settings.site_title,
        settings.language,
        settings.feed_size,
        search=state.search is not None,
        hubs=state.hubs,
    )


def _inputs_for(state: _State, collection: Collection, key: FeedKey) -> Any:
    """What the document at `key` (a feed page or its HTML view, an HTML page or the OPML list)
    is made from: equal inputs give equal bytes. The routes render from it; a reload compares
    it to keep renders (`_keep_unchanged_renders`).

    :raises PageNotFound: there is no such feed or page.
    """
    scope, slug, kind, page, base_url = key
    site = _site(state, base_url)
    if kind == _OPML:
        return opml_listings(collection, site, FORMATS)
    if scope == _STORY:
        return story_inputs(collection, site, slug or "", state.settings.story_window_days)
    feed = find_feed(collection, scope, slug, state.settings.story_window_days)
    if feed is None:
        raise PageNotFound(f"there is no feed for {scope} {slug!r}")
    if kind == _PAGE:
        if scope == "all":
            return index_inputs(collection, site, page)
        return feed_page_inputs(feed, site, page)
    if kind.endswith(VIEW_SUFFIX):
        return feed_view_inputs(feed, site, kind.removesuffix(VIEW_SUFFIX), page)
    return feed_page(feed, site, kind, page)


def _feed_inputs(state: _State, collection: Collection, key: FeedKey) -> FeedPage | PageInputs:
    """What the feed page at `key` shows, or its HTML view; 404 when there is no such feed or
    page."""
    try:
        inputs: FeedPage | PageInputs = _inputs_for(state, collection, key)
    except PageNotFound as exc:
        abort(404, description=str(exc))
    return inputs


def _keep_unchanged_renders(state: _State, snapshot: Snapshot) -> None:
    """Before a new version is served: every cached feed, page and OPML list whose inputs did
    not change is made valid for it, so that its first requests are answered by the fast path
    (about 20 µs a document here, against a pass through Flask on first request)."""
    for key in state.renders.keys():
        if not isinstance(key, tuple) or len(key) != 5 or key[2] not in _KEPT_ACROSS_VERSIONS:
            continue
        try:
            inputs = _inputs_for(state, snapshot.collection, key)
        except PageNotFound:
            continue
        state.renders.carry(key, inputs, snapshot.number)


class Document(NamedTuple):
    """A document as rendered, before the render cache gives it ETags and content codings: the
    arguments of `cache.rendered_feed`."""

    body: bytes
    media_type: str
    last_modified: datetime
    headers: Headers = ()


def _render_feed(
    state: _State, collection: Collection, page: FeedPage, extension: str
) -> RenderedFeed:
    return rendered_feed(*_feed_document(collection, page, extension, state.fragments))


def _feed_document(
    collection: Collection,
    page: FeedPage,
    extension: str,
    fragments: FragmentStore,
    entries: Entries | None = None,
) -> Document:
    fmt = FORMATS[extension]
    document = page.document(entries)
    body = fmt.assemble(document, fragments)
    modified = last_modified(collection, page.updated)
    return Document(body, fmt.media_type, modified, _websub_links(document))


def _document(
    state: _State,
    collection: Collection,
    key: FeedKey,
    inputs: Any,
    fragments: FragmentStore,
    entries: Entries | None = None,
) -> Document:
    """The document at `key` rendered from its `inputs` (`_inputs_for`): the one render of the
    routes and of the static build (`render_url`)."""
    scope, _, kind, _, base_url = key
    if kind in FORMATS:
        return _feed_document(collection, inputs, kind, fragments, entries)
    if kind == _OPML:
        return _opml_document(collection, _site(state, base_url), inputs)
    if scope == _STORY:
        return _story_document(collection, inputs)
    return _html_document(collection, inputs, fragments, entries)


def render_url(
    app: Flask, url: str, fragments: FragmentStore, entries: Entries | None = None
) -> Document:
    """The document `app` answers a GET of `url` (path and query) with, as a feed reader asks
    for it (`Accept: */*`), rendered now by the routes' own code without a request or the render
    cache: what the static build writes. Its Last-Modified is the one sent (`_not_ahead`). A
    stylesheet's document is its file. `app` has BASE_URL set.

    :raises PageNotFound: `url` is answered with no document (a 404 or a redirect).
    """
    state: _State = app.extensions[_EXTENSION_KEY]
    path, _, query = url.partition("?")
    static = f"{app.static_url_path}/"
    if path.startswith(static):
        found = _static_bytes(app.static_folder or "", path.removeprefix(static))
        if found is None:
            raise PageNotFound(f"there is no file {path}")
        body, media_type, _, modified = found
        return Document(body, media_type, modified.replace(microsecond=0))
    collection = state.snapshot.collection
    key = _url_key(app, state, path, query)
    inputs = _inputs_for(state, collection, key)
    if not has_app_context():
        with app.app_context():
            document = _document(state, collection, key, inputs, fragments, entries)
    else:
        document = _document(state, collection, key, inputs, fragments, entries)
    if document.last_modified.timestamp() > time.time():
        document = document._replace(last_modified=_not_ahead(collection.modified, ())[0])
    return document


def _url_key(app: Flask, state: _State, path: str, query: str) -> FeedKey:
    """The render cache's key of the document at `path` and `query`, as its route makes it.

    :raises PageNotFound: no route renders a document there.
    """
    base_url = state.base_url
    assert base_url is not None, "render_url needs BASE_URL"
    key = _feed_key(state, {"PATH_INFO": path, "QUERY_STRING": query, "HTTP_ACCEPT": "*/*"})
    if key is not None:
        return key
    try:
        endpoint, values = app.url_map.bind("localhost").match(path, "GET")
    except HTTPException as exc:
        raise PageNotFound(f"{path} answers {exc.code}") from None
    page = _page(query)
    if page is None:
        raise PageNotFound(f"{query!r} is not a page")
    if endpoint == "feeds.index_page":
        return ("all", None, _PAGE, page, base_url)
    if endpoint == "feeds.group_page":
        return (values["scope"], values["slug"], _PAGE, page, base_url)
    if endpoint == "feeds.story_page":
        return (_STORY, values["slug"], _PAGE, 1, base_url)
    if endpoint == "feeds.opml_list":
        return ("all", None, _OPML, 1, base_url)
    raise PageNotFound(f"{path} is not a document")


def _websub_links(document: FeedDocument) -> Headers:
    """WebSub discovery in HTTP as well as in the feed (W3C WebSub §4: subscribers and hubs look
    at the Link header first, and some hubs only there): the hubs and the topic's own URL."""
    if not document.hubs:
        return ()
    links = [f'<{hub}>; rel="hub"' for hub in document.hubs]
    return (("Link", ", ".join([*links, f'<{document.self_url}>; rel="self"'])),)


def _render_html(state: _State, collection: Collection, inputs: PageInputs) -> RenderedFeed:
    return rendered_feed(*_html_document(collection, inputs, state.fragments))


def _html_document(
    collection: Collection,
    inputs: PageInputs,
    fragments: FragmentStore,
    entries: Entries | None = None,
) -> Document:
    """A page or a feed's HTML view (Jinja, in the app's context), its articles shared."""
    body = render_page(inputs, fragments, entries).encode()
    return Document(body, HTML_MEDIA_TYPE, last_modified(collection, inputs.page.updated))


def _story_document(collection: Collection, inputs: StoryPageInputs) -> Document:
    body = render_story_page(inputs).encode()
    return Document(body, HTML_MEDIA_TYPE, last_modified(collection, inputs.story.updated))


def _opml_document(
    collection: Collection, site: Site, listings: tuple[FeedListing, ...]
) -> Document:
    body = render_opml(site.title, listings)
    newest = max((item.updated for item in listings if item.updated), default=EPOCH)
    return Document(body, OPML_MEDIA_TYPE, last_modified(collection, newest))


def last_modified(collection: Collection, newest: datetime) -> datetime:
    """A response's Last-Modified when it is rendered: the collection's modification time or
    the newest entry it shows, whichever is later, so that it moves forward whenever the
    response can have changed (an older record edited, the newest one deleted) and is the same
    in every worker and instance for the same files. One ahead of the clock (a future-dated
    entry) is not sent as it is (`_not_ahead`)."""
    return max(collection.modified, newest.replace(microsecond=0))


def _request_base_url(state: _State) -> str:
    """The base URL for this request's links; 400 when its Host header is unusable."""
    base_url = _base_url(state, request.environ)
    if base_url is None:
        abort(400, description="the Host header is missing or not a valid host name")
    return base_url


def _serve_feed() -> Response:
    """Render a feed on its first request (cache hits never reach Flask) and serve it."""
    state = _state()
    key = _feed_key(state, request.environ)
    if key is None:
        _request_base_url(state)  # an unusable Host is the reason, if it is one
        raw = request.args.get("page", "")
        abort(400, description=f"page must be a positive whole number, not {raw[:20]!r}")
    snapshot = state.snapshot
    collection = snapshot.collection
    return _cached_response(
        state,
        snapshot,
        key,
        lambda: _feed_inputs(state, collection, key),
        lambda inputs: rendered_feed(*_document(state, collection, key, inputs, state.fragments)),
    )


def _cached_response(
    state: _State,
    snapshot: Snapshot,
    key: FeedKey,
    inputs: Callable[[], Any],
    render: Callable[[Any], RenderedFeed],
    renders: RenderCache | None = None,
) -> Response:
    """Feeds, pages and the OPML list alike: the cached render (kept from an earlier version
    when its inputs are unchanged, made on a miss), in the client's coding, or a 304. Custom
    feeds pass their own cache as `renders`."""
    cache = renders if renders is not None else state.renders  # an empty cache is falsy
    rendered = _get_or_render(state, snapshot, key, inputs, render, cache)
    status, headers, body = _feed_response(state, rendered, request.environ)
    return Response(body, status, headers)


def _get_or_render(
    state: _State,
    snapshot: Snapshot,
    key: FeedKey,
    inputs: Callable[[], Any],
    render: Callable[[Any], RenderedFeed],
    renders: RenderCache,
) -> RenderedFeed:
    """The render cache's copy, else a new render; the access log and the metrics are told
    which (hit, carried or miss), and how long the render took."""
    outcome = request.environ[_CACHE] = "hit"

    def checked() -> Any:
        nonlocal outcome
        outcome = "carried"
        try:
            return inputs()
        except (HTTPException, FeedsvcError):  # no such feed or page: a miss, no render
            request.environ[_CACHE] = "miss"
            state.metrics.misses.inc()
            raise

    def timed(made: Any) -> RenderedFeed:
        nonlocal outcome
        outcome = request.environ[_CACHE] = "miss"
        state.metrics.misses.inc()
        started = time.perf_counter()
        rendered = render(made)
        state.metrics.render_seconds.observe(time.perf_counter() - started)
        return rendered

    rendered = renders.get_or_render(key, timed, checked, snapshot.number)
    if outcome == "carried":
        request.environ[_CACHE] = "carried"
        state.metrics.carried.inc()
    return rendered


# Routes come from the format registry: `/feeds/all.atom`, `/feeds/topics/ai.rss`, ...; each
# feed's HTML view also at its own URL, `/feeds/all.atom.html` (`_feed_key` tells them apart).
# Four functions with one body, kept apart on purpose: the endpoint is the `route` label of the
# metrics and the access log (and `_FAST_ROUTES` counts cache hits under it), so one function
# for every kind of feed would count them all as one route.
_EXTENSION = f"<any({', '.join(FORMATS)}):extension>"


@bp.get(f"/feeds/all.{_EXTENSION}")
@bp.get(f"/feeds/all.{_EXTENSION}{VIEW_SUFFIX}")
def all_items_feed(extension: str) -> Response:
    return _serve_feed()


@bp.get(f"/feeds/<any(topics, providers):scope>/<slug>.{_EXTENSION}")
@bp.get(f"/feeds/<any(topics, providers):scope>/<slug>.{_EXTENSION}{VIEW_SUFFIX}")
def group_feed(scope: str, slug: str, extension: str) -> Response:
    return _serve_feed()


@bp.get(f"/feeds/stories/all.{_EXTENSION}")
@bp.get(f"/feeds/stories/all.{_EXTENSION}{VIEW_SUFFIX}")
def all_stories_feed(extension: str) -> Response:
    return _serve_feed()


@bp.get(f"/feeds/stories/topics/<slug>.{_EXTENSION}")
@bp.get(f"/feeds/stories/topics/<slug>.{_EXTENSION}{VIEW_SUFFIX}")
def topic_stories_feed(slug: str, extension: str) -> Response:
    return _serve_feed()


# Pages and the OPML list share the render cache with the feeds, under keys whose "extension"
# is not a feed format, so they are rendered once per collection version and get the same
# ETags, compression and conditional GET.
_PAGE = "html"
_OPML = "opml"
_STORY = "story"  # the scope of a story's page: `("story", <slug>, "html", 1, base URL)`
_KEPT_ACROSS_VERSIONS = frozenset(
    [*FORMATS, *(f"{ext}{VIEW_SUFFIX}" for ext in FORMATS), _PAGE, _OPML]
)


def _page_or_404(scope: str, slug: str | None) -> WerkzeugResponse:
    """An HTML page (the index when scope is "all"), or the HTML 404 page."""
    state = _state()
    base_url = _request_base_url(state)
    page = _page(request.query_string.decode("latin-1"))
    if page is None:
        abort(400, description="page must be a positive whole number")
    snapshot = state.snapshot
    feed = find_feed(snapshot.collection, scope, slug)
    if feed is None:
        return _not_found_page(state, base_url, f"There is no {scope[:-1]} called {slug!r} here.")
    key: FeedKey = (scope, slug, _PAGE, page, base_url)
    try:
        return _cached_response(
            state,
            snapshot,
            key,
            lambda: _inputs_for(state, snapshot.collection, key),
            lambda inputs: rendered_feed(
                *_document(state, snapshot.collection, key, inputs, state.fragments)
            ),
        )
    except PageNotFound as exc:
        return _not_found_page(state, base_url, f"This page does not exist: {exc}.")


def _not_found_page(state: _State, base_url: str, message: str) -> WerkzeugResponse:
    body = render_not_found(_site(state, base_url), message)
    return Response(body, 404, _PAGE_HEADERS, content_type=HTML_MEDIA_TYPE)


@bp.get("/")
def index_page() -> WerkzeugResponse:
    return _page_or_404("all", None)


@bp.get("/<any(topics, providers):scope>/<slug>")
def group_page(scope: str, slug: str) -> WerkzeugResponse:
    return _page_or_404(scope, slug)


@bp.get("/stories/<slug>")
def story_page(slug: str) -> WerkzeugResponse:
    """One story with all of its coverage (the page a story entry's content links to)."""
    state = _state()
    base_url = _request_base_url(state)
    snapshot = state.snapshot
    key: FeedKey = (_STORY, slug, _PAGE, 1, base_url)
    try:
        return _cached_response(
            state,
            snapshot,
            key,
            lambda: _inputs_for(state, snapshot.collection, key),
            lambda inputs: rendered_feed(
                *_document(state, snapshot.collection, key, inputs, state.fragments)
            ),
        )
    except PageNotFound:
        return _not_found_page(state, base_url, f"There is no story {slug!r} here.")


@bp.get("/feeds.opml")
def opml_list() -> Response:
    """Every feed once, grouped as on the index, for a feed reader's import."""
    state = _state()
    snapshot = state.snapshot
    key: FeedKey = ("all", None, _OPML, 1, _request_base_url(state))

    return _cached_response(
        state,
        snapshot,
        key,
        lambda: _inputs_for(state, snapshot.collection, key),
        lambda inputs: rendered_feed(
            *_document(state, snapshot.collection, key, inputs, state.fragments)
        ),
    )


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format; with several workers, their sum (see feedsvc.metrics)."""
    return Response(_state().metrics.exposition(), content_type=CONTENT_TYPE)


@bp.get("/healthz")
def healthz() -> Response:
    state = _state()
    collection, renders = state.snapshot.collection, state.renders
    loaded = state.loader.stats
    return jsonify(
        status="ok",
        pid=os.getpid(),  # which worker answered: its caches and counters are its own
        version=collection.version,
        loaded_at=collection.loaded_at.isoformat() if collection.loaded_at else None,
        reloads=state.reloads,
        reload_watch=state.watch_mode,
        files=loaded.files,
        parsed=loaded.parsed,
        parse_cache_hits=loaded.cache_hits,
        records=len(collection.records),
        rejected=len({problem.path for problem in collection.rejections}),
        warnings=len(collection.warnings),
        topics=len(collection.topics),
        providers=len(collection.providers),
        render_cache={
            "entries": len(renders),
            "bytes": renders.size,
            "hits": renders.stats.hits,
            "misses": renders.stats.misses,
            "evictions": renders.stats.evictions,
            "carried": renders.stats.carried,
            "fragments": len(state.fragments),
            "fragment_bytes": state.fragments.size,
        },
        search=_search_health(state),
    )


# -- search ---------------------------------------------------------------------------------------
#
# `/feeds/search.<format>?q=...` and `/search?q=...` (see feedsvc.search for the language). A
# question has one canonical query string: any other spelling is redirected to it (301), so
# caches and aggregators share one copy, and only canonical URLs are rendered and cached, under
# the raw query string, which is what lets the fast path answer a repeated poll unparsed. Their
# renders live in the render cache's own share for custom feeds.

SEARCH = "search"
# The route a cache hit is counted under, by the scope of its key: as Flask names the endpoint.
_FAST_ROUTES = {
    "all": "feeds.all_items_feed",
    "topics": "feeds.group_feed",
    "providers": "feeds.group_feed",
    "stories": "feeds.all_stories_feed",
    "story-topics": "feeds.topic_stories_feed",
    SEARCH: "feeds.search_feed",
}
_SEARCH_FEED_PATH = re.compile(
    rf"/feeds/search\.(?P<extension>{'|'.join(map(re.escape, FORMATS))})"
    rf"(?P<view>{re.escape(VIEW_SUFFIX)})?"
)
_TOO_BUSY_HEADERS: Headers = (
    ("Content-Type", "text/plain; charset=utf-8"),
    ("Retry-After", "1"),
    ("Cache-Control", "no-store"),
    ("Access-Control-Allow-Origin", "*"),
    NOSNIFF,
)
_ASK_SOMETHING = (
    "a search needs words (q) or a filter (topic, provider, not_topic, not_provider, since)"
)
_MAX_PARAMETERS = 64
_TOO_BUSY = "too many searches at once; try again in a second"


def _open_search(settings: Settings, collection: Collection) -> SearchIndex | None:
    """The collection's search index (built now, or reused from the last start), unless off."""
    if settings.search_index == "off":
        return None
    return open_index(settings.search_index_file(), collection)


def _search_key(state: _State, environ: dict[str, Any]) -> FeedKey | None:
    """The cache key of a search feed: its raw query string, which is the canonical one for
    every search feed that was rendered (others are redirected, not rendered)."""
    match = _SEARCH_FEED_PATH.fullmatch(environ.get("PATH_INFO", ""))
    if match is None or state.search is None:
        return None
    base_url = _base_url(state, environ)
    if base_url is None:
        return None
    extension = match["extension"]
    if match["view"] or _wants_view(environ.get("HTTP_ACCEPT")):
        extension += VIEW_SUFFIX
    return (SEARCH, environ.get("QUERY_STRING", ""), extension, 0, base_url)


def _search_request() -> tuple[Question, int]:
    """The question and page this request asks for.

    :raises QueryError: the query string cannot be read.
    """
    query = request.environ.get("QUERY_STRING", "")
    try:
        # As Werkzeug reads it: the raw bytes as UTF-8, escapes too, bad bytes replaced.
        text = query.encode("latin-1").decode("utf-8", "replace")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_PARAMETERS)
    except (UnicodeEncodeError, ValueError):
        raise QueryError(f"a search has at most {_MAX_PARAMETERS} parameters") from None
    page = _page(query)
    if page is None:
        raw = next((value for name, value in pairs if name == "page"), "")
        raise QueryError(f"page must be a positive whole number, not {raw[:20]!r}")
    return read_question(pairs), page


def _search_index(state: _State) -> SearchIndex:
    """The index, following the current version of the collection; 404 when search is off."""
    if state.search is None:
        abort(404, description="search is turned off on this server (SEARCH_INDEX=off)")
    return state.search


def _canonical_redirect(state: _State, base_url: str, question: Question, page: int) -> Response:
    """301 to the canonical URL of this question (with the feeds' CORS and caching headers, so
    that a web-based reader may follow it)."""
    query = question.query_string(page)
    location = f"{base_url}{request.path}" + (f"?{query}" if query else "")
    headers = [("Location", location), *state.feed_headers]
    return Response(f"301 Moved Permanently: {location}\n", 301, headers, mimetype="text/plain")


def _is_canonical(question: Question, page: int) -> bool:
    return bool(request.environ.get("QUERY_STRING", "") == question.query_string(page))


def _search_feed(state: _State, snapshot: Snapshot, question: Question, site: Site) -> SearchFeed:
    """The feed of this question's matches in this version of the collection.

    :raises QueryError: the search used up its CPU time.
    """
    index = _search_index(state)
    index.follow(snapshot.collection, snapshot.number)
    collection = snapshot.collection
    matches = index.search(question)
    return SearchFeed(
        question, matches, describe(question, collection.topics, collection.providers)
    )


def _in_turn(
    state: _State, snapshot: Snapshot, key: FeedKey, answer: Callable[[], WerkzeugResponse]
) -> WerkzeugResponse:
    """`answer()`: at once when the search is rendered already, else in its turn among the
    searches of this process (feedsvc.admission); 503 when it gets none."""
    if state.custom_renders.holds(key, snapshot.number):
        return answer()
    try:
        with state.search_load.turn():
            return answer()
    except Refused:
        raise ServiceUnavailable(_TOO_BUSY, retry_after=1) from None


@bp.get(f"/feeds/search.{_EXTENSION}")
@bp.get(f"/feeds/search.{_EXTENSION}{VIEW_SUFFIX}")
def search_feed(extension: str) -> WerkzeugResponse:
    """The feed of a question's matches, newest first."""
    state = _state()
    base_url = _request_base_url(state)
    _search_index(state)
    try:
        question, page = _search_request()
    except QueryError as exc:
        abort(400, description=str(exc))
    if question.empty:
        abort(400, description=_ASK_SOMETHING)
    if not _is_canonical(question, page):
        return _canonical_redirect(state, base_url, question, page)
    snapshot = state.snapshot
    site = _site(state, base_url)
    key = _search_key(state, request.environ)
    assert key is not None  # the route matched, search is on, the Host is usable
    view = key[2].endswith(VIEW_SUFFIX)

    def inputs() -> FeedPage | PageInputs:
        try:
            feed = _search_feed(state, snapshot, question, site)
            if view:
                return feed_view_inputs(feed, site, extension, page)
            return feed_page(feed, site, extension, page)
        except QueryError as exc:
            abort(400, description=str(exc))
        except PageNotFound as exc:
            abort(404, description=str(exc))

    return _in_turn(
        state,
        snapshot,
        key,
        lambda: _cached_response(
            state,
            snapshot,
            key,
            inputs,
            lambda made: (
                _render_html(state, snapshot.collection, made)
                if view
                else _render_feed(state, snapshot.collection, made, extension)
            ),
            renders=state.custom_renders,
        ),
    )


@bp.get("/search")
def search_page() -> WerkzeugResponse:
    """The search form, and the results of a question with its subscribe links."""
    state = _state()
    base_url = _request_base_url(state)
    site = _site(state, base_url)
    if state.search is None:
        return _not_found_page(state, base_url, "Search is turned off on this site.")
    snapshot = state.snapshot
    topics = tuple((slug, group.name) for slug, group in snapshot.collection.topics.items())
    try:
        question, page = _search_request()
    except QueryError as exc:
        return _search_error_page(site, Question(), topics, str(exc))
    if question.empty:
        page = 1  # the form alone: no pages
    if not _is_canonical(question, page):
        return _canonical_redirect(state, base_url, question, page)
    key: FeedKey = (SEARCH, question.query_string(page), _PAGE, 0, base_url)

    def inputs() -> Any:
        if question.empty:
            return search_page_inputs(site, question, topics)
        feed = _search_feed(state, snapshot, question, site)
        return search_page_inputs(site, question, topics, feed, page)

    def render(made: Any) -> RenderedFeed:
        body = render_search_page(made, state.fragments).encode()
        newest = made.page.updated if made.page is not None else snapshot.collection.updated
        return rendered_feed(
            body, HTML_MEDIA_TYPE, last_modified(snapshot.collection, newest or EPOCH)
        )

    try:
        return _in_turn(
            state,
            snapshot,
            key,
            lambda: _cached_response(state, snapshot, key, inputs, render, state.custom_renders),
        )
    except QueryError as exc:
        return _search_error_page(site, question, topics, str(exc))
    except PageNotFound as exc:
        return _not_found_page(state, base_url, f"This page does not exist: {exc}.")


def _search_error_page(
    site: Site, question: Question, topics: tuple[tuple[str, str], ...], message: str
) -> WerkzeugResponse:
    """The form again, with what was wrong (400)."""
    body = render_search_page(search_page_inputs(site, question, topics, error=message))
    return Response(body, 400, _PAGE_HEADERS, content_type=HTML_MEDIA_TYPE)


def _search_health(state: _State) -> dict[str, Any] | None:
    if state.search is None:
        return None
    custom = state.custom_renders
    return {
        "overlay": state.search.overlay_size,
        "folds": state.search.folds,
        "refused": state.search_load.refused,
        "cache_entries": len(custom),
        "cache_bytes": custom.size,
        "cache_evictions": custom.stats.evictions,
    }
