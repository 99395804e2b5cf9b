"""The server as started: warm restart time and resident memory per record, against baselines.

`feedsvc serve` with its defaults (granian, one worker per core, the parse cache and search index
in their default places, here under a temporary XDG_CACHE_HOME) on a synthetic collection
(bench/synth.py, default 100,000 records) and on a 2-record one, in the same run:

1. a cold start fills the parse cache and the search index (not measured);
2. the baseline: one process reading the same files and calling PyYAML's C loader
   (`yaml.load(front_matter, Loader=CSafeLoader)`) on each, single core;
3. a warm restart, timed from just before the process is started until `/healthz` first answers
   200 (polled every 10 ms), beside the server's own CPU time until then; its ratio to the
   baseline (rounds alternate baseline and restart, so both see the same page cache);
4. memory of every process of the server (the main process and its workers, found by their
   parent PID in /proc): RSS, and PSS (each shared page divided among the processes that map it)
   from /proc/<pid>/smaps_rollup, read once every worker is up ("ready": only /healthz was
   requested) and again after a fixed set of URLs was requested four times each ("warmed":
   `WARM_PATHS`, with the first topic and provider of the OPML list). The same is read of the
   2-record server; the difference, divided by the record count, is the memory per record.

    python -m bench.startup [--records 100000] [--keep DIR] [--rounds 2] [--also NAME=VALUE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.processes import child_json, cpu_seconds, free_port, running, workers_of
from bench.synth import write_collection

LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
STARTUP_SECONDS = 600
POLL_SECONDS = 0.01
# Requested four times each before the "warmed" reading ({topic} and {provider}: the first of
# each in /feeds.opml). Four times, so that each of two workers most likely answers each once.
WARM_PATHS = (
    "/",
    "/feeds/all.atom",
    "/feeds/all.rss",
    "/feeds/all.json",
    "/feeds/topics/{topic}.atom",
    "/feeds/providers/{provider}.atom",
    "/feeds/stories/all.atom",
    "/search?q=model",
)


def baseline(folder: Path) -> dict[str, float]:
    """Runs in its own process: the single-core CSafeLoader loop over every file's front
    matter (the loop issue 11 measures the warm restart against)."""
    started, cpu = time.perf_counter(), time.process_time()
    count = 0
    for path in sorted(folder.glob("*.md")):
        yaml.load(path.read_text(encoding="utf-8").split("---\n")[1], Loader=LOADER)
        count += 1
    return {
        "seconds": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "records": count,
    }


def run_baseline(folder: Path) -> dict[str, float]:
    return child_json("bench.startup", "--baseline", str(folder))


def smaps(pid: int) -> dict[str, int]:
    """/proc/<pid>/smaps_rollup's fields, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        values[name] = int(value.split()[0])
    return values


@dataclass
class Memory:
    """One reading of a server's processes, in KiB."""

    main_rss: int
    main_pss: int
    total_pss: int
    total_rss: int
    workers_private: int  # Private_Clean + Private_Dirty of the workers: what they copied
    processes: int

    @classmethod
    def read(cls, pid: int) -> Memory:
        pids = [pid, *workers_of(pid)]
        readings = [smaps(each) for each in pids]
        return cls(
            main_rss=readings[0]["Rss"],
            main_pss=readings[0]["Pss"],
            total_pss=sum(r["Pss"] for r in readings),
            total_rss=sum(r["Rss"] for r in readings),
            workers_private=sum(r["Private_Clean"] + r["Private_Dirty"] for r in readings[1:]),
            processes=len(pids),
        )


@dataclass
class Started:
    process: subprocess.Popen[bytes]
    base: str
    seconds: float  # from just before the process started until /healthz answered
    cpu: float  # the server's CPU time until then (main process and waited-for children)
    health: dict[str, object]


