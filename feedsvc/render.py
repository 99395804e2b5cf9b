"""A `FeedDocument` written out as Atom 1.0, RSS 2.0 or JSON Feed 1.1 bytes, and the list of
feeds as OPML 2.0; the only module that imports feedgen.

Atom and RSS carry an `xml-stylesheet` processing instruction: browsers show the feed through
the XSL stylesheet as a readable page, while feed readers ignore it.

feedgen 1.0.0 has traps (FEEDS.md §3); each is handled here, once, and named where it is:

1. Atom entry links lose rel/type/length -> entry links other than the article link are written
   by `_EntryExtras.extend_atom`, not by `FeedEntry.link()`.
2. RSS keeps only the last `enclosure()` call -> one enclosure, written by `_EntryExtras`.
3. `enclosure(url, None, type)` writes `length="None"` -> our enclosure writes `length="0"`.
4. The media extension wraps everything in `media:group` -> media elements are written by
   `_EntryExtras`, never grouped.
5. `add_entry()` prepends -> `order="append"`.
6. `updated`/`lastBuildDate` default to now -> always set from the document.
7. Naive datetimes raise at render time -> `_utc` on every date.
8. The RSS channel `<link>` is the last link added -> the HTML alternate is added last.
9. RSS drops feed-level links other than self -> `_FeedExtras.extend_rss` writes them.
10. Forbidden XML characters raise -> `_text` on every string.
11. RSS dates are written with the whole process switched to the C locale and back (two
    `setlocale` calls a date, which other threads see) -> feedgen writes them with `_rfc2822`.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol
from xml.sax.saxutils import escape as xml_escape

import feedgen.entry
import feedgen.feed
from feedgen.entry import FeedEntry
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import formatRFC2822
from lxml import etree

from feedsvc.feeds import Entry, FeedDocument, FeedListing, Link
from feedsvc.fields import _ASCII_FORBIDDEN, _XML_FORBIDDEN, clean_text
from feedsvc.records import Image

ATOM_NS = "http://www.w3.org/2005/Atom"

try:
    VERSION = version("feedsvc")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0"


# Trap 10: a forbidden character would make lxml raise and fail the whole feed. (The function
# itself, not a wrapper: it runs for every string of every entry.)
_text = clean_text


def _utc(moment: datetime) -> datetime:
    """Trap 7: feedgen raises on naive datetimes; naive means UTC everywhere in feedsvc."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NO_OFFSET = timedelta(0)


def _rfc2822(moment: datetime) -> str:
    """Trap 11: feedgen's `formatRFC2822`, `moment.strftime("%a, %d %b %Y %H:%M:%S %z")` in the C
    locale, without switching the process's locale (2,800,000 instructions of a fresh process's
    first 50-entry RSS page). Dates in UTC from the year 1000 on (every date feedsvc gives,
    `_utc`) are written here; any other goes to feedgen's function."""
    if moment.utcoffset() != _NO_OFFSET or moment.year < 1000:
        return str(formatRFC2822(moment))
    return (
        f"{_DAY_NAMES[moment.weekday()]}, {moment.day:02d} {_MONTH_NAMES[moment.month - 1]} "
        f"{moment.year} {moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} +0000"
    )


# feedgen's modules call the name they imported: each is given `_rfc2822` in its place.
feedgen.entry.formatRFC2822 = feedgen.feed.formatRFC2822 = _rfc2822


def _link_attributes(link: Link) -> dict[str, str]:
    attributes = {"href": link.href, "rel": link.rel}
    if link.type:
        attributes["type"] = link.type
    if link.title:
        attributes["title"] = _text(link.title)
    return attributes


MEDIA_NS = "http://search.yahoo.com/mrss/"
_MEDIA_CONTENT = f"{{{MEDIA_NS}}}content"
_MEDIA_THUMBNAIL = f"{{{MEDIA_NS}}}thumbnail"
DC_NS = "http://purl.org/dc/elements/1.1/"
DC_CREATOR = f"{{{DC_NS}}}creator"


