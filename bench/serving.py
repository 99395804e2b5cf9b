"""Serving benchmark: feedsvc under three production servers, against a baseline and Django.

Generates a synthetic collection (bench/synth.py), starts each server on loopback with the same
worker count, drives it with wrk, and prints requests per second and p99 latency for each row,
with each row's ratio to the baseline measured on the same server in the same run.

    python -m bench.serving [--records 10000] [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.processes import ROOT, free_port, running
from bench.synth import write_collection

BIN = Path(sys.executable).parent
WORKERS = os.cpu_count() or 2
FEED = "/feeds/all.atom"

# A unique Host per request: with BASE_URL unset the host is part of the render-cache key, so
# every request is a first-time render of the same 50 entries, on the same running server.
COLD_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  local host = "cold-" .. counter .. "-" .. math.random(1000000000) .. ".bench"
  return wrk.format("GET", "FEED", {["Host"] = host})
end
""".replace("FEED", FEED)


def servers(port: int, target: str) -> dict[str, list[str]]:
    """Command lines for each server, all with one worker per core, on the same port."""
    gunicorn = [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS)]
    gunicorn += ["--preload", "--log-level", "warning"]
    return {
        "gunicorn sync": [*gunicorn, "--worker-class", "sync", target],
        "gunicorn gthread": [*gunicorn, "--worker-class", "gthread", "--threads", "4", target],
        "granian": [
            str(BIN / "granian"),
            "--interface",
            "wsgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--blocking-threads",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            target,
        ],
    }


@dataclass(frozen=True)
class Result:
    server: str
    row: str
    requests_per_second: float
    p99_ms: float
    errors: int

    def ratio(self, baseline: Result) -> float:
        return self.requests_per_second / baseline.requests_per_second


def fetch_etag(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{FEED}") as response:
        return str(response.headers["ETag"])


def warm(port: int, path: str, times: int = 20) -> None:
    for _ in range(times):
        urllib.request.urlopen(f"http://127.0.0.1:{port}{path}").read()


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(
    port: int,
    path: str,
    args: argparse.Namespace,
    headers: dict[str, str] | None = None,
    script: str | None = None,
) -> tuple[float, float, int]:
    """Run wrk; return (requests per second, p99 in ms, socket errors + non-2xx/3xx)."""
    command = [
        "wrk",
        "--threads",
        "1",
        "--connections",
        str(args.connections),
        "--duration",
        f"{args.duration}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script:
            lua.write(script)
            lua.flush()
            command += ["--script", lua.name]
        output = subprocess.run(
            [*command, f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, check=True
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rps, float(value) * _UNITS_MS[unit], errors + (int(non_2xx.group(1)) if non_2xx else 0)


def measure_server(
    name: str,
    command: list[str],
    django: list[str],
    port: int,
    env: dict[str, str],
    args: argparse.Namespace,
) -> list[Result]:
    results: list[Result] = []

    def row(label: str, path: str, **kwargs: object) -> None:
        rps, p99, errors = wrk(port, path, args, **kwargs)  # type: ignore[arg-type]
        results.append(Result(name, label, rps, p99, errors))
        print(
            f"  {name:17} {label:22} {rps:10.0f} req/s  p99 {p99:8.2f} ms  errors {errors}",
            file=sys.stderr,
        )

    with running(
        command, f"http://127.0.0.1:{port}/bench/ping", env=env, cwd=ROOT, stop_seconds=20
    ):
        warm(port, FEED)
        row("baseline (ping)", "/bench/ping")
        row("cached feed", FEED)
        row("cached feed, gzip", FEED, headers={"Accept-Encoding": "gzip"})
        row("304 not modified", FEED, headers={"If-None-Match": fetch_etag(port)})
        row("cold render", FEED, script=COLD_SCRIPT)
    with running(django, f"http://127.0.0.1:{port}{FEED}", env=env, cwd=ROOT, stop_seconds=20):
        warm(port, FEED)
        row("django syndication", FEED)
    return results


def print_table(results: list[Result]) -> None:
    print(
        "\n| server | row | req/s | p99 ms | × baseline | errors |\n|---|---|---:|---:|---:|---:|"
    )
    baselines = {r.server: r for r in results if r.row.startswith("baseline")}
    for r in results:
        ratio = r.ratio(baselines[r.server])
        print(
            f"| {r.server} | {r.row} | {r.requests_per_second:.0f} | {r.p99_ms:.2f} | "
            f"{ratio:.2f} | {r.errors} |"
        )


def print_targets(results: list[Result]) -> None:
    get = {(r.server, r.row): r for r in results}
    fastest = max(
        (r for r in results if r.row == "cached feed"), key=lambda r: r.requests_per_second
    )
    server = fastest.server
    checks = [
        ("cached feed ≥ 0.9 × baseline", (server, "baseline (ping)"), 0.9, fastest),
        (
            "304 ≥ 0.95 × baseline",
            (server, "baseline (ping)"),
            0.95,
            get[(server, "304 not modified")],
        ),
        ("cached feed ≥ 5 × django", (server, "django syndication"), 5.0, fastest),
        (
            "fastest ≥ 2 × gunicorn sync (cached feed)",
            ("gunicorn sync", "cached feed"),
            2.0,
            fastest,
        ),
    ]
    print(f"\nFastest server on the cached feed: {server}")
    for label, reference, target, measured in checks:
        if reference not in get:
            print(f"- {label}: not measured (run without --servers to include {reference[0]})")
            continue
        value = measured.ratio(get[reference])
        print(f"- {label}: {value:.2f} ({'met' if value >= target else 'NOT met'})")
    errors = sum(r.errors for r in results)
    print(f"- socket errors and non-2xx/3xx responses: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per row")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--servers", nargs="*", help="subset of: gunicorn sync, gunicorn gthread, granian"
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as folder:
        seeds = write_collection(Path(folder) / "records", args.records)
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
        env["FEEDSVC_SEEDS_DIR"] = str(seeds)
        port = free_port()
        results: list[Result] = []
        feedsvc, django = (
            servers(port, "bench.app:app"),
            servers(port, "bench.django_app:application"),
        )
        print(
            f"{args.records} records, {WORKERS} workers, wrk 1 thread × {args.connections} "
            f"connections × {args.duration}s per row",
            file=sys.stderr,
        )
        for name in args.servers or feedsvc:
            results += measure_server(name, feedsvc[name], django[name], port, env, args)
    print_table(results)
    print_targets(results)


if __name__ == "__main__":
    main()
