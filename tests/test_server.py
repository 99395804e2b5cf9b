"""`feedsvc serve` and the production servers: one server per address (issue 16, item 9).

granian binds each worker's socket with SO_REUSEPORT, so without a check a second granian on
the same port starts and shares the connections with the first. These tests run real servers on
a loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from feedsvc.server import die_with_parent
from tests.conftest import RECORDS
from tests.servers import (
    descendants,
    feedsvc_process,
    fetch,
    free_port,
    running,
    running_feedsvc,
    serve_refused,
)

pytestmark = pytest.mark.live


def serve_once(port: int, seeds: Path, *extra: str) -> tuple[int, str]:
    """`feedsvc serve` on `port`, which must stop at start-up: its exit status and standard
    error."""
    options = ("--seeds", str(seeds), "--host", "127.0.0.1", "--workers", "1", *extra)
    settings = {"PARSE_CACHE": "off", "RELOAD_INTERVAL": "0"}
    return serve_refused(*options, settings=settings, port=port)


def version(base: str) -> str:
    status, _, body = fetch(base + "/healthz")
    assert status == 200
    return str(json.loads(body)["version"])


# granian second is the case that used to start; gunicorn refused by itself, after 5 s of retries.
@pytest.mark.parametrize(
    ("first", "second"), [("granian", "granian"), ("gunicorn", "granian"), ("granian", "gunicorn")]
)
def test_a_second_serve_on_a_busy_port_is_refused(
    tmp_path: Path, tmp_records: Path, first: str, second: str
) -> None:
    (tmp_records / "other.md").write_text(
        "---\ntitle: Another collection\npublishedDateTime: 2024-01-01T00:00:00Z\n"
        "webUrl: https://example.org/other\n---\n",
        encoding="utf-8",
    )
    port = free_port()
    with running_feedsvc(RECORDS, tmp_path / "first.log", server=first, port=port) as base:
        served = version(base)
        status, stderr = serve_once(port, tmp_records, "--server", second)
        assert status == 1
        assert stderr.strip().splitlines() == [
            f"Error: 127.0.0.1:{port} is already in use (another feedsvc serve?): stop that "
            "server or choose another --port"
        ]
        # the first server still answers every request alone, with its own collection
        assert {version(base) for _ in range(20)} == {served}


def test_a_port_an_earlier_server_used_is_free_again(tmp_path: Path) -> None:
    """Connections the first server closed sit in TIME_WAIT on its port; they must not count
    as a server listening there."""
    port = free_port()
    with running_feedsvc(RECORDS, tmp_path / "first.log", port=port) as base:
        for _ in range(5):  # granian closes these first: TIME_WAIT on the server's side
            fetch(base + "/healthz", {"Connection": "close"})
    with running_feedsvc(RECORDS, tmp_path / "second.log", port=port) as base:
        assert fetch(base + "/healthz")[0] == 200


def test_a_port_held_by_another_program_is_refused(tmp_path: Path) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        status, stderr = serve_once(port, RECORDS)
    assert status == 1 and "is already in use" in stderr and "Traceback" not in stderr


def malloc_heaps(pid: int) -> int:
    """The glibc malloc arenas a process has beside its main one: each is a heap mapped at a
    multiple of 64 MiB (HEAP_MAX_SIZE), read and write, with no file behind it."""
    heaps = 0
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        start = int(fields[0].split("-")[0], 16)
        if len(fields) == 5 and fields[1] == "rw-p" and start % (64 << 20) == 0:
            heaps += 1
    return heaps


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_a_worker_s_threads_share_two_malloc_arenas(
    tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads of a worker that all allocate share two arenas (`server.MALLOC_ARENAS`), instead
    of glibc's one per thread up to 8 per core, whose memory one arena frees and another cannot
    reuse."""
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    urls = [f"/feeds/all.{kind}?page={page}" for kind in ("atom", "rss", "json") for page in (1, 2)]
    with feedsvc_process(RECORDS, tmp_path / "log", server=server) as (base, process):
        with ThreadPoolExecutor(64) as pool:
            list(pool.map(lambda n: fetch(base + urls[n % len(urls)]), range(640)))
        workers = descendants(process.pid)
        heaps = [malloc_heaps(pid) for pid in workers]
    # One arena beside the main one; it may chain a second heap when its first fills, and a
    # large block mapped on its own may happen to fall on a 64 MiB boundary. Uncapped, the
    # threads hold one arena each, up to 16 on two cores.
    assert workers and max(heaps) <= 3, heaps


def test_a_worker_that_catches_sigterm_still_dies_with_its_main_process() -> None:
    """A granian worker handles SIGTERM (a graceful shutdown, which a worker still starting can
    miss); when its main process is killed outright it must go all the same."""
    ready, told = os.pipe()
    main = os.fork()
    if main == 0:  # the main process: starts a worker, then waits to be killed
        try:
            if os.fork() == 0:  # the worker
                die_with_parent(os.getppid())
                signal.signal(signal.SIGTERM, lambda *_: None)
                os.write(told, str(os.getpid()).encode())
                time.sleep(60)
            time.sleep(60)
        finally:
            os._exit(0)
    worker = int(os.read(ready, 32))
    os.close(ready)
    os.close(told)
    os.kill(main, signal.SIGKILL)
    os.waitpid(main, 0)
    deadline = time.monotonic() + 10
    try:
        while running(worker):
            assert time.monotonic() < deadline, f"worker {worker} outlived its main process"
            time.sleep(0.01)
    finally:
        if running(worker):
            os.kill(worker, signal.SIGKILL)