class _FeedExtras(BaseExtension):  # type: ignore[misc]
    """Feed-level links feedgen's RSS output drops (trap 9), written as `atom:link`, and the
    namespaces that `_EntryExtras` writes in, declared on the root: Media RSS, and in RSS
    Dublin Core (where feedgen's Dublin Core extension declared it, after Media RSS)."""

    def __init__(self) -> None:
        self.rss_links: list[Link] = []
        self.namespaces = {"media": MEDIA_NS}
        # What the entries' text goes through (`_lxml_checked`).
        self.text: Callable[[str], str] = _text

    def extend_ns(self) -> dict[str, str]:
        return self.namespaces

    def extend_rss(self, rss: Any) -> Any:
        channel = rss.find("channel")
        for link in self.rss_links:
            etree.SubElement(channel, f"{{{ATOM_NS}}}link", _link_attributes(link))
        return rss


@dataclass
class _EntryExtrasData:
    atom_links: tuple[Link, ...] = ()  # after an enclosure link for each image
    rss_enclosure: Image | None = None
    images: tuple[Image, ...] = ()
    creator: str | None = None  # RSS dc:creator
    # What the extension wrote as markup, which `_with_markup` puts in before the entry's end
    # tag once feedgen has written the document (empty when it wrote lxml elements instead).
    markup: bytes = b""


class _EntryExtras(BaseEntryExtension):  # type: ignore[misc]
    """The end of each entry, which feedgen 1.0.0 writes wrongly or not at all: Atom links
    with a rel (trap 1), a single RSS enclosure with a real length (traps 2 and 3), the
    entry's images as Media RSS content and thumbnail, never grouped (trap 4), as feedgen's
    media extension writes them with `group=None`, and RSS's dc:creator, as feedgen's Dublin
    Core extension writes it.

    Written as markup (`_atom_markup`, `_rss_markup`), the very bytes lxml writes for these
    elements, and put in by `_with_markup`: made as lxml elements, they were about a third of a
    first Atom page's instructions (lxml checks each tag and attribute name, and on CPython
    3.11 each check raises and clears a TypeError inside `bytes.__contains__`; then each
    element is made, moved into the feed's document, written out and freed). An entry holding
    a string lxml refuses (a character XML forbids) gets lxml's elements, and lxml's error."""

    def __init__(self) -> None:
        self.data = _EntryExtrasData()

    def extend_atom(self, entry: Any) -> Any:
        return self._extend(entry, _atom_markup, _atom_elements)

    def extend_rss(self, item: Any) -> Any:
        return self._extend(item, _rss_markup, _rss_elements)

    def _extend(
        self,
        element: Any,
        markup_of: Callable[[_EntryExtrasData], bytes | None],
        add_elements: Callable[[Any, _EntryExtrasData], None],
    ) -> Any:
        """The entry's markup kept for `_with_markup`, or, where lxml would refuse a string,
        its lxml elements added to `element`."""
        data = self.data
        markup = markup_of(data)
        if markup is None:
            add_elements(element, data)
        else:
            data.markup = markup
        return element


def _atom_elements(entry: Any, data: _EntryExtrasData) -> None:
    sub_element = etree.SubElement
    for image in data.images:
        attributes = {"href": image.url, "rel": "enclosure"}
        if image.media_type:
            attributes["type"] = image.media_type
        sub_element(entry, "link", attributes)
    for link in data.atom_links:
        sub_element(entry, "link", _link_attributes(link))
    _media(entry, data.images)


def _rss_elements(item: Any, data: _EntryExtrasData) -> None:
    image = data.rss_enclosure
    if image is not None:
        # The byte length of a remote image is unknown; RSS Board profile: use 0.
        attributes = {"url": image.url, "length": "0", "type": image.media_type}
        etree.SubElement(item, "enclosure", attributes)
    _media(item, data.images)
    if data.creator is not None:
        etree.SubElement(item, DC_CREATOR).text = data.creator


def _media(parent: Any, images: tuple[Image, ...]) -> None:
    """A `media:content` for each image and a `media:thumbnail` of the first, their attributes
    in the order feedgen's media extension sets them (url, type, medium, height, width)."""
    if not images:
        return
    sub_element = etree.SubElement
    for image in images:
        attributes = {"url": image.url}
        if image.media_type:
            attributes["type"] = image.media_type
        attributes["medium"] = "image"
        sub_element(parent, _MEDIA_CONTENT, _sized(image, attributes))
    sub_element(parent, _MEDIA_THUMBNAIL, _sized(images[0], {"url": images[0].url}))


