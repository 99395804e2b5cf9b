"""Many instances, one site: `feedsvc serve` instances on the same records, started at other
times, from other folders, with other parse caches, answer every URL with the same bytes and
validators, so that a load balancer or a CDN may send any request to any of them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

import pytest

from feedsvc.build import app_urls
from feedsvc.cache import strong_etag
from tests.conftest import RECORDS, make_app, write_record
from tests.servers import descendants, feedsvc_process, fetch, running

pytestmark = pytest.mark.live
PAGED = {"FEED_SIZE": "3"}
# Feed readers, browsers (the feeds' HTML views), and every content coding.
CLIENTS = [
    {"Accept": "*/*", "Accept-Encoding": coding} for coding in ("identity", "gzip", "br")
] + [{"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", "Accept-Encoding": "gzip"}]
# What must be the same whichever instance answers.
SAME = (
    "Content-Type",
    "Content-Encoding",
    "Content-Length",
    "ETag",
    "Last-Modified",
    "Link",
    "Cache-Control",
    "Vary",
    "Content-Security-Policy",
)


WRITTEN = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
# The feeds that show the future-dated record.
FUTURE = ("/feeds/all.", "/feeds/topics/ai.", "/feeds/providers/future-example.")


def every_url(seeds: Path, base_url: str) -> list[str]:
    """Every URL with content, as a static build lists them (each feed in every format and
    page, its HTML view, the pages, OPML, stylesheets), and searches."""
    urls = app_urls(make_app(SEEDS_DIR=seeds, BASE_URL=base_url, FEED_SIZE=3))
    return [*urls, "/search?q=vision", "/feeds/search.atom?q=vision", "/feeds/all.atom?page=9"]


def test_two_instances_answer_every_url_alike(tmp_path: Path) -> None:
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    # A record dated in the future: its feeds' Last-Modified may not be later than Date.
    write_record(seeds, "future.md", "From the future", day=1, domain="future.example")
    future = seeds / "future.md"
    future.write_text(future.read_text().replace("2022-01-01", "2099-01-01"), encoding="utf-8")
    for path in (*seeds.rglob("*"), seeds):  # written long ago, as a checkout would be
        os.utime(path, (WRITTEN, WRITTEN))
    base_url = "https://news.example.org/"  # as behind a load balancer: one public address
    settings = {**PAGED, "BASE_URL": base_url, "RELOAD_INTERVAL": "0.5"}
    first_home, second_home = tmp_path / "one", tmp_path / "two"
    for home in (first_home, second_home):
        (home / "tmp").mkdir(parents=True)
    # The second starts later, elsewhere, with a parse cache the first one filled before.
    cache = first_home / "parse.cache"
    with feedsvc_process(
        seeds,
        tmp_path / "warm.log",
        settings={**settings, "PARSE_CACHE": str(cache)},
        cwd=first_home,
    ):
        pass
    with feedsvc_process(
        seeds,
        tmp_path / "one.log",
        settings={**settings, "PARSE_CACHE": str(cache)},
        cwd=first_home,
        environment={"TMPDIR": str(first_home / "tmp")},
        workers=2,
    ) as (first, _):
        urls = every_url(seeds, base_url)
        for url in urls:  # rendered (and kept) by the first one now, by the second one later
            for headers in CLIENTS:
                fetch(first + url, headers)
        time.sleep(1.1)  # another second on the clock: nothing may depend on when it started
        with feedsvc_process(
            seeds,
            tmp_path / "two.log",
            settings={**settings, "PARSE_CACHE": "off"},
            cwd=second_home,
            environment={"TMPDIR": str(second_home / "tmp")},
            server="gunicorn",
        ) as (second, _):
            compared = 0
            for url in urls:
                for headers in CLIENTS:
                    one = fetch(first + url, headers)
                    two = fetch(second + url, headers)
                    assert one[0] == two[0], (url, headers)
                    assert one[2] == two[2], (url, headers)
                    for name in SAME:
                        assert one[1].get(name) == two[1].get(name), (url, headers, name)
                    if one[0] == 200 and url.startswith(FUTURE):
                        # Not the record's date: the files' time (RFC 9110: never after Date).
                        assert one[1]["Last-Modified"] == formatdate(WRITTEN, usegmt=True), url
                    compared += 1
            assert compared > 400
    # The first one read its records from the parse cache, the second parsed them.
    assert "files_parsed=0 " in (tmp_path / "one.log").read_text()
    assert "files_parsed=0 " not in (tmp_path / "two.log").read_text()


def test_stylesheets_are_validated_by_their_bytes_alone(tmp_path: Path) -> None:
    """Another machine installs the same feedsvc elsewhere, at another time: its stylesheets'
    ETags are the same (Flask's own are made of the file's path and time)."""
    here = make_app()
    elsewhere = make_app()
    other_install = tmp_path / "site-packages" / "feedsvc" / "static"
    shutil.copytree(here.static_folder or "", other_install)
    for path in other_install.iterdir():
        os.utime(path, (WRITTEN, WRITTEN))
    elsewhere.static_folder = str(other_install)
    for name in ("style.css", "feed.xsl"):
        one = here.test_client().get(f"/static/{name}")
        two = elsewhere.test_client().get(f"/static/{name}")
        assert one.status_code == two.status_code == 200
        assert one.data == two.data == (other_install / name).read_bytes()
        assert one.headers["ETag"] == two.headers["ETag"] == f'"{strong_etag(one.data)}"'
        # Last-Modified is still the installed file's time (what a static build's copy has).
        assert two.headers["Last-Modified"] == formatdate(WRITTEN, usegmt=True)
        again = here.test_client().get(
            f"/static/{name}", headers={"If-None-Match": two.headers["ETag"]}
        )
        assert (again.status_code, again.data) == (304, b"")


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_a_killed_instance_leaves_no_worker_behind(tmp_path: Path, server: str) -> None:
    """The main process of an instance killed outright (SIGKILL, by its PID): its workers go
    too, so that nothing answers for a dead instance and it can start again on its address."""
    with feedsvc_process(RECORDS, tmp_path / "one.log", server=server, workers=2) as (base, one):
        deadline = time.monotonic() + 20
        while len(workers := descendants(one.pid)) < 2:  # both workers started
            assert time.monotonic() < deadline, workers
            time.sleep(0.05)
        one.kill()
        one.wait()
        deadline = time.monotonic() + 20
        try:
            while any(running(pid) for pid in workers):
                assert time.monotonic() < deadline, [
                    described(pid) for pid in workers if running(pid)
                ]
                time.sleep(0.05)
        finally:  # none is left behind, even when the test fails
            for pid in filter(running, workers):
                os.kill(pid, signal.SIGKILL)
    port = int(base.rpartition(":")[2])
    with feedsvc_process(RECORDS, tmp_path / "two.log", server=server, port=port) as (again, _):
        assert fetch(again + "/feeds/all.atom")[0] == 200


def test_healthz_names_the_worker_that_answered(tmp_path: Path) -> None:
    """Each worker has its own caches: /healthz says which worker its figures are of, so that
    a soak can tell the workers' cache sizes apart (bench/faults.py)."""
    with feedsvc_process(RECORDS, tmp_path / "log", workers=2) as (base, server):
        answered = {json.loads(fetch(base + "/healthz")[2])["pid"] for _ in range(20)}
        workers = descendants(server.pid)
    assert answered and answered <= set(workers), (answered, workers)


def described(pid: int) -> str:
    """A process as a failure should name it: PID, command line, state and parent."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        status = dict(
            line.split(":\t", 1)
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if ":\t" in line
        )
    except OSError:
        return f"{pid} (gone)"
    return f"{pid} {command.strip()!r} state {status.get('State')} parent {status.get('PPid')}"
