"""The render module and each feedgen 1.0.0 trap (FEEDS.md §3): every test here fails if the
trap it names comes back."""

from __future__ import annotations

import html
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import feedsvc.render
from feedsvc.feeds import Category, Entry, FeedDocument, FeedListing, Link
from feedsvc.records import Image
from feedsvc.render import ATOM, FORMATS, JSON, RSS, render_opml
from tests.conftest import ATOM as A
from tests.conftest import MEDIA, atom_entries, parse_xml, read_feed, read_json_feed

ATOM_LINK = "{http://www.w3.org/2005/Atom}link"
DC = "{http://purl.org/dc/elements/1.1/}"
JPEG = Image("https://img.example/one.jpg", 640, 480, "image/jpeg")
PNG = Image("https://img.example/two.png", 320, None, "image/png")


def entry(n: int, **changes: object) -> Entry:
    base = Entry(
        id=f"urn:uuid:00000000-0000-5000-8000-{n:012d}",
        title=f"Entry {n} & <friends>",
        link=f"https://news.example/{n}",
        summary=f"Summary {n} of <UBER.N> & co",
        published=datetime(2022, 1, n, tzinfo=UTC),
        author="Provider & Co",
        categories=(Category("computer-vision", "Computer Vision", "http://feeds.test/topics/"),),
        images=(JPEG, PNG),
        related=(Link("https://other.example/r", "related", "text/html", "Other & more"),),
        content_html="<p>Other coverage</p>",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def document(**changes: object) -> FeedDocument:
    base = FeedDocument(
        id="http://feeds.test/",
        title="News",
        subtitle="All news",
        updated=datetime(2022, 1, 3, tzinfo=UTC),
        self_url="http://feeds.test/feeds/all.atom?page=2",
        html_url="http://feeds.test/",
        author="News",
        language="en",
        icon=Image("https://img.example/logo.jpg", 50, 50, "image/jpeg"),
        paging=(
            Link("http://feeds.test/feeds/all.atom", "first"),
            Link("http://feeds.test/feeds/all.atom?page=3", "last"),
            Link("http://feeds.test/feeds/all.atom", "previous"),
            Link("http://feeds.test/feeds/all.atom?page=3", "next"),
        ),
        entries=(entry(3), entry(2), entry(1)),
        page=2,
        pages=3,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_trap1_atom_entry_links_keep_rel_type_and_title() -> None:
    root = parse_xml(ATOM.render(document()))
    for node in atom_entries(root):
        links = node.findall(f"{A}link")
        alternates = [link for link in links if link.get("rel", "alternate") == "alternate"]
        assert len(alternates) == 1
        enclosures = [link for link in links if link.get("rel") == "enclosure"]
        assert [(e.get("href"), e.get("type")) for e in enclosures] == [
            (JPEG.url, "image/jpeg"),
            (PNG.url, "image/png"),
        ]
        related = [link for link in links if link.get("rel") == "related"]
        assert [(r.get("href"), r.get("title")) for r in related] == [
            ("https://other.example/r", "Other & more")
        ]


def test_trap2_and_3_rss_has_one_enclosure_with_a_numeric_length() -> None:
    root = parse_xml(RSS.render(document()))
    for item in root.iter("item"):
        enclosures = item.findall("enclosure")
        assert len(enclosures) == 1
        assert enclosures[0].attrib == {"url": JPEG.url, "length": "0", "type": "image/jpeg"}


def test_trap4_media_content_is_not_grouped() -> None:
    for fmt in (ATOM, RSS):
        root = parse_xml(fmt.render(document()))
        assert not list(root.iter(f"{MEDIA}group"))
        contents = list(root.iter(f"{MEDIA}content"))
        assert len(contents) == 6
        assert contents[0].attrib == {
            "url": JPEG.url,
            "type": "image/jpeg",
            "medium": "image",
            "width": "640",
            "height": "480",
        }
        assert "height" not in contents[1].attrib  # unknown sizes are left out, never "None"
        thumbnails = list(root.iter(f"{MEDIA}thumbnail"))
        assert [t.get("url") for t in thumbnails] == [JPEG.url] * 3


def _feedgen_with(*extensions: str) -> Any:
    """A feed of feedgen with its own `extensions` loaded: what feedsvc's entry extension is
    held to, byte for byte."""
    from feedgen.feed import FeedGenerator

    fg = FeedGenerator()
    for extension in extensions:
        fg.load_extension(extension)
    fg.id("urn:x")
    fg.title("T")
    fg.link(href="https://news.example/", rel="alternate")
    fg.description("D")
    return fg


def test_media_elements_are_written_as_feedgens_media_extension_writes_them() -> None:
    """feedsvc writes each entry's Media RSS elements itself (`_EntryExtras`): the same bytes as
    feedgen's media extension given the images with `group=None`, in both formats."""
    import re

    odd = Image("https://img.example/three?w=1&h=2", None, 90, "image/webp")
    images = (JPEG, PNG, odd)
    fg = _feedgen_with("media")
    fe = fg.add_entry()
    fe.id("urn:y")
    fe.title("T")
    fe.link(href="https://news.example/y")
    sizes = {"width": lambda i: i.width, "height": lambda i: i.height}

    def sized(image: Image, values: dict[str, str]) -> dict[str, str]:
        return values | {k: str(size(image)) for k, size in sizes.items() if size(image)}

    fe.media.content(
        [sized(i, {"url": i.url, "medium": "image", "type": i.media_type}) for i in images],
        group=None,
    )
    fe.media.thumbnail(sized(JPEG, {"url": JPEG.url}), group=None)
    media = re.compile(rb"<media:(?:content|thumbnail) [^>]*/>")
    doc = document(entries=(entry(1, images=images),))
    # RSS text and attributes are then given hexadecimal references (`_hex_references`).
    for fmt, written in (
        (ATOM, fg.atom_str()),
        (RSS, feedsvc.render._hex_references(fg.rss_str())),
    ):
        expected = media.findall(written)
        assert len(expected) == 4
        assert media.findall(fmt.render(doc)) == expected


def test_trap5_entries_keep_the_order_given() -> None:
    doc = document()
    expected = [e.id for e in doc.entries]
    assert [n.findtext(f"{A}id") for n in atom_entries(parse_xml(ATOM.render(doc)))] == expected
    assert [i.findtext("guid") for i in parse_xml(RSS.render(doc)).iter("item")] == expected


def test_trap6_output_is_byte_stable_and_dated_by_the_newest_entry() -> None:
    doc = document()
    for fmt in FORMATS.values():
        assert fmt.render(doc) == fmt.render(doc)
    atom = parse_xml(ATOM.render(doc))
    assert atom.findtext(f"{A}updated") == "2022-01-03T00:00:00+00:00"
    rss = parse_xml(RSS.render(doc))
    assert rss.findtext("channel/lastBuildDate") == "Mon, 03 Jan 2022 00:00:00 +0000"


def test_trap7_naive_datetimes_render_as_utc() -> None:
    naive = document(
        updated=datetime(2022, 1, 3), entries=(entry(1, published=datetime(2022, 1, 1)),)
    )
    atom = parse_xml(ATOM.render(naive))
    assert atom.findtext(f"{A}updated") == "2022-01-03T00:00:00+00:00"
    assert read_feed(RSS.render(naive)).entries[0].published_parsed[:3] == (2022, 1, 1)


def test_trap8_rss_channel_link_is_the_html_page() -> None:
    rss = parse_xml(RSS.render(document()))
    assert rss.findtext("channel/link") == "http://feeds.test/"


def test_trap9_rss_keeps_paging_links_as_atom_links() -> None:
    rss = parse_xml(RSS.render(document(self_url="http://feeds.test/feeds/all.rss?page=2")))
    links = {link.get("rel"): link.get("href") for link in rss.iter(ATOM_LINK)}
    assert links == {
        "self": "http://feeds.test/feeds/all.rss?page=2",
        "first": "http://feeds.test/feeds/all.atom",
        "last": "http://feeds.test/feeds/all.atom?page=3",
        "previous": "http://feeds.test/feeds/all.atom",
        "next": "http://feeds.test/feeds/all.atom?page=3",
    }


def test_trap10_forbidden_characters_never_fail_a_feed() -> None:
    dirty = "bell\x07 nul\x00 ffff\uffff"
    doc = document(
        title=dirty,
        entries=(entry(1, title=dirty, summary=dirty, author=dirty, content_html=dirty),),
    )
    for fmt in FORMATS.values():
        body = fmt.render(doc)
        if fmt is not JSON:
            parse_xml(body)
        assert b"bell nul ffff" in body


@pytest.mark.parametrize("fmt", (ATOM, RSS), ids=("atom", "rss"))
def test_text_is_text_and_reads_back_unchanged(fmt) -> None:  # type: ignore[no-untyped-def]
    parsed = read_feed(fmt.render(document()))
    first = parsed.entries[0]
    assert first.title == "Entry 3 & <friends>"
    assert first.id == entry(3).id
    assert first.link == "https://news.example/3"
    assert first.author == "Provider & Co"
    assert [t.term for t in first.tags] == ["computer-vision" if fmt is ATOM else "Computer Vision"]
    assert parsed.feed.title == "News"


def test_rss_items_carry_what_feedgens_dublin_core_extension_writes() -> None:
    """feedsvc writes each item's dc:creator itself (`_EntryExtras`): the same bytes as feedgen's
    Dublin Core extension, with an author, without, and with text to escape; and the root
    declares the namespaces as feedgen does with its media and Dublin Core extensions."""
    import re

    authors = ("Provider & Co", None, 'A & <B> \r\n\t"quoted" > \u00e9')
    fg = _feedgen_with("media", "dc")
    for author in authors:
        fe = fg.add_entry(order="append")
        fe.title("T")
        if author is not None:
            fe.dc.dc_creator(author)
    written = feedsvc.render._hex_references(fg.rss_str())
    doc = document(entries=tuple(entry(n, author=a) for n, a in enumerate(authors, 1)))
    ours = RSS.render(doc)
    creator = re.compile(rb"<dc:creator>.*?</dc:creator>", re.DOTALL)
    assert creator.findall(ours) == creator.findall(written)
    assert len(creator.findall(ours)) == 2
    root = re.compile(rb"<rss [^>]*>")
    assert root.findall(ours) == root.findall(written)
    assert parse_xml(ours).findtext(f"channel/item/{DC}creator") == "Provider & Co"


# Text for the markup the entry extension writes: what its strings may hold (markup, quotes, the
# white space lxml writes as references, any script); what lxml refuses is added apart, rarely,
# so that it does not hide the rest.
_odd_text = st.text(
    st.one_of(
        st.sampled_from("&<>\"'\t\n\r ;=?/\u00e9\u2028\U0001f600\x7f\x85"),
        st.characters(exclude_categories=("Cs", "Cc")),
    ),
    max_size=12,
)
# ASCII alone, which the markup checks its own way.
_ascii_text = st.text(st.sampled_from("&<>\"'\t\n\r ;=?/\x7fab"), max_size=12)
# Plain: nothing the markup must escape value by value (tab, line breaks and `&` are references
# made over the whole markup).
_plain_text = st.text(st.sampled_from("ab/?=&\t\n\r\u00e9"), max_size=8)


def _odd_entries(odd: st.SearchStrategy[str]) -> st.SearchStrategy[list[Any]]:
    """Up to three entries' images, related links and author, a third of their strings drawn
    from `odd` (so that one odd string among plain ones is drawn often: the markup takes
    another way when any string of an entry is odd)."""
    text = st.one_of(odd, _plain_text, _plain_text)
    image = st.builds(
        Image,
        st.builds(lambda text: f"https://img.example/{text}", text),
        st.sampled_from([None, 0, 480]),
        st.sampled_from([None, 0, 640]),
        st.one_of(st.sampled_from(["image/jpeg", ""]), text),
    )
    link = st.builds(
        Link,
        st.builds(lambda text: f"https://other.example/{text}", text),
        st.one_of(st.just("related"), text),
        st.one_of(st.none(), st.just("text/html"), text),
        st.one_of(st.none(), st.just(""), text),
    )
    parts = st.tuples(
        st.lists(image, max_size=3), st.lists(link, max_size=3), st.one_of(st.none(), text)
    )
    return st.lists(parts, min_size=1, max_size=3)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(_odd_entries(_odd_text), _odd_entries(_ascii_text)),
    st.sampled_from([None, None, None, "\x00", "\x0b", "\x1f", "\ufffe", "\uffff"]),
)
def test_entry_extension_markup_is_what_lxml_writes(
    entries: list[tuple[list[Image], list[Link], str | None]], refused: str | None
) -> None:
    """The entry extension's markup (`_atom_markup`, `_rss_markup`) is, byte for byte, what
    lxml writes for the same elements made as lxml elements (`_atom_elements`,
    `_rss_elements`), whatever their strings hold; where lxml refuses a string (`refused` at
    the end of the last entry's first URL), the render fails as it does with lxml's
    elements."""
    if refused is not None:
        images, links, author = entries[-1]
        if images:
            images[0] = replace(images[0], url=images[0].url + refused)
        elif links:
            links[0] = replace(links[0], href=links[0].href + refused)
    doc = document(
        entries=tuple(
            entry(number, images=tuple(images), related=tuple(links), author=author)
            for number, (images, links, author) in enumerate(entries, 1)
        )
    )
    for fmt in (ATOM, RSS):
        ours, elements = _outcome(fmt, doc), _outcome(fmt, doc, lxml_only=True)
        assert ours == elements


def test_rss_markup_leaves_a_creator_lxml_refuses_to_lxml() -> None:
    data = feedsvc.render._EntryExtrasData(creator="bell\x07")
    assert feedsvc.render._rss_markup(data) is None
    data.creator = "A & <B>\t"
    assert feedsvc.render._rss_markup(data) == b"<dc:creator>A &amp; &lt;B&gt;\t</dc:creator>"


def _outcome(fmt: Any, doc: FeedDocument, lxml_only: bool = False) -> bytes | type:
    """The render's bytes, or the type of the error it raised; with `lxml_only`, the entry
    extension writes lxml's elements for every entry."""
    writers = feedsvc.render._atom_markup, feedsvc.render._rss_markup
    try:
        if lxml_only:
            feedsvc.render._atom_markup = feedsvc.render._rss_markup = lambda data: None
        return bytes(fmt.render(doc))
    except (ValueError, TypeError) as error:
        return type(error)
    finally:
        feedsvc.render._atom_markup, feedsvc.render._rss_markup = writers


def test_rss_description_is_escaped_html_so_markup_like_text_survives() -> None:
    item = parse_xml(RSS.render(document())).find("channel/item")
    assert item.findtext("description") == "Summary 3 of &lt;UBER.N&gt; &amp; co"
    assert read_feed(RSS.render(document())).entries[0].summary == (
        "Summary 3 of &lt;UBER.N&gt; &amp; co"
    )


def test_atom_summary_is_text_and_content_is_html() -> None:
    node = atom_entries(parse_xml(ATOM.render(document())))[0]
    summary = node.find(f"{A}summary")
    assert summary.get("type") == "text" and summary.text == "Summary 3 of <UBER.N> & co"
    content = node.find(f"{A}content")
    assert content.get("type") == "html" and content.text == "<p>Other coverage</p>"


def test_guid_is_not_a_permalink_unless_it_is_the_article_url() -> None:
    rss = parse_xml(RSS.render(document()))
    assert {g.get("isPermaLink") for g in rss.iter("guid")} == {"false"}
    same = document(entries=(entry(1, id="https://news.example/1"),))
    guid = parse_xml(RSS.render(same)).find("channel/item/guid")
    assert guid.get("isPermaLink") == "true"


def test_provider_icon_becomes_atom_icon_and_rss_image() -> None:
    atom = parse_xml(ATOM.render(document()))
    assert atom.findtext(f"{A}icon") == "https://img.example/logo.jpg"
    image = parse_xml(RSS.render(document())).find("channel/image")
    assert image.findtext("url") == "https://img.example/logo.jpg"
    assert image.findtext("link") == "http://feeds.test/"
    assert (image.findtext("width"), image.findtext("height")) == ("50", "50")


def test_feed_level_fields() -> None:
    atom = parse_xml(ATOM.render(document()))
    assert atom.findtext(f"{A}id") == "http://feeds.test/"
    assert atom.findtext(f"{A}author/{A}name") == "News"
    assert atom.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    links = {link.get("rel"): link for link in atom.findall(f"{A}link")}
    assert links["self"].get("type") == "application/atom+xml"
    assert links["alternate"].get("href") == "http://feeds.test/"
    assert set(links) == {"self", "alternate", "first", "last", "previous", "next"}
    rss = parse_xml(RSS.render(document()))
    assert rss.findtext("channel/description") == "All news"
    assert rss.findtext("channel/language") == "en"


def test_an_entry_without_excerpt_still_has_text_in_both_formats() -> None:
    doc = document(entries=(entry(1, summary="", content_html=None),))
    node = atom_entries(parse_xml(ATOM.render(doc)))[0]
    assert node.findtext(f"{A}summary") == "Entry 1 & <friends>"
    item = parse_xml(RSS.render(doc)).find("channel/item")
    assert item.findtext("description") == "Entry 1 &amp; &lt;friends&gt;"


def test_rss_writes_ampersand_and_less_than_as_hexadecimal_references() -> None:
    doc = document(entries=(entry(1, title="AT&T <UBER.N> &lt;kept&gt;"),))
    body = RSS.render(doc)
    assert b"&lt;" not in body and b"&amp;" not in body
    item = parse_xml(body).find("channel/item")
    assert item.findtext("title") == "AT&T <UBER.N> &lt;kept&gt;"
    assert read_feed(body).entries[0].title == "AT&T <UBER.N> &lt;kept&gt;"


def test_json_feed_carries_the_same_entries_ids_images_authors_and_tags() -> None:
    doc = document()
    feed = read_json_feed(JSON.render(doc))
    assert feed["feed_url"] == doc.self_url and feed["home_page_url"] == doc.html_url
    assert feed["next_url"] == "http://feeds.test/feeds/all.atom?page=3"
    assert feed["favicon"] == "https://img.example/logo.jpg"
    first = feed["items"][0]
    assert [item["id"] for item in feed["items"]] == [e.id for e in doc.entries]
    assert first["title"] == "Entry 3 & <friends>"  # text, not HTML: JSON needs no escaping
    assert first["summary"] == "Summary 3 of <UBER.N> & co"
    assert first["content_html"] == "<p>Other coverage</p>"
    assert first["date_published"] == "2022-01-03T00:00:00Z"
    assert first["authors"] == [{"name": "Provider & Co"}]
    assert first["tags"] == ["Computer Vision"]
    assert first["image"] == JPEG.url
    assert first["attachments"] == [
        {"url": JPEG.url, "mime_type": "image/jpeg"},
        {"url": PNG.url, "mime_type": "image/png"},
    ]


def test_json_feed_items_always_have_content_and_the_last_page_no_next_url() -> None:
    bare = entry(1, summary="", content_html=None, images=(), categories=(), author=None)
    feed = read_json_feed(JSON.render(document(entries=(bare,), paging=())))
    assert "next_url" not in feed
    assert feed["items"][0]["content_text"] == bare.title
    assert not {"image", "attachments", "tags", "authors", "summary"} & set(feed["items"][0])


def test_xml_feeds_point_browsers_at_the_stylesheet_and_readers_ignore_it() -> None:
    url = "http://feeds.test/static/feed.xsl"
    for fmt in (ATOM, RSS):
        styled = fmt.render(document(stylesheet_url=url))
        plain = fmt.render(document(stylesheet_url=None))
        tree = parse_xml(styled).getroottree()
        instruction = tree.getroot().getprevious()
        assert instruction.target == "xml-stylesheet"
        assert instruction.get("href") == url and instruction.get("type") == "text/xsl"
        assert read_feed(styled) == read_feed(plain)


def test_opml_lists_each_feed_once_in_its_group() -> None:
    listings = [
        FeedListing(scope, name, f"News: {name}", f"http://feeds.test/{name}", urls, 1, None)
        for scope, name in (
            ("all", "All & more"),
            ("topics", "AI"),
            ("providers", "조선일보"),
            ("stories", "AI stories"),
        )
        for urls in [tuple((ext, f"http://feeds.test/{name}.{ext}") for ext in FORMATS)]
    ]
    root = parse_xml(render_opml("News & views", listings))
    assert root.get("version") == "2.0" and root.findtext("head/title") == "News & views"
    groups = root.findall("body/outline")
    assert [group.get("text") for group in groups] == [
        "All articles",
        "Topics",
        "Providers",
        "Stories",
    ]
    for group, listing in zip(groups, listings, strict=True):
        (outline,) = group.findall("outline")
        assert outline.get("type") == "rss" and outline.get("text") == listing.title
        assert outline.get("xmlUrl") == listing.feed_url("atom")
        assert outline.get("htmlUrl") == listing.html_url


# -- documents put together from entry fragments (Format.assemble) ------------------------------


class _Store(dict[object, bytes]):
    """A fragment store that counts what it is asked and given."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[object] = []

    def get(self, key: object, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        self.asked.append(key)
        return super().get(key, default)

    def put(self, key: object, fragment: bytes) -> None:
        assert key not in self, "an entry rendered twice"
        self[key] = fragment


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS)
def test_an_assembled_document_is_the_one_shot_render_and_renders_each_entry_once(fmt) -> None:  # type: ignore[no-untyped-def]
    store = _Store()
    whole = document(stylesheet_url="http://feeds.test/static/feed.xsl")
    assert fmt.assemble(replace(whole, entries=whole.entries[1:]), store) == fmt.render(
        replace(whole, entries=whole.entries[1:])
    )
    assert set(store) == {(fmt.extension, e) for e in whole.entries[1:]}
    # One entry missing: rendered, and put with the others in their place.
    assert fmt.assemble(whole, store) == fmt.render(whole)
    assert set(store) == {(fmt.extension, e) for e in whole.entries}
    # Every entry there: none rendered again (the store refuses a second put).
    assert fmt.assemble(whole, store) == fmt.render(whole)
    assert store.asked[-3:] == [(fmt.extension, e) for e in whole.entries]
    one = replace(whole, entries=whole.entries[:1], paging=())
    assert fmt.assemble(one, store) == fmt.render(one)
    empty = replace(whole, entries=(), paging=(), page=1, pages=1)
    assert fmt.assemble(empty, store) == fmt.render(empty)


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS)
def test_an_assembled_document_takes_each_entry_from_the_store(fmt) -> None:  # type: ignore[no-untyped-def]
    """The fragments kept are what a page shows: the store's bytes, not a render of its own."""
    whole = document()
    store = _Store()
    fmt.assemble(whole, store)
    marked = {key: fragment.replace(b"Entry 2", b"Entry two") for key, fragment in store.items()}
    store.clear()
    store.update(marked)
    renamed = replace(whole.entries[1], title="Entry two & <friends>")
    expected = fmt.render(replace(whole, entries=(whole.entries[0], renamed, whole.entries[2])))
    assert fmt.assemble(whole, store) == expected


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS)
def test_an_entry_twice_in_a_document_is_rendered_once(fmt) -> None:  # type: ignore[no-untyped-def]
    twice = document(entries=(entry(3), entry(2), entry(3)))
    store = _Store()
    assert fmt.assemble(twice, store) == fmt.render(twice)
    assert set(store) == {(fmt.extension, entry(3)), (fmt.extension, entry(2))}