def _atom_markup(data: _EntryExtrasData) -> bytes | None:
    """`_atom_elements` as lxml writes them in the feed (no namespace declared: the root
    declares Media RSS), or None if a string holds a character lxml refuses."""
    images, links = data.images, data.atom_links
    values = [image.url for image in images]
    values += [image.media_type for image in images]
    for link in links:
        values += (link.href, link.rel, link.type or "", link.title or "")
    if _plain("".join(values)):
        return _references(_atom_parts(images, links, _same, _same)).encode()
    return _checked(_atom_parts(images, links, _attribute, _text))


def _atom_parts(
    images: tuple[Image, ...],
    links: tuple[Link, ...],
    attribute: Callable[[str], str],
    clean: Callable[[str], str],
) -> str:
    parts = []
    for image in images:
        kind = f' type="{attribute(image.media_type)}"' if image.media_type else ""
        parts.append(f'<link href="{attribute(image.url)}" rel="enclosure"{kind}/>')
    for link in links:
        kind = f' type="{attribute(link.type)}"' if link.type else ""
        title = f' title="{attribute(clean(link.title))}"' if link.title else ""
        parts.append(
            f'<link href="{attribute(link.href)}" rel="{attribute(link.rel)}"{kind}{title}/>'
        )
    if images:
        parts.append(_media_markup(images, attribute))
    return "".join(parts)


def _rss_markup(data: _EntryExtrasData) -> bytes | None:
    """`_rss_elements` as lxml writes them in the feed (the root declares both namespaces), or
    None if a string holds a character lxml refuses."""
    image, images, creator = data.rss_enclosure, data.images, data.creator
    values = [image.url, image.media_type] if image is not None else []
    values += [image.url for image in images]
    values += [image.media_type for image in images]
    plain = _plain("".join(values), creator or "")
    if plain:
        markup = _references(_rss_parts(image, images, _same))
    else:
        markup = _rss_parts(image, images, _attribute)
    if creator is not None:
        markup += f"<dc:creator>{_element_text(creator)}</dc:creator>"
    return markup.encode() if plain else _checked(markup)


def _rss_parts(
    image: Image | None, images: tuple[Image, ...], attribute: Callable[[str], str]
) -> str:
    parts = []
    if image is not None:
        kind = attribute(image.media_type)
        parts.append(f'<enclosure url="{attribute(image.url)}" length="0" type="{kind}"/>')
    if images:
        parts.append(_media_markup(images, attribute))
    return "".join(parts)


def _media_markup(images: tuple[Image, ...], attribute: Callable[[str], str]) -> str:
    """`_media` as lxml writes it."""
    parts = []
    for image in images:
        kind = f' type="{attribute(image.media_type)}"' if image.media_type else ""
        parts.append(
            f'<media:content url="{attribute(image.url)}"{kind} medium="image"{_size(image)}/>'
        )
    first = images[0]
    parts.append(f'<media:thumbnail url="{attribute(first.url)}"{_size(first)}/>')
    return "".join(parts)


def _size(image: Image) -> str:
    """`_sized`'s attributes as markup."""
    height = f' height="{image.height}"' if image.height else ""
    return f'{height} width="{image.width}"' if image.width else height


def _plain(attributes: str, text: str = "") -> bool:
    """Whether attribute values whose concatenation is `attributes` (and element text `text`)
    can be written as they are, but for the references `_references` makes in the whole markup:
    no `<`, `>` or `"` in the values, and no character XML forbids in either (`clean_text`
    would leave any of them as it is, and lxml refuses none of them)."""
    if "<" in attributes or ">" in attributes or '"' in attributes:
        return False
    both = attributes + text
    if both.isascii():
        raw = both.encode("ascii")
        return len(raw.translate(None, _ASCII_FORBIDDEN)) == len(raw)
    return both.isprintable() or _XML_FORBIDDEN.search(both) is None


def _same(value: str) -> str:
    return value


def _references(markup: str) -> str:
    """Markup whose attribute values are `_plain`, as `_attribute` would have written each of
    them: the markup itself has no `&`, tab, line feed or carriage return."""
    if "&" in markup:
        markup = markup.replace("&", "&amp;")
    if "\t" in markup:
        markup = markup.replace("\t", "&#9;")
    if "\n" in markup:
        markup = markup.replace("\n", "&#10;")
    if "\r" in markup:
        markup = markup.replace("\r", "&#13;")
    return markup


