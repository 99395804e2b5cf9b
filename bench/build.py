"""Build benchmark: a full static build, then rebuilds into the same folder.

On a synthetic collection (bench/synth.py, default 10,000 records), in the same run:

1. `feedsvc check` once, which fills the parse cache (timed, as the load alone);
2. a full build into an empty folder;
3. a rebuild with nothing changed;
4. a rebuild after one older record's title changed (same length): the pages that show it;
5. a rebuild after one record was added, the newest: every page of the all-items feed and of the
   record's topics and provider shifts by one entry;
6. a rebuild after that record was removed again.

Every run is `feedsvc build` in a fresh process, as a user runs it: wall time from start to exit,
CPU time of the process and its workers, and the files it wrote, kept and removed (from its summary
line). Ratios are against the full build of the same run. The machine's load average is printed
beside each row: on a shared machine, wall times depend on it.

    python -m bench.build [--records 10000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from bench.synth import DUMPER, make_record, write_collection

BASE_URL = "https://news.example.org/"
SUMMARY = re.compile(r"wrote (\d+), kept (\d+), removed (\d+) files")


@dataclass(frozen=True)
class Run:
    name: str
    wall: float
    cpu: float
    written: int | None
    kept: int | None
    removed: int | None
    load: float


def feedsvc(name: str, arguments: list[str], env: dict[str, str]) -> Run:
    """One `feedsvc` command in its own process, timed (CPU: it and every process it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", *arguments], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):  # check exits 1 for rejected records; none are here
        sys.exit(f"feedsvc {' '.join(arguments)} failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = SUMMARY.search(done.stdout)
    counts = [int(value) for value in found.groups()] if found else [None, None, None]
    return Run(name, wall, cpu, *counts, load=os.getloadavg()[0])


def change_title(seeds: Path, records: int) -> None:
    """An older record's title with its letters' case swapped: the same length, other bytes."""
    path = seeds / f"{records // 2:06d}-record.md"
    text = path.read_text(encoding="utf-8")
    title = re.search(r"^title: (.*)$", text, re.MULTILINE)
    assert title is not None
    path.write_text(text.replace(title.group(0), f"title: {title.group(1).swapcase()}", 1))


def add_newest(seeds: Path, records: int) -> None:
    """A record dated after every other one (synth dates records 37 minutes apart)."""
    record = make_record(random.Random(records), records, datetime(2020, 1, 1, tzinfo=UTC))
    text = yaml.dump(record, Dumper=DUMPER, sort_keys=False, allow_unicode=True)
    (seeds / f"{records:06d}-record.md").write_text(f"---\n{text}---\n", encoding="utf-8")


def remove_newest(seeds: Path, records: int) -> None:
    (seeds / f"{records:06d}-record.md").unlink()


def run(records: int, workers: int, folder: Path) -> list[Run]:
    seeds = write_collection(folder / "records", records)
    out = folder / "site"
    env = {**os.environ, "FEEDSVC_PARSE_CACHE": str(folder / "parse-cache")}
    build = ["build", "--seeds", str(seeds), "--out", str(out), "--base-url", BASE_URL]
    build += ["--workers", str(workers)]
    runs = [feedsvc("load (feedsvc check, fills the parse cache)", ["check", str(seeds)], env)]
    runs.append(feedsvc("full build (empty --out)", build, env))
    steps: list[tuple[str, Callable[[Path, int], None] | None]] = [
        ("rebuild, nothing changed", None),
        ("rebuild, one older record's title changed", change_title),
        ("rebuild, one record added (the newest)", add_newest),
        ("rebuild, that record removed", remove_newest),
    ]
    for name, change in steps:
        if change is not None:
            change(seeds, records)
        runs.append(feedsvc(name, build, env))
        print(f"{name}: {runs[-1].wall:.1f} s", file=sys.stderr)
    return runs


def table(runs: list[Run]) -> str:
    full = runs[1].wall
    lines = [
        "| run | wall s | CPU s | written | kept | removed | × full build (wall) | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for item in runs:
        counts = [str(value) if value is not None else "" for value in (item.written, item.kept)]
        counts.append(str(item.removed) if item.removed is not None else "")
        lines.append(
            f"| {item.name} | {item.wall:.2f} | {item.cpu:.2f} | {' | '.join(counts)} | "
            f"{item.wall / full:.3f} | {item.load:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    print(
        f"{os.cpu_count()} cores, {args.records} records, {args.workers} workers", file=sys.stderr
    )
    with tempfile.TemporaryDirectory() as folder:
        runs = run(args.records, args.workers, Path(folder))
    print(table(runs))


if __name__ == "__main__":
    main()
