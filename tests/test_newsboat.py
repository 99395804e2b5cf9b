"""A second real client: newsboat, Debian's terminal feed reader, imports `/feeds.opml` from the
running service and reloads every feed, as a person moving to feedsvc would."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ATOM, RECORDS, parse_xml, system_tool
from tests.servers import fetch, running_feedsvc

pytestmark = pytest.mark.live


def newsboat(home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """newsboat with its files in `home`, never the user's; -l 4 logs warnings and errors."""
    command = [system_tool("newsboat"), "-u", str(home / "urls"), "-c", str(home / "cache.db")]
    command += ["-C", str(home / "config"), "-l", "4", "-d", str(home / "newsboat.log")]
    return subprocess.run(
        [*command, *arguments],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_newsboat_imports_the_opml_and_reloads_every_feed(tmp_path: Path) -> None:
    system_tool("newsboat")
    (tmp_path / "config").write_text("")
    with running_feedsvc(RECORDS, tmp_path / "server.log") as server:
        status, _, opml = fetch(server + "/feeds.opml")
        assert status == 200
        (tmp_path / "feeds.opml").write_bytes(opml)
        outlines = parse_xml(opml).findall("body/outline/outline")
        expected = {o.get("xmlUrl"): o.get("title") for o in outlines}
        records = json.loads(fetch(server + "/healthz")[2])["records"]
        stories = json.loads(fetch(server + "/feeds/stories/all.json")[2])["items"]

        imported = newsboat(tmp_path, "-i", str(tmp_path / "feeds.opml"))
        assert imported.returncode == 0, imported.stderr
        subscribed = [line.split()[0] for line in (tmp_path / "urls").read_text().splitlines()]
        assert sorted(subscribed) == sorted(expected)

        reloaded = newsboat(tmp_path, "-x", "reload")
        assert reloaded.returncode == 0 and not reloaded.stderr.strip(), reloaded.stderr
        unread = newsboat(tmp_path, "-x", "print-unread")
    assert (tmp_path / "newsboat.log").read_text() == ""  # no warning, no error
    with sqlite3.connect(tmp_path / "cache.db") as cache:
        titles = dict(cache.execute("SELECT rssurl, title FROM rss_feed").fetchall())
        guids = {guid for (guid,) in cache.execute("SELECT guid FROM rss_item")}
    assert titles == expected  # every feed fetched and parsed, under the title it announces
    # one item per story (newsboat keeps one copy of an item seen in several feeds, by id: a
    # story is in the all-stories feed and its topics'); a story's id is never an article's
    assert {story["id"] for story in stories} <= guids and 1 < len(stories) < records
    assert len(guids) == records + len(stories) and records == 9
    assert unread.stdout.strip() == f"{records + len(stories)} unread articles"


def test_newsboat_subscribes_to_a_search_and_gets_its_entries(tmp_path: Path) -> None:
    system_tool("newsboat")
    (tmp_path / "config").write_text("")
    with running_feedsvc(RECORDS, tmp_path / "server.log") as server:
        urls = {f"{server}/feeds/search.{ext}?q=vision&topic=ai" for ext in ("atom", "rss")}
        status, _, body = fetch(sorted(urls)[0])
        assert status == 200
        expected = {entry.findtext(f"{ATOM}id") for entry in parse_xml(body).iter(f"{ATOM}entry")}
        (tmp_path / "urls").write_text("".join(f"{url}\n" for url in sorted(urls)))
        reloaded = newsboat(tmp_path, "-x", "reload")
        assert reloaded.returncode == 0 and not reloaded.stderr.strip(), reloaded.stderr
    assert (tmp_path / "newsboat.log").read_text() == ""  # no warning, no error
    with sqlite3.connect(tmp_path / "cache.db") as cache:
        titles = dict(cache.execute("SELECT rssurl, title FROM rss_feed").fetchall())
        guids = {guid for (guid,) in cache.execute("SELECT guid FROM rss_item")}
    assert titles == dict.fromkeys(urls, 'feedsvc: search "vision" in AI')
    assert guids == expected and len(expected) == 3  # the same ids in Atom and RSS
