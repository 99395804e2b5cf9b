"""Starting the real service for tests: `feedsvc serve` in a child process on a free loopback
port, stopped by its own PID. Used by the live, browser and feed-reader tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

STARTUP_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    """Status, headers (case-insensitive, as servers may send them lower-cased) and body."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within {STARTUP_SECONDS}s")


@contextmanager
def running_feedsvc(seeds: Path, log: Path, **options: Any) -> Iterator[str]:
    """`feedsvc_process`, when only its base URL is wanted."""
    with feedsvc_process(seeds, log, **options) as (base, _):
        yield base


@contextmanager
def feedsvc_process(
    seeds: Path,
    log: Path,
    *,
    server: str = "granian",
    workers: int = 1,
    settings: dict[str, str] | None = None,
    port: int | None = None,
    cwd: Path | None = None,
    environment: dict[str, str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`feedsvc serve` as the README runs it (on `port`, else a free one), in the folder `cwd`;
    yields its base URL and its process (to stop it by its PID). The developer's FEEDSVC_*
    variables are left out; `settings` are passed as FEEDSVC_* variables, `environment` as
    they are."""
    port = port or free_port()
    env = feedsvc_environment({"PARSE_CACHE": "off", **(settings or {})})
    env.update(environment or {})
    command = [sys.executable, "-m", "feedsvc", "serve", "--seeds", str(seeds)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--server", server]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(base + "/healthz", process)
        yield base, process
    finally:
        stop(process)


def serve_refused(
    *options: str, settings: dict[str, str] | None = None, port: int | None = None
) -> tuple[int, str]:
    """`feedsvc serve *options` on `port` (else a free one), which must stop at start-up: its
    exit status and standard error. In a process group of its own, so that one that serves
    instead is killed, workers and all, and fails the test."""
    command = [sys.executable, "-m", "feedsvc", "serve", "--port", str(port or free_port())]
    process = subprocess.Popen(
        [*command, *options],
        env=feedsvc_environment(settings or {}),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"feedsvc serve {' '.join(options)} started and served, with {settings}")
    return process.returncode, stderr


def feedsvc_environment(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment without the developer's FEEDSVC_* variables, with `settings`
    as FEEDSVC_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update({f"FEEDSVC_{name}": value for name, value in settings.items()})
    return env


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server we started, by its own PID: politely, then for sure."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def descendants(pid: int) -> list[int]:
    """The PIDs of a process's children and theirs (a server's workers), from /proc."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"
