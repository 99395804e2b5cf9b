"""The production WSGI server (gunicorn) running an app that was built before the workers fork.

Building the app in the master process means the collection is parsed once and shared by every
worker through copy-on-write memory, instead of once per worker.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


def default_workers() -> int:
    return os.cpu_count() or 1


class _PreloadedApplication(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def run(app: Flask, host: str, port: int, workers: int, threads: int = 4) -> None:
    """Serve `app` until interrupted; blocks."""
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "feedsvc",
        "control_socket_disable": True,
    }
    _PreloadedApplication(app, options).run()
