"""The HTML pages, parsed as HTML (lxml) and checked for structure, links and their headers."""

from __future__ import annotations

import gzip
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from lxml import html
from markupsafe import escape

from feedsvc.feeds import Site, iter_feeds
from feedsvc.pages import _articles, _coverage_items, _entries, _text, feed_page_inputs, render_page
from feedsvc.render import FORMATS
from feedsvc.stories import Coverage
from tests.conftest import BASE_URL, entry_links, make_app, read_feed, read_json_feed

PAGES = ["/", "/topics/ai", "/topics/computer-vision", "/providers/usnews-com"]
# Each feed's HTML view, at its own URL (a browser gets it at the feed's URL too).
VIEWS = [f"/feeds/providers/usnews-com.{extension}.html" for extension in FORMATS]
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def page(client: FlaskClient, path: str, status: int = 200) -> Any:
    response = client.get(path)
    assert response.status_code == status, path
    assert response.content_type == "text/html; charset=utf-8"
    return html.document_fromstring(response.data)


def alternates(doc: Any) -> dict[str, str]:
    """type -> href of the page's first autodiscovery link of each type (its own feed's)."""
    return dict(reversed(every_alternate(doc)))


def every_alternate(doc: Any) -> list[tuple[str, str]]:
    """(type, href) of every autodiscovery link, in order."""
    return [
        (link.get("type"), link.get("href"))
        for link in doc.head.iter("link")
        if link.get("rel") == "alternate"
    ]


@pytest.mark.parametrize(
    ("path", "stories"),
    [("/", "/feeds/stories/all"), ("/topics/ai", "/feeds/stories/topics/ai")],
)
def test_index_and_topic_pages_link_their_story_feeds(
    client: FlaskClient, path: str, stories: str
) -> None:
    doc = page(client, path)
    story_feeds = [
        (fmt.mime_type, f"{BASE_URL}{stories}.{fmt.extension}") for fmt in FORMATS.values()
    ]
    assert every_alternate(doc)[len(FORMATS) :] == story_feeds  # after the page's own feed
    subscribe_links = doc.xpath("//main//ul[@class='subscribe']/li/a/@href")
    assert [href for _, href in story_feeds] == [h for h in subscribe_links if "/stories/" in h]
    for _, href in story_feeds:
        assert client.get(local(href)).status_code == 200


def test_provider_pages_link_no_story_feed(client: FlaskClient) -> None:
    assert not [
        href
        for _, href in every_alternate(page(client, "/providers/usnews-com"))
        if "/stories/" in href
    ]


def status_of(client: FlaskClient, path: str) -> int:
    with client.get(path) as response:  # closes static files' handles
        return response.status_code


def local(url: str) -> str:
    assert url.startswith(BASE_URL), url
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def test_index_lists_every_feed_with_counts_dates_and_subscribe_links(
    client: FlaskClient,
) -> None:
    doc = page(client, "/")
    collection = client.application.extensions["feedsvc"].collection
    assert doc.get("lang") == "en"
    assert doc.findtext(".//h1") == "feedsvc"
    assert alternates(doc) == {
        fmt.mime_type: f"{BASE_URL}/feeds/all.{fmt.extension}" for fmt in FORMATS.values()
    }
    for scope, groups in (("topics", collection.topics), ("providers", collection.providers)):
        rows = doc.xpath(f"//section[@aria-labelledby='{scope}']//tbody/tr")
        assert len(rows) == len(groups)
        for row in rows:
            name = row.find("th/a")
            group = groups[name.get("href").rsplit("/", 1)[1]]
            assert name.text_content() == group.name
            cells = row.findall("td")
            assert cells[0].text_content() == str(len(group.records))
            assert cells[1].find("time").get("datetime") == group.updated.isoformat()
            subscribe = [a.get("href") for a in cells[2].iter("a")]
            assert subscribe == [f"{BASE_URL}/feeds/{scope}/{group.slug}.{ext}" for ext in FORMATS]


