"""The `feedsvc` command: one click group whose commands delegate to the library."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from feedsvc.errors import ConfigError
from feedsvc.server import SERVERS, default_workers, run
from feedsvc.web import create_app

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SEEDS_HELP = "Folder of record files to publish (default: FEEDSVC_SEEDS_DIR, else bundled seeds/)."


@click.group()
@click.version_option(package_name="feedsvc")
def cli() -> None:
    """Publish a folder of news records as Atom and RSS feeds.

    Settings come from FEEDSVC_* environment variables (see the README); options override them.
    """


@cli.command("serve")
@click.option(
    "--seeds", type=click.Path(exists=True, file_okay=False, path_type=Path), help=_SEEDS_HELP
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on.",
)
@click.option(
    "--server",
    type=click.Choice(SERVERS),
    default="granian",
    show_default=True,
    help="WSGI server: granian (measured fastest) or gunicorn (threaded workers).",
)
@click.option(
    "--workers", type=click.IntRange(1), help="Worker processes (default: one per CPU core)."
)
def serve_command(
    seeds: Path | None, host: str, port: int, server: str, workers: int | None
) -> None:
    """Serve the feeds over HTTP with a production WSGI server.

    The collection is loaded once, before the workers start, and shared by them.
    """
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    config = {"SEEDS_DIR": seeds} if seeds is not None else {}
    try:
        app = create_app(config)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    run(app, host, port, workers or default_workers(), server)