@pytest.mark.parametrize("fmt", FORMATS.values(), ids=FORMATS)
def test_a_document_whose_entries_are_all_kept_renders_none_for_its_head_and_tail(fmt) -> None:  # type: ignore[no-untyped-def]
    """What makes a page of kept entries cheap: its head and tail come from a render of the
    document without entries, not of the page; a page with entries missing renders those
    alone."""
    rendered: list[int] = []

    def parts(doc: FeedDocument) -> Any:
        rendered.append(len(doc.entries))
        return fmt.parts(doc)

    counting = replace(fmt, parts=parts)
    whole = document()
    store = _Store()
    assert counting.assemble(replace(whole, entries=whole.entries[:1]), store)
    assert counting.assemble(whole, store) == fmt.render(whole)
    assert counting.assemble(whole, store) == fmt.render(whole)
    assert rendered == [1, 2, 0]


def _by_setters(fmt: Any, doc: FeedDocument) -> list[dict[str, Any]]:
    """The fields of `doc`'s entries as feedgen's `add_entry()` and setters make them, called as
    the render called them before it set the fields itself (`render._new_entry`)."""
    from feedgen.feed import FeedGenerator

    text = feedsvc.render._text
    utc = feedsvc.render._utc
    fg = FeedGenerator()
    fg.register_extension("feedsvc", feedsvc.render._FeedExtras, feedsvc.render._EntryExtras)
    for item in doc.entries:
        fe = fg.add_entry(order="append")
        fe.guid(item.id, permalink=item.id == item.link)
        fe.title(text(item.title))
        fe.link(href=item.link)
        fe.published(utc(item.published))
        fe.updated(utc(item.updated))
        if item.categories:
            fe.category(
                [
                    {"term": c.term, "label": text(c.label), "scheme": c.scheme}
                    for c in item.categories
                ]
            )
        data = fe.feedsvc.data
        data.images = item.images
        if fmt is ATOM:
            if item.author:
                fe.author({"name": text(item.author)})
            fe.summary(text(item.summary or item.title), type="text")
            if item.content_html:
                fe.content(text(item.content_html), type="html")
            data.atom_links = item.related
        else:
            if item.author:
                data.creator = text(item.author)
            fe.description(html.escape(text(item.summary or item.title), quote=False))
            if item.content_html:
                fe.content(text(item.content_html))
            data.rss_enclosure = item.images[0] if item.images else None
    return [_fields(fe) for fe in fg.entry()]