def _attribute(value: str) -> str:
    """`value` as lxml (libxml2 2.14) writes an attribute value in a UTF-8 document: `&`, `<`,
    `>` and `"` as entity references, tab, line feed and carriage return as character
    references, everything else as itself."""
    return xml_escape(value, _ATTRIBUTE_REFERENCES)


_ATTRIBUTE_REFERENCES = {'"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}


def _element_text(value: str) -> str:
    """`value` as lxml writes an element's text: `&`, `<` and `>` as entity references,
    carriage return as a character reference."""
    return xml_escape(value, _TEXT_REFERENCES)


_TEXT_REFERENCES = {"\r": "&#13;"}


# What lxml refuses in a string (`_utf8`): the C0 controls but tab, line feed and carriage return
# (which the markup writes as references), surrogates, U+FFFE and U+FFFF.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ASCII_REFUSED = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])


def _checked(markup: str) -> bytes | None:
    """`markup` in UTF-8, or None if it holds a character lxml refuses."""
    if markup.isascii():
        raw = markup.encode("ascii")
        return raw if len(raw.translate(None, _ASCII_REFUSED)) == len(raw) else None
    if _REFUSED.search(markup) is not None:
        return None
    return markup.encode()


def _with_markup(body: bytes, end_tag: bytes, extras: list[_EntryExtrasData]) -> bytes:
    """`body` with each entry's markup put in before its end tag (the entries' end tags are
    the only ones of their name, in document order, as `_cut_xml` relies on)."""
    if not any(extra.markup for extra in extras):
        return body
    pieces = body.split(end_tag)
    assert len(pieces) == len(extras) + 1, "one end tag for each entry"
    joined = [pieces[0]]
    for extra, piece in zip(extras, pieces[1:], strict=True):
        joined += (extra.markup, end_tag, piece)
    return b"".join(joined)


def _new_generator(doc: FeedDocument, media_type: str) -> FeedGenerator:
    """A FeedGenerator with the feed-level fields both formats share."""
    fg = FeedGenerator()
    fg.register_extension("feedsvc", _FeedExtras, _EntryExtras)
    fg.id(doc.id)
    fg.title(_text(doc.title))
    fg.subtitle(_text(doc.subtitle))
    fg.author({"name": _text(doc.author)})
    fg.language(doc.language)
    fg.generator("feedsvc", version=VERSION)
    fg.link(href=doc.self_url, rel="self", type=media_type)
    fg.updated(_utc(doc.updated))  # trap 6: also sets lastBuildDate
    fg.pubDate(_utc(doc.updated))
    if doc.icon is not None:
        fg.icon(doc.icon.url)
        fg.image(
            url=doc.icon.url,
            title=_text(doc.title),
            link=doc.html_url,
            width=str(doc.icon.width) if doc.icon.width else None,
            height=str(doc.icon.height) if doc.icon.height else None,
        )
    return fg


def _hub_links(doc: FeedDocument) -> tuple[Link, ...]:
    """WebSub discovery: the hubs to subscribe through (the topic is the `self` link)."""
    return tuple(Link(hub, "hub") for hub in doc.hubs)


def _add_alternate(fg: FeedGenerator, doc: FeedDocument) -> None:
    """Trap 8: RSS's channel <link> is whichever link was added last, so this comes last."""
    fg.link(href=doc.html_url, rel="alternate", type="text/html")


def _new_entry(fg: FeedGenerator, entry: Entry) -> tuple[dict[str, Any], _EntryExtrasData]:
    """An entry with the fields both formats share, added to `fg` after the others (trap 5:
    `add_entry()` prepends), as `fg.add_entry()` and feedgen's setters make it; and the dict of
    its fields, where each format sets its own.

    Made without the setters, which cost about 100,000 instructions an entry, a sixth of a
    fresh process's first page: `FeedEntry()` reads the clock (in dateutil's time zone), and
    `link`, `category` and `author` check their dicts (`ensure_format`: three sets made a
    call). feedgen writes the entry (`atom_entry`, `rss_entry`) from these fields as it would
    from its setters' (tests/test_render.py holds each format's to the setters' field by
    field); feedgen is pinned to the version whose fields these are."""
    extension = _EntryExtras()
    text = fg.feedsvc.text
    title = text(entry.title)
    published = _utc(entry.published)
    updated = _utc(entry.updated)  # trap 6
    categories = rss_categories = None
    if entry.categories:
        categories = [
            {"term": category.term, "label": text(category.label), "scheme": category.scheme}
            for category in entry.categories
        ]
        rss_categories = [
            {"value": category["label"], "domain": category["scheme"]}
            if category["scheme"]
            else {"value": category["label"]}
            for category in categories
        ]
    fe = _bare(FeedEntry)
    # No rel: trap 1 would drop it, and no rel means alternate (as `link()` defaults it).
    fe.__dict__ = fields = {
        "_FeedEntry__atom_id": entry.id,
        "_FeedEntry__atom_title": title,
        "_FeedEntry__atom_updated": updated,
        "_FeedEntry__atom_author": None,
        "_FeedEntry__atom_content": None,
        "_FeedEntry__atom_link": [{"href": entry.link, "rel": "alternate"}],
        "_FeedEntry__atom_summary": None,
        "_FeedEntry__atom_category": categories,
        "_FeedEntry__atom_contributor": None,
        "_FeedEntry__atom_published": published,
        "_FeedEntry__atom_source": None,
        "_FeedEntry__atom_rights": None,
        "_FeedEntry__rss_author": None,
        "_FeedEntry__rss_category": rss_categories,
        "_FeedEntry__rss_comments": None,
        "_FeedEntry__rss_description": None,
        "_FeedEntry__rss_content": None,
        "_FeedEntry__rss_enclosure": None,
        "_FeedEntry__rss_guid": {"guid": entry.id, "permalink": entry.id == entry.link},
        "_FeedEntry__rss_link": entry.link,
        "_FeedEntry__rss_pubDate": published,
        "_FeedEntry__rss_source": None,
        "_FeedEntry__rss_title": title,
        "_FeedEntry__rss_lastBuildDate": updated,
        "_FeedEntry__extensions": {
            "feedsvc": {
                "inst": extension,
                "extension_class_entry": _EntryExtras,
                "atom": True,
                "rss": True,
            }
        },
        "_FeedEntry__extensions_register": {},
        "feedsvc": extension,
    }
    fg._FeedGenerator__feed_entries.append(fe)
    extras: _EntryExtrasData = extension.data
    extras.images = entry.images  # Media RSS, trap 4
    return fields, extras


_bare = object.__new__


def _sized(image: Image, attributes: dict[str, str]) -> dict[str, str]:
    """`attributes` with the image's height and width where known."""
    if image.height:
        attributes["height"] = str(image.height)
    if image.width:
        attributes["width"] = str(image.width)
    return attributes


def render_atom(doc: FeedDocument) -> bytes:
    return _with_stylesheet(_atom_xml(doc), doc)


def _atom_xml(doc: FeedDocument) -> bytes:
    """feedgen's Atom document, without the stylesheet instruction."""
    return _lxml_checked(_atom_written, doc)


def _lxml_checked(
    write: Callable[[FeedDocument, Callable[[str], str]], bytes], doc: FeedDocument
) -> bytes:
    """`write(doc, text)`, the entries' text given to lxml through `_as_lxml_checks`, or, if lxml
    refused a string of it, through `_text` (trap 10). The same bytes as `_text` on every text:
    `_text` on ASCII text (all of it, on most pages) costs about 45,000 instructions an entry
    (its HTML is about 1,500 characters), and lxml checks every string again anyway."""
    try:
        return write(doc, _as_lxml_checks)
    except ValueError:
        return write(doc, _text)


def _as_lxml_checks(text: str) -> str:
    """`_text(text)`, or `text` itself where lxml checks what `_text` would: in ASCII text
    without DEL, `_text` drops only C0 controls but tab, line feed and carriage return, which
    lxml refuses (with a ValueError)."""
    if text.isascii() and "\x7f" not in text:
        return text
    return _text(text)


def _atom_written(doc: FeedDocument, text: Callable[[str], str]) -> bytes:
    """`_atom_xml`, the entries' text given to lxml through `text`."""
    fg = _new_generator(doc, ATOM.mime_type)
    fg.feedsvc.text = text
    for link in (*_hub_links(doc), *doc.paging):
        fg.link(href=link.href, rel=link.rel)
    _add_alternate(fg, doc)
    written = []
    for entry in doc.entries:
        fields, extras = _new_entry(fg, entry)
        if entry.author:  # as `author({"name": ...})` sets them
            fields["_FeedEntry__atom_author"] = [{"name": text(entry.author)}]
            fields["_FeedEntry__rss_author"] = []
        # An entry with neither summary nor content shows readers nothing (the W3C validator
        # warns "Missing textual content"): the title stands in, as it does in RSS. As
        # `summary(..., type="text")` and `content(..., type="html")` set them:
        summary = text(entry.summary or entry.title)
        fields["_FeedEntry__atom_summary"] = {"summary": summary, "type": "text"}
        fields["_FeedEntry__rss_description"] = summary
        if entry.content_html:
            content = text(entry.content_html)
            fields["_FeedEntry__atom_content"] = {"content": content, "type": "html"}
            fields["_FeedEntry__rss_content"] = {"content": content, "type": "html"}
        extras.atom_links = entry.related
        written.append(extras)
    return _with_markup(bytes(fg.atom_str(pretty=False)), b"</entry>", written)


def render_rss(doc: FeedDocument) -> bytes:
    return _with_stylesheet(_hex_references(_rss_xml(doc)), doc)


def _rss_xml(doc: FeedDocument) -> bytes:
    """feedgen's RSS document, without the stylesheet instruction and hexadecimal references."""
    return _lxml_checked(_rss_written, doc)


def _rss_written(doc: FeedDocument, text: Callable[[str], str]) -> bytes:
    """`_rss_xml`, the entries' text given to lxml through `text` (not `dc:creator`, which
    feedsvc writes: always `_text`)."""
    fg = _new_generator(doc, RSS.mime_type)
    fg.feedsvc.text = text
    fg.feedsvc.namespaces["dc"] = DC_NS
    fg.feedsvc.rss_links.extend((*_hub_links(doc), *doc.paging))
    _add_alternate(fg, doc)
    written = []
    for entry in doc.entries:
        fields, extras = _new_entry(fg, entry)
        if entry.author:
            extras.creator = _text(entry.author)  # RSS <author> must be an e-mail address
        # RSS <description> is HTML: escape the plain-text excerpt so `<UBER.N>` stays text.
        # As `description(...)` and then `content(...)` set them:
        description = html.escape(text(entry.summary or entry.title), quote=False)
        fields["_FeedEntry__rss_description"] = description
        if entry.content_html:
            content = text(entry.content_html)
            fields["_FeedEntry__atom_content"] = {"content": content}
            fields["_FeedEntry__rss_content"] = {"content": content}
        else:
            fields["_FeedEntry__atom_content"] = {"content": description}
        extras.rss_enclosure = entry.images[0] if entry.images else None
        written.append(extras)
    return _with_markup(bytes(fg.rss_str(pretty=False)), b"</item>", written)


_XML_DECLARATION_END = b"?>\n"


def _with_stylesheet(body: bytes, doc: FeedDocument) -> bytes:
    """The document with an `xml-stylesheet` instruction after the XML declaration (feedgen
    has no way to add one)."""
    if doc.stylesheet_url is None:
        return body
    href = html.escape(doc.stylesheet_url, quote=True)
    instruction = f'<?xml-stylesheet type="text/xsl" href="{href}"?>\n'.encode()
    end = body.index(_XML_DECLARATION_END) + len(_XML_DECLARATION_END)
    return body[:end] + instruction + body[end:]


JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"


def render_json(doc: FeedDocument) -> bytes:
    """JSON Feed 1.1: the same entries and ids as Atom and RSS; paging as `next_url`."""
    feed: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": _text(doc.title),
        "home_page_url": doc.html_url,
        "feed_url": doc.self_url,
        **({"hubs": [{"type": "WebSub", "url": hub} for hub in doc.hubs]} if doc.hubs else {}),
        "description": _text(doc.subtitle),
        "authors": [{"name": _text(doc.author)}],
        "language": doc.language,
    }
    if doc.icon is not None:
        feed["favicon"] = doc.icon.url
    next_page = next((link.href for link in doc.paging if link.rel == "next"), None)
    if next_page is not None:
        feed["next_url"] = next_page
    feed["items"] = [_json_item(entry) for entry in doc.entries]
    return _json_dump(feed)