def test_every_link_on_the_index_resolves(client: FlaskClient) -> None:
    doc = page(client, "/")
    urls = {a.get("href") for a in doc.iter("a")} | {li.get("href") for li in doc.iter("link")}
    own = {url for url in urls if url.startswith(BASE_URL)}
    assert len(own) > 3 * len(FORMATS) * 2
    for url in sorted(own):
        assert status_of(client, local(url)) == 200, url


def test_topic_page_shows_the_feeds_entries_with_their_details(client: FlaskClient) -> None:
    doc = page(client, "/topics/computer-vision")
    assert alternates(doc) == {
        fmt.mime_type: f"{BASE_URL}/feeds/topics/computer-vision.{fmt.extension}"
        for fmt in FORMATS.values()
    }
    feed = client.get("/feeds/topics/computer-vision.json").get_json()
    articles = doc.xpath("//article")
    assert [a.find("h3/a").get("href") for a in articles] == [i["url"] for i in feed["items"]]
    assert [a.find("h3/a").text_content() for a in articles] == [i["title"] for i in feed["items"]]
    theiet = next(a for a in articles if "theiet" in a.find("h3/a").get("href"))
    image = theiet.find(".//img")
    assert image.get("width") == "1200" and image.get("height")
    assert image.get("alt") == theiet.find("h3/a").text_content()
    assert theiet.find(".//time").get("datetime").startswith("2022-")
    assert theiet.findtext(".//*[@class='provider']")
    topics = [a.get("href") for a in theiet.xpath(".//ul[@class='topics']//a")]
    assert f"{BASE_URL}/topics/computer-vision" in topics
    for url in topics:
        assert status_of(client, local(url)) == 200


def test_text_is_escaped_not_markup(client: FlaskClient) -> None:
    response = client.get("/providers/chosun-com")
    assert b"&lt;UBER.N&gt;" in response.data and b"<UBER.N>" not in response.data
    doc = html.document_fromstring(response.data)
    titles = [a.text_content() for a in doc.xpath("//article/h3/a")]
    assert 'Uber & Lyft: "robotaxi" plans <UBER.N> — what’s next®' in titles


def test_pages_are_paged_like_their_feeds() -> None:
    app = make_app(FEED_SIZE=2)
    client = app.test_client()
    for feed in iter_feeds(app.extensions["feedsvc"].collection):
        url: str | None = BASE_URL + feed.html_path
        seen: list[str] = []
        while url:
            doc = page(client, local(url))
            seen += [a.get("href") for a in doc.xpath("//article/h3/a")]
            url = next((a.get("href") for a in doc.iter("a") if a.get("rel") == "next"), None)
        assert seen == [record.url for record in feed.records], feed.path


def test_unknown_slug_and_page_past_the_end_are_404_pages(client: FlaskClient) -> None:
    for path in ("/topics/nothing-here", "/providers/nobody", "/topics/ai?page=99"):
        doc = page(client, path, status=404)
        assert doc.findtext(".//h1") == "Not found"
    assert client.get("/topics/ai?page=zero").status_code == 400


