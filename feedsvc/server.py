"""Production WSGI servers running an app that was built before the workers fork.

Building the app in the parent process means the collection is parsed once and shared by every
worker through copy-on-write memory, instead of once per worker. granian is the default: on the
serving benchmark (bench/README.md) it served cached feeds 4-4.5 times faster than gunicorn with
sync workers on the same two cores. gunicorn (threaded workers) stays available. Both run
`DEFAULT_THREADS` threads per worker unless told otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import multiprocessing
import os
import signal
import socket
from typing import Any

from flask import Flask

from feedsvc.errors import ServeError

SERVERS = ("granian", "gunicorn")
# The most granian reads of a request's line and headers (its default is 408 KB, one header
# field may take all of it); a larger request is refused before feedsvc sees it. A browser's
# request head is under 2 KB, rarely over 8 KB with cookies. gunicorn's limits are pinned at its
# defaults: a request line of 4094 bytes, 100 header fields of at most 8190 bytes each.
MAX_REQUEST_HEAD = 32 * 1024
GUNICORN_LIMITS = {
    "limit_request_line": 4094,
    "limit_request_fields": 100,
    "limit_request_field_size": 8190,
}


# Threads per worker, for both servers: a cached poll is answered while a search renders (or
# waits for its turn) instead of queueing behind it; searches hold under half of them
# (feedsvc.admission). One thread costs a cached poll less CPU when the server is saturated
# (measured in bench/README.md, Search), at the price of polls waiting behind every render.
DEFAULT_THREADS = 32


# glibc's malloc gives each thread that allocates an arena of its own, up to 8 per core: with 32
# threads a worker held 16, and under a soak with reloads its resident size kept climbing with
# memory freed in one arena and not reusable by another (bench/README.md, Faults and load). Two
# arenas are enough where the GIL lets one thread run Python at a time. MALLOC_ARENA_MAX, when
# set, is glibc's own setting and wins.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Cap glibc's malloc arenas for this process and the workers it forks (other C libraries
    have no `mallopt` and are left alone)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, arenas)


def default_workers() -> int:
    return os.cpu_count() or 1


def run_granian(app: Flask, host: str, port: int, workers: int, threads: int) -> None:
    """granian's WSGI interface, `threads` blocking threads per worker. Workers are forked, so
    they inherit `app` instead of importing and loading it again."""
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings, HTTP2Settings
    from granian.server import Server

    if multiprocessing.get_start_method() != "fork":
        raise RuntimeError("granian workers must be forked to share the loaded collection")
    server = Server(
        "feedsvc:app",  # only a label: the loader below hands over the app already built
        address=host,
        port=port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=threads,
        websockets=False,
        respawn_failed_workers=True,
        http1_settings=HTTP1Settings(max_buffer_size=MAX_REQUEST_HEAD),
        # A client may speak HTTP/2 in clear text (prior knowledge): bounded alike.
        http2_settings=HTTP2Settings(max_headers_size=MAX_REQUEST_HEAD),
    )
    parent = os.getpid()

    def loader(_target: Any) -> Flask:
        """Runs in each worker as it starts: the worker goes with the main process (granian
        would leave it serving on its own, holding the port, if the main process were
        killed)."""
        die_with_parent(parent)
        return app

    server.serve(target_loader=loader)


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies (Linux `PR_SET_PDEATHSIG`); if the parent is
    already gone, exit now. Not SIGTERM: a granian worker takes SIGTERM as a request to shut
    down gracefully, and one that arrives while the worker is still starting (after it set its
    handler, before it serves) is lost, leaving the worker serving with no main process (seen
    once in 15 kills at load 3). A worker whose main process is gone has no one to finish for."""
    with contextlib.suppress(OSError, AttributeError):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def run_gunicorn(app: Flask, host: str, port: int, workers: int, threads: int) -> None:
    """gunicorn with threaded workers; the app object is handed over, as with `--preload`."""
    from gunicorn.app.base import BaseApplication

    class PreloadedApplication(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            options = {
                "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                "workers": workers,
                "worker_class": "gthread",
                "threads": threads,
                "proc_name": "feedsvc",
                "control_socket_disable": True,
                **GUNICORN_LIMITS,
            }
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    PreloadedApplication().run()


def check_address(host: str, port: int) -> None:
    """Refuse an address another server listens on.

    granian's workers each bind with SO_REUSEPORT, and Linux lets a second granian bound the
    same way share the port: two servers, maybe with two collections, answering in turn. A
    plain bind fails while anyone listens there. SO_REUSEADDR keeps connections an earlier
    server left in TIME_WAIT from counting; without SO_REUSEPORT it never shares a listener.

    :raises ServeError: the address is taken or cannot be bound.
    """
    if port == 0:  # the system picks a free port
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ServeError(f"cannot listen on {host}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(
                    f"{host}:{port} is already in use (another feedsvc serve?): stop that "
                    "server or choose another --port"
                ) from None
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def run(
    app: Flask,
    host: str,
    port: int,
    workers: int,
    server: str = "granian",
    threads: int = DEFAULT_THREADS,
) -> None:
    """Serve `app` until interrupted, with `threads` threads per worker; blocks.

    :raises ServeError: the address is taken or cannot be bound.
    """
    check_address(host, port)
    limit_malloc_arenas()
    runners = {"granian": run_granian, "gunicorn": run_gunicorn}
    runners[server](app, host, port, workers, threads)