def _json_dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _json_item(entry: Entry) -> dict[str, Any]:
    """One item; text goes through `_text` as in the XML formats, so every format shows the
    same characters."""
    item: dict[str, Any] = {"id": entry.id, "url": entry.link, "title": _text(entry.title)}
    if entry.summary:
        item["summary"] = _text(entry.summary)
    # One of content_html and content_text is required; the title stands in, as in Atom.
    if entry.content_html:
        item["content_html"] = _text(entry.content_html)
    else:
        item["content_text"] = _text(entry.summary or entry.title)
    item["date_published"] = _utc(entry.published).isoformat().replace("+00:00", "Z")
    if entry.modified is not None:  # a story's newest coverage
        item["date_modified"] = _utc(entry.modified).isoformat().replace("+00:00", "Z")
    if entry.author:
        item["authors"] = [{"name": _text(entry.author)}]
    if entry.categories:
        item["tags"] = [_text(category.label) for category in entry.categories]
    if entry.images:
        item["image"] = entry.images[0].url
        item["attachments"] = [
            {"url": image.url, "mime_type": image.media_type} for image in entry.images
        ]
    return item


OPML_MEDIA_TYPE = "text/x-opml; charset=utf-8"
_OPML_GROUPS = {
    "all": "All articles",
    "topics": "Topics",
    "providers": "Providers",
    "stories": "Stories",
}


