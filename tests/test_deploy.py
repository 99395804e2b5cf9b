"""The nginx configurations in deploy/, run by a real nginx on loopback: serving a built folder,
and caching in front of a running feedsvc. The files in deploy/ are used as they are, with only
their lines marked EDIT (address, folders, upstream) replaced."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path

import pytest

from feedsvc.build import app_urls, build_site, file_for
from tests.conftest import ASSET_BASE_URL, RECORDS, make_app, read_feed, system_tool
from tests.servers import descendants, feedsvc_process, fetch, free_port, running_feedsvc, stop

pytestmark = pytest.mark.live
DEPLOY = Path(__file__).parent.parent / "deploy"
PAGED = {"FEED_SIZE": 3}
# Starts nginx with a site configuration (on a given port, else a free one); gives its base URL
# and its folder.
Start = Callable[..., tuple[str, Path]]


def deploy_config(name: str, replacements: dict[str, str]) -> str:
    """deploy/NAME with each EDIT line's value replaced; each must be found exactly once, so the
    test breaks loudly rather than testing something else when the file changes."""
    text = (DEPLOY / name).read_text(encoding="utf-8")
    for old, new in replacements.items():
        assert text.count(old) == 1, (name, old)
        text = text.replace(old, new)
    return text


def proxy_config(service: str, cache: Path) -> str:
    """deploy/nginx-proxy.conf in front of the feedsvc at the base URL `service`, caching in
    the folder `cache`."""
    return deploy_config(
        "nginx-proxy.conf",
        {
            "server 127.0.0.1:8000;": f"server {service.removeprefix('http://')};",
            "/var/cache/nginx/feedsvc": str(cache),
        },
    )


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Start]:
    """Start nginx in the foreground with a configuration that includes `site` (a deploy file,
    templated); everything it writes is under tmp_path; stopped by its own PID."""
    binary = system_tool("nginx")
    processes: list[subprocess.Popen[bytes]] = []

    def start(site: str, port: int | None = None) -> tuple[str, Path]:
        port = port or free_port()
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        (prefix / "site.conf").write_text(site, encoding="utf-8")
        temp = "\n".join(
            f"    {kind}_temp_path {prefix}/{kind}_temp;"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # Run as root (the test may be), nginx's workers would switch to "nobody", who cannot
        # read pytest's private temporary folders.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
            f"error_log {prefix}/error.log info;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n    access_log off;\n{temp}\n    include {prefix}/site.conf;\n}}\n",
            encoding="utf-8",
        )
        with (prefix / "stderr.log").open("wb") as log:
            process = subprocess.Popen(
                [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")]
                + ["-e", str(prefix / "error.log")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append(process)
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                errors = (prefix / "error.log").read_text() + (prefix / "stderr.log").read_text()
                raise RuntimeError(f"nginx exited with {process.returncode}: {errors}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return f"http://127.0.0.1:{port}", prefix

    yield start
    for process in processes:
        stop(process)


@pytest.fixture
def static_site(tmp_path: Path, nginx: Start) -> tuple[str, Path]:
    """A build of the test collection served by nginx with deploy/nginx-static.conf."""
    site = tmp_path / "site"
    build_site(make_app(**PAGED), site)
    config = deploy_config(
        "nginx-static.conf",
        {"root /srv/feedsvc/site;": f"root {site};"},
    )
    base, _ = nginx(config)
    return base, site


def test_nginx_serves_every_url_with_the_servers_bytes_and_media_type(
    static_site: tuple[str, Path],
) -> None:
    base, site = static_site
    app = make_app(**PAGED)
    client = app.test_client()
    urls = app_urls(app)
    assert "/feeds/all.json?page=2" in urls and "/providers/example-net" in urls
    for url in urls:
        status, headers, body = fetch(base + url)
        with client.get(url, headers={"Accept": "*/*"}) as expected:
            assert status == 200, url
            assert headers["Content-Type"] == expected.headers["Content-Type"], url
            assert body == expected.get_data(), url
            policy = expected.headers.get("Content-Security-Policy")
            assert headers["Content-Security-Policy"] == policy, url
        assert headers["Cache-Control"] == "public, max-age=300", url
        assert headers["X-Content-Type-Options"] == "nosniff"
    assert (
        fetch(base + "/feeds/all.json")[1]["Content-Type"] == "application/feed+json; charset=utf-8"
    )
    assert fetch(base + "/feeds/all.atom")[1]["Access-Control-Allow-Origin"] == "*"


def test_nginx_serves_the_precompressed_files(static_site: tuple[str, Path]) -> None:
    base, site = static_site
    status, headers, body = fetch(base + "/feeds/topics/ai.rss?page=2", {"Accept-Encoding": "gzip"})
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert body == (site / "feeds/topics/ai.page-2.rss.gz").read_bytes()
    assert gzip.decompress(body) == (site / "feeds/topics/ai.page-2.rss").read_bytes()
    assert "Accept-Encoding" in headers["Vary"]
    read_feed(gzip.decompress(body))


def test_nginx_answers_conditional_requests_with_304(static_site: tuple[str, Path]) -> None:
    base, _ = static_site
    served = make_app(**PAGED).test_client().get("/feeds/all.atom")
    status, headers, _ = fetch(base + "/feeds/all.atom")
    assert headers["Last-Modified"] == served.headers["Last-Modified"]
    etag = headers["ETag"]
    assert fetch(base + "/feeds/all.atom", {"If-None-Match": etag})[0] == 304
    modified = {"If-Modified-Since": headers["Last-Modified"]}
    assert fetch(base + "/feeds/all.atom", modified)[0] == 304
    later = {"If-Modified-Since": "Sat, 01 Jan 2050 00:00:00 GMT"}
    assert fetch(base + "/feeds/all.atom", later)[0] == 304  # as new or newer, as feedsvc does
    older = {"If-Modified-Since": "Sat, 01 Jan 2022 00:00:00 GMT"}
    assert fetch(base + "/feeds/all.atom", older)[0] == 200
    gz = fetch(base + "/feeds/all.atom", {"Accept-Encoding": "gzip"})[1]["ETag"]
    assert gz != etag  # the gzip file is another representation with its own validator


def test_nginx_maps_pages_and_refuses_what_is_not_in_the_site(
    static_site: tuple[str, Path],
) -> None:
    base, site = static_site
    assert fetch(base + "/?page=2")[2] == (site / file_for("/?page=2")).read_bytes()
    assert fetch(base + "/feeds/all.atom?page=1")[2] == (site / "feeds/all.atom").read_bytes()
    for url in (
        "/feeds/all.atom?page=x",
        "/feeds/all.atom?page=99",
        "/.feedsvc-build",
        "/topics/nothing",
        "/metrics",
        "/feeds/all.atom.gz/x",
    ):
        assert fetch(base + url)[0] == 404, url


def test_nginx_proxy_cache_in_front_of_feedsvc(tmp_path: Path, nginx: Start) -> None:
    with running_feedsvc(RECORDS, tmp_path / "feedsvc.log") as service:
        base, _ = nginx(proxy_config(service, tmp_path / "cache"))
        first = fetch(base + "/feeds/all.atom")
        second = fetch(base + "/feeds/all.atom")
        assert (first[0], first[1]["X-Cache-Status"]) == (200, "MISS")
        assert (second[0], second[1]["X-Cache-Status"]) == (200, "HIT")
        assert (
            second[2]
            == first[2]
            == fetch(service + "/feeds/all.atom")[2].replace(service.encode(), base.encode())
        )
        assert second[1]["Content-Type"] == "application/atom+xml; charset=utf-8"
        # links point at the proxy: feedsvc saw its Host
        self_link = next(
            link.href for link in read_feed(second[2]).feed.links if link.rel == "self"
        )
        assert self_link == base + "/feeds/all.atom"

        gzip_headers = {"Accept-Encoding": "gzip, deflate"}
        zipped = [fetch(base + "/feeds/all.atom", gzip_headers) for _ in range(2)]
        assert [z[1]["X-Cache-Status"] for z in zipped] == ["MISS", "HIT"]
        assert zipped[1][1]["Content-Encoding"] == "gzip"
        assert gzip.decompress(zipped[1][2]) == first[2]
        # Another way of saying "gzip" is the same variant: one cached copy serves both.
        assert (
            fetch(base + "/feeds/all.atom", {"Accept-Encoding": "gzip"})[1]["X-Cache-Status"]
            == "HIT"
        )

        etag = second[1]["ETag"]
        again = fetch(base + "/feeds/all.atom", {"If-None-Match": etag})
        assert (again[0], again[1]["X-Cache-Status"]) == (304, "HIT")
        assert fetch(base + "/healthz")[1]["X-Cache-Status"] != "HIT"
        assert fetch(base + "/metrics")[0] == 404
        # feedsvc saw one request per variant (identity, gzip), plus the test's own direct one.
        log = (tmp_path / "feedsvc.log").read_text()
        assert log.count("path=/feeds/all.atom ") == 3

        # Browsers get the feed's HTML view, cached apart from the feed; a reader that also
        # accepts HTML, less, gets the feed.
        views = [fetch(base + "/feeds/all.rss", {"Accept": FIREFOX_ACCEPT}) for _ in range(2)]
        assert [view[1]["X-Cache-Status"] for view in views] == ["MISS", "HIT"]
        assert views[1][1]["Content-Type"] == "text/html; charset=utf-8"
        assert b'id="feed-address"' in views[1][2]
        reader = fetch(base + "/feeds/all.rss", {"Accept": "application/rss+xml, text/html;q=0.1"})
        assert reader[1]["Content-Type"] == "application/rss+xml; charset=utf-8"


# What browsers send (Chromium, Firefox, Safari) and what feed readers and tools send.
CHROMIUM_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
FIREFOX_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
SAFARI_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
BROWSERS = (CHROMIUM_ACCEPT, FIREFOX_ACCEPT, SAFARI_ACCEPT, "text/html")
READERS = (
    "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,"
    "application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1",  # feedparser
    "application/rss+xml, application/atom+xml, text/html;q=0.5, */*;q=0.1",
    "application/feed+json, application/json;q=0.9",
    "*/*",
    "text/html;q=0.5, */*",
    "",
)


def varies_on(headers: Message) -> set[str]:
    """The request headers every Vary header of a response names."""
    return {name.strip() for value in headers.get_all("Vary", []) for name in value.split(",")}


def test_nginx_gives_browsers_the_view_of_a_feed_and_readers_the_feed(
    static_site: tuple[str, Path],
) -> None:
    base, site = static_site
    for url, name in (("/feeds/all.atom", "all"), ("/feeds/topics/ai.json?page=2", "ai.page-2")):
        extension = url.split("?")[0].rsplit(".", 1)[1]
        feed_file = site / file_for(url)
        view_file = feed_file.with_name(feed_file.name + ".html")
        assert view_file.name == f"{name}.{extension}.html"
        for accept in BROWSERS:
            status, headers, body = fetch(base + url, {"Accept": accept})
            assert (status, body) == (200, view_file.read_bytes()), (url, accept)
            assert headers["Content-Type"] == "text/html; charset=utf-8"
            assert "script-src" not in headers["Content-Security-Policy"]
            assert "Accept" in varies_on(headers), (url, accept)
        for accept in READERS:
            status, headers, body = fetch(base + url, {"Accept": accept})
            assert (status, body) == (200, feed_file.read_bytes()), (url, accept)
            assert "Accept" in varies_on(headers), (url, accept)
    # The view has its own validators, and conditional GET works for it.
    view = fetch(base + "/feeds/all.atom", {"Accept": FIREFOX_ACCEPT})[1]
    feed = fetch(base + "/feeds/all.atom")[1]
    assert view["ETag"] != feed["ETag"]
    again = {"Accept": FIREFOX_ACCEPT, "If-None-Match": view["ETag"]}
    assert fetch(base + "/feeds/all.atom", again)[0] == 304
    assert fetch(base + "/feeds/all.atom", {"If-None-Match": view["ETag"]})[0] == 200


def test_a_reader_of_the_static_site_sees_what_feedsvc_serve_sends(
    tmp_path: Path, nginx: Start
) -> None:
    """As a publisher would: build for the URL nginx serves at, and compare every URL with a
    running `feedsvc serve` that has the same BASE_URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    site = tmp_path / "site"
    app = make_app(BASE_URL=base)
    build_site(app, site)
    config = deploy_config("nginx-static.conf", {"root /srv/feedsvc/site;": f"root {site};"})
    nginx(config, port)
    settings = {"BASE_URL": base, "ASSET_BASE_URL": ASSET_BASE_URL}
    with running_feedsvc(RECORDS, tmp_path / "feedsvc.log", settings=settings) as service:
        for url in app_urls(app):
            static, live = fetch(base + url), fetch(service + url, {"Accept": "*/*"})
            assert (static[0], static[2]) == (live[0], live[2]), url
            assert static[1]["Content-Type"] == live[1]["Content-Type"], url
        # Browsers and readers get the same document from both, feed or view.
        for url in ("/feeds/all.atom", "/feeds/topics/ai.rss", "/feeds/providers/theiet-org.json"):
            for accept in (*BROWSERS, *READERS):
                static, live = (
                    fetch(base + url, {"Accept": accept}),
                    fetch(service + url, {"Accept": accept}),
                )
                assert (static[0], static[2]) == (live[0], live[2]), (url, accept)
                assert static[1]["Content-Type"] == live[1]["Content-Type"], (url, accept)
        from_static = read_feed(fetch(base + "/feeds/all.atom")[2])
        from_live = read_feed(fetch(service + "/feeds/all.atom")[2])
        assert [e.id for e in from_static.entries] == [e.id for e in from_live.entries]
        assert len(from_static.entries) == 9


