"""A real browser: Debian's headless Chromium, driven by Playwright, against `feedsvc serve` on
loopback. It opens the index as a person would, follows a topic, reads the autodiscovery links,
opens each feed and sees its HTML view (no XSLT), and follows its links. Screenshots go to
tests/screenshots/ (not committed)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RECORDS, python_module, system_tool
from tests.servers import fetch, running_feedsvc

pytestmark = pytest.mark.live
SCREENSHOTS = Path(__file__).parent / "screenshots"
# As root, in a container with no route out: no sandbox, and none of Chromium's own traffic.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("browser") / "server.log"
    with running_feedsvc(RECORDS, log) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = system_tool("chromium")
    sync_api = python_module("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records what the browser complains about (CSP violations among it)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.complaints = []
    page.on(
        "console",
        lambda message: (
            page.complaints.append(message.text) if message.type in ("error", "warning") else None
        ),
    )
    yield page
    context.close()


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def alternates(page: Any) -> dict[str, str]:
    """type -> href of the first autodiscovery link of each type (the page's own feed; a
    page's story feeds come after it)."""
    links = page.locator('head link[rel="alternate"]')
    found: dict[str, str] = {}
    for i in range(links.count()):
        found.setdefault(links.nth(i).get_attribute("type"), links.nth(i).get_attribute("href"))
    return found


def test_a_person_finds_a_topic_subscribes_and_reads_the_feed(page: Any, server: str) -> None:
    health = json.loads(fetch(server + "/healthz")[2])
    page.goto(server + "/")
    assert page.title() == "feedsvc"
    assert page.locator("section[aria-labelledby=topics] tbody tr").count() == health["topics"]
    assert (
        page.locator("section[aria-labelledby=providers] tbody tr").count() == (health["providers"])
    )
    assert alternates(page)["application/atom+xml"] == server + "/feeds/all.atom"
    screenshot(page, "index")

    page.get_by_role("link", name="Computer Vision", exact=True).first.click()
    page.wait_for_url(server + "/topics/computer-vision")
    assert page.locator("h1").inner_text() == "Computer Vision"
    articles = page.locator("article")
    assert articles.count() >= 2
    image = page.locator("article img").first
    assert image.get_attribute("alt") and int(image.get_attribute("width")) > 0
    feeds = alternates(page)
    assert set(feeds) == {"application/atom+xml", "application/rss+xml", "application/feed+json"}
    screenshot(page, "topic")

    titles = [articles.nth(i).locator("h3").inner_text() for i in range(articles.count())]
    for media_type, name in (
        ("application/atom+xml", "atom"),
        ("application/rss+xml", "rss"),
        ("application/feed+json", "json"),
    ):
        response = page.goto(feeds[media_type])
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert page.locator("#feed-title").inner_text() == "feedsvc: Computer Vision"
        assert page.locator("#feed-address").inner_text() == feeds[media_type]
        assert page.locator("article h3").all_inner_texts() == titles
        # No XSLT, so no deprecation banner (Chromium put one over the styled feed).
        assert "XSLT" not in page.locator("html").inner_text()
        screenshot(page, f"feed-{name}")

    # The view's links work: an article (the publisher is out of reach here, so the browser is
    # answered for it: what is checked is where the link leads), and the topic's page.
    first = page.locator("article h3 a").first
    article = first.get_attribute("href")
    assert article.startswith(("https://", "http://")) and not article.startswith(server)
    page.route(
        lambda url: not url.startswith(server),
        lambda route: route.fulfill(content_type="text/html", body="<title>article</title>"),
    )
    first.click()
    page.wait_for_url(article)
    assert page.title() == "article"
    page.go_back()
    page.locator("#feed-page").click()
    page.wait_for_url(server + "/topics/computer-vision")
    assert not [text for text in page.complaints if "Content Security Policy" in text]


def test_pages_fit_a_phone_screen_and_break_no_policy(browser: Any, server: str) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    try:
        for path, name in (
            ("/", "phone-index"),
            ("/providers/theiet-org", "phone-provider"),
            ("/feeds/providers/theiet-org.atom", "phone-feed"),
        ):
            page.goto(server + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (path, width)
            screenshot(page, name)
        stylesheet_applied = page.evaluate(
            "getComputedStyle(document.body).maxWidth"  # set by /static/style.css only
        )
        assert stylesheet_applied != "none"
    finally:
        context.close()
    assert not [text for text in violations if "Content Security Policy" in text]


def test_a_person_searches_from_the_index_and_subscribes_to_the_results(
    page: Any, server: str
) -> None:
    """The index page's search box (a plain GET form, allowed by the pages' form-action
    'self') leads to the results page, whose subscribe link gives the search's feed."""
    page.goto(server + "/")
    page.get_by_label("Search articles").fill("Vision")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(server + "/search?q=vision")  # redirected to the canonical spelling
    titles = page.locator("article h3").all_inner_texts()
    assert len(titles) == 4 and page.locator("h2#results").inner_text() == 'Search "vision"'
    feeds = alternates(page)
    assert feeds["application/atom+xml"] == server + "/feeds/search.atom?q=vision"
    screenshot(page, "search")

    page.get_by_label("Topic", exact=True).select_option(label="AI")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(server + "/search?q=vision&topic=ai")
    assert len(page.locator("article h3").all_inner_texts()) == 3

    page.locator("ul.subscribe").get_by_role("link", name="Atom").click()
    page.wait_for_selector("#feed-title")
    assert page.locator("#feed-title").inner_text() == 'feedsvc: search "vision" in AI'
    assert page.locator("#feed-address").inner_text() == (
        server + "/feeds/search.atom?q=vision&topic=ai"
    )
    assert len(page.locator("article h3").all_inner_texts()) == 3
    assert not [
        text
        for text in page.complaints
        if "Content Security Policy" in text and "inline event handler" not in text
    ]


def test_a_story_page_shows_the_story_and_its_coverage(page: Any, server: str) -> None:
    stories = json.loads(fetch(server + "/feeds/stories/all.json")[2])["items"]
    story = max(stories, key=lambda item: item["content_html"].count("<li>"))
    story_url = re.search(r'href="([^"]+/stories/[^"]+)"', story["content_html"])
    assert story_url is not None
    page.goto(story_url[1])
    assert page.locator("h1").inner_text() == story["title"]
    coverage = page.locator("ol.coverage li")
    assert coverage.count() == story["content_html"].count("<li>") > 1
    first_feed = page.locator('head link[rel="alternate"]').first.get_attribute("href")
    assert first_feed == server + "/feeds/stories/all.atom"
    assert page.evaluate("getComputedStyle(document.body).maxWidth") != "none"  # style.css
    screenshot(page, "story")
    assert not [text for text in page.complaints if "Content Security Policy" in text]
