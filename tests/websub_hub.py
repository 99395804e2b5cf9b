"""A real WebSub hub for the tests: Flask-WebSub's hub (PyPI `flask-websub`), with Celery in
eager mode (each task runs at once, in the request that queued it: no broker, no worker), served
by Werkzeug's threaded server on loopback.

    python -m tests.websub_hub PORT DATABASE

The hub endpoint is `/hub`. It verifies each subscriber's intent, and on `hub.mode=publish`
fetches the topic (which must send `Link` headers naming the hub and itself) and posts it to
every subscriber, signed with the subscriber's secret. Publishing is off by default in
Flask-WebSub; it is turned on here.
"""

from __future__ import annotations

import sys

from celery import Celery
from flask import Flask
from flask_websub.hub import Hub, SQLite3HubStorage  # type: ignore[import-untyped]
from werkzeug.serving import make_server


def main(port: int, database: str) -> None:
    app = Flask("websub_hub")
    app.config["PUBLISH_SUPPORTED"] = True
    celery = Celery("websub_hub", broker="memory://")
    celery.conf.task_always_eager = True
    hub = Hub(SQLite3HubStorage(database), celery, REQUEST_TIMEOUT=10, MAX_ATTEMPTS=2)
    app.register_blueprint(hub.build_blueprint(url_prefix="/hub"))
    server = make_server("127.0.0.1", port, app, threaded=True)
    print("serving", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
