"""The same 50 newest entries served through Django's syndication framework, for comparison.

This is what a Python user would otherwise write: a `django.contrib.syndication` Feed over the
records feedsvc's own repository loaded, rendered on every request.
"""

from __future__ import annotations

import os
from pathlib import Path

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="benchmark-only",
    USE_TZ=True,
    INSTALLED_APPS=[],
    MIDDLEWARE=[],
)
django.setup()

from django.contrib.syndication.views import Feed  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import path  # noqa: E402
from django.utils.feedgenerator import Atom1Feed, Enclosure  # noqa: E402

from feedsvc.records import Record  # noqa: E402
from feedsvc.repository import load_collection  # noqa: E402

NEWEST = load_collection(Path(os.environ["FEEDSVC_SEEDS_DIR"])).records[:50]


class AllItemsFeed(Feed):  # type: ignore[type-arg]
    feed_type = Atom1Feed
    title = "feedsvc"
    link = "/"
    subtitle = "Every article, newest first."
    item_guid_is_permalink = False

    def items(self) -> tuple[Record, ...]:
        return NEWEST

    def item_title(self, item: Record) -> str:
        return item.title

    def item_description(self, item: Record) -> str:
        return item.excerpt

    def item_link(self, item: Record) -> str:
        return item.url

    def item_guid(self, item: Record) -> str:
        return item.id

    def item_pubdate(self, item: Record):  # type: ignore[no-untyped-def]
        return item.published

    def item_author_name(self, item: Record) -> str | None:
        return item.provider.name if item.provider else None

    def item_categories(self, item: Record) -> list[str]:
        return [topic.name for topic in item.topics]

    def item_enclosures(self, item: Record) -> list[Enclosure]:
        return [Enclosure(image.url, "0", image.media_type) for image in item.images]


urlpatterns = [path("feeds/all.atom", AllItemsFeed())]
application = get_wsgi_application()
