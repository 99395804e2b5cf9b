"""The `feedsvc` command: one click group whose commands delegate to the library.

Every command takes the same shared options (`--seeds`, `--asset-base-url`, `--log-level`), which
override the `FEEDSVC_*` environment variables, which override the defaults.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask import Flask

from feedsvc.build import AppMaker, BuildStopped, build_site
from feedsvc.errors import ConfigError, FolderError, ServeError, UrlError
from feedsvc.metrics import LogFormatter, prepare_multiprocess
from feedsvc.output import BuildError, OutputRefused
from feedsvc.report import check_report, check_summary, stats_report
from feedsvc.repository import Collection, LoadStats, check_folder, loader_for
from feedsvc.server import DEFAULT_THREADS, SERVERS, check_address, default_workers, run
from feedsvc.settings import ENV_PREFIX, LOG_LEVELS, Settings, hub_urls, resolve
from feedsvc.urls import normalize_base_url
from feedsvc.web import create_app, prepare_workers, serve_with_threads
from feedsvc.websub import BUILD_ATTEMPTS, BUILD_SECONDS, Notifier, built_topics

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Not checked by click: every seeds folder (option, argument, FEEDSVC_SEEDS_DIR, the default) is
# checked once, when it is loaded (repository.check_folder), with the same one-line error.
_FOLDER = click.Path(path_type=Path)
_FORMAT = click.option(
    "--format",
    "output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts.",
)


class _Refused(click.ClickException):
    """A command refused to act on what it was given (exit status 2, as for a usage error)."""

    exit_code = 2


def _url_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A base URL option, normalized; an unusable one is a usage error (exit status 2)."""
    if value is None:
        return None
    try:
        return normalize_base_url(value)
    except UrlError as exc:
        raise click.BadParameter(f"{exc.message}: {value!r}") from None


def _hubs_option(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> tuple[str, ...]:
    """Hub URLs, each absolute http(s); an unusable one is a usage error (exit status 2)."""
    try:
        return hub_urls(" ".join(value))
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("WEBSUB_HUB ")) from None


