"""The page of one story (`/stories/<id>`), parsed as HTML (lxml): the page a story entry's
content links to."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lxml import html

from feedsvc.pages import CONTENT_SECURITY_POLICY
from feedsvc.render import FORMATS
from tests.conftest import BASE_URL, read_feed
from tests.test_story_feeds import SHARED, client_for, record, records, story_id_of, write

__all__ = ["records"]  # the fixture


def slug_of(story_id: str) -> str:
    return story_id.rpartition(":")[2]


def story_page(records: Path) -> tuple[Any, Any]:
    client = client_for(records)
    response = client.get(f"/stories/{slug_of(story_id_of('https://a.example/1'))}")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    return response, html.document_fromstring(response.data)


def test_a_story_entry_links_a_page_that_exists(records: Path) -> None:
    client = client_for(records)
    feed = read_feed(client.get("/feeds/stories/all.atom").data)
    for entry in feed.entries:
        links = re.findall(r'href="([^"]+/stories/[^"]+)"', entry.content[0].value)
        assert len(links) == 1
        assert links[0].startswith(BASE_URL)
        page = client.get(links[0].removeprefix(BASE_URL))
        assert page.status_code == 200, links[0]


def test_story_page_lists_its_coverage_newest_first_under_the_lead(records: Path) -> None:
    _, doc = story_page(records)
    headline = doc.xpath("//article[@class='story']/h1/a")[0]
    assert headline.text == "Robotaxis launch (b.example)"  # the rated record leads
    assert headline.get("href") == "https://b.example/2"
    assert doc.xpath("//article[@class='story']//p[@class='excerpt']")[0].text == (
        "Excerpt of https://b.example/2"
    )
    assert doc.xpath("//article[@class='story']/img/@src") == ["https://b.example/2/lead.jpg"]
    items = doc.xpath("//ol[@class='coverage']/li")
    assert [item.xpath("a/@href")[0] for item in items] == [
        "https://b.example/2",
        "https://a.example/1",
        SHARED,
    ]
    assert [item.xpath(".//span[@class='provider']/text()") for item in items] == [
        ["b.example"],
        ["a.example"],
        ["Wire"],
    ]
    assert [item.xpath(".//time/@datetime")[0][:16] for item in items] == [
        "2022-11-16T09:00",
        "2022-11-15T10:00",
        "2022-11-15T08:00",
    ]


def test_story_page_autodiscovers_the_story_feeds_without_script(records: Path) -> None:
    response, doc = story_page(records)
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert not doc.xpath("//script")
    alternates = [
        link.get("href") for link in doc.head.iter("link") if link.get("rel") == "alternate"
    ]
    assert alternates == [
        *(f"{BASE_URL}/feeds/stories/all.{ext}" for ext in FORMATS),
        *(f"{BASE_URL}/feeds/stories/topics/ai.{ext}" for ext in FORMATS),
    ]


def test_story_page_is_cached_and_conditional(records: Path) -> None:
    client = client_for(records)
    path = f"/stories/{slug_of(story_id_of('https://a.example/1'))}"
    first = client.get(path)
    again = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def test_story_page_shows_coverage_that_joined_the_story(records: Path) -> None:
    write(records, "d.md", record("https://d.example/4", "2022-11-17T09:00:00Z", [SHARED]))
    _, doc = story_page(records)
    assert doc.xpath("//ol[@class='coverage']/li[1]/a/@href") == ["https://d.example/4"]


def test_unknown_story_is_an_html_404_page(records: Path) -> None:
    client = client_for(records)
    for slug in ("00000000-0000-0000-0000-000000000000", "nothing", slug_of("urn:uuid:x")):
        response = client.get(f"/stories/{slug}")
        assert response.status_code == 404
        assert response.content_type == "text/html; charset=utf-8"
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "There is no story" in response.get_data(as_text=True)


def test_every_story_page_of_one_app_links_its_own_story_feeds(records: Path) -> None:
    """The links made of a page's feeds are rendered once per feed and reused
    (`pages._alternate_links`, `pages._subscribe_links`): each page of one process still shows
    its own, in its head and in its list of story feeds."""
    for name, topics in (("d.md", ["Robots", "AI"]), ("e.md", ["Space"])):
        fields = record(f"https://{name[0]}.example/4", "2022-11-14T10:00:00Z", [])
        write(records, name, {**fields, "topics": topics})
    client = client_for(records)
    feed = read_feed(client.get("/feeds/stories/all.atom").data)
    shown = set()
    for entry in feed.entries:
        link = re.findall(r'href="([^"]+/stories/[^"]+)"', entry.content[0].value)[0]
        doc = html.document_fromstring(client.get(link.removeprefix(BASE_URL)).data)
        topics = sorted(tag.term for tag in entry.tags)
        expected = [
            f"{BASE_URL}/feeds/stories/{scope}.{ext}"
            for scope in ("all", *(f"topics/{topic}" for topic in topics))
            for ext in FORMATS
        ]
        head = [
            link.get("href") for link in doc.head.iter("link") if link.get("rel") == "alternate"
        ]
        assert head == expected, entry.id
        assert doc.xpath("//ul[@class='feeds']/li//a/@href") == expected, entry.id
        shown.add(tuple(expected))
    assert len(shown) == 3  # three sets of topics
