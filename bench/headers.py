"""Header floods: what a request with huge `Accept` / `Accept-Encoding` values costs, against a
normal one.

    python -m bench.headers [--requests 1000] [--size 190000]

1. In-process: a cached `/feeds/all.atom` is asked through the app's WSGI callable (no socket)
   with a browser's headers (the same each time), with unique normal-size headers, with unique
   headers as costly as feedsvc still reads (2 KB, 16 items with q), with unique 2 KB headers of
   many items and with unique `--size` headers; median and mean time per request of each.
2. Over loopback: `--requests` requests, each with unique `--size` `Accept` and
   `Accept-Encoding` values, against granian with one worker, in two set-ups: as `feedsvc serve`
   starts it (its request-head limit set) and as `granian wsgi:app` starts it with granian's
   defaults (only feedsvc's own bound applies). The worker's resident memory before and after,
   and its CPU time per request (from /proc): hostile, at feedsvc's bound, and with unique
   browser headers.

Uses nothing but the app factory and HTTP, so it measures an older commit just as well.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.processes import ROOT, cpu_seconds, free_port, rss_kib, running, workers_of

URL = "/feeds/all.atom"
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)
BROWSER_ENCODING = "gzip, deflate, br, zstd"
Headers = Callable[[int], dict[str, str]]


def browser(_: int) -> dict[str, str]:
    return {"Accept": BROWSER_ACCEPT, "Accept-Encoding": BROWSER_ENCODING}


def unique_browser(n: int) -> dict[str, str]:
    return {"Accept": f"{BROWSER_ACCEPT},x/y{n}", "Accept-Encoding": f"gzip, br, x{n}"}


def at_the_bound(n: int) -> dict[str, str]:
    """Unique values as costly as feedsvc still reads: 2,000 characters, 16 items each with a q
    (31 separators), all naming what feedsvc looks for."""
    pad = " " * 105
    accept = ",".join(f"{pad}text/html;q=0.{(n + i) % 1000:03d}" for i in range(16))
    encoding = ",".join(f"{pad}gzip;q=0.{(n + i) % 1000:03d}" for i in range(16))
    return {"Accept": accept[:2000], "Accept-Encoding": encoding[:2000]}


def unique_items(size: int) -> Headers:
    """Unique values of about `size` characters made of many items, as the reported flood."""

    def make(n: int) -> dict[str, str]:
        accept = ",".join(f"a/b{n}-{i};q=0.{i % 9}" for i in range(size // 14 + 1))[:size]
        encoding = ",".join(f"c{n}-{i};q=0.{i % 9}" for i in range(size // 12 + 1))[:size]
        return {"Accept": accept, "Accept-Encoding": encoding}

    return make


def in_process(size: int, rounds: int) -> None:
    from feedsvc import create_app

    config = {"RELOAD_INTERVAL": 0, "PARSE_CACHE": "off", "BASE_URL": "http://bench.example/"}
    app = create_app(config)
    cases: dict[str, Headers] = {
        "browser headers, the same each time": browser,
        "unique browser-size headers": unique_browser,
        "unique headers at feedsvc's bound": at_the_bound,
        "unique 2,000-character headers, many items": unique_items(2000),
        f"unique {size:,}-character headers": unique_items(size),
    }
    print("In-process, cached feed through the WSGI callable (µs per request):")
    call(app, browser(0))  # renders it once
    for label, headers in cases.items():
        requests = [headers(n) for n in range(rounds)]
        times = []
        for request in requests:
            started = time.perf_counter()
            call(app, request)
            times.append((time.perf_counter() - started) * 1e6)
        median, mean = statistics.median(times), statistics.mean(times)
        print(f"  {label:45} median {median:9.1f}  mean {mean:9.1f}")


def call(app: Any, headers: dict[str, str]) -> None:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": URL,
        "QUERY_STRING": "",
        "SERVER_NAME": "bench.example",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "HTTP_HOST": "bench.example",
    }
    environ.update({f"HTTP_{name.upper().replace('-', '_')}": v for name, v in headers.items()})
    statuses = []
    body = app.wsgi_app(environ, lambda status, _headers, *_: statuses.append(status))
    b"".join(body)
    assert statuses and statuses[0][:3] in ("200", "304", "431"), statuses


@contextmanager
def server(command: list[str], env: dict[str, str], log: Path) -> Iterator[tuple[int, int]]:
    """A server on a free loopback port; yields the port and its one worker's PID."""
    port = free_port()
    command = [part.replace("PORT", str(port)) for part in command]
    probe = f"http://127.0.0.1:{port}{URL}"
    with running(
        command, probe, env=env, cwd=ROOT, log=log, startup_seconds=60, stop_seconds=20
    ) as started:
        yield port, workers_of(started.process.pid)[0]


def send(port: int, headers: dict[str, str]) -> int:
    """One request on its own connection; the status (0 when the server just closed)."""
    head = f"GET {URL} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        try:
            sock.sendall(head.encode("latin-1"))
        except OSError:  # refused before it was all read
            pass
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return int(answer.split(b" ", 2)[1]) if answer else 0


def phase(port: int, worker: int, requests: list[dict[str, str]]) -> tuple[dict[int, int], float]:
    """Send each request; the statuses, and the worker's CPU time per request in µs."""
    statuses: dict[int, int] = {}
    used = cpu_seconds([worker])
    for headers in requests:
        status = send(port, headers)
        statuses[status] = statuses.get(status, 0) + 1
    return statuses, (cpu_seconds([worker]) - used) / len(requests) * 1e6


def flood(label: str, command: list[str], env: dict[str, str], args: argparse.Namespace) -> None:
    hostile = [unique_items(args.size)(n) for n in range(args.requests)]
    with (
        tempfile.TemporaryDirectory() as folder,
        server(command, env, Path(folder) / "log") as (
            port,
            worker,
        ),
    ):
        phase(port, worker, [unique_browser(n) for n in range(50)])
        before = rss_kib(worker)
        statuses, hostile_cpu = phase(port, worker, hostile)
        after = rss_kib(worker)
        _, bound_cpu = phase(port, worker, [at_the_bound(n) for n in range(500)])
        _, normal_cpu = phase(port, worker, [unique_browser(n) for n in range(500)])
    print(
        f"  {label}: statuses {statuses}; worker RSS {before / 1024:.0f} MB -> "
        f"{after / 1024:.0f} MB; worker CPU per request: {hostile_cpu:.0f} µs hostile, "
        f"{bound_cpu:.0f} µs at feedsvc's bound, {normal_cpu:.0f} µs with unique browser headers"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--size", type=int, default=190_000)
    parser.add_argument("--rounds", type=int, default=200, help="in-process requests per case")
    args = parser.parse_args()
    in_process(args.size, args.rounds)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update(FEEDSVC_PARSE_CACHE="off", FEEDSVC_RELOAD_INTERVAL="0", FEEDSVC_LOG_LEVEL="WARNING")
    bin_dir = Path(sys.executable).parent
    print(f"Over loopback, {args.requests} requests with unique {args.size:,}-character headers:")
    serve = [sys.executable, "-m", "feedsvc", "serve", "--workers", "1", "--port", "PORT"]
    flood("feedsvc serve (granian)", serve, env, args)
    granian = [str(bin_dir / "granian"), "--interface", "wsgi", "--workers", "1"]
    granian += ["--blocking-threads", "1", "--port", "PORT", "--no-ws", "wsgi:app"]
    flood("granian wsgi:app, granian's defaults", granian, env, args)


if __name__ == "__main__":
    main()