@contextmanager
def serving(
    folder: Path, cache_home: Path, log: Path, settings: dict[str, str] | None = None
) -> Iterator[Started]:
    """`feedsvc serve` with its defaults (but `settings`, `FEEDSVC_*` variables) on loopback;
    stopped by its own PID."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update(settings or {})
    env["XDG_CACHE_HOME"] = str(cache_home)
    command = [sys.executable, "-m", "feedsvc", "serve", "--seeds", str(folder)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with running(
        command,
        base + "/healthz",
        env=env,
        log=log,
        append=True,
        startup_seconds=STARTUP_SECONDS,
        poll_seconds=POLL_SECONDS,
        stop_seconds=60,
    ) as server:
        seconds = time.perf_counter() - started
        cpu = cpu_seconds([server.process.pid], waited_children=True)
        health = dict(json.loads(server.answer))
        yield Started(server.process, base, seconds, cpu, health)


def settled_memory(server: Started, workers: int) -> Memory:
    """The memory reading once every worker runs and has answered, and two readings a second
    apart agree within 1 %."""
    deadline = time.monotonic() + 120
    while len(workers_of(server.process.pid)) < workers:
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not start")
        time.sleep(0.05)
    for _ in range(4 * workers):
        get(server.base + "/healthz")
    last = Memory.read(server.process.pid)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = Memory.read(server.process.pid)
        if abs(now.total_pss - last.total_pss) <= last.total_pss / 100:
            return now
        last = now
    return last


def get(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=300) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"{url}: {error.code}") from None


def warm(server: Started, workers: int) -> Memory:
    """Request `WARM_PATHS` four times each, then read the memory again."""
    opml = get(server.base + "/feeds.opml").decode()
    topic = re.search(r"/feeds/topics/([^/\".]+)\.atom", opml)
    provider = re.search(r"/feeds/providers/([^/\".]+)\.atom", opml)
    assert topic and provider
    for path in WARM_PATHS:
        url = server.base + path.format(topic=topic[1], provider=provider[1])
        for _ in range(4):
            get(url)
    return settled_memory(server, workers)


def measure(
    folder: Path, cache_home: Path, log: Path, workers: int, settings: dict[str, str] | None = None
) -> dict[str, object]:
    with serving(folder, cache_home, log, settings) as server:
        ready = settled_memory(server, workers)
        warmed = warm(server, workers)
        return {
            "seconds": server.seconds,
            "cpu": server.cpu,
            "records": server.health["records"],
            "parsed": server.health["parsed"],
            "ready": ready,
            "warmed": warmed,
        }


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def per_record(big: Memory, small: Memory, records: int) -> str:
    def kib(field: str) -> str:
        return f"{(getattr(big, field) - getattr(small, field)) / records:.2f}"

    return (
        f"PSS, every process {kib('total_pss')} KiB; main process RSS {kib('main_rss')} KiB, "
        f"PSS {kib('main_pss')} KiB; RSS of every process {kib('total_rss')} KiB; workers' "
        f"private pages {big.workers_private / 1024:.1f} MiB ({big.processes} processes)"
    )


def run(records: int, workdir: Path, rounds: int, also: dict[str, str]) -> None:
    folder, tiny = workdir / f"records-{records}", workdir / "records-2"
    for path, size in ((folder, records), (tiny, 2)):
        if not path.is_dir() or sum(1 for _ in path.iterdir()) != size:
            write_collection(path, size)
    cache_home, log = workdir / "cache", workdir / "server.log"
    workers = os.cpu_count() or 1
    print(f"{workers} cores; server log {log}", file=sys.stderr)
    with serving(folder, cache_home, log) as cold:  # fills the parse cache and search index
        print(f"cold start: {cold.seconds:.2f} s (load average {load_average()})", file=sys.stderr)
    variants: list[tuple[str, dict[str, str]]] = [("defaults", {})]
    variants += [(" ".join(f"{k}={v}" for k, v in also.items()), also)] if also else []
    for round_number in range(1, rounds + 1):
        base = run_baseline(folder)
        for name, settings in variants:
            server = measure(folder, cache_home, log, workers, settings)
            assert server["records"] == records and server["parsed"] == 0, server
            small = measure(tiny, cache_home, log, workers, settings)
            print(
                f"round {round_number}, {name}: baseline {base['seconds']:.2f} s "
                f"({base['cpu']:.2f} s CPU); warm restart {server['seconds']:.2f} s "
                f"({server['cpu']:.2f} s CPU): "
                f"{base['seconds'] / server['seconds']:.2f} x the baseline "  # type: ignore[operator]
                f"(CPU {base['cpu'] / server['cpu']:.2f} x); load average {load_average()}",  # type: ignore[operator]
                file=sys.stderr,
            )
            for moment in ("ready", "warmed"):
                big, little = server[moment], small[moment]
                assert isinstance(big, Memory) and isinstance(little, Memory)
                print(f"  {moment}: {per_record(big, little, records)}", file=sys.stderr)
    print(f"\nload average at the end: {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="write the collections into DIR once, reuse them"
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="measure the server again in each round with FEEDSVC_NAME=VALUE (repeatable: all "
        "of them at once)",
    )
    parser.add_argument("--baseline", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    also = dict(f"FEEDSVC_{item}".split("=", 1) for item in args.also)
    if args.baseline:
        print(json.dumps(baseline(args.baseline)))
        return
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        run(args.records, args.keep, args.rounds, also)
    else:
        with tempfile.TemporaryDirectory() as workdir:
            run(args.records, Path(workdir), args.rounds, also)


if __name__ == "__main__":
    main()