def _fields(fe: Any) -> dict[str, Any]:
    """An entry's fields, its extension given as (a copy of) the data it holds now."""
    fields = dict(vars(fe))
    extensions = fields.pop("_FeedEntry__extensions")
    assert fields.pop("feedsvc") is extensions["feedsvc"]["inst"]
    fields["extensions"] = {
        name: {**found, "inst": replace(found["inst"].data)} for name, found in extensions.items()
    }
    return fields


_words = st.text(st.sampled_from("ab &<\u00e9\x00\n"), max_size=6)
_moments = st.datetimes(
    min_value=datetime(1990, 1, 1),
    timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-5))]),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            Entry,
            id=st.sampled_from(["urn:x", "https://news.example/a"]),
            title=_words.map(lambda text: "T" + text),
            link=st.sampled_from(["https://news.example/a", "https://news.example/b"]),
            summary=_words,
            published=_moments,
            author=st.one_of(st.none(), st.just(""), _words),
            categories=st.lists(
                st.builds(
                    Category,
                    st.text(st.sampled_from("ab-"), min_size=1, max_size=3),
                    _words,
                    st.sampled_from(["", "http://feeds.test/topics/"]),
                ),
                max_size=3,
            ).map(tuple),
            images=st.sampled_from([(), (JPEG,), (PNG, JPEG)]),
            related=st.sampled_from([(), (Link("https://other.example/r", "related"),)]),
            content_html=st.one_of(st.none(), st.just(""), _words),
            modified=st.one_of(st.none(), _moments),
        ),
        max_size=3,
    )
)
def test_entries_have_the_fields_feedgens_setters_give_them(entries: list[Entry]) -> None:
    """feedsvc sets each entry's fields itself (`render._new_entry`), without feedgen's setters:
    feedgen is given the very fields its setters would have set, in each format."""
    doc = document(entries=tuple(entries))
    assert _given_to_feedgen(ATOM, "atom_str", doc) == [_by_setters(ATOM, doc)]
    assert _given_to_feedgen(RSS, "rss_str", doc) == [_by_setters(RSS, doc)]