@pytest.mark.parametrize("path", [*PAGES, *VIEWS, "/topics/nothing-here"])
def test_pages_forbid_script_and_use_no_external_assets(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'" and "script-src" not in policy
    assert policy["style-src"] == "'self'"
    doc = html.document_fromstring(response.data)
    assert not list(doc.iter("script"))
    assert not doc.xpath("//@*[starts-with(name(), 'on')]")  # no inline event handlers
    assert not doc.xpath("//*[@style]")
    stylesheets = [li.get("href") for li in doc.iter("link") if li.get("rel") == "stylesheet"]
    assert stylesheets == [f"{BASE_URL}/static/style.css"]
    assert status_of(client, local(stylesheets[0])) == 200


def test_pages_are_cached_and_answer_conditional_requests(client: FlaskClient) -> None:
    renders = client.application.extensions["feedsvc"].renders
    first = client.get("/topics/ai")
    etag, policy = first.headers["ETag"], first.headers["Content-Security-Policy"]
    assert etag and first.headers["Last-Modified"]
    rendered = renders.stats.misses
    again = client.get("/topics/ai")
    assert (again.data, again.headers["ETag"]) == (first.data, etag)
    not_modified = client.get("/topics/ai", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert not_modified.headers["ETag"] == etag
    assert not_modified.headers["Content-Security-Policy"] == policy
    gzipped = client.get("/topics/ai", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["Content-Encoding"] == "gzip" and gzipped.headers["ETag"] != etag
    assert gzip.decompress(gzipped.data) == first.data
    # All three came from the render cache: the page was rendered once.
    assert renders.stats.misses == rendered and renders.stats.hits >= 3


def test_only_the_first_index_page_lists_every_feed() -> None:
    client = make_app(FEED_SIZE=2).test_client()
    first, second = page(client, "/"), page(client, "/?page=2")
    assert first.xpath("//section[@aria-labelledby='topics']//tbody/tr")
    assert not second.xpath("//table")
    assert len(second.xpath("//article")) == 2
    assert alternates(second) == alternates(first)


def feed_title(body: bytes, extension: str) -> str:
    title: str = (
        read_json_feed(body)["title"] if extension == "json" else read_feed(body).feed.title
    )
    return title


@pytest.mark.parametrize("extension", list(FORMATS))
def test_a_feed_opened_in_a_browser_is_a_page_that_explains_it_and_lists_its_entries(
    client: FlaskClient, extension: str
) -> None:
    path = f"/feeds/topics/computer-vision.{extension}"
    feed = client.get(path, headers={"Accept": "*/*"}).data
    response = client.get(path, headers={"Accept": BROWSER_ACCEPT})
    assert response.content_type == "text/html; charset=utf-8"
    assert b"xml-stylesheet" not in response.data and b"xsl" not in response.data.lower()
    doc = html.document_fromstring(response.data)
    assert doc.get_element_by_id("feed-title").text_content() == feed_title(feed, extension)
    about = doc.xpath("//section[@class='about-feed']")[0].text_content()
    assert "This is a web feed" in about and "feed reader" in about
    assert doc.get_element_by_id("feed-address").text_content() == BASE_URL + path
    articles = [a.get("href") for a in doc.xpath("//article/h3/a")]
    assert articles == [link for _, link in entry_links(feed, extension)]
    others = {a.get("href") for a in doc.xpath("//ul[@class='subscribe']//a")}
    urls = {f"{BASE_URL}/feeds/topics/computer-vision.{other}" for other in FORMATS}
    assert others == urls - {BASE_URL + path}
    assert doc.get_element_by_id("feed-page").get("href") == f"{BASE_URL}/topics/computer-vision"
    assert set(alternates(doc).values()) == urls  # browsers and extensions still discover it
    for link in doc.iter("a"):
        href = link.get("href")
        if href.startswith(BASE_URL):  # the site's own links answer; articles are elsewhere
            assert status_of(client, local(href)) == 200, href


def test_feed_views_are_paged_like_their_feeds() -> None:
    app = make_app(FEED_SIZE=2)
    client = app.test_client()
    for feed in iter_feeds(app.extensions["feedsvc"].collection):
        for extension in FORMATS:
            url: str | None = f"{BASE_URL}{feed.path}.{extension}"
            seen: list[str] = []
            while url:
                response = client.get(local(url), headers={"Accept": BROWSER_ACCEPT})
                assert response.status_code == 200, url
                doc = html.document_fromstring(response.data)
                seen += [a.get("href") for a in doc.xpath("//article/h3/a")]
                url = next((a.get("href") for a in doc.iter("a") if a.get("rel") == "next"), None)
                if url:
                    assert url.startswith(f"{BASE_URL}{feed.path}.{extension}.html?page=")
            assert seen == [record.url for record in feed.records], (feed.path, extension)


def test_a_story_feed_opened_in_a_browser_lists_its_stories(client: FlaskClient) -> None:
    for path in ("/feeds/stories/all.atom", "/feeds/stories/topics/ai.json"):
        extension = path.rsplit(".", 1)[1]
        feed = client.get(path, headers={"Accept": "*/*"}).data
        response = client.get(path, headers={"Accept": BROWSER_ACCEPT})
        assert response.content_type == "text/html; charset=utf-8", path
        assert client.get(f"{path}.html").data == response.data
        doc = html.document_fromstring(response.data)
        assert doc.get_element_by_id("feed-title").text_content() == feed_title(feed, extension)
        assert doc.get_element_by_id("feed-address").text_content() == BASE_URL + path
        articles = [a.get("href") for a in doc.xpath("//article/h3/a")]
        assert articles and articles == [link for _, link in entry_links(feed, extension)]


def test_a_search_feed_opened_in_a_browser_is_its_view(client: FlaskClient) -> None:
    path = "/feeds/search.rss?q=vision&topic=ai"
    feed = client.get(path, headers={"Accept": "*/*"})
    response = client.get(path, headers={"Accept": BROWSER_ACCEPT})
    assert feed.content_type == FORMATS["rss"].media_type
    assert response.content_type == "text/html; charset=utf-8"
    assert response.headers["ETag"] != feed.headers["ETag"]
    assert client.get("/feeds/search.rss.html?q=vision&topic=ai").data == response.data
    doc = html.document_fromstring(response.data)
    assert doc.get_element_by_id("feed-address").text_content() == BASE_URL + path
    articles = [a.get("href") for a in doc.xpath("//article/h3/a")]
    assert len(articles) == 3 and articles == [link for _, link in entry_links(feed.data, "rss")]
    again = {"Accept": BROWSER_ACCEPT, "If-None-Match": response.headers["ETag"]}
    assert client.get(path, headers=again).status_code == 304


class _Fragments(dict[Any, bytes]):
    def put(self, key: Any, fragment: bytes) -> None:
        self[key] = fragment


def test_a_page_takes_each_article_from_the_fragment_store_and_leaves_it_there() -> None:
    """An article is rendered once per site and entry: the store keeps its bytes, and the next
    page that shows the entry takes them from there."""
    app = make_app()
    state = app.extensions["feedsvc"]
    feed = next(feed for feed in iter_feeds(state.collection) if len(feed.records) > 1)
    site = Site(BASE_URL, "News")
    inputs = feed_page_inputs(feed, site, 1)
    store = _Fragments()
    with app.app_context():
        whole = render_page(inputs)
        assert render_page(inputs, store) == whole
        entries = inputs.page.document().entries
        assert set(store) == {("html-article", BASE_URL, entry) for entry in entries}
        assert all(fragment.decode() in whole for fragment in store.values())
        kept = _Fragments({key: b"<article>kept</article>" for key in store})
        assert render_page(inputs, kept).count("<article>kept</article>") == len(entries)


def test_a_date_is_written_as_every_page_shows_it() -> None:
    """`time_element`, the templates' `date`: the day as people read it, the moment in full for
    machines, both escaped."""
    from datetime import UTC, datetime, timedelta, timezone

    from feedsvc.pages import time_element

    moment = datetime(2023, 3, 5, 14, 7, tzinfo=UTC)
    assert time_element(moment) == (
        '<time datetime="2023-03-05T14:07:00+00:00">5 March 2023</time>'
    )
    later = datetime(2024, 11, 25, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert time_element(later) == (
        '<time datetime="2024-11-25T23:00:00-05:00">25 November 2024</time>'
    )


def test_a_date_names_every_month_as_strftime_does() -> None:
    """`time_element` writes the day without `strftime` (a fraction of its cost), as
    `strftime("%-d %B %Y")` does in the C locale: each month's name, a day of one digit or
    two, a year of fewer than four digits."""
    from datetime import UTC, datetime

    from feedsvc.pages import time_element

    for month in range(1, 13):
        for moment in (datetime(2021, month, 1, tzinfo=UTC), datetime(987, month, 28, 5, 6, 7)):
            day = moment.strftime("%-d %B %Y")
            assert time_element(moment) == f'<time datetime="{moment.isoformat()}">{day}</time>'


@given(st.text(alphabet=st.sampled_from("a &<>\"'é·\n"), max_size=12))
def test_page_text_is_escaped_exactly_as_jinja_escapes_it(text: str) -> None:
    """`_text` skips `escape` for text with nothing to escape: each of the five characters, on
    its own, still sends the text through it (a quote left raw ends an attribute early)."""
    assert _text(text) == str(escape(text))


@pytest.mark.parametrize("character", ["&", "<", ">", '"', "'"])
def test_each_character_to_escape_is_escaped_on_its_own(character: str) -> None:
    assert _text(f"a{character}b") == str(escape(f"a{character}b")) != f"a{character}b"


def test_a_storys_coverage_lists_each_article_with_what_is_known_of_it() -> None:
    """One `<li>` a line: the link, then the provider and the date when known, a middle dot
    between them only when both are; every text escaped."""
    moment = datetime(2023, 3, 5, 14, 7, tzinfo=UTC)
    coverage = [
        Coverage("Both", "https://a.example/1", "A & Co", moment),
        Coverage("Provider", "https://b.example/2?x=1&y=2", "B", None),
        Coverage("Date <only>", "https://c.example/3", None, moment),
        Coverage('Neither "quoted"', "https://d.example/'4'", None, None),
    ]
    when = '<time datetime="2023-03-05T14:07:00+00:00">5 March 2023</time>'
    assert _coverage_items(coverage) == (
        '<li><a href="https://a.example/1">Both</a> <span class="meta">'
        f'<span class="provider">A &amp; Co</span> · {when}</span></li>\n'
        '<li><a href="https://b.example/2?x=1&amp;y=2">Provider</a> <span class="meta">'
        '<span class="provider">B</span></span></li>\n'
        f'<li><a href="https://c.example/3">Date &lt;only&gt;</a> <span class="meta">{when}</span>'
        "</li>\n"
        '<li><a href="https://d.example/&#39;4&#39;">Neither &#34;quoted&#34;</a></li>\n'
    )
    assert _coverage_items([]) == ""


def test_a_pages_articles_come_one_a_line_then_its_paging() -> None:
    """A page's articles, one a line, then its links to newer and older pages and its place;
    a page with no articles says so; a feed of one page has no paging."""
    app = make_app()
    site = Site(BASE_URL, "News", feed_size=1)
    feed = next(feed for feed in iter_feeds(app.extensions["feedsvc"].collection)
                if len(feed.records) >= 3)  # fmt: skip
    with app.app_context():
        document = feed_page_inputs(feed, site, 2).page.document()
        assert document is not None and document.pages >= 3
        links = {link.rel: link.href for link in document.paging}
        (entry,) = document.entries
        article = str(_articles(site, None)([entry]))
        assert article.startswith("<article") and article.rstrip().endswith("</article>")
        assert str(_entries(site, document, None)) == article + "\n" + (
            '<nav class="paging" aria-label="Pages">\n'
            f'<a rel="prev" href="{escape(links["previous"])}">Newer articles</a>\n'
            f'<a rel="next" href="{escape(links["next"])}">Older articles</a>\n'
            f"<span>Page 2 of {document.pages}</span>\n</nav>\n"
        )
        alone = replace(document, pages=1, paging=())
        assert str(_entries(site, alone, None)) == article + "\n"
        two = replace(alone, entries=document.entries * 2)
        assert str(_entries(site, two, None)) == f"{article}\n{article}\n"
        empty = replace(alone, entries=())
        assert str(_entries(site, empty, None)) == "<p>No articles yet.</p>\n"
        assert str(_entries(site, empty, None, "Nothing <found>.")) == (
            "<p>Nothing &lt;found&gt;.</p>\n"
        )
        assert str(_entries(site, None, None)) == ""