def test_a_rebuilt_file_whose_bytes_changed_is_never_answered_304(
    tmp_path: Path, nginx: Start
) -> None:
    """An older record's title changes without changing its length: the feed's size and its
    Last-Modified (the newest entry's date) stay, so nginx's ETag (time and size) would too,
    unless the build moves the file's time forward."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    site = tmp_path / "site"
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), site)
    config = deploy_config("nginx-static.conf", {"root /srv/feedsvc/site;": f"root {site};"})
    base, _ = nginx(config)
    asked = [
        (url, {"Accept-Encoding": coding})
        for url in ("/feeds/all.atom", "/feeds/all.json", "/")
        for coding in ("identity", "gzip")
    ]
    before = [fetch(base + url, headers) for url, headers in asked]
    record = seeds / "2023-03-02-bad-optional-fields.md"
    old, new = "Bad optional fields are dropped,", "Bad optional fields are DROPPED,"
    record.write_text(record.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), site)
    for (url, headers), (_, validators, body) in zip(asked, before, strict=True):
        status, now, changed = fetch(base + url, headers)
        assert status == 200 and changed != body, url
        if "gzip" not in headers.values():  # the same size: only the time can tell
            assert new.encode() in changed and len(changed) == len(body), url
        assert now["ETag"] != validators["ETag"], (url, headers)
        assert fetch(base + url, {**headers, "If-None-Match": validators["ETag"]})[0] == 200
        since = {**headers, "If-Modified-Since": validators["Last-Modified"]}
        assert fetch(base + url, since)[0] == 200, (url, headers)


def test_a_static_site_sends_searches_to_a_running_feedsvc(tmp_path: Path, nginx: Start) -> None:
    """nginx-static.conf serves the built folder and passes /search and /feeds/search.* to
    `feedsvc serve` on the same records, whose answers keep their own headers (one of each)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    site = tmp_path / "site"
    build_site(make_app(BASE_URL=base, SEARCH_INDEX="auto"), site)  # as `build --search`
    settings = {"BASE_URL": base, "RELOAD_INTERVAL": "0"}
    with running_feedsvc(RECORDS, tmp_path / "feedsvc.log", settings=settings) as service:
        config = deploy_config(
            "nginx-static.conf",
            {
                "root /srv/feedsvc/site;": f"root {site};",
                "server 127.0.0.1:8000;": f"server {service.removeprefix('http://')};",
            },
        )
        nginx(config, port)
        index = fetch(base + "/")
        assert index[2] == (site / "index.html").read_bytes()  # static, with the search box
        assert b'action="' + base.encode() + b'/search"' in index[2]
        for url in ("/feeds/search.atom?q=vision&topic=ai", "/search?q=vision&topic=ai"):
            status, headers, body = fetch(base + url)
            live = fetch(service + url)
            assert (status, body) == (live[0], live[2]) == (200, live[2]), url
            assert headers["ETag"] == live[1]["ETag"], url
            for name in ("Cache-Control", "Access-Control-Allow-Origin", "X-Content-Type-Options"):
                assert headers.get_all(name) == live[1].get_all(name), (url, name)
            policy = headers.get_all("Content-Security-Policy")
            assert policy == live[1].get_all("Content-Security-Policy"), url
        feed = read_feed(fetch(base + "/feeds/search.rss?q=vision")[2])
        assert len(feed.entries) == 4 and feed.feed.title == 'feedsvc: search "vision"'
        etag = fetch(base + "/feeds/search.atom?q=vision")[1]["ETag"]
        assert fetch(base + "/feeds/search.atom?q=vision", {"If-None-Match": etag})[0] == 304
        redirect = urllib.request.Request(base + "/feeds/search.atom?q=Vision", method="HEAD")
        with pytest.raises(urllib.error.HTTPError) as moved:
            urllib.request.build_opener(_NoRedirects).open(redirect, timeout=10)
        assert moved.value.code == 301
        assert moved.value.headers["Location"] == base + "/feeds/search.atom?q=vision"
        assert fetch(base + "/feeds/all.atom")[2] == (site / "feeds/all.atom").read_bytes()
    assert fetch(base + "/search?q=vision")[0] == 502  # no feedsvc serve: no search


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


