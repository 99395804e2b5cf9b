"""Publishing benchmark: serving throughput while records change, against the same server at
rest, in the same run, and how soon a change is served.

Writes a synthetic collection (bench/synth.py, default 10,000 records), starts `feedsvc serve`
with its defaults (granian, two workers, live reload by filesystem events) on a free loopback
port, renders every URL of the rotation once and runs one unmeasured round of wrk (so that each
worker has rendered them), then runs wrk (2 threads, 32 connections, gzip) over a rotation of
feed URLs (all items, every topic and its stories, the first 100 providers; Atom, RSS and JSON
Feed) three times: at rest, while one record changes per second, and while ten change per
second. A change alternates between editing an existing record's title in place and adding a
new newest record (removing an older added one), as a newsroom does. Last, the time from a
record file's write until /feeds/all.atom shows it, five times.

    python -m bench.publishing [--records 10000] [--seconds 20]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench import faults
from bench.synth import write_collection

NEW_RECORD = """---
title: {title}
publishedDateTime: 2031-01-01T00:{minute:02d}:{second:02d}Z
webUrl: https://changing.example/{n}
provider: {{name: Provider {provider}, domain: provider{provider}.example}}
topics: [{topic}]
---
"""


def rotation(paths: list[str]) -> list[str]:
    """All items, every topic and the first 100 providers, in every format."""
    providers = sorted({p.rsplit(".", 1)[0] for p in paths if p.startswith("/feeds/providers/")})
    keep = set(providers[:100])
    return [
        path
        for path in paths
        if not path.startswith("/feeds/providers/") or path.rsplit(".", 1)[0] in keep
    ]


def change_records(folder: Path, per_second: float, stop: threading.Event, done: list[int]) -> None:
    """Edit an existing record's title, then add a newest record, alternately."""
    existing = sorted(folder.glob("*-record.md"))
    rng = random.Random(3)
    n = 0
    while not stop.wait(1 / per_second):
        n += 1
        if n % 2:
            target = rng.choice(existing)
            text = target.read_text(encoding="utf-8")
            target.write_text(text.replace("title: ", f"title: Edited {n} ", 1), encoding="utf-8")
        else:
            (folder / f"zz-new-{n:06d}.md").write_text(
                NEW_RECORD.format(
                    title=f"New {n}",
                    minute=n // 60 % 60,
                    second=n % 60,
                    n=n,
                    provider=rng.randrange(100),
                    topic=f"Topic {rng.randrange(30)}",
                ),
                encoding="utf-8",
            )
            added = sorted(folder.glob("zz-new-*.md"))
            if len(added) > 20:
                added[0].unlink()
        done.append(n)


def measure(
    base: str, paths: list[str], seconds: float, folder: Path, per_second: float
) -> faults.WrkResult:
    stop = threading.Event()
    done: list[int] = []
    changer = threading.Thread(target=change_records, args=(folder, per_second, stop, done))
    if per_second:
        changer.start()
    try:
        return faults.run_wrk(base, paths, seconds, CONNECTIONS)
    finally:
        stop.set()
        if per_second:
            changer.join()


def visible_after(base: str, folder: Path, n: int) -> float:
    """Seconds from writing a new newest record until /feeds/all.atom shows it."""
    title = f"Visible {n} {time.time_ns()}"
    started = time.monotonic()
    (folder / f"zz-visible-{n}.md").write_text(
        NEW_RECORD.format(
            title=title, minute=59, second=59, n=f"v{n}", provider=1, topic="Topic 1"
        ),
        encoding="utf-8",
    )
    while True:
        with urllib.request.urlopen(base + "/feeds/all.atom", timeout=10) as response:
            if title.encode() in response.read():
                return time.monotonic() - started
        time.sleep(0.01)


CONNECTIONS = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    faults.WRK_SCRIPT = faults.WRK_SCRIPT.replace(
        'wrk.format("GET", paths[index])',
        'wrk.format("GET", paths[index], {["Accept-Encoding"] = "gzip"})',
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_collection(Path(tmp) / "records", args.records)
        with faults.serving(folder, "granian", 2.0) as server:
            paths = rotation(faults.feed_paths(server.base))
            for path in paths:  # every URL rendered once before measuring
                urllib.request.urlopen(server.base + path, timeout=60).read()
            # ... in each worker: one unmeasured round of wrk, so that "at rest" renders nothing
            measure(server.base, paths, args.seconds, folder, 0)
            print(f"{args.records} records, {len(paths)} feed URLs, wrk 32 connections, gzip")
            rest = None
            for per_second in (0, 1, 10):
                result = measure(server.base, paths, args.seconds, folder, per_second)
                rest = rest or result
                label = "at rest" if not per_second else f"{per_second} changes/s"
                print(
                    f"  {label:14} {result.rps:9.0f} req/s  ratio {result.rps / rest.rps:5.2f}  "
                    f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:8.2f} ms  "
                    f"socket errors {result.socket_errors}  statuses {result.statuses}"
                )
            delays = [visible_after(server.base, folder, n) for n in range(5)]
            print(
                f"  a new record served in /feeds/all.atom after: median "
                f"{statistics.median(delays):.3f} s, max {max(delays):.3f} s"
            )


if __name__ == "__main__":
    main()
