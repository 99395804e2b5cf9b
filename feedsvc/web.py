"""HTTP: the Flask app factory and the feed routes; the only module that touches Flask's request.

Routes are generated from the format registry, so a new format is served, linked and tested
without a new branch here.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request
from werkzeug.datastructures import Accept
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from feedsvc.cache import CODINGS, IDENTITY, RenderCache, RenderedFeed, rendered_feed
from feedsvc.errors import PageNotFound
from feedsvc.feeds import Feed, Site, feed_document, find_feed
from feedsvc.render import FORMATS
from feedsvc.repository import Collection, load_collection
from feedsvc.settings import ENV_PREFIX, Settings, defaults

log = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__)
_EXTENSION_KEY = "feedsvc"


class _State:
    """What one app serves: its settings, the loaded collection and that collection's renders."""

    def __init__(self, settings: Settings, collection: Collection) -> None:
        self.settings = settings
        self.collection = collection
        self.renders = RenderCache(settings.render_cache_bytes)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then `FEEDSVC_*` environment variables, then `config`."""
    app = Flask(__name__)
    app.config.from_mapping(defaults())
    app.config.from_prefixed_env(ENV_PREFIX)
    app.config.update(config or {})
    settings = Settings.from_mapping(app.config)
    collection = load_collection(settings.seeds_dir, settings.asset_base_url)
    app.extensions[_EXTENSION_KEY] = _State(settings, collection)
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _plain_error)
    return app


def _state() -> _State:
    state: _State = current_app.extensions[_EXTENSION_KEY]
    return state


def _site(settings: Settings) -> Site:
    """Absolute URLs come from BASE_URL when set, else from the request's own host."""
    base_url = settings.base_url or request.host_url
    return Site(base_url.rstrip("/"), settings.site_title, settings.language, settings.feed_size)


def _plain_error(error: HTTPException) -> WerkzeugResponse:
    """Errors are short plain text: no HTML page, no stack trace, no file path."""
    response = error.get_response()  # keeps headers such as a 405's Allow
    response.set_data(f"{error.code} {error.name}: {error.description}\n")
    response.content_type = "text/plain; charset=utf-8"
    return response


def _page_number() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or int(raw) < 1:
        abort(400, description=f"page must be a positive whole number, not {raw[:20]!r}")
    return int(raw)


def _render(feed: Feed, site: Site, extension: str, page: int) -> RenderedFeed:
    fmt = FORMATS[extension]
    try:
        document = feed_document(feed, site, extension, page)
    except PageNotFound as exc:
        abort(404, description=str(exc))
    return rendered_feed(fmt.render(document), fmt.media_type, feed.updated)


def _coding(accepted: Accept) -> str:
    """The best content coding the client accepts (`br` before `gzip` on a tie), else identity."""
    best = max(CODINGS, key=accepted.quality)  # max keeps the first of equals
    return best if accepted.quality(best) > 0 else IDENTITY


def _serve_feed(scope: str, slug: str | None, extension: str) -> WerkzeugResponse:
    state = _state()
    feed = find_feed(state.collection, scope, slug)
    if feed is None:
        abort(404, description=f"there is no feed for {scope} {slug!r}")
    site, page = _site(state.settings), _page_number()
    key = (feed.path, extension, page, site.base_url)
    rendered = state.renders.get_or_render(key, lambda: _render(feed, site, extension, page))
    variant = rendered.variants[_coding(request.accept_encodings)]
    response = Response(variant.body, content_type=rendered.media_type)
    if variant.coding != IDENTITY:
        response.content_encoding = variant.coding
    response.set_etag(variant.etag)
    response.last_modified = rendered.last_modified
    response.cache_control.public = True
    response.cache_control.max_age = state.settings.cache_max_age
    response.vary.add("Accept-Encoding")
    response.access_control_allow_origin = "*"
    # Answers 304 for a matching If-None-Match (which takes priority) or a current
    # If-Modified-Since, keeping ETag, Cache-Control and Vary; malformed headers are ignored.
    return response.make_conditional(request)


# Routes come from the format registry: `/feeds/all.atom`, `/feeds/topics/ai.rss`, ...
_EXTENSION = f"<any({', '.join(FORMATS)}):extension>"


@bp.get(f"/feeds/all.{_EXTENSION}")
def all_items_feed(extension: str) -> WerkzeugResponse:
    return _serve_feed("all", None, extension)


@bp.get(f"/feeds/<any(topics, providers):scope>/<slug>.{_EXTENSION}")
def group_feed(scope: str, slug: str, extension: str) -> WerkzeugResponse:
    return _serve_feed(scope, slug, extension)


@bp.get("/healthz")
def healthz() -> Response:
    state = _state()
    collection, renders = state.collection, state.renders
    return jsonify(
        status="ok",
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
        },
    )
