"""First-render benchmark: a 50-entry feed page whose entries are already rendered, against the
same page rendered whole, in the same run.

Writes a synthetic collection (bench/synth.py, default 10,000 records), starts the app
in-process and renders every page of the all-items feed in each format, oldest first (so the
newest entries' fragments exist), then times the first request of each topic feed's first
page, with gzip, as a poll would make it (Flask, the render cache, assembly, compression). The
baseline is the same requests on an app whose fragment store keeps nothing, so each page renders
its entries whole.
A last row times the first request of /feeds/all.atom in a fresh process (parse cache warm,
nothing rendered).

    python -m bench.rendering [--records 10000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.synth import write_collection
from feedsvc import create_app
from feedsvc.cache import FragmentCache
from feedsvc.feeds import iter_feeds
from feedsvc.render import FORMATS

BASE_URL = "http://bench.example"
GZIP = {"Accept-Encoding": "gzip"}


def app_for(folder: Path, cache: Path) -> Any:
    return create_app(
        {"SEEDS_DIR": folder, "BASE_URL": BASE_URL, "PARSE_CACHE": str(cache), "RELOAD_INTERVAL": 0}
    )


def first_renders(app: Any, extension: str, warm: bool) -> list[float]:
    """Milliseconds of the first request of each topic feed's first page."""
    client = app.test_client()
    state = app.extensions["feedsvc"]
    if warm:
        pages = -(-len(state.collection.records) // state.settings.feed_size)
        # Oldest first, so that the newest entries (those of the topic pages timed below) are
        # the most recently used fragments whatever the fragment budget.
        for page in range(pages, 0, -1):
            client.get(f"/feeds/all.{extension}?page={page}", headers=GZIP)
    else:
        state.fragments = FragmentCache(0)  # keeps nothing: every entry rendered anew
    timings = []
    for feed in iter_feeds(state.collection):
        if feed.scope != "topics" or len(feed.records) < 50:
            continue
        started = time.perf_counter()
        response = client.get(f"{feed.path}.{extension}", headers=GZIP)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and response.headers["Content-Encoding"] == "gzip"
    return timings


COLD = """
import sys, time
from pathlib import Path
from bench.rendering import app_for, GZIP
app = app_for(Path(sys.argv[1]), Path(sys.argv[2]))
client = app.test_client()
started = time.perf_counter()
response = client.get("/feeds/all.atom", headers=GZIP)
print((time.perf_counter() - started) * 1000)
assert response.status_code == 200
"""


def cold_process(folder: Path, cache: Path) -> float:
    output = subprocess.run(
        [sys.executable, "-c", COLD, str(folder), str(cache)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(output.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_collection(Path(tmp) / "records", args.records)
        cache = Path(tmp) / "parse.cache"
        app_for(folder, cache)  # fills the parse cache
        print(f"{args.records} records; first request of a 50-entry topic feed page, gzip, ms")
        print(f"{'format':8} {'whole (baseline)':>18} {'from fragments':>16} {'ratio':>7}")
        for extension in FORMATS:
            whole = statistics.median(first_renders(app_for(folder, cache), extension, False))
            assembled = statistics.median(first_renders(app_for(folder, cache), extension, True))
            print(f"{extension:8} {whole:18.2f} {assembled:16.2f} {assembled / whole:7.2f}")
        colds = [cold_process(folder, cache) for _ in range(3)]
        print(
            f"fresh process, first /feeds/all.atom (gzip): median {statistics.median(colds):.1f} ms"
        )


if __name__ == "__main__":
    main()
