"""Loading benchmark: cold load, warm restart, one-file reload and memory, against a baseline.

For each collection size (default 10,000 and 100,000 synthetic records, bench/synth.py), in the
same run: the baseline is a plain single-process loop calling PyYAML's C loader on the same files;
then feedsvc's cold load (no parse cache, parallel), warm restart (parse cache hit), reload after
one file changes (found by polling, and named by a filesystem event), and resident memory per
record above an empty process. Every measurement runs in a fresh process.

    python -m bench.loading [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bench.processes import child_json
from bench.synth import write_collection

if TYPE_CHECKING:
    from feedsvc.repository import CollectionLoader

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def child(mode: str, folder: Path, cache: Path) -> dict[str, float]:
    """One measurement, in its own process."""
    if mode == "baseline":
        started = time.perf_counter()
        count = 0
        for path in sorted(folder.glob("*.md")):
            yaml.load(path.read_text(encoding="utf-8").split("---\n")[1], Loader=LOADER)
            count += 1
        return {"seconds": time.perf_counter() - started, "records": count}

    from feedsvc.repository import CollectionLoader

    gc.collect()
    before = rss_bytes()
    loader = CollectionLoader(folder, workers=os.cpu_count() or 1, cache_file=cache)
    started = time.perf_counter()
    collection = loader.load()
    seconds = time.perf_counter() - started
    gc.collect()
    result = {
        "seconds": seconds,
        "records": len(collection.records),
        "parsed": loader.stats.parsed,
        "rss_per_record": (rss_bytes() - before) / max(1, len(collection.records)),
    }
    if mode == "reload":
        files = sorted(folder.glob("*.md"))
        victim = files[len(files) // 2]
        text = victim.read_text(encoding="utf-8")
        victim.write_text(text.replace("title: ", "title: Changed ", 1), encoding="utf-8")
        started = time.perf_counter()
        reloaded = loader.reload()
        result["reload_seconds"] = time.perf_counter() - started
        result["reload_parsed"] = loader.stats.parsed
        assert reloaded is not None and any(r.title.startswith("Changed") for r in reloaded.records)
        # The same change as a filesystem event reports it: only that path is looked at.
        victim.write_text(text, encoding="utf-8")
        started = time.perf_counter()
        reloaded = loader.reload([str(victim)])
        result["event_reload_seconds"] = time.perf_counter() - started
        assert reloaded is not None and loader.stats.checked == 1 and loader.stats.parsed == 1
        result["event_reload_cpu"] = event_reload_cpu(loader, victim, text)
    return result


def event_reload_cpu(loader: CollectionLoader, victim: Path, text: str, times: int = 5) -> float:
    """The reload's own CPU time (this process's), median of `times` edits of one file named
    as a filesystem event names it: on a shared machine, CPU time says more than wall time."""
    spent = []
    for edit in range(times):
        victim.write_text(text.replace("title: ", f"title: Edit {edit} ", 1), encoding="utf-8")
        started = time.process_time()
        assert loader.reload([str(victim)]) is not None
        spent.append(time.process_time() - started)
    victim.write_text(text, encoding="utf-8")
    loader.reload([str(victim)])
    return statistics.median(spent)


def measure(mode: str, folder: Path, cache: Path) -> dict[str, float]:
    return child_json("bench.loading", "--child", mode, str(folder), str(cache))


def run_size(size: int, workdir: Path) -> list[str]:
    folder = workdir / f"records-{size}"
    if not folder.is_dir() or sum(1 for _ in folder.iterdir()) != size:
        write_collection(folder, size)
    cache = workdir / f"parse-{size}.cache"
    baseline = measure("baseline", folder, cache)
    cache.unlink(missing_ok=True)
    cold = measure("cold", folder, cache)  # no cache file yet: parses everything, writes it
    warm = measure("warm", folder, cache)
    reload = measure("reload", folder, cache)
    assert cold["parsed"] == size and warm["parsed"] == 0 and reload["reload_parsed"] == 1

    def rate(result: dict[str, float]) -> float:
        return result["records"] / result["seconds"]

    base = rate(baseline)
    rows = [
        f"| {size} | baseline: PyYAML C loader, one process | {baseline['seconds']:.2f} s | "
        f"{base:.0f} | 1.00 | |",
        f"| {size} | cold load (parallel, no cache) | {cold['seconds']:.2f} s | {rate(cold):.0f} | "
        f"{rate(cold) / base:.2f} | ≥ 1.6 |",
        f"| {size} | warm restart (parse cache) | {warm['seconds']:.2f} s | {rate(warm):.0f} | "
        f"{rate(warm) / base:.2f} | ≥ 10 |",
        f"| {size} | reload after one file changed (polling) | "
        f"{reload['reload_seconds'] * 1000:.1f} ms | | "
        f"{100 * reload['reload_seconds'] / cold['seconds']:.2f} % of cold | < 2 % |",
        f"| {size} | reload after one file changed (named by an event) | "
        f"{reload['event_reload_seconds'] * 1000:.1f} ms | | "
        f"{100 * reload['event_reload_seconds'] / cold['seconds']:.2f} % of cold | < 2 % |",
        f"| {size} | reload CPU, one file named by an event (median of 5) | "
        f"{reload['event_reload_cpu'] * 1000:.1f} ms | | | ≤ 50 ms at 100,000 |",
        f"| {size} | resident memory per record | {warm['rss_per_record'] / 1024:.2f} KB | | | "
        f"≤ 3 KB |",
    ]
    for row in rows:
        print(row, file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="write the collections into DIR and reuse them there (and the parse caches: a "
        "cold load deletes its cache first)",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("MODE", "FOLDER", "CACHE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        mode, folder, cache = args.child
        print(json.dumps(child(mode, Path(folder), Path(cache))))
        return
    print(f"{os.cpu_count()} cores", file=sys.stderr)
    if args.keep:  # collections written once and kept: 100,000 files take minutes to write
        args.keep.mkdir(parents=True, exist_ok=True)
        rows = [row for size in args.sizes for row in run_size(size, args.keep)]
    else:
        with tempfile.TemporaryDirectory() as workdir:
            rows = [row for size in args.sizes for row in run_size(size, Path(workdir))]
    print("\n| records | measurement | time | records/s | × baseline | target |")
    print("|---:|---|---:|---:|---:|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
