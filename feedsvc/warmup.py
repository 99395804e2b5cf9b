"""What a process's first feed request costs whatever it serves, paid when the app is made: a
made-up page of made-up records written in every format, as the route writes a page (entries,
fragments, the document put together, gzip), so that imports, lxml's writers, the bytecode
CPython specializes after a function's first calls and the memory a render grows into are
there before the first request. Nothing of it is kept: its records are in no collection, and
its fragments go to a store that keeps none, so no entry a reader can ask for is rendered
before it is asked for.
"""

from __future__ import annotations

from datetime import UTC, datetime

from feedsvc.cache import FragmentCache, rendered_feed
from feedsvc.feeds import ProviderFeed, Site, feed_page
from feedsvc.records import Image, Provider, Record, Related, Topic, pack_related
from feedsvc.render import FORMATS
from feedsvc.repository import Group

# CPython 3.11 specializes a function's bytecode once it has run 8 times: the functions that run
# once per entry run more often than that on the warm-up page (and once per page, 3 times).
ENTRIES = 10
_SITE = "https://warm-up.invalid"
_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)


def warm_up_rendering() -> None:
    """Render the made-up page's first page (with paging, an icon, a hub and every part of an
    entry) in every format, and gzip it."""
    site = Site(_SITE, "Warm-up", feed_size=ENTRIES, hubs=(f"{_SITE}/hub",))
    image = Image(f"{_SITE}/image.jpg", 50, 50, "image/jpeg")
    provider = Provider("Provider & Co", "warm-up.invalid", "warm-up-invalid", (image,))
    records = tuple(_record(number, provider) for number in range(ENTRIES + 1))
    feed = ProviderFeed(Group(provider.slug, provider.name, records, provider.images))
    for extension, fmt in FORMATS.items():
        document = feed_page(feed, site, extension).document()
        body = fmt.assemble(document, FragmentCache(0))
        rendered_feed(body, fmt.media_type, _MOMENT).variant("gzip")


def _record(number: int, provider: Provider) -> Record:
    url = f"{_SITE}/articles/{number}"
    related = [
        Related(f"Related {n} & more", f"{_SITE}/related/{number}/{n}", _MOMENT, "Other")
        for n in range(3)
    ]
    return Record(
        path=f"{number}.md",
        id=f"urn:uuid:00000000-0000-0000-0000-{number:012d}",
        title=f"Title {number} <&>",
        excerpt="An excerpt \u201cquoted\u201d.",
        published=_MOMENT,
        url=url,
        original_url=None,
        provider=provider,
        topics=(Topic("Topic", "topic"),),
        images=(Image(f"{url}.jpg", 640, 480, "image/jpeg"),),
        coverage=pack_related(related),
    )