def shared_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every command takes; the command receives the resolved `Settings`."""

    @click.option(
        "--seeds",
        type=_FOLDER,
        help="Folder of record files (default: FEEDSVC_SEEDS_DIR, else the bundled seeds/).",
    )
    @click.option(
        "--asset-base-url",
        metavar="URL",
        callback=_url_option,
        help="Absolute URL that site-relative image URLs (/assets/...) resolve against "
        "(default: FEEDSVC_ASSET_BASE_URL).",
    )
    @click.option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        help="Least severe log messages written to stderr (default: FEEDSVC_LOG_LEVEL, else INFO "
        "for serve, WARNING for build, ERROR for check and stats).",
    )
    @functools.wraps(command)
    def wrapper(
        seeds: Path | None, asset_base_url: str | None, log_level: str | None, **kwargs: Any
    ) -> Any:
        given = {"SEEDS_DIR": seeds, "ASSET_BASE_URL": asset_base_url, "LOG_LEVEL": log_level}
        overrides = {name: value for name, value in given.items() if value is not None}
        settings = _settings(overrides)
        # A level asked for (option or variable) applies to every command; without one, each
        # command has its own, so that `check` does not repeat its report as log lines.
        chosen = log_level or os.environ.get(f"{ENV_PREFIX}_LOG_LEVEL")
        return command(
            settings=settings, log_level=settings.log_level if chosen else None, **kwargs
        )

    return wrapper


def _settings(overrides: dict[str, Any]) -> Settings:
    try:
        return resolve(overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _configure_logging(level: str | None, default: str) -> None:
    level = level or default
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter(LOG_FORMAT))
    logging.basicConfig(handlers=[handler])
    logging.getLogger("feedsvc").setLevel(level.upper())


def _load(settings: Settings) -> tuple[Collection, LoadStats]:
    """The collection `check` and `stats` report on; a seeds path that is not a folder that can
    be read (missing, a file, a FIFO, /dev/null) is refused like a usage error."""
    loader = loader_for(settings)
    try:
        return loader.load(), loader.stats
    except FolderError as exc:
        raise _Refused(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="feedsvc")
def cli() -> None:
    """Publish a folder of news records as Atom, RSS and JSON feeds and HTML pages.

    \b
    Typical use:
      feedsvc check ./records          find broken records before publishing
      feedsvc serve --seeds ./records  serve the feeds on http://127.0.0.1:8000
      feedsvc build --seeds ./records --out site --base-url https://news.example.org/
                                       write the whole site as static files
      feedsvc stats --seeds ./records  topics and providers with their entry counts

    Settings come from FEEDSVC_* environment variables (see the README); options override them.
    Run `feedsvc COMMAND --help` for a command's options.
    """


@cli.command("serve")
@shared_options
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
@click.option(
    "--threads",
    type=click.IntRange(1, 256),
    default=DEFAULT_THREADS,
    show_default=True,
    help="Threads per worker: cached polls are answered while searches render or wait for "
    "their turn (1: one request at a time, searches refused when they cannot go at once).",
)
def serve_command(
    settings: Settings,
    log_level: str | None,
    host: str,
    port: int,
    server: str,
    workers: int | None,
    threads: int,
) -> None:
    """Serve the feeds over HTTP with a production WSGI server.

    The collection is loaded once, before the workers start, and shared by them; changed record
    files are picked up while serving. A seeds folder that is missing or not a readable folder
    is refused at start (exit status 2); one that goes away while serving keeps its last version.
    """
    _configure_logging(log_level, settings.log_level)
    try:
        # Before anything else: a second server must not load, nor touch METRICS_DIR.
        check_address(host, port)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        remove_metrics = prepare_multiprocess(settings.metrics_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        app = create_app(_as_config(settings))
        serve_with_threads(app, threads)
        prepare_workers(app)
        run(app, host, port, workers or default_workers(), server, threads)
    except FolderError as exc:
        raise _Refused(str(exc)) from None
    except (ConfigError, ServeError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if remove_metrics is not None:
            remove_metrics()


def _as_config(settings: Settings) -> dict[str, Any]:
    """Resolved settings as `create_app` takes them, so the app sees exactly what was checked."""
    return {name.upper(): getattr(settings, name) for name in Settings.__dataclass_fields__}


@cli.command("check")
@click.argument("folder", required=False, type=_FOLDER)
@shared_options
@_FORMAT
def check_command(
    settings: Settings, log_level: str | None, folder: Path | None, output: str
) -> None:
    """Check every record file in FOLDER without serving anything.

    FOLDER defaults to --seeds (or FEEDSVC_SEEDS_DIR). Prints each rejected file with the field
    and the reason, each warning (merged duplicates, image URLs left out, guessed media types),
    and a summary line.

    Links are not followed: each one that looks like a record file or a folder is listed as
    skipped.

    Exit status: 0 when every record can be published, 1 when any file is rejected or a folder
    under FOLDER cannot be read, 2 when the command itself was used wrongly (a folder that is
    missing or not a readable folder, an unknown option).
    """
    if folder is not None:
        settings = _settings({**_as_config(settings), "SEEDS_DIR": folder})
    _configure_logging(log_level, "ERROR")  # the report says everything the log would
    collection, stats = _load(settings)
    report = check_report(str(settings.seeds_dir), collection, stats)
    if output == "json":
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for problem in collection.rejections:
            click.echo(f"rejected {problem}")
        for problem in collection.warnings:
            click.echo(f"warning  {problem}")
        for problem in collection.skipped:
            click.echo(f"skipped  {problem}")
        click.echo(check_summary(report))
    raise SystemExit(0 if report["ok"] else 1)


@cli.command("stats")
@shared_options
@_FORMAT
def stats_command(settings: Settings, log_level: str | None, output: str) -> None:
    """Topics and providers with their entry counts and newest dates.

    Most entries first. The slugs are the ones in the feed URLs (/feeds/topics/<slug>.atom).
    """
    _configure_logging(log_level, "ERROR")
    collection, _ = _load(settings)
    report = stats_report(collection)
    if output == "json":
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    click.echo(f"{report['entries']} entries, newest {report['newest'] or '-'}")
    for title in ("topics", "providers"):
        click.echo(f"\n{title.upper()} ({len(report[title])})")
        click.echo(_table(report[title]))


def _table(rows: list[dict[str, Any]]) -> str:
    """Aligned columns: entries, newest date, slug, name."""
    if not rows:
        return "(none)"
    lines = [("ENTRIES", "NEWEST", "SLUG", "NAME")]
    lines += [(str(r["entries"]), r["newest"][:10], r["slug"], r["name"]) for r in rows]
    widths = [max(len(line[column]) for line in lines) for column in range(3)]
    return "\n".join(
        f"{line[0]:>{widths[0]}}  {line[1]:<{widths[1]}}  {line[2]:<{widths[2]}}  {line[3]}"
        for line in lines
    )


@cli.command("build")
@shared_options
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write the site into. Replaced when the build is complete; it must be "
    "absent, empty or an earlier build holding only what builds wrote, and apart from --seeds.",
)
@click.option(
    "--base-url",
    required=True,
    metavar="URL",
    callback=_url_option,
    help="Absolute URL the site will be served at, e.g. https://news.example.org/ (feeds "
    "carry absolute links).",
)
@click.option(
    "--workers", type=click.IntRange(1), help="Processes that render (default: one per core)."
)
@click.option(
    "--websub-hub",
    "websub_hubs",
    multiple=True,
    metavar="URL",
    callback=_hubs_option,
    help="WebSub hub to name in the feeds and to tell which feeds changed, once the new site "
    "is in place; repeat for several (default: FEEDSVC_WEBSUB_HUB).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary (for scripts).")
@click.option(
    "--search",
    is_flag=True,
    help="Pages offer the search box, for a site whose /search and /feeds/search.* go to a "
    "running feedsvc serve (deploy/nginx-static.conf); without it a build leaves search out.",
)
def build_command(
    settings: Settings,
    log_level: str | None,
    out: Path,
    base_url: str,
    workers: int | None,
    websub_hubs: tuple[str, ...],
    quiet: bool,
    search: bool,
) -> None:
    """Write the whole site as static files for any web server or CDN.

    Every feed in every format and every page of it, the HTML pages, the OPML list and the
    stylesheets, each with a .gz beside it, laid out as the server's URLs (see the README and
    deploy/nginx-static.conf). The files hold exactly the bytes `feedsvc serve` sends. The old
    output is replaced only when the new one is complete, and only what builds wrote is deleted.

    Exit status: 0 when the site is written, 1 when it cannot be (a page fails, a folder cannot
    be written), 2 when --out is refused (it overlaps --seeds, holds entries no build wrote, or
    is a link to nothing), the seeds folder is missing or not a readable folder, or an option
    is wrong, 143 when stopped by SIGTERM.
    """
    _configure_logging(log_level, "WARNING")  # rejected records are worth seeing; requests not
    # No reload thread. Every page is rendered once and written; RENDER_CACHE_BYTES bounds the
    # rendered entries each build process keeps for the other pages that show them.
    config = {**_as_config(settings), "BASE_URL": base_url, "RELOAD_INTERVAL": 0}
    if not search:  # a static site cannot answer questions: no box leading nowhere
        config.update(SEARCH_INDEX="off")
    if websub_hubs:
        config["WEBSUB_HUB"] = " ".join(websub_hubs)
    started = time.perf_counter()
    # The app is made (the collection loaded) once the build has started linking the files of
    # the previous one, which takes as long; the hubs are told of its changes after.
    make_app = functools.cache(functools.partial(create_app, config))
    app = AppMaker(make_app, settings.seeds_dir)
    try:
        check_folder(settings.seeds_dir)  # before the bar shows, as the load would
        workers = workers or default_workers()
        if quiet:
            result = build_site(app, out, workers=workers, background=True)
        else:
            # The bar's length is known once the build has listed the site (listing it here
            # first cost a rebuild after one edit a tenth of its time).
            with click.progressbar(length=0, label="Writing", file=sys.stderr) as bar:

                def total(length: int) -> None:
                    bar.length = length

                result = build_site(app, out, bar.update, workers, total, background=True)
    except (OutputRefused, FolderError) as exc:
        raise _Refused(str(exc)) from None
    except (ConfigError, BuildError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:  # the folder cannot be made, written or swapped
        where = f": {exc.filename}" if exc.filename else ""
        raise click.ClickException(f"cannot write the site ({exc.strerror}{where})") from None
    except BuildStopped as exc:
        click.echo(f"Error: stopped by {exc.signum.name}; {out} is as it was", err=True)
        raise SystemExit(128 + exc.signum) from None
    if not quiet:
        click.echo(
            f"wrote {result.written}, kept {result.kept}, removed {result.removed} files (each "
            f"with its .gz) in {time.perf_counter() - started:.1f}s; {out} has {result.files} "
            f"files, {result.bytes / 1e6:.1f} MB"
        )
    _notify_hubs(make_app(), result.changed, quiet)


def _notify_hubs(app: Flask, written: tuple[str, ...], quiet: bool) -> None:
    """Tell the WebSub hubs which feeds' first pages the build wrote anew, now that they are
    in place. A hub that cannot be told is a warning: the site is written all the same."""
    state = app.extensions["feedsvc"]
    if not state.hubs:
        return
    topics = built_topics(state.collection, state.base_url, written)
    notifier = Notifier(state.hubs, attempts=BUILD_ATTEMPTS)
    notifier.send_now(topics, BUILD_SECONDS)
    unsent = notifier.outcomes["dropped"] + notifier.pending()
    if unsent:
        click.echo(
            f"Warning: WebSub: {unsent} of {len(topics) * len(state.hubs)} notifications "
            "could not be sent (see the log above)",
            err=True,
        )
    elif not quiet:
        click.echo(f"told {len(state.hubs)} WebSub hub(s) of {len(topics)} changed feed URLs")