# -- nginx-proxy.conf never picks what the client refused (issue 16, item 11) --------------------

CODINGS_THROUGH_THE_PROXY = [
    ("gzip, br;q=0", "gzip"),
    ("gzip;q=0, identity", None),
    ("br;q=0.0, gzip;q=0.000", None),
    ("br ; q=0 , gzip ; q=0.5", "gzip"),
    ("gzip;q=nonsense", None),
    ("gzip, deflate, br", "br"),
    ("BR;Q=0.001", "br"),
    ("br;q=0.5, gzip", "br"),  # both accepted: nginx prefers br where feedsvc weighs q
    ("*", None),
    ("", None),
]
ACCEPTS_THROUGH_THE_PROXY = [
    *BROWSERS,
    *READERS,
    "application/atom+xml, text/html;q=0.1",
    "text/html, application/atom+xml;q=0.5",
    "text/html, application/atom+xml;q=0",
    "application/atom+xml;q=0, application/rss+xml;q=0, application/feed+json;q=0, text/html",
    "text/html, */*",
    "text/html, */*;q=0",
    "text/html;q=0.9, */*;q=0.8",
    "text/html, application/*;q=0.5",
    "text/*",
    "image/webp",
    FIREFOX_ACCEPT + "," + "x" * 2100,  # past feedsvc's bound: read as no Accept at all
    FIREFOX_ACCEPT + ";a=1" * 40,
]


