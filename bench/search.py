"""Search benchmark: the index and the search feeds at scale (issue 12's targets), one command:

    python -m bench.search [--records 100000] [--folder DIR] [--flood-seconds 10]
                           [--flood-rounds 1] [--flood-only] [--threads-cost ROUNDS]

1. Writes a synthetic collection (bench/synth.py) into --folder, once (a folder that already
   holds that many records is reused), and loads it as `feedsvc serve` does, with a parse cache
   in the same folder (so a second run does not parse again).
2. The index: the time to build the base file at load, and its size on disk per record.
3. First renders, through the app (Flask's test client, the app's own caches): a one-word
   query and a query with a phrase and filters, each over distinct questions (so each is a first
   render); with the newest entries already rendered (the all-items feed was served, as on any
   running server) and with no entry rendered before (the entry cache emptied before each).
   Also a phrase that matches almost nothing, which reads every row (the CPU bound's case).
4. A repeated poll: the fast path (WSGI, in-process) for a cached search feed against a cached
   topic feed, in microseconds.
5. A reload of one changed record file: the reload, and the index's share of it (following the
   new version), median of five. Then a reload that changes just past `fulltext.FOLD_AT`
   records: the index follows it, folds its overlay into a new file in a thread, and answers
   searches meanwhile.
6. A flood (needs wrk): `feedsvc serve` (granian, two workers) polled by wrk on a cached topic
   feed alone, then with a second wrk repeating one cached search, then with a second wrk sending
   a new question every request. Ratios in one round; `--flood-rounds N` repeats the three rows
   (their medians last), `--flood-only` measures nothing else.

`--threads-cost N` measures only what threads cost a cached poll: `feedsvc serve --threads 1` and
the default in turns, N rounds, wrk over 150 cached feed URLs; requests per second and the
server's CPU time per request.

The synthetic vocabulary has 25 words in 50-word titles and excerpts: every word is in nearly
every record, so a one-word query matches all 100,000 records (the costliest case for a word).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.test import EnvironBuilder

from bench import faults
from bench.processes import children, cpu_seconds, free_port, running
from bench.synth import WORDS, write_collection
from feedsvc import create_app, fulltext, web
from feedsvc.fulltext import SearchIndex
from feedsvc.search import read_question

BASE_URL = "http://bench.test"


def collection_folder(folder: Path, size: int) -> Path:
    records = folder / "records"
    if not records.is_dir() or sum(1 for _ in records.glob("*-record.md")) != size:
        shutil.rmtree(records, ignore_errors=True)
        started = time.perf_counter()
        write_collection(records, size)
        print(f"wrote {size} records in {time.perf_counter() - started:.0f}s")
    return records


def settings(folder: Path) -> dict[str, Any]:
    return {
        "SEEDS_DIR": folder / "records",
        "PARSE_CACHE": str(folder / "parse.cache"),
        "RELOAD_INTERVAL": 0,
        "BASE_URL": BASE_URL,
        "LOG_LEVEL": "WARNING",
    }


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return (time.perf_counter() - started) * 1000


class Clock:
    """Wall and CPU time (this thread's) of the actions it times, in milliseconds: on a shared
    machine the CPU time is what an action costs, the wall time what it took."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def time(self, action: Callable[[], Any]) -> None:
        cpu, wall = time.thread_time(), time.perf_counter()
        action()
        self.cpu.append((time.thread_time() - cpu) * 1000)
        self.wall.append((time.perf_counter() - wall) * 1000)

    def __str__(self) -> str:
        cpu, wall = statistics.median(self.cpu), statistics.median(self.wall)
        most, n = max(self.cpu), len(self.cpu)
        return f"median {cpu:.1f} ms CPU ({wall:.1f} ms wall), max {most:.1f} ms CPU (n={n})"


def index_figures(app: Flask, folder: Path) -> None:
    state = app.extensions["feedsvc"]
    collection = state.collection
    fresh = folder / "fresh.search"
    fresh.unlink(missing_ok=True)
    seconds = timed(lambda: SearchIndex(fresh, collection)) / 1000
    size = fresh.stat().st_size
    records = len(collection.records)
    print(f"index: built in {seconds:.1f}s at load; {size / 1e6:.1f} MB on disk, ", end="")
    print(f"{size / records:.0f} bytes per record ({records} records)")
    fresh.unlink()
    reused = timed(lambda: SearchIndex(state.search.base, collection))
    print(f"index: reused at a restart with unchanged files in {reused:.0f} ms")
    # A restart after one record file changed: the same records but one, under another version.
    one = collection.records[len(collection.records) // 3]
    edited = dataclasses.replace(one, title=f"Zebra {one.title}")
    records = tuple(edited if record is one else record for record in collection.records)
    changed = dataclasses.replace(collection, records=records, version=f"{collection.version}+1")
    copy = folder / "changed.search"
    shutil.copyfile(state.search.base, copy)
    updated = timed(lambda: SearchIndex(copy, changed)) / 1000
    print(f"index: at a restart after one record changed, {updated:.2f}s ", end="")
    print(f"({copy.stat().st_size / len(records):.0f} bytes per record then)")
    copy.unlink()


def first_renders(app: Flask) -> None:
    state = app.extensions["feedsvc"]
    client = app.test_client()

    def render(url: str, cold: bool, clock: Clock) -> None:
        if cold:
            state.fragments._fragments.clear()  # noqa: SLF001 - no entry rendered before
            state.fragments._bytes = 0  # noqa: SLF001
        clock.time(lambda: client.get(url))
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.data[:200])

    def clocked(urls: list[str], cold: bool) -> Clock:
        clock = Clock()
        for url in urls:
            render(url, cold, clock)
        return clock

    def words(first: int) -> list[str]:
        return [f"/feeds/search.atom?q={word}" for word in WORDS[first : first + 12]]

    def phrases(first: int) -> list[str]:
        """A phrase, two topics (any of) and a provider left out; canonical order."""
        return [
            f"/feeds/search.atom?q=%22{WORDS[n]}+{WORDS[n + 1]}%22&"
            + "&".join(f"topic={slug}" for slug in sorted([f"topic-{n}", f"topic-{n + 1}"]))
            + f"&not_provider=provider{n}-example-com"
            for n in range(first, first + 12)
        ]

    rare = [f"/feeds/search.atom?q=%22{w}+{w}+{w}+{w}%22" for w in WORDS[:6]]
    topics = clocked([f"/feeds/topics/topic-{n}.atom" for n in range(12)], cold=True)
    print(f"first render, a topic feed (the baseline), no entry rendered before: {topics}")
    client.get("/feeds/all.atom")  # the newest entries are rendered, as on a running server
    for label, make in (("one word", words), ("phrase + filters", phrases)):
        print(f"first render, {label}, after the all-items feed: {clocked(make(0), cold=False)}")
        print(f"first render, {label}, no entry rendered before: {clocked(make(12), cold=True)}")
    print(f"first render, a phrase that matches almost nothing: {clocked(rare, cold=False)}")


def fast_path(app: Flask) -> None:
    client = app.test_client()

    def per_call(path: str, query: str) -> float:
        client.get(f"{path}?{query}" if query else path)
        environ = EnvironBuilder(path=path, query_string=query, base_url=BASE_URL).get_environ()
        answered: list[str] = []

        def start_response(status: str, headers: Any, *exc: Any) -> Any:
            answered.append(status)

        calls = 20_000
        started = time.perf_counter()
        for _ in range(calls):
            app.wsgi_app(dict(environ), start_response)
        assert answered[-1].startswith("200"), answered[-1]
        return (time.perf_counter() - started) / calls * 1e6

    topic = per_call("/feeds/topics/topic-1.atom", "")
    search = per_call("/feeds/search.atom", "q=model&topic=topic-1")
    print(f"repeated poll (fast path, in-process): topic feed {topic:.1f} µs, ", end="")
    print(f"search feed {search:.1f} µs ({search / topic:.2f} x)")


def reload_figures(app: Flask, folder: Path) -> None:
    state = app.extensions["feedsvc"]
    client = app.test_client()
    records = sorted((folder / "records").glob("*-record.md"))
    client.get("/feeds/search.atom?q=model")
    reloads, follows, searches = Clock(), Clock(), Clock()
    originals: dict[Path, str] = {}
    for n in range(5):
        path = records[(len(records) // 3 + n * 7919) % len(records)]
        word = f"zebra{n}"
        originals[path] = text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("title: ", f"title: {word.title()} ", 1), encoding="utf-8")
        reloads.time(lambda p=path: state.reload([str(p)]))  # type: ignore[misc]
        snapshot = state.snapshot
        follows.time(lambda s=snapshot: state.search.follow(s.collection, s.number))  # type: ignore[misc]
        searches.time(lambda w=word: client.get(f"/feeds/search.atom?q={w}"))  # type: ignore[misc]
        found = client.get(f"/feeds/search.json?q={word}").json
        assert found is not None and len(found["items"]) == 1, found
    for path, text in originals.items():  # as it was, so that the next run reuses the index
        path.write_text(text, encoding="utf-8")
    print(f"reload of one changed file: the whole reload {reloads}")
    print(f"reload of one changed file: the index's share {follows}")
    print(f"reload of one changed file: then the first search for its new word {searches}")


def fold_figures(app: Flask) -> None:
    """A reload that changes just past `FOLD_AT` records: the index follows it, a thread folds
    the overlay into a new base file, and searches are answered meanwhile."""
    state = app.extensions["feedsvc"]
    index, collection = state.search, state.collection
    index.search(read_question([("q", "model")]))
    records = list(collection.records)
    for n in range(fulltext.FOLD_AT + 1):
        at = (n * 97) % len(records)
        records[at] = dataclasses.replace(records[at], title=f"Zebra {records[at].title}")
    changed = dataclasses.replace(collection, records=tuple(records), version="folded")
    follow = Clock()
    follow.time(lambda: index.follow(changed, state.snapshot.number + 1))
    searches = Clock()
    started = time.perf_counter()
    while index.folding:
        searches.time(lambda: index.search(read_question([("q", f"zebra -zz{len(searches.cpu)}")])))
        time.sleep(0.01)
    seconds = time.perf_counter() - started
    assert index.folds == 1 and index.overlay_size == 0
    print(f"fold: a reload of {fulltext.FOLD_AT + 1} changed records followed in {follow}")
    print(
        f"fold: the overlay folded into a new file in {seconds:.2f}s, in a thread; searches ",
        end="",
    )
    print(f"meanwhile {searches}")


@contextmanager
def serving(folder: Path) -> Iterator[str]:
    """`feedsvc serve` (granian, two workers) on a free port, reusing the parse cache and the
    index; stopped by its own PID."""
    with served(folder) as (base, _):
        yield base


@contextmanager
def served(
    folder: Path, threads: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`serving`, with `--threads` when given; yields the base URL and the server's process."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("FEEDSVC_")}
    env.update(
        {f"FEEDSVC_{name}": str(value) for name, value in settings(folder).items()},
        FEEDSVC_BASE_URL=f"http://127.0.0.1:{port}/",
    )
    command = [sys.executable, "-m", "feedsvc", "serve", "--workers", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    command += ["--threads", str(threads)] if threads else []
    base = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    startup = faults.STARTUP_SECONDS
    with running(command, base + "/healthz", env=env, log=log, startup_seconds=startup) as started:
        yield base, started.process


def side_by_side(
    base: str, poll: list[str], other: list[str], seconds: float, script: str | None = None
) -> tuple[faults.WrkResult, faults.WrkResult]:
    """Two wrk runs at once: polls, and the other URLs (or what `script` asks for)."""
    results: dict[str, faults.WrkResult] = {}

    def flood() -> None:
        results["other"] = faults.run_wrk(base, other, seconds, 16, script)

    side = threading.Thread(target=flood)
    side.start()
    polls = faults.run_wrk(base, poll, seconds, 16)
    side.join()
    return polls, results["other"]


# A new question every request, each already canonical (no 301): a word found everywhere and an
# exclusion of a made-up word unique to the round, the wrk thread and the request (each wrk
# thread has a Lua state of its own), so every one renders 50 entries.
DISTINCT_SCRIPT = faults.WRK_SCRIPT.replace(
    "setup = function(thread) table.insert(threads, thread) end",
    "setup = function(thread) table.insert(threads, thread); thread:set('tid', #threads) end",
).replace(
    """  index = index % #paths + 1
  return wrk.format("GET", paths[index])""",
    """  index = index + 1
  local question = string.format("q=model+-zz{ROUND}x%dx%d", tid, index)
  return wrk.format("GET", "/feeds/search.atom?" .. question)""",
)


def warm(url: str) -> None:
    """GET `url`, again after a while when it is refused (a flood took the searches' share)."""
    for _ in range(50):
        try:
            urllib.request.urlopen(url, timeout=30).read()
            return
        except urllib.error.HTTPError as error:
            if error.code != 503:
                raise
            time.sleep(0.1)
    raise RuntimeError(f"{url} was refused 50 times")


FloodRow = tuple[faults.WrkResult, faults.WrkResult | None]


def flood_round(base: str, seconds: float, round_number: int) -> dict[str, FloodRow]:
    """Polls of a cached topic feed alone, then beside a flood of one cached search, then beside
    a flood of distinct questions."""
    poll = ["/feeds/topics/topic-1.atom"]
    repeated = ["/feeds/search.atom?q=model&topic=topic-2"]
    distinct = DISTINCT_SCRIPT.replace("{ROUND}", str(round_number))
    for path in (*poll, *repeated) * 20:  # each worker renders them
        warm(base + path)
    alone = faults.run_wrk(base, poll, seconds, 16)
    return {
        "polls alone": (alone, None),
        "polls + one cached search": side_by_side(base, poll, repeated, seconds),
        "polls + distinct searches": side_by_side(base, poll, repeated, seconds, distinct),
    }


def flood(folder: Path, seconds: float, rounds: int = 1) -> None:
    if not shutil.which("wrk"):
        print("flood: skipped (wrk is not installed; Debian: apt-get install wrk)")
        return
    print(
        f"flood: feedsvc serve, granian, 2 workers; wrk 2 threads x 16 connections, {seconds:.0f} s"
    )
    ratios: dict[str, list[float]] = {}
    with serving(folder) as base:
        for number in range(rounds):
            print(f" round {number + 1}, load average {os.getloadavg()[0]:.1f}")
            rows = flood_round(base, seconds, number)
            alone = rows["polls alone"][0]
            for label, (polls, flooding) in rows.items():
                ratios.setdefault(label, []).append(polls.rps / alone.rps)
                line = f"  {label}: polls {polls.rps:.0f} req/s "
                line += f"({polls.rps / alone.rps:.2f} x alone), "
                line += f"p50 {polls.p50_ms:.2f} ms, p99 {polls.p99_ms:.2f} ms"
                if flooding is not None:
                    line += f"; the other wrk {flooding.rps:.0f} req/s, "
                    line += f"statuses {flooding.statuses}"
                print(line)
    if rounds > 1:
        for label, values in ratios.items():
            print(f" {label}: median {statistics.median(values):.2f} x polls alone")
    print(f" load average after: {os.getloadavg()[0]:.1f}")


GZIP_SCRIPT = faults.WRK_SCRIPT.replace(
    'wrk.format("GET", paths[index])',
    'wrk.format("GET", paths[index], {["Accept-Encoding"] = "gzip"})',
)


def threads_cost(folder: Path, rounds: int, seconds: float) -> None:
    """What threads cost a cached poll: `feedsvc serve --threads 1` and the default, in turns,
    polled by wrk (32 connections, gzip) across 150 cached feed URLs; requests per second and
    the server's CPU time per request (from /proc), which a shared machine disturbs less."""
    from feedsvc.server import DEFAULT_THREADS  # here: the flood may run an older feedsvc

    figures: dict[int, list[tuple[float, float]]] = {1: [], DEFAULT_THREADS: []}
    for number in range(rounds):
        order = list(figures) if number % 2 == 0 else list(reversed(figures))
        for threads in order:
            with served(folder, threads) as (base, process):
                paths = [path for path in faults.feed_paths(base) if "/stories/" not in path]
                paths = paths[:150]
                for path in paths * 2:
                    warm(base + path)
                pids = [process.pid, *children(process.pid)]
                before = cpu_seconds(pids)
                result = faults.run_wrk(base, paths, seconds, 32, GZIP_SCRIPT)
                per_request = (cpu_seconds(pids) - before) / result.requests * 1e6
            figures[threads].append((result.rps, per_request))
            print(
                f"threads {threads}: {result.rps:.0f} req/s, server CPU {per_request:.1f} µs a "
                f"request, p99 {result.p99_ms:.1f} ms; load average {os.getloadavg()[0]:.1f}"
            )
    for threads, rows in figures.items():
        rps = statistics.median(row[0] for row in rows)
        cpu = statistics.median(row[1] for row in rows)
        print(f" --threads {threads}: median {rps:.0f} req/s, {cpu:.1f} µs CPU a request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--folder", type=Path, default=None)
    parser.add_argument("--flood-seconds", type=float, default=10.0)
    parser.add_argument("--flood-rounds", type=int, default=1)
    parser.add_argument("--flood-only", action="store_true", help="measure only the flood")
    parser.add_argument(
        "--threads-cost",
        type=int,
        default=0,
        metavar="ROUNDS",
        help="measure only what threads cost cached polls, over ROUNDS rounds",
    )
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.gettempdir()) / f"feedsvc-bench-search-{args.records}"
    folder.mkdir(parents=True, exist_ok=True)
    collection_folder(folder, args.records)
    if args.flood_only:
        flood(folder, args.flood_seconds, args.flood_rounds)
        return
    if args.threads_cost:
        threads_cost(folder, args.threads_cost, args.flood_seconds)
        return
    share = web.SearchLoad.SHARE
    started = time.perf_counter()
    app = create_app(settings(folder))
    # In-process figures time one request at a time; the load limit is for floods (measured last,
    # by a real server).
    web.SearchLoad.SHARE = float("inf")
    loaded = time.perf_counter() - started
    print(f"loaded {len(app.extensions['feedsvc'].collection.records)} records in {loaded:.0f}s")
    index_figures(app, folder)
    first_renders(app)
    fast_path(app)
    reload_figures(app, folder)
    fold_figures(app)
    del app
    web.SearchLoad.SHARE = share
    if args.flood_seconds > 0:
        flood(folder, args.flood_seconds, args.flood_rounds)


if __name__ == "__main__":
    main()