def render_opml(title: str, listings: Iterable[FeedListing], extension: str = "atom") -> bytes:
    """OPML 2.0 listing each feed once (in the format `extension`), grouped as the index page
    groups them, so a reader's import subscribes to every feed exactly once."""
    listings = tuple(listings)
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = _text(title)
    newest = max((item.updated for item in listings if item.updated), default=None)
    if newest is not None:
        etree.SubElement(head, "dateModified").text = format_datetime(_utc(newest), usegmt=True)
    body = etree.SubElement(root, "body")
    for scope, label in _OPML_GROUPS.items():
        group = etree.SubElement(body, "outline", text=label)
        for item in (listing for listing in listings if listing.scope == scope):
            etree.SubElement(
                group,
                "outline",
                type="rss",  # OPML 2.0 names every feed subscription "rss", Atom ones too
                text=_text(item.title),
                title=_text(item.title),
                xmlUrl=item.feed_url(extension),
                htmlUrl=item.html_url,
            )
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _hex_references(body: bytes) -> bytes:
    """RSS Profile: "&" and "<" in plain text as hexadecimal references, so that readers which
    decode RSS text as HTML twice still show `<UBER.N>` and `AT&T` as text. In lxml's output
    these byte sequences can only be references (a literal "&lt;" in text is written "&amp;lt;"),
    so the rewrite is exact and the document means the same."""
    return body.replace(b"&lt;", b"&#x3C;").replace(b"&amp;", b"&#x26;")