def test_nginx_proxy_respects_q_0_and_decides_the_view_as_feedsvc(
    tmp_path: Path, nginx: Start
) -> None:
    with running_feedsvc(RECORDS, tmp_path / "feedsvc.log") as service:
        base, _ = nginx(proxy_config(service, tmp_path / "cache"))
        for accept_encoding, coding in CODINGS_THROUGH_THE_PROXY:
            for _ in range(2):  # from feedsvc, then from nginx's cache
                status, headers, _ = fetch(
                    base + "/feeds/all.atom", {"Accept-Encoding": accept_encoding}
                )
                assert (status, headers.get("Content-Encoding")) == (200, coding), accept_encoding
        for url in ("/feeds/all.atom", "/feeds/topics/ai.rss", "/feeds/all.json"):
            for accept in ACCEPTS_THROUGH_THE_PROXY:
                direct = fetch(service + url, {"Accept": accept})[1]["Content-Type"]
                for _ in range(2):
                    proxied = fetch(base + url, {"Accept": accept})[1]["Content-Type"]
                    assert proxied == direct, (url, accept)
        # the issue's case: a reader that accepts HTML, much less, gets the feed
        refused = {"Accept": "application/atom+xml, text/html;q=0.1"}
        assert fetch(base + "/feeds/all.atom", refused)[1]["Content-Type"].startswith(
            "application/atom+xml"
        )


