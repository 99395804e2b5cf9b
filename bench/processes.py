"""The processes a benchmark starts and reads: a free loopback port, a server started until it
answers and stopped by its own PID, a benchmark's child process that prints JSON, and what
/proc says of a process (children, workers, resident memory, CPU time)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Started:
    process: subprocess.Popen[bytes]
    answer: bytes  # the body of the probe's first answer


@contextmanager
def running(
    command: list[str],
    probe: str,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    append: bool = False,
    startup_seconds: float = 300,
    poll_seconds: float = 0.2,
    stop_seconds: float = 30,
) -> Iterator[Started]:
    """Start `command` in the folder `cwd` (its output and errors written to `log`, or appended
    with `append`; else its output discarded), wait until the URL `probe` answers, yield; then
    stop it by its own PID, politely (SIGTERM) and after `stop_seconds` for sure."""
    if log is None:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    else:
        with log.open("ab" if append else "wb") as sink:
            process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT
            )
    try:
        try:
            answer = wait_for(probe, process, startup_seconds, poll_seconds)
        except RuntimeError as error:  # it exited: say why
            if log is not None:
                error.add_note(log.read_text(errors="replace")[-500:])
            raise
        yield Started(process, answer)
    finally:
        stop(process, stop_seconds)


def wait_for(
    probe: str, process: subprocess.Popen[bytes], seconds: float, poll_seconds: float
) -> bytes:
    """The body of `probe`'s first answer, asked every `poll_seconds` until `seconds` passed."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(probe, timeout=5) as response:
                return bytes(response.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(poll_seconds)


def stop(process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Stop a process we started, by its own PID: SIGTERM, then SIGKILL after `seconds`."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def child_json(module: str, *args: str) -> dict[str, float]:
    """Run `python -m module args` in a process of its own; the JSON object of its last line."""
    output = subprocess.run(
        [sys.executable, "-m", module, *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return dict(json.loads(output.splitlines()[-1]))


def children(pid: int) -> list[int]:
    """Every live process whose parent is `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def workers_of(pid: int) -> list[int]:
    """A server's worker processes: its children but multiprocessing's helpers (the resource
    tracker) that serve nothing."""
    found = []
    for child in children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"resource_tracker" not in command and b"semaphore_tracker" not in command:
            found.append(child)
    return sorted(found)


def rss_kib(pid: int) -> int:
    """Resident memory of one process (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pids: Iterable[int], *, waited_children: bool = False) -> float:
    """User and system CPU time the processes have used so far (a process gone counts
    nothing); with `waited_children`, that of the children each has waited for too."""
    last = 15 if waited_children else 13  # utime, stime[, cutime, cstime] of /proc/<pid>/stat
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:last])
    return ticks / TICKS
