"""Searches that are not cached take their turn: one at a time per process, within a share of
its time, the rest waiting in a short line or refused.

A serving process answers a cached poll in microseconds and a new search in milliseconds. It
runs several threads (feedsvc.server), so that a poll is answered while a search renders instead
of queueing behind it; this class keeps searches from taking those threads and that time: a
search renders only when no other search of the process is rendering and searches have used less
than `SHARE` of the last `WINDOW` seconds (busy time decays exponentially), after the searches
that came before it (first come, first served). At most `waiting` searches wait, each at most
`WAIT` seconds; a search beyond those is refused (503), before Flask when it is a feed, so that a
refusal costs what a cached poll does.

Waiting, rather than refusing at once, is what keeps a flood away from the polls: a client whose
search waits sends nothing meanwhile, where a refused one asks again at once, at the cost of a
poll each time. Each waiting search holds a thread, so only a server known to run enough threads
lets searches wait (`waiting_for`); by default none waits (a server with one thread per worker
would have its polls queue behind them).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class Refused(Exception):
    """No turn for this search now: too many wait already, or its turn did not come in time."""


class SearchLoad:
    """The turns of one process's searches (see the module's docstring). Thread-safe."""

    WINDOW = 1.0  # seconds over which busy time decays
    # A quarter, not a half: measured at 100,000 records (bench/README.md, Search), a flood with
    # half a worker's time cost cached polls more than a flood of one cached search does.
    SHARE = 0.25
    RUNNING = 1  # searches rendered at once
    # The most searches waiting for their turn in one process (a client with more connections
    # than this gets refusals, each at a cached poll's cost).
    MOST_WAITING = 16
    WAIT = 2.0  # seconds a search may wait for its turn

    def __init__(self, waiting: int = 0) -> None:
        self.waiting = waiting
        self._busy = 0.0
        self._at = time.monotonic()
        self._running = 0
        self._line: deque[object] = deque()
        self._turns = threading.Condition()
        self.refused = 0

    def crowded(self) -> bool:
        """Whether a search arriving now is refused without waiting (no turn is free, and as
        many wait as may); a refusal is counted. The fast path asks it for every search it
        cannot answer, so that a refusal costs no more than a cached poll."""
        with self._turns:
            crowded = self._must_wait(time.monotonic()) and len(self._line) >= self.waiting
            self.refused += crowded
            return crowded

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Wait for this search's turn and hold it while the search is answered; the time it is
        held counts towards the share.

        :raises Refused: too many searches wait already, or the turn did not come within `WAIT`.
        """
        self._wait_for_turn()
        started = time.monotonic()
        try:
            yield
        finally:
            with self._turns:
                now = time.monotonic()
                self._busy = self._decayed(now) + (now - started)
                self._at = now
                self._running -= 1
                self._turns.notify_all()

    def _wait_for_turn(self) -> None:
        with self._turns:
            now = time.monotonic()
            if self._must_wait(now):
                if len(self._line) >= self.waiting:
                    self.refused += 1
                    raise Refused
                self._wait_in_line(now)
            self._running += 1

    def _wait_in_line(self, now: float) -> None:
        """Wait (holding the condition's lock between waits) until this search is first in
        line and a turn is free. A search that gives up leaves the line."""
        ticket = object()
        self._line.append(ticket)
        deadline = now + self.WAIT
        try:
            while self._line[0] is not ticket or not self._free(now):
                if now >= deadline:
                    self.refused += 1
                    raise Refused
                timeout = deadline - now
                if self._line[0] is ticket:  # the others wait for it to go first
                    timeout = min(timeout, self._until_free(now))
                self._turns.wait(timeout)
                now = time.monotonic()
        finally:
            self._line.remove(ticket)
            self._turns.notify_all()  # the next in line may go, or move up

    def _must_wait(self, now: float) -> bool:
        return bool(self._line) or not self._free(now)

    def _decayed(self, now: float) -> float:
        return self._busy * math.exp((self._at - now) / self.WINDOW)

    def _free(self, now: float) -> bool:
        return self._running < self.RUNNING and self._decayed(now) < self.SHARE * self.WINDOW

    def _until_free(self, now: float) -> float:
        """Seconds until the share is free again, if nothing else changes (a search that ends
        notifies the waiters)."""
        if self._running >= self.RUNNING:
            return math.inf
        busy, allowed = self._decayed(now), self.SHARE * self.WINDOW
        if busy < allowed:
            return 0.0
        if allowed <= 0:
            return math.inf
        return self.WINDOW * math.log(busy / allowed) + 0.001


def waiting_for(threads: int) -> int:
    """How many searches may wait for their turn in a process of `threads` threads: fewer than
    half of them, so that the running search and those waiting leave the polls the rest."""
    return max(0, min(SearchLoad.MOST_WAITING, (threads - SearchLoad.RUNNING) // 2))