def maps(text: str) -> list[str]:
    """The `map` blocks of a configuration, as written."""
    return re.findall(r"^map .*?^}", text, re.MULTILINE | re.DOTALL)


def test_the_upstream_config_decides_variants_as_the_proxy_config() -> None:
    upstream, proxy = ((DEPLOY / name).read_text() for name in UPSTREAM_AND_PROXY)
    assert len(maps(proxy)) == 2 and maps(upstream) == maps(proxy)
    location = re.compile(r"^    location / \{.*?^    \}", re.MULTILINE | re.DOTALL)
    proxied = location.search(proxy)
    assert proxied is not None and proxied.group().removesuffix("    }") in upstream


UPSTREAM_AND_PROXY = ("nginx-upstream.conf", "nginx-proxy.conf")


@pytest.mark.parametrize("crash", [False, True], ids=["stopped", "crashed"])
def test_nginx_fails_over_when_an_instance_stops_mid_load(
    tmp_path: Path, nginx: Start, crash: bool
) -> None:
    """Two instances behind deploy/nginx-upstream.conf, under load from several clients (each
    request a cache miss, so that it reaches an instance); one instance is stopped by its PID
    (SIGTERM), or crashes (SIGKILL to its worker and main process, by their PIDs). No request
    fails, not even those in flight at that moment; every request after it is answered by the
    other instance, and every answer is the same document whichever instance made it."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    settings = {"BASE_URL": base_url, "FEED_SIZE": "3"}
    with (
        feedsvc_process(RECORDS, tmp_path / "one.log", settings=settings) as (one, first),
        feedsvc_process(RECORDS, tmp_path / "two.log", settings=settings) as (two, _),
    ):
        config = deploy_config(
            "nginx-upstream.conf",
            {
                "server 127.0.0.1:8001 ": f"server {one.removeprefix('http://')} ",
                "server 127.0.0.1:8002 ": f"server {two.removeprefix('http://')} ",
                "/var/cache/nginx/feedsvc": str(tmp_path / "cache"),
            },
        )
        nginx(config, port)
        load = Load(base_url + "/feeds/topics/ai.atom?client={}&n={}", clients=6)
        with load.running():
            load.wait_for(200)
            if crash:
                for pid in [*descendants(first.pid), first.pid]:
                    os.kill(pid, signal.SIGKILL)
            else:
                first.terminate()
            first.wait(timeout=30)
            wait_until(lambda: not descendants(first.pid))
            stopped = load.count()
            load.wait_for(stopped + 300)
        answered_by_two = (tmp_path / "two.log").read_text().count("path=/feeds/topics/ai.atom?")
    # Not one failure: even the requests in flight on the stopped instance are passed to the
    # other (without proxy_next_upstream, 1 to 4 of them fail here with 502).
    assert load.failures == []
    assert len(set(load.bodies)) == 1 and load.count() > stopped + 300
    assert answered_by_two >= 300  # every request since the stop, and its share before
    assert read_feed(load.bodies.pop()).feed.title == "feedsvc: AI"


def wait_until(condition: Callable[[], object], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


class Load:
    """Clients that request `url` (formatted with the client's number and a counter, so that
    nginx caches nothing) one after another until stopped, noting each failure (status other
    than 200, or no answer) by the request's place in the run."""

    def __init__(self, url: str, clients: int) -> None:
        self.url = url
        self.clients = clients
        self.failures: list[tuple[int, str]] = []
        self.bodies: set[bytes] = set()
        self._done = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def count(self) -> int:
        with self._lock:
            return self._done

    def wait_for(self, requests: int, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while self.count() < requests:
            assert time.monotonic() < deadline, f"{self.count()} of {requests} requests"
            time.sleep(0.01)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        threads = [threading.Thread(target=self._client, args=(n,)) for n in range(self.clients)]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self._stop.set()
            for thread in threads:
                thread.join()

    def _client(self, number: int) -> None:
        sent = 0
        while not self._stop.is_set():
            sent += 1
            with self._lock:
                index = self._done
            try:
                status, _, body = fetch(self.url.format(number, sent))
                outcome = None if status == 200 else f"status {status}"
            except (OSError, http.client.HTTPException) as exc:  # no answer, or half of one
                outcome, body = f"{type(exc).__name__}: {exc}", b""
            with self._lock:
                self._done += 1
                if outcome is None:
                    self.bodies.add(body)
                else:
                    self.failures.append((index, outcome))