def _given_to_feedgen(fmt: Any, writer: str, doc: FeedDocument) -> list[list[dict[str, Any]]]:
    """The fields of each entry feedgen's `writer` is asked to write when `fmt` renders `doc`."""
    from feedgen.feed import FeedGenerator

    given: list[list[dict[str, Any]]] = []
    real = getattr(FeedGenerator, writer)

    def spy(fg: Any, *args: Any, **kwargs: Any) -> Any:
        given.append([_fields(fe) for fe in fg.entry()])
        return real(fg, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FeedGenerator, writer, spy)
        # Every text through `_text`, as the setters were given it (and one document written,
        # whatever lxml refuses: `_lxml_checked` has a test of its own).
        patch.setattr(feedsvc.render, "_as_lxml_checks", feedsvc.render._text)
        fmt.render(doc)
    return given


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-5)), timezone.min]),
    )
)
def test_trap11_rss_dates_are_what_feedgen_writes_without_switching_the_locale(
    moment: datetime,
) -> None:
    """feedgen writes RSS dates with `render._rfc2822` in place of its `formatRFC2822`, which
    switches the whole process to the C locale and back for each date: the same strings."""
    import feedgen.entry
    import feedgen.feed
    from feedgen.util import formatRFC2822

    assert feedgen.entry.formatRFC2822 is feedgen.feed.formatRFC2822 is feedsvc.render._rfc2822
    assert feedsvc.render._rfc2822(moment) == formatRFC2822(moment)
    assert feedsvc.render._rfc2822(moment.astimezone(UTC)) == formatRFC2822(moment.astimezone(UTC))


