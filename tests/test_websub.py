"""WebSub: feeds name their hubs, and hubs are told exactly which feeds changed, once, after
the new version is served. The end-to-end test runs a real hub (Flask-WebSub, from PyPI) and a
subscriber on loopback; the others use a recording hub (a real HTTP server that notes what it
is sent) where they need to count and time each notification."""

from __future__ import annotations

import hmac
import logging
import multiprocessing
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from feedsvc.cli import cli
from feedsvc.errors import ConfigError
from feedsvc.feeds import iter_feeds
from feedsvc.metrics import Metrics
from feedsvc.render import FORMATS
from feedsvc.settings import Settings, defaults, hub_urls
from feedsvc.websub import RELOAD_SECONDS, Notifier, SenderLock, post_publish
from tests.conftest import (
    ATOM,
    BASE_URL,
    RECORDS,
    make_app,
    parse_xml,
    read_feed,
    read_json_feed,
    write_record,
)
from tests.servers import fetch, free_port, running_feedsvc, serve_refused, stop

ROOT = Path(__file__).parent.parent
HUB = "https://hub.example/"
OTHER_HUB = "http://hub2.example:8080/publish?key=1"


def wait_until(condition: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {condition}")
        time.sleep(0.02)


@contextmanager
def serving(app: Callable[..., Any]) -> Iterator[str]:
    """A WSGI app on a free loopback port in a thread of this process; its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


# --- Discovery: the feeds name their hubs ---------------------------------------------------


def test_every_feed_names_its_hubs_next_to_its_canonical_self_link() -> None:
    client = make_app(WEBSUB_HUB=f"{HUB}  {OTHER_HUB} {HUB}", FEED_SIZE=3).test_client()
    hubs = [HUB, OTHER_HUB]  # in the order given, each once
    for path in ("/feeds/all", "/feeds/topics/ai", "/feeds/providers/example-net"):
        for extension in FORMATS:
            url = f"{path}.{extension}"
            response = client.get(url)
            self_url = BASE_URL + url
            links = [f'<{hub}>; rel="hub"' for hub in hubs] + [f'<{self_url}>; rel="self"']
            assert response.headers["Link"] == ", ".join(links), url
            if extension == "json":
                feed = read_json_feed(response.data)
                assert feed["hubs"] == [{"type": "WebSub", "url": hub} for hub in hubs]
                assert feed["feed_url"] == self_url
                continue
            root = parse_xml(response.data)
            head = root if extension == "atom" else root.find("channel")
            # The feed's head names them (Atom's <link>, RSS's <atom:link>), never an entry.
            feed_links = [(link.get("rel"), link.get("href")) for link in head.iter(f"{ATOM}link")]
            assert [href for rel, href in feed_links if rel == "hub"] == hubs, url
            assert [
                link.getparent() for link in root.iter(f"{ATOM}link") if link.get("rel") == "hub"
            ] == [head, head]
            assert ("self", self_url) in feed_links
            parsed = read_feed(response.data)
            assert [link.href for link in parsed.feed.links if link.rel == "hub"] == hubs
            assert [link.href for link in parsed.feed.links if link.rel == "self"] == [self_url]


def test_later_pages_name_no_hub_and_feeds_without_the_setting_name_none() -> None:
    client = make_app(WEBSUB_HUB=HUB, FEED_SIZE=3).test_client()
    plain = make_app(FEED_SIZE=3).test_client()
    for extension in FORMATS:
        later = client.get(f"/feeds/all.{extension}?page=2")
        assert "Link" not in later.headers and HUB.encode() not in later.data
        # Apart from the hub links, the same document as without the setting.
        assert later.data == plain.get(f"/feeds/all.{extension}?page=2").data
        first = plain.get(f"/feeds/all.{extension}")
        assert "Link" not in first.headers and b"hub" not in first.data
    assert "Link" not in client.get("/").headers


def test_feeds_no_hub_is_told_of_name_none() -> None:
    """Story feeds (grouped on request) and search feeds (a reader's question) are never sent
    to the hubs, so they do not name them: their subscribers would wait for nothing."""
    client = make_app(WEBSUB_HUB=HUB).test_client()
    assert HUB.encode() in client.get("/feeds/all.atom").data
    for url in ("/feeds/stories/all", "/feeds/stories/topics/ai", "/feeds/search"):
        for extension in FORMATS:
            response = client.get(f"{url}.{extension}?q=vision")
            assert response.status_code == 200, url
            assert "Link" not in response.headers and HUB.encode() not in response.data, url


@pytest.mark.parametrize(
    "value",
    [
        "hub.example",
        "ftp://hub.example/",
        "https:/hub.example",
        "https://",
        "https://user:secret@hub.example/",
        "https://hub.example/#x",
        "https://hub.example/a<b>",
        "https://hub.example:port/",
        f"{HUB} //hub.example/",
    ],
)
def test_a_hub_that_is_not_an_absolute_http_url_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="WEBSUB_HUB must be absolute http"):
        Settings.from_mapping({**defaults(), "WEBSUB_HUB": value})


def test_hubs_are_read_from_the_environment_and_need_a_base_url(tmp_path: Path) -> None:
    assert hub_urls(f" {HUB}\t{OTHER_HUB}\n") == (HUB, OTHER_HUB)
    assert Settings.from_mapping({**defaults(), "WEBSUB_HUB": ""}).websub_hubs == ()
    with pytest.raises(ConfigError, match="WEBSUB_HUB needs BASE_URL"):
        make_app(WEBSUB_HUB=HUB, BASE_URL=None)
    refused = CliRunner().invoke(cli, ["serve"], env={"FEEDSVC_WEBSUB_HUB": "ftp://x/"})
    assert refused.exit_code == 1
    assert (
        refused.output == "Error: WEBSUB_HUB must be absolute http(s) URLs separated by "
        "spaces, not 'ftp://x/'\n"
    )
    # As a user starts it (in a process of its own: serve prepares the metrics folder first):
    # one line and exit status 1, nothing served.
    status, stderr = serve_refused("--seeds", str(RECORDS), settings={"WEBSUB_HUB": HUB})
    assert status == 1, stderr
    lines = stderr.splitlines()
    assert lines[-1] == "Error: WEBSUB_HUB needs BASE_URL: hubs fetch the feeds at their own URLs"
    assert not any("Traceback" in line for line in lines)


# --- Which feeds changed ----------------------------------------------------------------------


@dataclass
class RecordingHub:
    """A real HTTP server that notes each publish notification, answers with the statuses in
    `answers` (then 204), and, like a hub, fetches each topic it is told of, noting what it got."""

    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    fetch_topics: int = 0  # times each topic is fetched
    read: Callable[[str], bytes] = lambda topic: fetch(topic, {"Accept": "*/*"})[2]
    notified: list[tuple[float, str]] = field(default_factory=list)
    fetched: dict[str, list[bytes]] = field(default_factory=dict)
    forms: list[dict[str, list[str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        form = parse_qs(request.get_data(as_text=True))
        time.sleep(self.delay)
        with self.lock:
            self.forms.append(form)
            status = self.answers.pop(0) if self.answers else 204
        topic = form["hub.url"][0]
        if status == 204:
            # Each on a new connection, so that the server's workers share them.
            bodies = [self.read(topic) for _ in range(self.fetch_topics)]
            with self.lock:
                self.fetched.setdefault(topic, []).extend(bodies)
        with self.lock:
            self.notified.append((time.monotonic(), topic))
        return Response(status=status)(environ, start_response)

    def topics(self) -> list[str]:
        with self.lock:
            return [topic for _, topic in self.notified]


def served_first_pages(client: Any) -> dict[str, bytes]:
    """Every feed's first page in every format, by URL, as served now."""
    collection = client.application.extensions["feedsvc"].collection
    return {
        f"{BASE_URL}{feed.path}.{extension}": client.get(f"{feed.path}.{extension}").data
        for feed in iter_feeds(collection)
        for extension in FORMATS
    }


def in_front_matter(path: Path, line: str) -> None:
    """Add `line` to the record's front matter."""
    path.write_text(path.read_text().replace("---\n", f"---\n{line}\n", 1), encoding="utf-8")


def test_a_reload_notifies_exactly_the_first_pages_whose_bytes_changed(tmp_path: Path) -> None:
    """Each kind of change: the notifications sent are the first pages, in every format, whose
    served bytes differ from before the change (worked out here by fetching them all), each
    once, and nothing else."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    hub = RecordingHub()
    changes: list[Callable[[], object]] = [
        # A new newest article in AI from a new provider: all, ai and a new provider feed.
        lambda: write_record(seeds, "new.md", "A new article", day=1, domain="new.example"),
        # An old article in a new topic: past the first page of all (3 entries a page), on the
        # first pages of its new topic and of its provider.
        lambda: write_record(seeds, "old.md", "Old", day=2, domain="new.example", topic="Old"),
        # Changes no feed shows: a field feedsvc keeps but never writes, a renamed file.
        lambda: in_front_matter(seeds / "old.md", "quality: 3"),
        lambda: (seeds / "old.md").rename(seeds / "renamed.md"),
        # A removal, which empties the new provider's first page of one entry.
        lambda: (seeds / "new.md").unlink(),
    ]
    with serving(hub) as hub_url:
        app = make_app(SEEDS_DIR=seeds, WEBSUB_HUB=hub_url + "/hub", FEED_SIZE=3)
        state = app.extensions["feedsvc"]
        state.websub.delay = 0  # sent at once here; the delay has its own test
        client = app.test_client()
        for number, change in enumerate(changes):
            before = served_first_pages(client)
            already = len(hub.topics())
            change()
            assert state.reload(), number
            after = served_first_pages(client)
            expected = sorted(url for url, body in after.items() if before.get(url) != body)
            assert bool(expected) == (number in (0, 1, 4))
            wait_until(lambda: state.websub.notifier.pending() == 0)
            assert sorted(hub.topics()[already:]) == expected, (
                number,
                sorted(hub.topics()[already:]),
                expected,
            )
            forms = hub.forms[already:]
            assert all(form["hub.mode"] == ["publish"] for form in forms)
            assert all(form["hub.url"] == form["hub.topic"] for form in forms)
        assert sample(state.metrics, "sent") == len(hub.topics())  # the app's own metrics


def test_notifications_wait_until_every_worker_can_serve_the_change(tmp_path: Path) -> None:
    """Workers reload on their own clocks, each within RELOAD_INTERVAL of a change plus its
    reload's time: the sender waits that long after its own reload before telling the hubs,
    so that a hub's fetch reaches no worker still serving the old version."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    hub = RecordingHub()
    with serving(hub) as hub_url:
        app = make_app(SEEDS_DIR=seeds, WEBSUB_HUB=hub_url + "/hub", RELOAD_INTERVAL=0.5)
        state = app.extensions["feedsvc"]
        add_record(seeds)
        reloaded = time.monotonic()
        assert state.reload()
        wait_until(lambda: state.websub.notifier.pending() == 0)
    assert hub.notified[0][0] - reloaded >= 0.5 + RELOAD_SECONDS


# --- Sending: background, coalesced, retried, counted ------------------------------------------


def topics(*names: str) -> list[str]:
    return [f"{BASE_URL}/feeds/topics/{name}.atom" for name in names]


def test_a_url_waiting_to_be_sent_is_sent_once_however_often_it_changes() -> None:
    hub = RecordingHub()
    with serving(hub) as hub_url:
        notifier = Notifier([hub_url + "/a", hub_url + "/b"])
        for _ in range(1000):
            notifier.publish(topics("ai", "robotics"), delay=0.3)
        assert notifier.pending() == 4  # one per hub and URL: memory does not grow
        started = time.monotonic()
        wait_until(lambda: notifier.pending() == 0)
        assert sorted(hub.topics()) == sorted(topics("ai", "ai", "robotics", "robotics"))
        assert hub.notified[0][0] - started >= 0.25  # not before the delay asked for


def sample(metrics: Metrics, result: str) -> float:
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for found in family.samples:
            if found.name == "feedsvc_websub_notifications_total":
                if found.labels["result"] == result:
                    return float(found.value)
    return 0.0


def test_a_failing_hub_is_asked_again_with_exponential_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="feedsvc")
    hub = RecordingHub(answers=[503, 429, 500])
    metrics = Metrics()
    with serving(hub) as hub_url:
        notifier = Notifier([hub_url + "/hub"], metrics, first_retry=0.1)
        notifier.publish(topics("ai"))
        wait_until(lambda: notifier.pending() == 0)
    times = [at for at, _ in hub.notified]
    assert hub.topics() == topics("ai") * 4
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2 and gaps[2] >= 0.4  # 0.1 s, doubled each time
    assert (sample(metrics, "retried"), sample(metrics, "sent")) == (3, 1)
    lines = [r.getMessage() for r in caplog.records if f"hub={hub_url}/hub " in r.getMessage()]
    failed = [line for line in lines if "event=publish_failed" in line]
    assert len(failed) == 3 and 'reason="503 SERVICE UNAVAILABLE"' in failed[0]
    assert f"topic={topics('ai')[0]}" in failed[0] and "retry_in_s=0.1" in failed[0]
    assert sum("event=publish " in line for line in lines) == 1


def test_a_hub_that_refuses_or_never_answers_is_given_up(caplog: pytest.LogCaptureFixture) -> None:
    refusing, silent = RecordingHub(answers=[400]), RecordingHub(delay=0.5)
    metrics = Metrics()
    with serving(refusing) as refusing_url, serving(silent) as silent_url:
        notifier = Notifier(
            [refusing_url + "/hub", silent_url + "/hub"],
            metrics,
            post=lambda hub, topic: post_publish(hub, topic, timeout=0.2),
            first_retry=0.05,
            attempts=3,
        )
        notifier.publish(topics("ai"))
        wait_until(lambda: notifier.pending() == 0)
        wait_until(lambda: len(silent.topics()) == 3)  # each attempt reached it, then timed out
    assert refusing.topics() == topics("ai")  # a 400 is not asked again
    assert (sample(metrics, "dropped"), sample(metrics, "retried")) == (2, 2)
    dropped = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(dropped) == 2 and any('reason="400 BAD REQUEST"' in line for line in dropped)
    assert any('attempts=3 reason="TimeoutError: timed out"' in line for line in dropped)


def test_one_process_holds_the_sender_lock_until_it_exits(tmp_path: Path) -> None:
    settings = Settings.from_mapping(
        {
            **defaults(),
            "SEEDS_DIR": RECORDS,
            "BASE_URL": BASE_URL,
            "WEBSUB_HUB": HUB,
            "PARSE_CACHE": str(tmp_path / "cache" / "parse.cache"),
        }
    )
    lock = SenderLock.for_site(settings)
    assert lock.path is not None and lock.path.parent == tmp_path / "cache"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
            assert not lock.held()  # another process sends
        finally:
            stop(holder)  # the kernel frees its lock
    assert lock.held() and lock.held()
    # A child forked now shares the open lock file, but the lock is its parent's, not its own.
    context = multiprocessing.get_context("fork")
    child = context.Process(target=exit_with_held, args=(lock,))
    child.start()
    child.join()
    assert child.exitcode == 0  # held() was False in the child
    # Another site, other hubs: another lock.
    other = SenderLock.for_site(
        Settings.from_mapping({**settings_map(settings), "WEBSUB_HUB": OTHER_HUB})
    )
    assert other.path != lock.path and other.held()


HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


def exit_with_held(lock: SenderLock) -> None:
    sys.exit(1 if lock.held() else 0)


def settings_map(settings: Settings) -> dict[str, Any]:
    return {name.upper(): getattr(settings, name) for name in Settings.__dataclass_fields__}


# --- Static builds ---------------------------------------------------------------------------


def built_first_pages(out: Path) -> dict[str, bytes]:
    return {
        f"{BASE_URL}/{path.relative_to(out).as_posix()}": path.read_bytes()
        for extension in FORMATS
        for path in out.rglob(f"*.{extension}")
        if ".page-" not in path.name
        and path.relative_to(out).parts[0] == "feeds"
        and path.relative_to(out).parts[1] != "stories"  # not pushed (README: WebSub)
    }


def test_a_build_tells_the_hubs_which_feeds_it_wrote_anew_once_they_are_in_place(
    tmp_path: Path,
) -> None:
    seeds, out = tmp_path / "records", tmp_path / "site"
    shutil.copytree(RECORDS, seeds)
    # The hub reads each topic from the folder the URL is served from.
    hub = RecordingHub(fetch_topics=1, read=lambda url: (out / url.split("/", 3)[3]).read_bytes())
    runner = CliRunner()
    with serving(hub) as hub_url:
        command = ["build", "--seeds", str(seeds), "--out", str(out), "--base-url", BASE_URL]
        command += ["--workers", "1", "--websub-hub", hub_url + "/hub"]
        before: dict[str, bytes] = {}
        for change in (lambda: None, lambda: add_record(seeds), lambda: None):
            change()
            already = len(hub.topics())
            result = runner.invoke(cli, command, env={"FEEDSVC_PARSE_CACHE": "off"})
            assert result.exit_code == 0, result.output
            after = built_first_pages(out)
            expected = sorted(url for url, body in after.items() if before.get(url) != body)
            assert sorted(hub.topics()[already:]) == expected
            assert f"told 1 WebSub hub(s) of {len(expected)} changed feed URLs" in result.output
            for topic in expected:  # the hub found the new file at its URL already
                assert hub.fetched[topic][-1] == after[topic]
            before = after
        assert len(expected) == 0 and len(set(hub.topics())) == len(after)
        assert (
            f'<link href="{hub_url}/hub" rel="hub"/>'.encode()
            in after[BASE_URL + "/feeds/all.atom"]
        )
    # Another hub: every first page names it now (none is kept from the build before), and
    # it is told of them all.
    other = RecordingHub()
    with serving(other) as other_url:
        command[-1] = other_url + "/hub"
        assert runner.invoke(cli, command, env={"FEEDSVC_PARSE_CACHE": "off"}).exit_code == 0
    after = built_first_pages(out)
    assert sorted(other.topics()) == sorted(after)
    assert all(
        other_url.encode() in body and hub_url.encode() not in body for body in after.values()
    )


def test_a_build_whose_hub_refuses_says_so_and_keeps_the_site(tmp_path: Path) -> None:
    out = tmp_path / "site"
    with serving(RecordingHub(answers=[400] * 100)) as hub_url:
        command = ["build", "--seeds", str(RECORDS), "--out", str(out), "--base-url", BASE_URL]
        env = {"FEEDSVC_PARSE_CACHE": "off", "FEEDSVC_WEBSUB_HUB": hub_url + "/hub"}
        result = CliRunner().invoke(cli, [*command, "--workers", "1", "-q"], env=env)
    assert result.exit_code == 0 and (out / "feeds" / "all.atom").exists()
    assert "Warning: WebSub: 33 of 33 notifications could not be sent" in result.output
    bad = CliRunner().invoke(cli, [*command, "--websub-hub", "ftp://hub/"])
    assert bad.exit_code == 2 and "Invalid value for '--websub-hub'" in bad.output


# --- Served: the real server, its workers, and a real hub ---------------------------------------

ADDED = "2030-01-01-websub.md"
ADDED_TITLE = "Heard through the hub"


def add_record(seeds: Path) -> None:
    """A new newest article in AI from a new provider, as a publisher adds one."""
    write_record(seeds, ADDED, ADDED_TITLE, day=1, domain="hub-news.example")
    path = seeds / ADDED
    path.write_text(path.read_text().replace("2022-01-01", "2030-01-01"), encoding="utf-8")


def warm_every_worker(base: str) -> None:
    """Several requests on new connections, so that each worker has started watching."""
    for _ in range(12):
        assert fetch(base + "/healthz")[0] == 200


def test_each_change_is_sent_once_by_one_worker_after_every_worker_serves_it(
    tmp_path: Path,
) -> None:
    """Two workers reload on their own; one of them sends, once per changed URL, and only when
    the new version is what every worker serves: the hub's own fetch of each topic (like a real
    hub's) finds the new article."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    hub = RecordingHub(fetch_topics=4)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    changed = [
        f"{base}{path}.{ext}"
        for path in ("/feeds/all", "/feeds/topics/ai", "/feeds/providers/hub-news-example")
        for ext in FORMATS
    ]
    with serving(hub) as hub_url:
        # Polling: each worker looks at the folder on its own clock, up to an interval apart.
        settings = {
            "BASE_URL": base,
            "WEBSUB_HUB": hub_url + "/hub",
            "RELOAD_INTERVAL": "0.5",
            "RELOAD_WATCH": "poll",
        }
        log = tmp_path / "server.log"
        with running_feedsvc(seeds, log, workers=2, settings=settings, port=port):
            warm_every_worker(base)
            add_record(seeds)
            wait_until(lambda: sorted(set(hub.topics())) == sorted(changed))
            wait_until(lambda: metric_value(base, "feedsvc_websub_pending") == 0)
            assert metric_value(base, 'feedsvc_websub_notifications_total{result="sent"}') == 9
            for topic in changed:
                assert len(hub.fetched[topic]) == 4
                assert all(ADDED_TITLE.encode() in body for body in hub.fetched[topic]), topic
            # Feeds the change did not touch are never sent; each changed one once.
            assert sorted(hub.topics()) == sorted(changed)
        senders = [line for line in log.read_text().splitlines() if "event=websub_sender" in line]
        assert len(senders) == 1


def metric_value(base: str, name: str) -> float:
    """A sample of /metrics (the sum over every worker)."""
    for line in fetch(base + "/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


@dataclass
class Subscriber:
    """A WebSub subscriber: answers the hub's verification of intent for the topics it asked
    for, and keeps what the hub delivers (body and signature)."""

    secret: str = "s3cret-for-the-test"
    wanted: set[str] = field(default_factory=set)
    verified: list[dict[str, str]] = field(default_factory=list)
    delivered: dict[str, list[tuple[bytes, str]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        topic = request.path.removeprefix("/callback/")  # the topic, percent-decoded
        if request.method == "GET":  # verification of intent (WebSub §5.3)
            args = request.args.to_dict()
            if args.get("hub.mode") != "subscribe" or args.get("hub.topic") not in self.wanted:
                return Response(status=404)(environ, start_response)
            with self.lock:
                self.verified.append(args)
            return Response(args["hub.challenge"])(environ, start_response)
        body = request.get_data()  # as delivered, whatever Content-Encoding it names
        with self.lock:
            self.delivered.setdefault(topic, []).append(
                (body, request.headers.get("X-Hub-Signature", ""))
            )
        return Response(status=204)(environ, start_response)

    def content(self, topic: str) -> list[bytes]:
        """What the hub delivered for `topic`, each signature checked."""
        with self.lock:
            found = list(self.delivered.get(topic, []))
        for body, signature in found:
            algorithm, _, digest = signature.partition("=")
            expected = hmac.new(self.secret.encode(), body, algorithm).hexdigest()
            assert hmac.compare_digest(digest, expected), topic
        return [body for body, _ in found]


@contextmanager
def real_hub(tmp_path: Path) -> Iterator[str]:
    """Flask-WebSub's hub (tests/websub_hub.py) on a free loopback port; its endpoint URL."""
    port = free_port()
    command = [sys.executable, "-m", "tests.websub_hub", str(port), str(tmp_path / "hub.db")]
    with (tmp_path / "hub.log").open("wb") as log:
        hub = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: hub.poll() is not None or listening(port), timeout=30)
        assert hub.poll() is None, (tmp_path / "hub.log").read_text()
        yield f"http://127.0.0.1:{port}/hub"
    finally:
        stop(hub)


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def discover(url: str) -> tuple[str, str]:
    """WebSub discovery as a subscriber does it: the hub and self links of the topic's Link
    header, which must agree with the document's own links."""
    status, headers, body = fetch(url)
    assert status == 200
    links = dict(
        (part.split(";")[1].strip(), part.split(";")[0].strip(" <>"))
        for part in headers["Link"].split(",")
    )
    if url.endswith(".json"):
        in_document = read_json_feed(body)["hubs"][0]["url"], read_json_feed(body)["feed_url"]
    else:
        feed_links = read_feed(body).feed.links
        in_document = tuple(
            next(link.href for link in feed_links if link.rel == rel) for rel in ("hub", "self")
        )
    assert (links['rel="hub"'], links['rel="self"']) == in_document
    return in_document


