"""Searches take turns (feedsvc.admission) and a flood of them leaves cached polls alone: the
turns, the line and its bounds, the share of time, and a real server flooded with distinct
questions while a cached feed is polled."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.synth import write_collection
from feedsvc.admission import Refused, SearchLoad, waiting_for
from feedsvc.search import read_question
from feedsvc.server import DEFAULT_THREADS, SERVERS
from tests.servers import fetch, running_feedsvc

DEADLINE = 30.0  # seconds any wait here may take before the test fails (never reached when right)


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.005)


class Search(threading.Thread):
    """A search that takes its turn and holds it until told to finish."""

    def __init__(self, load: SearchLoad, name: str, log: list[str]) -> None:
        super().__init__(daemon=True)
        self.load, self.label, self.log = load, name, log
        self.finish = threading.Event()
        self.refused = False

    def run(self) -> None:
        try:
            with self.load.turn():
                self.log.append(self.label)
                self.finish.wait(DEADLINE)
        except Refused:
            self.refused = True


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> SearchLoad:
    """Turns as served, without the share of time (tested on its own)."""
    monkeypatch.setattr(SearchLoad, "SHARE", float("inf"))
    return SearchLoad(waiting=SearchLoad.MOST_WAITING)


def waiting(load: SearchLoad) -> int:
    return len(load._line)  # noqa: SLF001 - how many wait, to know when a thread is in line


def test_one_search_at_a_time_and_the_others_in_the_order_they_came(load: SearchLoad) -> None:
    started: list[str] = []
    first = Search(load, "first", started)
    first.start()
    wait_for(lambda: started == ["first"])
    later = []
    for name in ("second", "third", "fourth"):
        later.append(Search(load, name, started))
        later[-1].start()
        wait_for(lambda: waiting(load) == len(later))
    assert started == ["first"]
    for search in (first, *later):
        search.finish.set()
        search.join(DEADLINE)
    assert started == ["first", "second", "third", "fourth"]
    assert not any(search.refused for search in (first, *later))


def test_a_full_line_refuses_at_once_and_counts_it(load: SearchLoad) -> None:
    load.waiting = 2
    started: list[str] = []
    searches = [Search(load, str(n), started) for n in range(3)]
    searches[0].start()
    wait_for(lambda: started == ["0"])
    for number, search in enumerate(searches[1:], start=1):
        assert not load.crowded()
        search.start()
        wait_for(lambda n=number: waiting(load) == n)  # type: ignore[misc]
    assert load.crowded()
    assert load.refused == 1  # crowded() counts the refusal the fast path makes
    with pytest.raises(Refused):
        with load.turn():
            pass
    assert load.refused == 2
    for search in searches:
        search.finish.set()
        search.join(DEADLINE)
    assert started == ["0", "1", "2"] and not load.crowded()


def test_a_search_waits_at_most_its_time_in_line(
    load: SearchLoad, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SearchLoad, "WAIT", 0.05)
    started: list[str] = []
    holding, behind = Search(load, "holding", started), Search(load, "behind", started)
    holding.start()
    wait_for(lambda: started == ["holding"])
    behind.start()
    behind.join(DEADLINE)
    assert behind.refused and load.refused == 1 and waiting(load) == 0
    holding.finish.set()
    holding.join(DEADLINE)
    with load.turn():  # the line is empty again
        pass


def test_searches_wait_while_their_share_of_time_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SearchLoad, "WINDOW", 0.05)
    load = SearchLoad(waiting=1)
    with load.turn():
        time.sleep(SearchLoad.WINDOW)  # busy the whole window: four times the share
    monkeypatch.setattr(SearchLoad, "WAIT", 0.0)  # no waiting: refused while the share is used
    with pytest.raises(Refused):
        with load.turn():
            pass
    monkeypatch.setattr(SearchLoad, "WAIT", DEADLINE)
    with load.turn():  # waits for the busy time to decay, then goes
        pass
    assert load.refused == 1


@pytest.mark.parametrize(
    ("threads", "waiting"), [(1, 0), (2, 0), (3, 1), (8, 3), (32, 15), (256, 16)]
)
def test_searches_wait_on_fewer_than_half_of_the_threads(threads: int, waiting: int) -> None:
    assert waiting_for(threads) == waiting


def test_an_app_not_told_of_its_threads_lets_no_search_wait(load: SearchLoad) -> None:
    """A server of one thread per worker (wsgi.py under any server) would have its polls queue
    behind a waiting search: one that cannot go at once is refused."""
    load.waiting = SearchLoad().waiting
    started: list[str] = []
    holding, behind = Search(load, "holding", started), Search(load, "behind", started)
    holding.start()
    wait_for(lambda: started == ["holding"])
    assert load.crowded()
    behind.start()
    behind.join(DEADLINE)
    assert behind.refused and started == ["holding"]
    holding.finish.set()
    holding.join(DEADLINE)
    assert not load.crowded()


# -- a real server under a flood -------------------------------------------------------------------

POLL = "/feeds/all.atom"
FLOODERS = 8  # clients asking a new question each time, as soon as they are answered
# Searches answered before probing: more than their share of time lets through at once, so that
# searches now wait for their turn.
FLOOD_BEFORE = 80
# Probes of one run: with the server right nearly all overtake the search (18-24 of 24 measured at
# load 5); refused searches or a poll queued behind them overtake 1-6.
PROBES = 24


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough records that a search renders a full page (50 entries, a few ms), as on a site."""
    return write_collection(tmp_path_factory.mktemp("flood") / "records", 200)