# Text XML forbids (C0 controls, DEL, C1 controls, surrogates, U+FFFE), ASCII or not, among text
# lxml takes.
_dirty = st.text(
    st.sampled_from("a &<\t\n\r\x00\x01\x0b\x1f\x7f\x80\x85\x9f\u00e9\ud800\ufffe\uffff"),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            _dirty, _dirty, st.one_of(st.none(), _dirty), _dirty, st.lists(_dirty, max_size=2)
        ),
        min_size=1,
        max_size=3,
    )
)
def test_entries_text_is_cleaned_as_trap10_has_it_whether_lxml_checks_it_or_not(
    texts: list[tuple[str, str, str | None, str, list[str]]],
) -> None:
    """The entries' text is given to lxml as it is where lxml checks what `_text` would
    (`render._lxml_checked`): the same bytes, or the same error, as with `_text` on every
    text, whatever the text holds."""
    doc = document(
        entries=tuple(
            entry(
                number,
                title="T" + title,
                summary=summary,
                author=author,
                content_html=content,
                categories=tuple(Category("c", label, "http://feeds.test/") for label in labels),
            )
            for number, (title, summary, author, content, labels) in enumerate(texts, 1)
        )
    )
    for fmt in (ATOM, RSS):
        ours = _outcome(fmt, doc)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(feedsvc.render, "_as_lxml_checks", feedsvc.render._text)
            assert ours == _outcome(fmt, doc)