def test_a_subscriber_receives_a_new_record_through_a_real_hub(tmp_path: Path) -> None:
    """As an aggregator would: discover the hub from the feeds, subscribe through it (the hub
    verifies the subscriber's intent), then the publisher adds a record: the hub, told by
    feedsvc, fetches the feeds and delivers their new content, signed, to the subscriber.
    A feed the record is not in is not delivered."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    subscriber = Subscriber()
    touched = [f"{base}/feeds/all.{ext}" for ext in FORMATS] + [f"{base}/feeds/topics/ai.atom"]
    untouched = f"{base}/feeds/providers/usnews-com.atom"
    with real_hub(tmp_path) as hub_url, serving(subscriber) as callbacks:
        settings = {"BASE_URL": base, "WEBSUB_HUB": hub_url, "RELOAD_INTERVAL": "0.3"}
        with running_feedsvc(seeds, tmp_path / "feedsvc.log", settings=settings, port=port):
            for url in [*touched, untouched]:
                hub, topic = discover(url)
                assert (hub, topic) == (hub_url, url)
                subscriber.wanted.add(topic)
                form = {
                    "hub.mode": "subscribe",
                    "hub.topic": topic,
                    "hub.callback": f"{callbacks}/callback/{quote(topic, safe='')}",
                    "hub.secret": subscriber.secret,
                    "hub.lease_seconds": "600",
                }
                answer = post_form(hub, form)
                assert answer == 202, answer
            assert sorted(args["hub.topic"] for args in subscriber.verified) == sorted(
                [*touched, untouched]
            )
            add_record(seeds)
            wait_until(lambda: all(subscriber.content(topic) for topic in touched), timeout=30)
            for topic in touched:
                (body,) = subscriber.content(topic)
                assert body == fetch(topic, {"Accept": "*/*"})[2]  # what feedsvc serves now
                if topic.endswith(".json"):
                    assert read_json_feed(body)["items"][0]["title"] == ADDED_TITLE
                else:
                    assert read_feed(body).entries[0].title == ADDED_TITLE
            assert subscriber.content(untouched) == []


def post_form(url: str, form: dict[str, str]) -> int:
    request = urllib.request.Request(url, urlencode(form).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