class FragmentStore(Protocol):
    """Where rendered entries are kept between documents (the cache module provides a bounded
    one); keys are (format extension, `Entry`), so an entry is rendered once per format."""

    def get(self, key: Hashable) -> bytes | None: ...

    def put(self, key: Hashable, fragment: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class _Parts:
    """One document cut where its entries are: head, each entry's bytes, tail."""

    head: bytes
    entries: list[bytes]
    tail: bytes


def _xml_parts(
    write: Callable[[FeedDocument], bytes],
    finish: Callable[[bytes], bytes],
    entry_tag: bytes,
    end: bytes,
) -> _PartsWriter:
    """Cut an XML feed at its entry elements (`_cut_xml`); `end` is how the document ends
    after its last entry."""
    return functools.partial(_cut_xml, write, finish, entry_tag, end)


def _cut_xml(
    write: Callable[[FeedDocument], bytes],
    finish: Callable[[bytes], bytes],
    entry_tag: bytes,
    end_of_document: bytes,
    doc: FeedDocument,
) -> _Parts:
    """`doc` as feedgen `write`s it, cut at its entry elements, each part then `finish`ed and the
    head given the stylesheet: the render's own rewrites, made on the parts (a copy of each) and
    not on the whole page (a copy of the page each, about 180 KB on a 50-entry Atom page). Entries
    are siblings written with no white space between them, and their tags cannot occur elsewhere
    (text and attribute values escape `<`), so the cuts are exact; neither rewrite's text spans
    a cut. (A function of its own, not a closure made at import, so that mutation testing reaches
    it: tests/README.md.)

    A document without entries gives the head and the tail alone: feedgen writes the entries
    last in their parent (Atom's feed, RSS's channel), after everything else, so the document
    is head and `end_of_document`."""
    start_tag, end_tag = b"<" + entry_tag + b">", b"</" + entry_tag + b">"
    body = write(doc)
    if not doc.entries:
        assert body.endswith(end_of_document), "the entries must come last"
        head = body[: -len(end_of_document)]
        return _Parts(_with_stylesheet(finish(head), doc), [], finish(end_of_document))
    start = body.index(start_tag)
    head = _with_stylesheet(finish(body[:start]), doc)
    entries = []
    end = body.find(end_tag, start)
    while end >= 0:
        end += len(end_tag)
        entries.append(finish(body[start:end]))
        start, end = end, body.find(end_tag, end)
    return _Parts(head, entries, finish(body[start:]))


def _unchanged(part: bytes) -> bytes:
    return part


def _json_parts(doc: FeedDocument) -> _Parts:
    """JSON Feed in parts: `items` is the feed's last member and `_json_dump` adds no white
    space, so the document is head, items joined by commas, and `]}`."""
    empty = render_json(replace(doc, entries=()))
    assert empty.endswith(_JSON_TAIL), "items must be the last member of a JSON Feed"
    head = empty[: -len(_JSON_TAIL)]
    return _Parts(head, [_json_dump(_json_item(entry)) for entry in doc.entries], _JSON_TAIL)


_PartsWriter = Callable[[FeedDocument], _Parts]
_JSON_TAIL = b"]}"


@dataclass(frozen=True, slots=True)
class Format:
    """One output format: the routes, the static build and the tests all iterate over these."""

    extension: str
    name: str  # as subscribe links show it
    media_type: str
    render: Callable[[FeedDocument], bytes]
    parts: _PartsWriter  # the same document as head, entries and tail
    separator: bytes = b""  # between entries

    @property
    def mime_type(self) -> str:
        """The media type without parameters, as `<link type>` and OPML want it."""
        return self.media_type.split(";")[0]

    def assemble(self, doc: FeedDocument, fragments: FragmentStore) -> bytes:
        """The same bytes as `render(doc)`, with each entry rendered at most once per store:
        one render of the document holding only the entries not yet in `fragments` (none, when
        all are there) gives the head, the tail and the missing entries."""
        if not doc.entries:
            return self.render(doc)
        keys = [(self.extension, entry) for entry in doc.entries]
        found = [fragments.get(key) for key in keys]
        missing = _unique(
            entry for entry, fragment in zip(doc.entries, found, strict=True) if fragment is None
        )
        parts = self.parts(replace(doc, entries=missing))
        new = dict(zip(missing, parts.entries, strict=True)) if missing else {}
        for entry, fragment in new.items():
            fragments.put((self.extension, entry), fragment)
        # One join, so the page is copied once: head, each fragment and a separator, the last
        # separator replaced by the tail.
        pieces = [parts.head]
        for entry, kept in zip(doc.entries, found, strict=True):
            pieces += (kept if kept is not None else new[entry], self.separator)
        pieces[-1] = parts.tail
        return b"".join(pieces)


def _unique(entries: Iterable[Entry]) -> tuple[Entry, ...]:
    return tuple(dict.fromkeys(entries))


ATOM = Format(
    "atom",
    "Atom",
    "application/atom+xml; charset=utf-8",
    render_atom,
    _xml_parts(_atom_xml, _unchanged, b"entry", b"</feed>"),
)
RSS = Format(
    "rss",
    "RSS",
    "application/rss+xml; charset=utf-8",
    render_rss,
    _xml_parts(_rss_xml, _hex_references, b"item", b"</channel></rss>"),
)
JSON = Format(
    "json", "JSON Feed", "application/feed+json; charset=utf-8", render_json, _json_parts, b","
)
FORMATS: dict[str, Format] = {fmt.extension: fmt for fmt in (ATOM, RSS, JSON)}
