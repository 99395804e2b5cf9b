"""Faults and load: the production server on loopback, driven by wrk across every feed URL.

Three runs, one command each (Makefile: `make soak`, `make soak-reload`, `make kill-worker`):

    python -m bench.faults soak    [--seconds 180]  # sustained load: errors, 5xx, p99, memory
    python -m bench.faults reload  [--seconds 180]  # the same while records change (live reload)
    python -m bench.faults kill    [--seconds 60]   # a worker killed by its PID mid-load

Each run generates a synthetic collection (bench/synth.py), starts `feedsvc serve` on a free
loopback port (granian by default, `--server gunicorn`), warms it up, then runs wrk (64
connections) over a Lua script that cycles through every feed in every format, plus a Python
client loop that parses every body it gets (wrk cannot check bodies). Worker resident memory
is sampled from /proc after warm-up and at the end. The run prints its figures and exits 1 when
a target is missed: zero socket errors, zero 5xx, every body well-formed, the workers' memory
growing under 5% from the first third of the run to the last (soak and reload), not counting
what the render and fragment caches grew by as each worker's /healthz reports them (they fill up
to RENDER_CACHE_BYTES by design), and for kill a replaced worker and serving that goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from bench.processes import free_port, rss_kib, running, workers_of
from bench.synth import write_collection

CONNECTIONS = 64
STARTUP_SECONDS = 300
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
_XML = etree.XMLParser(resolve_entities=False, recover=False)

# Cycles through every URL; counts status classes so 5xx are told from 4xx.
WRK_SCRIPT = """
local paths = {PATHS}
local index = 0
counts = {}  -- a global: done() reads each thread's copy with thread:get
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function(args) counts = {} end
request = function()
  index = index % #paths + 1
  return wrk.format("GET", paths[index])
end
response = function(status, headers, body)
  local class = math.floor(status / 100) .. "xx"
  counts[class] = (counts[class] or 0) + 1
end
done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for class, n in pairs(c) do total[class] = (total[class] or 0) + n end
  end
  for class, n in pairs(total) do io.write(string.format("status %s %d\\n", class, n)) end