def distinct_questions(flooder: str) -> Iterator[str]:
    """Canonical (no 301) and new every time: each is a first render."""
    number = 0
    while True:
        number += 1
        question = read_question([("q", f"model -zz{flooder}x{number}")])
        yield f"/feeds/search.atom?{question.query_string(1)}"


def send_request(port: int, path: str) -> socket.socket:
    """A GET sent on a connection of its own; its answer is read later (`read_status`)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    connection.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    )
    return connection


def answered(connection: socket.socket) -> bool:
    """Whether the server has begun to answer (or closed) the request on `connection`."""
    return bool(select.select([connection], [], [], 0)[0])


def read_status(connection: socket.socket) -> int:
    with connection, connection.makefile("rb") as answer:
        status = int(answer.readline().split()[1])
        answer.read()
    return status


@pytest.mark.live
@pytest.mark.parametrize("server", SERVERS)
def test_polls_of_a_cached_feed_overtake_searches_during_a_flood(
    records: Path, tmp_path: Path, server: str
) -> None:
    """While eight clients ask a new question each time they are answered, a search is sent and
    then a poll of a cached feed: the poll is answered first (the search waits for its turn, on a
    thread of its own), again and again. With one thread per worker the poll waits behind the
    search, and with searches refused at once rather than waiting the flood takes every turn."""
    assert SearchLoad.RUNNING + waiting_for(DEFAULT_THREADS) < DEFAULT_THREADS
    with running_feedsvc(records, tmp_path / "server.log", server=server) as base:
        port = int(base.rpartition(":")[2])
        status, _, cached = fetch(base + POLL)
        assert status == 200
        statuses: list[int] = []
        stop = threading.Event()

        def flood(flooder: int) -> None:
            for path in distinct_questions(str(flooder)):
                if stop.is_set():
                    return
                statuses.append(fetch(base + path)[0])

        flooders = [threading.Thread(target=flood, args=(n,)) for n in range(FLOODERS)]
        for flooder in flooders:
            flooder.start()
        overtaken = 0
        try:
            wait_for(lambda: len(statuses) >= FLOOD_BEFORE)
            probes = distinct_questions("probe")
            for _ in range(PROBES):
                search = send_request(port, next(probes))
                status, _, body = fetch(base + POLL)
                assert status == 200 and body == cached
                overtaken += not answered(search)
                statuses.append(read_status(search))
        finally:
            stop.set()
            for flooder in flooders:
                flooder.join(DEADLINE)
    assert set(statuses) <= {200, 503} and 200 in statuses
    assert overtaken >= PROBES // 2, f"{overtaken} of {PROBES} polls overtook the search before"
