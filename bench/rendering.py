"""First-render benchmark (issue 11's targets): a 50-entry feed page whose entries are already
rendered, with gzip (target 5 ms), and the first feed page a fresh process serves (15 ms).

Writes a synthetic collection (bench/synth.py, default 10,000 records), starts the app
in-process and renders every page of the all-items feed in each format, oldest first (so the
newest entries' fragments exist), then times the first request of each topic feed's first
page, with gzip, as a poll would make it (Flask, the render cache, assembly, compression). The
baseline is the same requests on an app whose fragment store keeps nothing, so each page renders
its entries whole.

The cold rows start a new process per round: it creates the app (loading the collection from the
parse cache; that time is printed apart) and then times its first request, `/feeds/all.EXT`
with gzip, nothing rendered before.

Each figure is a median, in milliseconds of the serving thread's CPU time (`time.thread_time`)
with the wall time beside it: on a machine shared with other jobs the wall time measures the
neighbours as much as the code. `gz KB` is the median size of the gzip bodies served.

`--gzip-levels 6,5` measures each gzip level in the same run (the server's is
`feedsvc.cache.GZIP_LEVEL`): the warm pages are timed once per level in turn, twice, on one app
whose render cache is emptied before each pass, and the fresh processes alternate the levels.

    python -m bench.rendering [--records 10000] [--rounds 5] [--folder DIR] [--gzip-levels 6,5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import feedsvc.cache
from bench.synth import write_collection
from feedsvc import create_app
from feedsvc.cache import FragmentCache, RenderCache
from feedsvc.feeds import iter_feeds
from feedsvc.render import FORMATS

BASE_URL = "http://bench.example"
GZIP = {"Accept-Encoding": "gzip"}


class Timing(NamedTuple):
    cpu: float  # milliseconds of the thread's CPU time
    wall: float  # milliseconds
    size: int  # bytes of the gzip body


def app_for(folder: Path, cache: Path) -> Any:
    return create_app(
        {"SEEDS_DIR": folder, "BASE_URL": BASE_URL, "PARSE_CACHE": str(cache), "RELOAD_INTERVAL": 0}
    )


def timed_get(client: Any, path: str) -> Timing:
    cpu, wall = time.thread_time(), time.perf_counter()
    response = client.get(path, headers=GZIP)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
    return Timing(cpu * 1000, wall * 1000, len(response.data))


def first_renders(app: Any, extension: str) -> list[Timing]:
    """The first request of each topic feed's first page (50 entries)."""
    client = app.test_client()
    state = app.extensions["feedsvc"]
    state.renders = RenderCache(state.renders.max_bytes)  # nothing rendered as a whole
    return [
        timed_get(client, f"{feed.path}.{extension}")
        for feed in iter_feeds(state.collection)
        if feed.scope == "topics" and len(feed.records) >= 50
    ]


def whole_renders(app: Any, extension: str) -> list[Timing]:
    """`first_renders` with a fragment store that keeps nothing: every entry rendered anew."""
    app.extensions["feedsvc"].fragments = FragmentCache(0)
    return first_renders(app, extension)


def rendered_entries(app: Any, extension: str) -> Any:
    """`app` once every entry has been rendered in `extension` (every all-items page)."""
    client = app.test_client()
    state = app.extensions["feedsvc"]
    pages = -(-len(state.collection.records) // state.settings.feed_size)
    # Oldest first, so that the newest entries (those of the topic pages timed) are the most
    # recently used fragments whatever the fragment budget.
    for page in range(pages, 0, -1):
        client.get(f"/feeds/all.{extension}?page={page}", headers=GZIP)
    return app


COLD = """
import json, sys, time
from pathlib import Path
started = time.perf_counter()
import feedsvc.cache
from bench.rendering import app_for, timed_get
feedsvc.cache.GZIP_LEVEL = int(sys.argv[4])
app = app_for(Path(sys.argv[1]), Path(sys.argv[2]))
loaded = (time.perf_counter() - started) * 1000
timing = timed_get(app.test_client(), f"/feeds/all.{sys.argv[3]}")
print(json.dumps([loaded, *timing]))
"""


def cold_process(folder: Path, cache: Path, extension: str, level: int) -> tuple[float, Timing]:
    """Start-up (imports and loading) and the first request of a new process, in ms."""
    output = subprocess.run(
        [sys.executable, "-c", COLD, str(folder), str(cache), extension, str(level)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    ).stdout
    loaded, *timing = json.loads(output.splitlines()[-1])
    return loaded, Timing(*timing)


def _row(label: str, timings: list[Timing], extra: str = "") -> str:
    cpu = statistics.median(t.cpu for t in timings)
    wall = statistics.median(t.wall for t in timings)
    size = statistics.median(t.size for t in timings) / 1000
    return f"{label:30} {cpu:9.2f} {wall:9.2f} {size:7.1f}{extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes per format")
    parser.add_argument("--folder", type=Path, help="keep the collection here (reused if there)")
    parser.add_argument(
        "--gzip-levels",
        default=str(feedsvc.cache.GZIP_LEVEL),
        help="comma-separated gzip levels to compare (default: the server's)",
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.gzip_levels.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        base = args.folder or Path(tmp)
        folder, cache = base / "records", base / "parse.cache"
        if not folder.is_dir():
            write_collection(folder, args.records)
        app_for(folder, cache)  # fills the parse cache
        print(f"{args.records} records, {os.getloadavg()[0]:.1f} load; medians in ms")
        print(f"{'':30} {'CPU':>9} {'wall':>9} {'gz KB':>7}")
        for extension in FORMATS:
            feedsvc.cache.GZIP_LEVEL = levels[0]
            print(
                _row(
                    f"{extension} whole, gzip {levels[0]}",
                    whole_renders(app_for(folder, cache), extension),
                )
            )
            app = rendered_entries(app_for(folder, cache), extension)
            timings: dict[int, list[Timing]] = {level: [] for level in levels}
            for level in levels * 2:
                feedsvc.cache.GZIP_LEVEL = level
                timings[level] += first_renders(app, extension)
            for level, found in timings.items():
                print(
                    _row(
                        f"{extension} entries rendered, gzip {level}",
                        found,
                        f"  ({len(found)} pages)",
                    )
                )
        for extension in FORMATS:
            rounds: dict[int, list[tuple[float, Timing]]] = {level: [] for level in levels}
            for _ in range(args.rounds):
                for level in levels:
                    rounds[level].append(cold_process(folder, cache, extension, level))
            for level, made in rounds.items():
                load = statistics.median(loaded for loaded, _ in made)
                print(
                    _row(
                        f"{extension} fresh process, gzip {level}",
                        [timing for _, timing in made],
                        f"  (start-up and load before it: {load:.0f} ms)",
                    )
                )
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