end
"""


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str

    def workers(self) -> list[int]:
        """The PIDs of the worker processes (multiprocessing helpers such as the resource
        tracker are not workers)."""
        return workers_of(self.process.pid)


@contextmanager
def serving(folder: Path, server: str, reload_interval: float) -> Iterator[Server]:
    """`feedsvc serve` on a free loopback port, two workers, stopped by its own PID."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update(
        FEEDSVC_SEEDS_DIR=str(folder),
        FEEDSVC_PARSE_CACHE="off",
        FEEDSVC_BASE_URL=f"http://127.0.0.1:{port}/",
        FEEDSVC_RELOAD_INTERVAL=str(reload_interval),
        FEEDSVC_LOG_LEVEL="WARNING",  # one log line per request would measure the logging
    )
    command = [sys.executable, "-m", "feedsvc", "serve", "--server", server, "--workers", "2"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    log = folder.parent / "server.log"
    probe = base + "/healthz"
    with running(command, probe, env=env, log=log, startup_seconds=STARTUP_SECONDS) as started:
        yield Server(started.process, base)


def feed_paths(base: str) -> list[str]:
    """Every feed in every format, as the OPML list names them."""
    with urllib.request.urlopen(base + "/feeds.opml", timeout=30) as response:
        opml = etree.fromstring(response.read(), _XML)
    urls = {outline.get("xmlUrl") for outline in opml.iter("outline") if outline.get("xmlUrl")}
    paths = set()
    for url in urls:
        path = url[len(base) :] if url.startswith(base) else url
        stem = path.rsplit(".", 1)[0]
        paths.update(f"{stem}.{extension}" for extension in ("atom", "rss", "json"))
    return sorted(paths)


@dataclass
class WrkResult:
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    statuses: dict[str, int]


def run_wrk(
    base: str, paths: list[str], seconds: float, connections: int, script: str | None = None
) -> WrkResult:
    """wrk over `paths` in turn (or what `script` asks for, which counts status classes as
    WRK_SCRIPT does)."""
    script = (script or WRK_SCRIPT).replace(
        "{PATHS}", "{" + ", ".join(json.dumps(p) for p in paths) + "}"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        command = ["wrk", "--threads", "2", "--connections", str(connections)]
        command += ["--duration", f"{int(seconds)}s", "--latency", "--timeout", "10s"]
        command += ["--script", lua.name, base + paths[0]]
        run = subprocess.run(command, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr or run.stdout}")
        output = run.stdout

    def latency(percentile: str) -> float:
        value, unit = re.search(rf"{percentile}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        return float(value) * _UNITS_MS[unit]

    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    statuses = {cls: int(n) for cls, n in re.findall(r"status (\dxx) (\d+)", output)}
    return WrkResult(seconds, requests, rps, latency("50"), latency("99"), errors, statuses)


@dataclass
class ClientTally:
    """What the body-checking client loop saw."""

    responses: int = 0
    malformed: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    versions: set[str] = field(default_factory=set)


def check_body(path: str, content_type: str, body: bytes) -> None:
    if path.endswith(".json"):
        feed = json.loads(body)
        assert feed["version"].startswith("https://jsonfeed.org/"), path
        assert isinstance(feed["items"], list)
    else:
        root = etree.fromstring(body, _XML)
        assert root.tag in ("{http://www.w3.org/2005/Atom}feed", "rss"), root.tag
    assert content_type.endswith("charset=utf-8"), content_type


def client_loop(base: str, paths: list[str], stop: threading.Event, tally: ClientTally) -> None:
    """Fetch random feeds and parse every body; also note the collection versions served."""
    rng = random.Random(1)
    while not stop.is_set():
        path = rng.choice(paths) if rng.random() > 0.05 else "/healthz"
        try:
            with urllib.request.urlopen(base + path, timeout=15) as response:
                body = response.read()
                status = response.status
                content_type = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, body, content_type = error.code, error.read(), ""
        except OSError as error:
            tally.failures.append(f"{path}: {error}")
            continue
        tally.responses += 1
        tally.statuses[status] = tally.statuses.get(status, 0) + 1
        if status != 200:
            tally.malformed.append(f"{path}: status {status}")
            continue
        try:
            if path == "/healthz":
                tally.versions.add(json.loads(body)["version"])
            else:
                check_body(path, content_type, body)
        except Exception as exc:  # every kind of malformed body is a finding
            tally.malformed.append(f"{path}: {type(exc).__name__}: {exc}")


NEW_RECORD = """---
title: Changing record {n}
publishedDateTime: 2031-01-01T00:{minute:02d}:00Z
webUrl: https://changing.example/{n}
provider: {{name: Changing, domain: changing.example}}
topics: [Churn, Topic {n}]
---
"""


def mutate_records(folder: Path, stop: threading.Event, counts: dict[str, int]) -> None:
    """Change the collection as editors do, twice a second: rewrite a record in place (in
    pieces), add one, remove an added one, save a broken file and fix it."""
    existing = sorted(folder.glob("*.md"))
    rng = random.Random(2)
    n = 0
    while not stop.wait(0.5):
        n += 1
        action = n % 4
        if action == 0:
            target = rng.choice(existing)
            text = target.read_text(encoding="utf-8")
            changed = text.replace("title: ", f"title: Edited {n} ", 1)
            with target.open("w", encoding="utf-8") as handle:
                for start in range(0, len(changed), 512):
                    handle.write(changed[start : start + 512])
                    handle.flush()
        elif action == 1:
            (folder / f"zz-new-{n}.md").write_text(
                NEW_RECORD.format(n=n, minute=n % 60), encoding="utf-8"
            )
        elif action == 2:
            added = sorted(folder.glob("zz-new-*.md"))
            if len(added) > 3:
                added[0].unlink()
        else:
            broken = folder / "zz-broken.md"
            broken.write_text("---\ntitle: [unclosed\n", encoding="utf-8")
            time.sleep(0.2)
            broken.write_text(NEW_RECORD.format(n=n, minute=n % 60), encoding="utf-8")
        counts["changes"] = counts.get("changes", 0) + 1


def sample_memory(
    server: Server, stop: threading.Event, samples: list[tuple[float, dict[int, int]]], run: float
) -> None:
    """The workers' RSS ten times over the run, to tell a plateau from a steady climb."""
    started = time.monotonic()
    while not stop.wait(max(1.0, run / 10)):
        samples.append((time.monotonic() - started, memory(server)))


def memory(server: Server) -> dict[int, int]:
    return {pid: rss_kib(pid) for pid in server.workers()}


def cache_kib(server: Server, attempts: int = 80) -> dict[int, int]:
    """What each worker's render and fragment caches hold, in KiB, as its /healthz reports it.
    Each request on a new connection reaches one worker or the other, so /healthz is asked until
    every worker has answered (a worker not reached is left out)."""
    wanted, held = set(server.workers()), {}
    for _ in range(attempts):
        with urllib.request.urlopen(server.base + "/healthz", timeout=30) as response:
            health = json.loads(response.read())
        cache = health["render_cache"]
        held[health["pid"]] = (cache["bytes"] + cache["fragment_bytes"]) // 1024
        if wanted <= held.keys():
            break
    return {pid: kib for pid, kib in held.items() if pid in wanted}


def growth_outside_caches(
    samples: list[tuple[float, dict[int, int]]], cached: tuple[dict[int, int], dict[int, int]]
) -> float:
    """How much the workers' RSS grew over the run, in %: the mean of the last third of the
    samples against the mean of the first third (one reading can catch a render's transient
    buffers), less what the render and fragment caches grew by, since they fill up to their
    budget (RENDER_CACHE_BYTES) by design and a leak check must not take that for a leak."""
    totals = [sum(sample.values()) for _, sample in samples]
    third = max(1, len(totals) // 3)
    first, last = sum(totals[:third]) / third, sum(totals[-third:]) / third
    cached_before, cached_after = cached
    grown = sum(cached_after.values()) - sum(cached_before.values())
    return (last - first - grown) / first * 100


def print_memory(label: str, sample: dict[int, int], what: str = "worker RSS") -> None:
    figures = ", ".join(f"pid {pid} {kib / 1024:.1f} MiB" for pid, kib in sample.items())
    print(f"  {what} {label}: {figures}")


def report_wrk(result: WrkResult) -> None:
    statuses = ", ".join(f"{cls} {n}" for cls, n in sorted(result.statuses.items()))
    print(
        f"  wrk {result.seconds:.0f}s × {CONNECTIONS} connections: {result.requests} requests, "
        f"{result.rps:.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"socket errors {result.socket_errors}, statuses: {statuses}"
    )


def soak(args: argparse.Namespace, folder: Path, with_reload: bool) -> bool:
    interval = 1.0 if with_reload else 0.0
    with serving(folder, args.server, interval) as server:
        paths = feed_paths(server.base)
        print(f"  {len(paths)} feed URLs, workers {server.workers()}")
        warmup = run_wrk(server.base, paths, args.warmup, CONNECTIONS)
        print(f"  warm-up {args.warmup:.0f}s: {warmup.requests} requests")
        before, cached_before = memory(server), cache_kib(server)
        print_memory("after warm-up", before)
        print_memory("after warm-up", cached_before, "held by the caches")
        stop = threading.Event()
        tally = ClientTally()
        changes: dict[str, int] = {}
        samples: list[tuple[float, dict[int, int]]] = []
        threads = [
            threading.Thread(target=client_loop, args=(server.base, paths, stop, tally)),
            threading.Thread(target=sample_memory, args=(server, stop, samples, args.seconds)),
        ]
        if with_reload:
            threads.append(threading.Thread(target=mutate_records, args=(folder, stop, changes)))
        for thread in threads:
            thread.start()
        try:
            result = run_wrk(server.base, paths, args.seconds, CONNECTIONS)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        after, cached_after = memory(server), cache_kib(server)
        print_memory("at the end", after)
        print_memory("at the end", cached_after, "held by the caches")
    for elapsed, sample in samples:
        total = sum(sample.values()) / 1024
        print(f"    t={elapsed:4.0f}s workers' RSS {total:.1f} MiB in all")
    report_wrk(result)
    growth = max((after[pid] - kib) / kib * 100 for pid, kib in before.items() if pid in after)
    print(f"  worker RSS growth after warm-up: {growth:+.1f}% (largest of the workers)")
    unaccounted = growth_outside_caches(samples, (cached_before, cached_after))
    print(
        f"  workers' RSS, last third of the run against the first, not counting the caches' "
        f"growth: {unaccounted:+.1f}%"
    )
    print(
        f"  body-checking client: {tally.responses} responses, {len(tally.malformed)} malformed "
        f"or not 200, {len(tally.failures)} failed; statuses {tally.statuses}"
    )
    if with_reload:
        print(
            f"  record changes: {changes.get('changes', 0)}; collection versions seen by the "
            f"client: {len(tally.versions)}"
        )
    for line in (tally.malformed + tally.failures)[:10]:
        print(f"    {line}")
    checks = {
        "zero socket errors": result.socket_errors == 0,
        "zero 5xx": result.statuses.get("5xx", 0) == 0,
        "every response 2xx/3xx": set(result.statuses) <= {"2xx", "3xx"},
        "every body well-formed": not tally.malformed and not tally.failures,
        "memory growth outside the caches < 5%": unaccounted < 5,
        "same workers": sorted(before) == sorted(after),
    }
    if with_reload:
        checks["the collection changed while serving"] = len(tally.versions) > 1
    return print_checks(checks)


def kill(args: argparse.Namespace, folder: Path) -> bool:
    with serving(folder, args.server, 0.0) as server:
        paths = feed_paths(server.base)
        run_wrk(server.base, paths, args.warmup, CONNECTIONS)
        workers = server.workers()
        print(f"  {len(paths)} feed URLs, workers {workers}")
        stop = threading.Event()
        tally = ClientTally()
        client = threading.Thread(target=client_loop, args=(server.base, paths, stop, tally))
        client.start()
        victim = workers[0]
        replaced: list[int] = []

        def killer() -> None:
            time.sleep(args.seconds / 3)
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            print(f"  killed worker {victim} with SIGKILL at t={args.seconds / 3:.0f}s")
            while time.monotonic() - killed_at < args.seconds / 2:
                now = server.workers()
                if victim not in now and len(now) == len(workers):
                    replaced.extend(now)
                    print(f"  replaced after {time.monotonic() - killed_at:.2f}s: workers {now}")
                    return
                time.sleep(0.05)

        thread = threading.Thread(target=killer)
        thread.start()
        try:
            result = run_wrk(server.base, paths, args.seconds, CONNECTIONS)
        finally:
            thread.join()
            stop.set()
            client.join()
        after = run_wrk(server.base, paths, 5, CONNECTIONS)
    report_wrk(result)
    failed = result.socket_errors + sum(n for cls, n in result.statuses.items() if cls == "5xx")
    print(
        f"  requests failed around the kill: {failed} of {result.requests} (wrk socket errors "
        f"{result.socket_errors}, 5xx {result.statuses.get('5xx', 0)}); body-checking client: "
        f"{tally.responses} responses, {len(tally.failures)} failed, "
        f"{len(tally.malformed)} malformed or not 200"
    )
    print(f"  5 s after: {after.requests} requests, socket errors {after.socket_errors}")
    return print_checks(
        {
            "the killed worker was replaced": bool(replaced),
            "serving went on (requests after the kill)": after.requests > 0,
            "no errors once replaced": after.socket_errors == 0 and set(after.statuses) <= {"2xx"},
            "no malformed body": not tally.malformed,
            "no 5xx": result.statuses.get("5xx", 0) == 0,
        }
    )


def print_checks(checks: dict[str, bool]) -> bool:
    for label, passed in checks.items():
        print(f"  - {label}: {'yes' if passed else 'NO'}")
    return all(checks.values())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", choices=("soak", "reload", "kill"))
    parser.add_argument("--seconds", type=float, default=180, help="length of the measured run")
    parser.add_argument("--warmup", type=float, default=20, help="seconds of load before it")
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--server", choices=("granian", "gunicorn"), default="granian")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as temporary:
        folder = write_collection(Path(temporary) / "records", args.records)
        print(
            f"{args.run}: {args.records} records, {args.server} with 2 workers, "
            f"{args.seconds:.0f}s measured after {args.warmup:.0f}s of warm-up"
        )
        passed = (
            kill(args, folder) if args.run == "kill" else soak(args, folder, args.run == "reload")
        )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
