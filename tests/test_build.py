"""The static build: the same bytes as the server for every URL, laid out for a web server,
replacing the previous output only when complete."""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import gc
import gzip
import html
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import feedsvc.build
import feedsvc.feeds
import feedsvc.render
import feedsvc.repository
import feedsvc.stories
from bench.synth import write_collection
from feedsvc.build import (
    AppMaker,
    BuildResult,
    BuildStopped,
    _forked,
    app_urls,
    build_site,
    file_for,
    wait_for_background,
)
from feedsvc.cli import cli
from feedsvc.feeds import Fingerprints
from feedsvc.output import (
    MARKER,
    Manifest,
    OutputRefused,
    WorkFolder,
    WrittenFile,
    remove_build,
)
from feedsvc.render import FORMATS
from feedsvc.stories import DEFAULT_WINDOW_DAYS, Story, stories_of
from tests.conftest import BASE_URL, RECORDS, make_app

# Small pages, so that feeds and HTML pages have several.
PAGED = {"FEED_SIZE": 2, "SEARCH_INDEX": "off"}  # search off, as `feedsvc build` has it


def tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def published(folder: Path) -> dict[str, bytes]:
    """The files of a build without its manifest (which holds times and fingerprints)."""
    files = tree(folder)
    assert files.pop(MARKER)
    return files


@pytest.fixture
def built(tmp_path: Path) -> Path:
    out = tmp_path / "site"
    build_site(make_app(**PAGED), out)
    return out


def test_file_names_follow_the_server_urls() -> None:
    assert file_for("/") == "index.html"
    assert file_for("/?page=3") == "index.page-3.html"
    assert file_for("/topics/ai") == "topics/ai.html"
    assert file_for("/providers/usnews-com?page=2") == "providers/usnews-com.page-2.html"
    assert file_for("/feeds/all.atom") == "feeds/all.atom"
    assert file_for("/feeds/topics/ai.json?page=12") == "feeds/topics/ai.page-12.json"
    assert file_for("/feeds.opml") == "feeds.opml"
    assert file_for("/static/feed.xsl") == "static/feed.xsl"


def test_every_url_is_written_with_the_bytes_the_server_sends(built: Path) -> None:
    """Compared with a fresh app of the same settings, not the one that built."""
    client = make_app(**PAGED).test_client()
    urls = app_urls(make_app(**PAGED))
    assert len(urls) == len(set(urls))
    assert "/feeds/all.atom?page=3" in urls and "/topics/ai?page=2" in urls
    assert {url.split("?")[0].rsplit(".", 1)[-1] for url in urls} >= {*FORMATS, "opml", "xsl"}
    files = tree(built)
    expected = {file_for(url) for url in urls}
    assert set(files) == expected | {name + ".gz" for name in expected} | {MARKER}
    for url in urls:
        with client.get(url, headers={"Accept": "*/*", "Accept-Encoding": "gzip"}) as response:
            served = response.get_data()  # static files are streamed from an open file
        assert response.status_code == 200, url
        name = file_for(url)
        body = files[name]
        if response.headers.get("Content-Encoding") == "gzip":
            assert files[name + ".gz"] == served, url
            assert gzip.decompress(served) == body, url
        else:
            assert served == body, url
            assert gzip.decompress(files[name + ".gz"]) == body, url
        modified = email.utils.parsedate_to_datetime(response.headers["Last-Modified"])
        assert (built / name).stat().st_mtime == modified.timestamp(), url


ATOM_ID = re.compile(r"<id>[^<]*</id>")


def test_every_link_within_the_site_has_its_file(built: Path) -> None:
    """Links in the pages and feeds (paging, alternates, stylesheets) all lead to a built file."""
    link = re.compile(re.escape(BASE_URL) + r'(/[^"\'<>\s\\]*)')
    checked = set()
    for name, body in tree(built).items():
        if name.endswith(".gz") or name.startswith("static/") or name == MARKER:
            continue
        # An Atom <id> names a feed, it is not a link (a story feed's is its own path).
        for target in link.findall(ATOM_ID.sub("", body.decode())):
            target = html.unescape(target)
            if target.endswith("/") and target != "/":  # a category scheme, not a page
                continue
            checked.add(target)
            assert (built / file_for(target)).is_file(), (name, target)
    assert "/feeds/topics/ai.atom?page=2" in checked and "/static/feed.xsl" in checked
    assert "/feeds/stories/topics/ai.json" in checked
    assert any(target.startswith("/stories/") for target in checked)


def test_a_build_in_several_processes_writes_the_same_site(
    tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feedsvc.build, "PARALLEL_MINIMUM", 1)
    monkeypatch.setattr(feedsvc.build, "FINGERPRINT_PARALLEL_MINIMUM", 1)
    steps: list[int] = []
    totals: list[int] = []
    out = tmp_path / "parallel"
    result = build_site(make_app(**PAGED), out, steps.append, workers=2, total=totals.append)
    assert tree(tmp_path / "parallel") == tree(built)
    assert sum(steps) == result.files == len(app_urls(make_app(**PAGED))) and len(steps) > 1
    assert totals == [result.files]  # told once, before the first step (the progress bar)


def test_a_full_parallel_build_writes_the_story_pages_while_it_makes_the_entries(
    tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pages that show no entry (the stories' pages above all) need none of the work done
    before the rounds of processes: a full build starts writing them as soon as it has listed
    the site, and they are written while the entries are made. The site is the same."""
    monkeypatch.setattr(feedsvc.build, "PARALLEL_MINIMUM", 1)
    monkeypatch.setattr(feedsvc.build, "SHARE_MINIMUM", 1)
    (tmp_path / "parallel").mkdir()
    out = tmp_path / "parallel" / "site"
    meanwhile: list[int] = []  # story pages in the work folder when the entries are made
    real = feedsvc.build._Renderer.make_entries
    deadline = time.monotonic() + 20

    def make_entries(renderer: Any, items: Any) -> None:
        while not meanwhile and time.monotonic() < deadline:  # wait for a story page
            if written := list(out.parent.glob("*/stories/*.html")):
                meanwhile.append(len(written))
            time.sleep(0.01)
        real(renderer, items)

    monkeypatch.setattr(feedsvc.build._Renderer, "make_entries", make_entries)
    steps: list[int] = []
    result = build_site(make_app(**PAGED), out, steps.append, workers=2)
    assert meanwhile and meanwhile[0] > 0
    assert tree(out) == tree(built) and result.written == result.files == sum(steps)


def test_a_build_process_makes_and_renders_each_entry_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record shows in a dozen documents (its feeds in three formats and their HTML views,
    its pages, the story feeds): a build process makes its entry once, renders it once per
    format, and every other page takes it from there (an XML feed page renders one entry more,
    for its head)."""
    seeds = write_collection(tmp_path / "records", 40)
    # Spied on once the app is made: making it renders a made-up page (feedsvc.warmup).
    app = make_app(SEEDS_DIR=seeds, FEED_SIZE=4, SEARCH_INDEX="off")
    made = ids_passed(monkeypatch, feedsvc.feeds, "entry_for", 0)
    rendered = ids_passed(monkeypatch, feedsvc.render, "_new_entry", 1)
    build_site(app, tmp_path / "site")
    records = app.extensions["feedsvc"].collection.records
    assert sorted(made) == sorted(record.id for record in records)
    assert len(rendered) <= most_entry_renders(app)


def ids_passed(
    monkeypatch: pytest.MonkeyPatch, module: object, name: str, position: int
) -> list[str]:
    """Spies on `module.name`: the `id` of its argument at `position`, call after call."""
    ids: list[str] = []
    real = getattr(module, name)

    def spy(*args: Any) -> Any:
        ids.append(args[position].id)
        return real(*args)

    monkeypatch.setattr(module, name, spy)
    return ids


def most_entry_renders(app: Flask) -> int:
    """What a build renders at most: each entry and story once in Atom and once in RSS, and one
    entry more for each XML feed page, for its head."""
    collection = app.extensions["feedsvc"].collection
    stories = stories_of(collection, DEFAULT_WINDOW_DAYS).stories
    xml_pages = [url for url in app_urls(app) if url.split("?")[0].endswith((".atom", ".rss"))]
    return 2 * (len(collection.records) + len(stories)) + len(xml_pages)


def test_a_parallel_build_renders_each_entry_once_in_all_its_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The processes of a parallel build share what they render: the pages that show every
    entry once are rendered first, and the processes forked after them find every entry
    rendered (each XML feed page renders one entry more, for its head)."""
    monkeypatch.setattr(feedsvc.build, "PARALLEL_MINIMUM", 1)
    monkeypatch.setattr(feedsvc.build, "SHARE_MINIMUM", 1)
    seeds = write_collection(tmp_path / "records", 40)
    log = tmp_path / "rendered"
    real_render = feedsvc.render._new_entry

    def logged(fg: Any, entry: Any) -> Any:
        with log.open("a") as file:  # one short write each: whole lines from every process
            file.write(entry.id + "\n")
        return real_render(fg, entry)

    app = make_app(SEEDS_DIR=seeds, FEED_SIZE=4, SEARCH_INDEX="off")  # before the spy: warm-up
    monkeypatch.setattr(feedsvc.render, "_new_entry", logged)
    build_site(app, tmp_path / "site", workers=2)
    rendered = log.read_text().split()
    assert len(rendered) <= most_entry_renders(app)
    assert published(tmp_path / "site") == published(_scratch(seeds, tmp_path / "one", FEED_SIZE=4))


def test_a_build_replaces_the_previous_output_whole(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(make_app(**PAGED), out)
    assert (out / "feeds/all.page-2.atom").is_file()
    build_site(make_app(), out)
    assert not (out / "feeds/all.page-2.atom").exists()  # one page of 50 now
    assert [p.name for p in tmp_path.iterdir()] == ["site"]


def test_an_interrupted_build_leaves_the_previous_output_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "site"
    build_site(make_app(), out)
    before = tree(out)
    written: list[str] = []
    real = feedsvc.build._write_file

    def interrupted(path: str, data: bytes, stamp: float) -> tuple[int, int]:
        done = real(path, data, stamp)
        written.append(path)
        if len(written) == 10:
            raise KeyboardInterrupt  # as Ctrl-C half-way through
        return done

    monkeypatch.setattr(feedsvc.build, "_write_file", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_site(make_app(**PAGED), out)
    assert len(written) == 10
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no half-written folder left


def test_a_folder_that_no_build_made_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(OutputRefused, match="not made by feedsvc build"):
        build_site(make_app(), tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "precious"


def test_build_command_quiet_writes_the_site_and_prints_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    args = ["build", "--seeds", str(RECORDS), "--out", str(out), "--base-url", BASE_URL, "-q"]
    result = runner.invoke(cli, args, env={"FEEDSVC_PARSE_CACHE": "off"})
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert (out / "feeds/all.atom").read_bytes() == (
        make_app(BASE_URL=BASE_URL + "/", ASSET_BASE_URL=None)
        .test_client()
        .get("/feeds/all.atom")
        .get_data()
    )


def test_build_command_reports_and_refuses_like_a_command(
    runner: CliRunner, tmp_path: Path
) -> None:
    env = {"FEEDSVC_PARSE_CACHE": "off"}
    out = tmp_path / "site"
    base = ["build", "--seeds", str(RECORDS), "--out", str(out)]
    result = runner.invoke(cli, [*base, "--base-url", BASE_URL], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote ") and str(out) in result.stdout
    assert runner.invoke(cli, base, env=env).exit_code == 2  # --base-url is required
    bad = runner.invoke(cli, [*base, "--base-url", "not a url"], env=env)
    assert bad.exit_code == 2 and "--base-url" in bad.output
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    refused = runner.invoke(
        cli,
        ["build", "--seeds", str(RECORDS), "--out", str(tmp_path / "mine"), "--base-url", BASE_URL],
        env=env,
    )
    assert refused.exit_code == 2 and "not made by feedsvc build" in refused.output


# What a build may delete: only what a build wrote (issue 16, item 1).


def build_command(seeds: Path, out: Path) -> list[str]:
    return ["build", "--seeds", str(seeds), "--out", str(out), "--base-url", BASE_URL, "-q"]


def run_build(runner: CliRunner, seeds: Path, out: Path) -> Any:
    """`feedsvc build` in this process, and what it left to do in the background done."""
    result = runner.invoke(cli, build_command(seeds, out), env={"FEEDSVC_PARSE_CACHE": "off"})
    wait_for_background()
    return result


def refused_in_one_line(result: Any, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    assert all(word in lines[0] for word in words), (words, lines[0])


def test_records_inside_the_output_are_never_deleted(runner: CliRunner, tmp_path: Path) -> None:
    """The issue's run: a build into site/, then the records, a CNAME and a .git put in site/,
    then `build --seeds site/records --out site`."""
    site = tmp_path / "site"
    assert run_build(runner, RECORDS, site).exit_code == 0
    shutil.copytree(RECORDS, site / "records")
    (site / "CNAME").write_text("news.example.org\n")
    (site / ".git").mkdir()
    (site / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    before = tree(site)
    refused_in_one_line(run_build(runner, site / "records", site), "contains the seeds folder")
    assert tree(site) == before
    assert tree(site / "records") == tree(RECORDS)
    assert [path.name for path in tmp_path.iterdir()] == ["site"]  # no work folder left either


@pytest.mark.parametrize("where", ["same", "inside", "around", "through a link"])
def test_an_output_overlapping_the_seeds_is_refused(
    runner: CliRunner, tmp_path: Path, where: str
) -> None:
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    out = {
        "same": seeds,
        "inside": seeds / "site",
        "around": tmp_path,
        "through a link": tmp_path / "link",
    }[where]
    if where == "through a link":
        (tmp_path / "link").symlink_to(seeds, target_is_directory=True)
    before = tree(tmp_path)
    refused_in_one_line(run_build(runner, seeds, out), "seeds folder")
    assert tree(tmp_path) == before
    assert tree(seeds) == tree(RECORDS)


def test_entries_no_build_wrote_are_named_and_kept(runner: CliRunner, tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert run_build(runner, RECORDS, site).exit_code == 0
    (site / "CNAME").write_text("news.example.org\n")
    (site / ".git").mkdir()
    (site / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    shutil.copytree(RECORDS, site / "feeds" / "records")  # inside a folder a build wrote
    before = tree(site)
    result = run_build(runner, RECORDS, site)
    refused_in_one_line(result, "no build wrote", ".git/", "CNAME", "feeds/records/")
    assert tree(site) == before
    (site / "CNAME").unlink()
    shutil.rmtree(site / ".git")
    shutil.rmtree(site / "feeds" / "records")
    assert run_build(runner, RECORDS, site).exit_code == 0


def test_a_file_a_build_wrote_replaced_by_a_link_is_not_followed(
    runner: CliRunner, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    assert run_build(runner, RECORDS, site).exit_code == 0
    precious = tmp_path / "precious.txt"
    precious.write_text("mine")
    (site / "feeds.opml").unlink()
    (site / "feeds.opml").symlink_to(precious)
    refused_in_one_line(run_build(runner, RECORDS, site), "feeds.opml")
    assert precious.read_text() == "mine"


def test_an_output_of_a_build_before_manifests_is_replaced_only_if_it_fits_the_layout(
    runner: CliRunner, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    assert run_build(runner, RECORDS, site).exit_code == 0
    for view in site.glob("feeds/**/*.html*"):  # builds then wrote no views of feeds
        view.unlink()
    # Such a build wrote no stories (they came after manifests).
    shutil.rmtree(site / "stories")
    shutil.rmtree(site / "feeds" / "stories")
    (site / MARKER).write_text("made by feedsvc build; replaced whole by the next\n")
    (site / "CNAME").write_text("news.example.org\n")
    refused_in_one_line(run_build(runner, RECORDS, site), "CNAME")
    assert (site / "CNAME").is_file()
    (site / "CNAME").unlink()
    assert run_build(runner, RECORDS, site).exit_code == 0
    assert Manifest.parse((site / MARKER).read_text()) is not None


def test_the_old_tree_is_removed_by_its_manifest_only(tmp_path: Path) -> None:
    """What lands in the old tree while a build runs (after the check) is left there."""
    old = tmp_path / "old"
    (old / "feeds").mkdir(parents=True)
    for name in ("feeds/all.atom", "feeds/all.atom.gz", MARKER):
        (old / name).write_text("built")
    (old / "feeds" / "notes.txt").write_text("mine")
    remove_build(old, Manifest(files={"feeds/all.atom": WrittenFile("", 5, 0, 5, 0)}))
    assert tree(old) == {"feeds/notes.txt": b"mine"}


# Links as --out, and builds that are killed (issue 16, items 8 and 13).


def test_an_output_given_as_a_link_stays_a_link_to_the_new_build(
    runner: CliRunner, tmp_path: Path
) -> None:
    releases = tmp_path / "releases"
    assert run_build(runner, RECORDS, releases / "site").exit_code == 0
    (tmp_path / "site").symlink_to(releases / "site", target_is_directory=True)
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    (seeds / "2023-04-01-crlf-bom.md").unlink()
    result = run_build(runner, seeds, tmp_path / "site")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "site").is_symlink()
    assert tree(tmp_path / "site") == tree(releases / "site")
    assert published(releases / "site") == published(
        _fresh_build(runner, seeds, tmp_path / "fresh")
    )
    assert sorted(path.name for path in releases.iterdir()) == ["site"]


def _fresh_build(runner: CliRunner, seeds: Path, out: Path) -> Path:
    assert run_build(runner, seeds, out).exit_code == 0
    return out


@pytest.mark.parametrize("kind", ["dangling link", "link to a file", "under a file"])
def test_an_unusable_output_is_one_line_and_changes_nothing(
    runner: CliRunner, tmp_path: Path, kind: str
) -> None:
    (tmp_path / "file").write_text("x")
    out = tmp_path / "site"
    if kind == "dangling link":
        out.symlink_to(tmp_path / "gone", target_is_directory=True)
    elif kind == "link to a file":
        out.symlink_to(tmp_path / "file")
    else:
        out = tmp_path / "file" / "site"
    before = sorted(path.name for path in tmp_path.iterdir())
    result = run_build(runner, RECORDS, out)
    assert result.exit_code == (1 if kind == "under a file" else 2), result.output
    assert "Traceback" not in result.output
    # click's own check of --out (a file) adds its usage lines above the error
    assert result.output.strip().splitlines()[-1].startswith("Error: "), result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == before
    assert (tmp_path / "file").read_text() == "x"


def _build_process(seeds: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "feedsvc", *build_command(seeds, out), "--workers", "2"]
    env = {**os.environ, "FEEDSVC_PARSE_CACHE": "off"}
    with log.open("wb") as stderr:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)


def _work_folders(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*"))


def _wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _processes_naming(text: str) -> list[int]:
    """PIDs of the processes whose command line holds `text` (a build and its forked workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_killed_build_leaves_no_work_folder_for_good(tmp_path: Path, sig: signal.Signals) -> None:
    """A real build process with two workers, killed by its PID while it writes: SIGTERM
    removes its work folder and stops its workers quietly; after SIGKILL the next build removes
    the folder. The previous output is intact either way."""
    seeds = write_collection(tmp_path / "records", 300)
    out = tmp_path / "site"
    build_site(make_app(), out)
    before = tree(out)
    log = tmp_path / "build.log"
    process = _build_process(seeds, out, log)
    try:
        _wait_for(lambda: any(len(list(f.rglob("*.gz"))) > 20 for f in _work_folders(out)))
        os.kill(process.pid, sig)
        assert process.wait(timeout=30) == (143 if sig == signal.SIGTERM else -signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
    _wait_for(lambda: not _processes_naming(str(out)), 10)  # the workers are gone too
    stderr = log.read_text()
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert tree(out) == before
    if sig == signal.SIGTERM:
        assert "stopped by SIGTERM" in stderr
        assert _work_folders(out) == []
    else:
        assert len(_work_folders(out)) == 1
        build_site(make_app(), out)
        assert _work_folders(out) == []
        assert tree(out) == before


def test_sigterm_while_the_collection_loads_stops_the_build_once_it_is_loaded(
    tmp_path: Path,
) -> None:
    """`feedsvc build` loads the collection while the previous build's files are linked: a
    SIGTERM then (its process pool starting) stops the build after the load, quietly, with the
    work folder removed and the previous output intact, instead of breaking the pool."""
    out = tmp_path / "site"
    build_site(make_app(), out)
    before = tree(out)
    loaded = []

    def make() -> Flask:
        os.kill(os.getpid(), signal.SIGTERM)
        app = make_app(LOAD_WORKERS=2)
        loaded.append(app)
        return app

    with pytest.raises(BuildStopped):
        build_site(AppMaker(make, RECORDS), out, workers=2)
    assert len(loaded) == 1
    assert tree(out) == before
    assert _work_folders(out) == []


def test_the_work_folder_of_a_running_build_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(make_app(), out)
    running = WorkFolder(out)  # as another build's, still writing
    (running.path / "feeds").mkdir()
    (running.path / "feeds" / "all.atom").write_text("half")
    build_site(make_app(), out)
    assert (running.path / "feeds" / "all.atom").read_text() == "half"
    running.release()  # as if it was killed
    build_site(make_app(), out)
    assert not running.path.exists()
    assert _work_folders(out) == []


# The old tree removed in the background (issue 11: a rebuild returns once the new site is in
# place).


def _paused_removal(monkeypatch: pytest.MonkeyPatch, release: Path) -> None:
    """Removing an old tree waits (up to 20 s) for `release` to exist, as a slow disk would."""
    real = feedsvc.build.remove_build

    def paused(old: Path, manifest: Manifest) -> None:
        _wait_for(release.exists, 20)
        real(old, manifest)

    monkeypatch.setattr(feedsvc.build, "remove_build", paused)


def test_a_build_returns_before_the_old_tree_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `background` (as `feedsvc build` has it) the old tree is removed by a process of its
    own: the build returns with the new site in place and the old tree still there, locked, so
    that a build starting meanwhile leaves it alone and writes a correct site; then it goes."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    out = tmp_path / "site"
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
    release = tmp_path / "release"
    _paused_removal(monkeypatch, release)
    record = seeds / "2023-03-01-control-characters.md"
    record.write_text(record.read_text().replace("in text", "in a text"))
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out, background=True)
    try:
        (old,) = _work_folders(out)  # the previous site, not removed yet
        assert (old / MARKER).is_file()
        assert published(out) == published(_scratch(seeds, tmp_path / "scratch-1"))
        monkeypatch.undo()  # the next build removes its own old tree at once
        record.write_text(record.read_text().replace("in a text", "in the text"))
        build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
        assert _work_folders(out) == [old]  # left to the process removing it
        assert published(out) == published(_scratch(seeds, tmp_path / "scratch-2"))
    finally:
        release.touch()
        wait_for_background()
    assert _work_folders(out) == []


def test_a_removal_that_dies_half_way_is_finished_by_the_next_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process removing the old tree dies after a few files (killed, the machine stopped):
    the served site is whole, and the next build removes what is left, whichever files went
    first (the marker, which says the folder is a build's, goes last)."""
    out = tmp_path / "site"
    build_site(make_app(**PAGED), out)
    parent = os.getpid()
    real_unlink = os.unlink
    removed: list[int] = []

    def dying(path: Any, *args: Any, **kwargs: Any) -> None:
        if os.getpid() != parent:
            removed.append(1)
            if len(removed) > 3:
                os._exit(9)
        real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", dying)
    build_site(make_app(FEED_SIZE=3, SEARCH_INDEX="off"), out, background=True)
    wait_for_background()
    monkeypatch.undo()
    (left,) = _work_folders(out)
    assert (left / MARKER).is_file() and any(left.rglob("*.gz"))
    assert published(out) == published(_scratch(RECORDS, tmp_path / "scratch", FEED_SIZE=3))
    build_site(make_app(FEED_SIZE=3, SEARCH_INDEX="off"), out)
    assert _work_folders(out) == []


def test_feedsvc_build_writes_the_parse_cache_once_the_site_is_in_place(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parse cache a build's load fills is written after the swap, not while the build
    waits; the next build reads it."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    out, cache = tmp_path / "site", tmp_path / "parse-cache"
    real = feedsvc.repository.write_cache
    log = tmp_path / "writes"  # written by whichever process writes the cache

    def spy(*args: Any) -> Any:
        with log.open("a") as file:
            file.write(f"{(out / MARKER).is_file()}\n")  # the site is in place
        return real(*args)

    def seen() -> list[str]:
        return log.read_text().split()

    monkeypatch.setattr(feedsvc.repository, "write_cache", spy)
    env = {"FEEDSVC_PARSE_CACHE": str(cache)}
    assert runner.invoke(cli, build_command(seeds, out), env=env).exit_code == 0
    wait_for_background()
    assert cache.is_file() and seen() == ["True"]
    (seeds / "2023-04-01-crlf-bom.md").unlink()
    loaded: list[Any] = []
    real_load = feedsvc.repository.CollectionLoader.load

    def load(self: Any) -> Any:
        loaded.append(self)
        return real_load(self)

    monkeypatch.setattr(feedsvc.repository.CollectionLoader, "load", load)
    assert runner.invoke(cli, build_command(seeds, out), env=env).exit_code == 0
    wait_for_background()
    assert loaded[0].cache_read is not None and loaded[0].stats.parsed == 0
    assert seen() == ["True", "True"]
    assert published(out) == published(_fresh_build(runner, seeds, tmp_path / "fresh"))


# Incremental builds (issue 11, item 4): only what changed is written, and the result is the
# from-scratch build's, byte for byte.


def _links_to_the_old_files(before: dict[str, int], out: Path) -> set[str]:
    """The files of `out` that are the very files (inodes) `before` listed."""
    return {
        name
        for name, inode in before.items()
        if (out / name).exists() and (out / name).stat().st_ino == inode
    }


def _inodes(out: Path) -> dict[str, int]:
    return {
        path.relative_to(out).as_posix(): path.stat().st_ino
        for path in out.rglob("*")
        if path.is_file()
    }


def test_a_rebuild_with_nothing_changed_renders_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "site"
    first = build_site(make_app(**PAGED), out)
    assert (first.written, first.kept, first.removed) == (first.files, 0, 0)
    before, inodes = published(out), _inodes(out)
    monkeypatch.setattr(feedsvc.build, "_render", None)  # any render would fail
    again = build_site(make_app(**PAGED), out)
    assert (again.files, again.written, again.kept, again.removed) == (
        first.files,
        0,
        first.files,
        0,
    )
    assert again.bytes == first.bytes
    assert published(out) == before
    assert _links_to_the_old_files(inodes, out) == set(inodes) - {MARKER}


def test_a_rebuild_writes_only_the_files_whose_bytes_change(tmp_path: Path) -> None:
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    out = tmp_path / "site"
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
    before, inodes = published(out), _inodes(out)
    record = seeds / "2023-03-01-control-characters.md"
    record.write_text(record.read_text().replace("in text", "in a text"))
    result = build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
    after = published(out)
    assert set(after) == set(before)
    changed = {name for name in after if after[name] != before[name]}
    assert changed and all(name.endswith(".gz") or name + ".gz" in changed for name in changed)
    assert result.written == len(changed) / 2 and result.removed == 0
    assert result.kept == result.files - result.written
    assert _links_to_the_old_files(inodes, out) == set(after) - changed
    assert after == published(_scratch(seeds, tmp_path / "scratch"))


def test_a_rebuild_reads_no_old_file_of_another_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page rendered again is told from its old file by the sizes and times the manifest
    gives (the file was found with them when it was linked ahead): the old file is read only
    when the sizes are the new ones, and never asked for its time; the site and its files'
    times are those of a rebuild that reads them."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    out = tmp_path / "site"
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
    sizes = {name: len(data) for name, data in published(out).items()}
    times = {name: (out / name).stat().st_mtime for name in sizes}
    record = seeds / "2023-03-01-control-characters.md"
    record.write_text(record.read_text().replace("in text", "in a longer text"))
    old_files: list[str] = []
    real_open, real_stat = open, os.stat

    def opened(file: Any, *args: Any, **kwargs: Any) -> Any:
        old_files.append(os.fspath(file))
        return real_open(file, *args, **kwargs)

    def stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        old_files.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(feedsvc.build, "open", opened, raising=False)
    monkeypatch.setattr(feedsvc.build.os, "stat", stat)
    result = build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
    monkeypatch.undo()
    after = published(out)
    resized = {name for name in after if len(after[name]) != sizes.get(name)}
    assert result.written and resized  # the test changes pages' lengths
    read = {path.removeprefix(f"{out.resolve()}/") for path in old_files}
    assert not read & resized
    assert after == published(_scratch(seeds, tmp_path / "scratch"))
    for name in resized:
        assert (out / name).stat().st_mtime >= math.floor(times[name]) + 1


def test_a_rebuild_works_out_the_fingerprints_of_the_changed_feeds_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed whose pages are made from what they were made from in the previous build (its
    key, `build.FeedKeys`) takes its pages' fingerprints from that build's manifest: a rebuild
    works out the pages of the feeds that show a changed record alone, and its site is the
    site built from scratch."""
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    out = tmp_path / "site"
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
    worked_out: set[str] = set()
    real = Fingerprints.page

    def spy(self: Fingerprints, page: feedsvc.feeds.FeedPage) -> str:
        worked_out.add(page.feed_id.removeprefix(BASE_URL.rstrip("/")))
        return real(self, page)

    monkeypatch.setattr(Fingerprints, "page", spy)
    assert build_site(make_app(SEEDS_DIR=seeds, **PAGED), out).written == 0
    assert worked_out == set()
    record = seeds / "2023-03-01-control-characters.md"
    record.write_text(record.read_text().replace("in text", "in a text"))
    app = make_app(SEEDS_DIR=seeds, **PAGED)
    collection = app.extensions["feedsvc"].collection
    (changed,) = [item for item in collection.records if item.path == record.name]
    feeds = [*feedsvc.feeds.iter_feeds(collection), *feedsvc.feeds.story_feeds(collection)]
    showing = {
        feed.id_path
        for feed in feeds
        if any(changed in getattr(item, "records", (item,)) for item in feed.records)
    }
    assert build_site(app, out).written
    assert worked_out == showing and len(showing) < len(feeds)
    assert published(out) == published(_scratch(seeds, tmp_path / "scratch"))


def test_a_parallel_rebuild_links_and_renders_as_a_serial_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In several processes, a rebuild links the unchanged files, renders the changed pages,
    and renders again a file changed in the output by hand."""
    monkeypatch.setattr(feedsvc.build, "PARALLEL_MINIMUM", 1)
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    out = tmp_path / "site"
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out, workers=2)
    before, inodes = published(out), _inodes(out)
    record = seeds / "2023-03-01-control-characters.md"
    record.write_text(record.read_text().replace("in text", "in a text"))
    edited = out / "feeds/providers/blog-example-org.atom"  # a page the change leaves alone
    edited.write_bytes(b"edited by hand")
    steps: list[int] = []
    result = build_site(make_app(SEEDS_DIR=seeds, **PAGED), out, steps.append, workers=2)
    after = published(out)
    assert after == published(_scratch(seeds, tmp_path / "scratch"))
    changed = {name for name in after if after[name] != before[name]}
    assert changed and "feeds/providers/blog-example-org.atom" not in changed
    assert result.written == len(changed) / 2 + 1 and sum(steps) == result.files  # + edited
    edited_names = {
        "feeds/providers/blog-example-org.atom",
        "feeds/providers/blog-example-org.atom.gz",
    }
    assert _links_to_the_old_files(inodes, out) == set(after) - changed - edited_names


def _scratch(seeds: Path, out: Path, **settings: Any) -> Path:
    build_site(make_app(SEEDS_DIR=seeds, **{**PAGED, **settings}), out)
    return out


def test_a_rebuild_drops_the_files_of_urls_that_are_gone(tmp_path: Path) -> None:
    seeds = tmp_path / "records"
    shutil.copytree(RECORDS, seeds)
    out = tmp_path / "site"
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
    assert (out / "feeds/providers/blog-example-org.atom").is_file()
    (seeds / "2023-01-06-naive-date-http-image.markdown").unlink()  # its only record
    result = build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
    assert not (out / "feeds/providers/blog-example-org.atom").exists()
    assert result.removed >= 4  # the provider's feed in three formats and its page
    assert published(out) == published(_scratch(seeds, tmp_path / "scratch"))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_folder_all_of_whose_urls_are_gone_goes_too(tmp_path: Path, workers: int) -> None:
    """The previous build's files are linked into the new tree before it is known which URLs
    are gone; a folder left empty then is removed, or the next build would refuse it."""
    seeds, out = tmp_path / "records", tmp_path / "site"
    seeds.mkdir()
    _write_record(seeds / "a.md", {**_small_record(2, ["AI"]), "provider": {"name": "P"}})
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out, workers=workers)
    assert (out / "providers").is_dir() and (out / "feeds/providers").is_dir()
    _write_record(seeds / "a.md", _small_record(2, ["AI"]))  # no provider any more
    result = build_site(make_app(SEEDS_DIR=seeds, **PAGED), out, workers=workers)
    assert result.removed > 0
    assert not (out / "providers").exists() and not (out / "feeds/providers").exists()
    assert [path for path in out.rglob("*") if path.is_dir() and not any(path.iterdir())] == []
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out, workers=workers)  # not refused


def test_a_page_is_told_from_its_old_file_by_both_its_bytes_and_its_gz(tmp_path: Path) -> None:
    """`_same_bytes`: the old file and its .gz hold the new bytes, both; sizes the manifest
    gives that are not the new ones say "changed" without a read; a file gone is changed."""
    old = tmp_path / "page.atom"
    old.write_bytes(b"<feed/>")
    Path(f"{old}.gz").write_bytes(b"zipped")
    same = WrittenFile("f", 7, 0, 6, 0)
    for before in (None, same):
        assert feedsvc.build._same_bytes(str(old), b"<feed/>", b"zipped", before)
        assert not feedsvc.build._same_bytes(str(old), b"<feeD/>", b"zipped", before)
        assert not feedsvc.build._same_bytes(str(old), b"<feed/>", b"zippeD", before)
    other = WrittenFile("f", 8, 0, 6, 0)
    assert not feedsvc.build._same_bytes(str(old), b"<feed/>", b"zipped", other)
    assert not feedsvc.build._same_bytes(str(tmp_path / "gone"), b"<feed/>", b"zipped", None)


def test_a_page_written_again_is_a_second_later_than_the_file_it_replaces(
    tmp_path: Path,
) -> None:
    """`_stamp`: the response's Last-Modified, but a whole second after the old file's time
    (taken from the manifest when it gives it, the same float a `stat` gives), so that a web
    server's validators change with the bytes even when the clock or the record says earlier."""
    old = tmp_path / "page.atom"
    old.write_bytes(b"old")
    mtime_ns = 2_000_000_000_700_000_000
    os.utime(old, ns=(mtime_ns, mtime_ns))
    before = WrittenFile("f", 3, mtime_ns, 0, mtime_ns)
    for given_before in (None, before):
        assert feedsvc.build._stamp(1_700_000_000.0, str(old), given_before) == 2_000_000_001
        assert feedsvc.build._stamp(2_100_000_000.5, str(old), given_before) == 2_100_000_000.5
    assert feedsvc.build._stamp(1_700_000_000.0, None) == 1_700_000_000.0
    assert feedsvc.build._stamp(1_700_000_000.0, str(tmp_path / "gone")) == 1_700_000_000.0


def test_a_file_changed_in_the_output_is_rendered_again(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(make_app(**PAGED), out)
    before = published(out)
    (out / "feeds/all.atom").write_text("edited by hand")
    gz = out / "feeds/all.rss.gz"
    gz.write_bytes(gz.read_bytes()[::-1])  # the same size
    os.utime(gz, ns=(gz.stat().st_atime_ns, gz.stat().st_mtime_ns + 1))
    result = build_site(make_app(**PAGED), out)
    assert published(out) == before
    assert result.written == 2


def test_other_settings_render_every_page_and_keep_the_same_bytes(tmp_path: Path) -> None:
    out = tmp_path / "site"
    build_site(make_app(**PAGED), out)
    static = (out / "static/style.css").stat().st_ino
    result = build_site(make_app(SITE_TITLE="Other news", **PAGED), out)
    assert result.kept == len([name for name in published(out) if name.startswith("static/")]) / 2
    assert (out / "static/style.css").stat().st_ino == static
    assert published(out) == published(_scratch(RECORDS, tmp_path / "s", SITE_TITLE="Other news"))


def test_fingerprints_worked_out_in_several_processes_are_those_of_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large site's fingerprints are worked out in forked processes (`_made_from_all`), each
    page's the same as in one process, and every page's."""
    monkeypatch.setattr(feedsvc.build, "FINGERPRINT_PARALLEL_MINIMUM", 1)
    app = make_app(**PAGED)
    site = feedsvc.build._app_site(app)
    pages = list(feedsvc.build.site_pages(*site))
    alone = {page.url: page.made_from() for page in pages}
    pages = list(feedsvc.build.site_pages(*site))
    assert feedsvc.build._made_from_all(pages, 2) == alone
    assert len(set(alone.values())) > len(alone) / 2


def test_page_fingerprints_are_the_same_in_every_process() -> None:
    """hashlib, not hash(): another process (another hash seed) computes the same digests."""
    script = (
        "from tests.conftest import make_app\n"
        "from feedsvc.build import _app_site, site_pages\n"
        "print(sorted((p.url, p.made_from()) for p in site_pages(*_app_site(make_app()))))\n"
    )
    runs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1 and "/feeds/all.atom" in runs.pop()


def test_pages_follow_the_counts_of_the_feeds_they_list(tmp_path: Path) -> None:
    """Changes that leave a page's entries as they were but not the numbers it shows: an older
    record added to a topic (its page shows how many articles it has), and an old record moved
    to another topic (the index lists every topic with its count)."""
    seeds, out = tmp_path / "records", tmp_path / "site"
    seeds.mkdir()
    for day in (2, 3, 4):
        _write_record(seeds / f"r{day}.md", _small_record(day, ["AI"]))
    build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
    for number, change in enumerate(
        [
            lambda: _write_record(seeds / "r1.md", _small_record(1, ["AI"])),
            lambda: _write_record(seeds / "r1.md", _small_record(1, ["Robots"])),
        ]
    ):
        change()
        build_site(make_app(SEEDS_DIR=seeds, **PAGED), out)
        scratch = _scratch(seeds, tmp_path / f"scratch-{number}", FEED_SIZE=2)
        assert published(out) == published(scratch), number


def _small_record(day: int, topics: list[str]) -> dict[str, Any]:
    return {
        "title": f"Day {day}",
        "publishedDateTime": f"2023-01-0{day}T00:00:00Z",
        "webUrl": f"https://news.example.com/{day}",
        "topics": topics,
    }


def test_a_build_with_search_after_one_without_has_the_search_box(tmp_path: Path) -> None:
    """The pages a build fingerprints are the pages the app renders: the same site settings,
    the search box (`build --search`) included."""
    out = tmp_path / "site"
    build_site(make_app(**PAGED), out)
    assert b'action="http://feeds.test/search"' not in (out / "index.html").read_bytes()
    searching = {**PAGED, "SEARCH_INDEX": str(tmp_path / "search.db")}
    build_site(make_app(**searching), out)
    assert b'action="http://feeds.test/search"' in (out / "index.html").read_bytes()
    assert published(out) == published(_scratch(RECORDS, tmp_path / "scratch", **searching))


def test_another_feedsvc_renders_every_page_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fingerprints say what a page is made from, not how it is written: with another version
    (or code, or library) every page is rendered, and the bytes decide what is kept."""
    out = tmp_path / "site"
    first = build_site(make_app(**PAGED), out)
    fetched: list[str] = []
    real = feedsvc.build._render
    monkeypatch.setattr(
        feedsvc.build, "_render", lambda renderer, url: fetched.append(url) or real(renderer, url)
    )
    monkeypatch.setattr(feedsvc.build, "VERSION", "another")
    result = build_site(make_app(**PAGED), out)
    assert sorted(fetched) == sorted(app_urls(make_app(**PAGED)))
    assert (result.written, result.kept) == (0, first.files)  # the same bytes all the same


def test_a_record_digest_covers_every_field() -> None:
    """`record_values` lists the fields one by one (for speed): each field of a record, of its
    provider, topics and images must change the digest, so a field added later without a line
    there fails here."""
    records = make_app().extensions["feedsvc"].collection.records
    record = next(r for r in records if r.provider and r.provider.images and r.images)
    assert record.provider is not None and record.topics and record.images
    nested = {
        "provider": (record.provider, ["provider"]),
        "topics": (record.topics[0], ["topics", 0]),
        "images": (record.images[0], ["images", 0]),
        "provider images": (record.images[0], ["provider", "images"]),
    }
    digest = Fingerprints().record(record)
    changed = []
    for field in dataclasses.fields(record):
        changed.append(dataclasses.replace(record, **{field.name: _other(field.name, record)}))
    for name, (value, _) in nested.items():
        for field in dataclasses.fields(value):
            other = dataclasses.replace(value, **{field.name: _other(field.name, value)})
            changed.append(_with_nested(record, name, other))
    assert len(changed) > 20
    for other in changed:
        assert Fingerprints().record(other) != digest, other


def test_a_story_digest_is_its_records_digests() -> None:
    records = make_app().extensions["feedsvc"].collection.records[:3]
    story = Story(records)
    assert Fingerprints().record(story) == Fingerprints().record(Story(tuple(records)))
    retitled = dataclasses.replace(records[1], title=records[1].title + "x")
    other = Story((records[0], retitled, records[2]))
    assert Fingerprints().record(other) != Fingerprints().record(story)
    assert Fingerprints().record(Story(records[:2])) != Fingerprints().record(story)


def _other(name: str, value: Any) -> Any:
    """Another value for the field `name` of `value`, of the field's own type."""
    current = getattr(value, name)
    if isinstance(current, bool) or current is None:
        return not current if isinstance(current, bool) else 1
    if isinstance(current, int):
        return current + 1
    if isinstance(current, str):
        return current + "x"
    if isinstance(current, datetime):
        return current + timedelta(seconds=1)
    if isinstance(current, tuple):
        return current[:-1] if current else (None,)
    return None  # a provider: none


def _with_nested(record: Any, name: str, other: Any) -> Any:
    if name == "provider":
        return dataclasses.replace(record, provider=other)
    if name == "topics":
        return dataclasses.replace(record, topics=(other, *record.topics[1:]))
    if name == "images":
        return dataclasses.replace(record, images=(other, *record.images[1:]))
    provider = dataclasses.replace(record.provider, images=(other,))
    return dataclasses.replace(record, provider=provider)


# A small world of records, so that hypothesis finds ties in dates, shared topics and providers,
# duplicate URLs (merged into one entry), pages that appear and disappear.
_record = st.fixed_dictionaries(
    {
        "title": st.sampled_from(["Alpha", "Beta", "Gamma", "Alpha!"]),
        "excerpt": st.sampled_from(["", "Short.", "Longer excerpt."]),
        "publishedDateTime": st.sampled_from(
            ["2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z", "2023-01-03T10:00:00Z"]
        ),
        "webUrl": st.sampled_from([f"https://news.example.com/{n}" for n in range(6)]),
        "provider": st.sampled_from(
            [{"name": "A", "domain": "a.com"}, {"name": "B", "domain": "b.org"}]
        ),
        "topics": st.lists(st.sampled_from(["AI", "Robots", "Chips"]), max_size=2, unique=True),
    }
)


def _file_changes(record: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[tuple[Any, ...]]:
    """Adds and changes of records drawn from `record`, removes and renames (`_apply`)."""
    return st.one_of(
        st.tuples(st.just("add"), record),
        st.tuples(st.just("change"), st.integers(0, 20), record),
        st.tuples(st.just("remove"), st.integers(0, 20)),
        st.tuples(st.just("rename"), st.integers(0, 20)),
    )


_change = st.one_of(
    _file_changes(_record),
    st.tuples(st.just("title"), st.sampled_from(["feedsvc", "Other"])),
)


def _apply(seeds: Path, change: tuple[Any, ...], settings: dict[str, Any]) -> None:
    files = sorted(seeds.iterdir())
    kind = change[0]
    if kind == "add":
        _write_record(seeds / f"r{len(files)}-{time.monotonic_ns()}.md", change[1])
    elif kind == "title":
        settings["SITE_TITLE"] = change[1]
    elif files:
        target = files[change[1] % len(files)]
        if kind == "change":
            _write_record(target, change[2])
        elif kind == "remove":
            target.unlink()
        else:
            target.rename(seeds / f"moved-{time.monotonic_ns()}.md")


def _write_record(path: Path, record: dict[str, Any]) -> None:
    path.write_text(f"---\n{yaml.safe_dump(record, sort_keys=False)}---\n", encoding="utf-8")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.lists(_record, min_size=1, max_size=6),
    rounds=st.lists(st.lists(_change, min_size=1, max_size=3), min_size=1, max_size=2),
)
def test_an_incremental_build_is_the_build_from_scratch(
    start: list[dict[str, Any]], rounds: list[list[tuple[Any, ...]]]
) -> None:
    """After any adds, changes, removes and renames of record files (and a change of site
    title), a build into the previous build's folder holds the same files with the same bytes
    (.gz included) as a build into an empty folder, and no other file."""
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        seeds, out = root / "records", root / "site"
        seeds.mkdir()
        for index, record in enumerate(start):
            _write_record(seeds / f"r{index}.md", record)
        settings: dict[str, Any] = {"FEED_SIZE": 2}
        build_site(make_app(SEEDS_DIR=seeds, **settings), out)
        for number, changes in enumerate(rounds):
            for change in changes:
                _apply(seeds, change, settings)
            result = build_site(make_app(SEEDS_DIR=seeds, **settings), out)
            scratch = root / f"scratch-{number}"
            build_site(make_app(SEEDS_DIR=seeds, **settings), scratch)
            assert published(out) == published(scratch)
            manifest = Manifest.parse((out / MARKER).read_text())
            assert manifest is not None and manifest.names() == set(tree(out))
            assert result.files == len(manifest.files) == result.written + result.kept


# Records that form stories: related articles from a small pool of URLs, headlines from a few
# words (two in common make one event), dates within a few days.
_STORY_URLS = [f"https://site{n % 3}.example/story-{n}" for n in range(8)]
_story_record = st.fixed_dictionaries(
    {
        "title": st.lists(
            st.sampled_from(["Nexus", "operator", "recall", "chatbot", "Tesla"]),
            min_size=1,
            max_size=3,
        ).map(" ".join),
        "publishedDateTime": st.sampled_from(
            ["2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z", "2023-01-05T10:00:00Z"]
        ),
        "webUrl": st.sampled_from(_STORY_URLS),
        "topics": st.lists(st.sampled_from(["AI", "Robots"]), max_size=2, unique=True),
        "related": st.lists(
            st.sampled_from(_STORY_URLS).map(lambda url: {"title": "Other", "webUrl": url}),
            max_size=3,
        ),
    }
)
_story_change = _file_changes(_story_record)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.lists(_story_record, min_size=2, max_size=8),
    rounds=st.lists(st.lists(_story_change, min_size=1, max_size=3), min_size=1, max_size=3),
)
def test_an_incremental_build_with_the_kept_stories_is_the_build_from_scratch(
    start: list[dict[str, Any]], rounds: list[list[tuple[Any, ...]]]
) -> None:
    """As `test_an_incremental_build_is_the_build_from_scratch`, with a parse cache, as `feedsvc
    build` has one: each build takes up the stories grouping the last one kept beside it
    (`storystate`) and regroups only what changed, and takes up the record digests it kept
    (`digeststate`); its site is the site built from scratch without any cache, story pages
    and story feeds included."""
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        seeds, out = root / "records", root / "site"
        seeds.mkdir()
        for index, record in enumerate(start):
            _write_record(seeds / f"r{index}.md", record)
        cached = {"FEED_SIZE": 2, "SEARCH_INDEX": "off", "PARSE_CACHE": str(root / "cache")}
        resumed = []
        real = feedsvc.stories.resume

        def spy(*args: Any) -> Any:
            resumed.append(args)
            return real(*args)

        known = []
        real_known = Fingerprints.known

        def known_spy(self: Fingerprints, digests: Any) -> None:
            known.append(True)
            real_known(self, digests)

        with contextlib.ExitStack() as stack:
            stack.enter_context(_patched(feedsvc.stories, "resume", spy))
            stack.enter_context(_patched(Fingerprints, "known", known_spy))
            app = AppMaker(lambda: make_app(SEEDS_DIR=seeds, **cached), seeds)
            build_site(app, out)
            for number, changes in enumerate(rounds):
                for change in changes:
                    _apply(seeds, change, {})
                build_site(AppMaker(lambda: make_app(SEEDS_DIR=seeds, **cached), seeds), out)
                scratch = root / f"scratch-{number}"
                build_site(make_app(SEEDS_DIR=seeds, FEED_SIZE=2, SEARCH_INDEX="off"), scratch)
                assert published(out) == published(scratch)
        assert len(resumed) == len(rounds)  # every rebuild took the grouping up
        assert len(known) == len(rounds)  # and the record digests (`digeststate`)


def _cached_build(seeds: Path, out: Path, cache: Path) -> BuildResult:
    """`feedsvc build` as it runs: with a parse cache, the app made by the build."""
    settings = {"FEED_SIZE": 2, "SEARCH_INDEX": "off", "PARSE_CACHE": str(cache)}
    return build_site(AppMaker(lambda: make_app(SEEDS_DIR=seeds, **settings), seeds), out)


def _digests_taken_up(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many kept record digests each build takes up (`Fingerprints.known`), from now on."""
    counts: list[int] = []
    real = Fingerprints.known

    def spy(self: Fingerprints, digests: Any) -> None:
        digests = list(digests)
        counts.append(len(digests))
        real(self, digests)

    monkeypatch.setattr(Fingerprints, "known", spy)
    return counts


def _story(path: Path, title: str, url: str, topics: list[str], day: int = 1) -> None:
    record = {"title": title, "publishedDateTime": f"2023-01-0{day}T00:00:00Z", "webUrl": url}
    _write_record(path, {**record, "provider": {"name": "A", "domain": "a.com"}, "topics": topics})


def test_a_record_changed_since_the_kept_digests_is_rendered_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild takes up the record digests the last build kept beside the parse cache
    (`digeststate`) for the files unchanged since, and works out the changed file's: its pages
    are those built from scratch (a title changed moves no entry: only the record's digest
    tells that the pages that show it changed)."""
    seeds, out, cache = tmp_path / "records", tmp_path / "site", tmp_path / "cache"
    seeds.mkdir()
    for number in range(3):
        _story(seeds / f"r{number}.md", f"Title {number}", f"https://a.example/{number}", ["AI"])
    _cached_build(seeds, out, cache)
    taken_up = _digests_taken_up(monkeypatch)
    _story(seeds / "r1.md", "Title one", "https://a.example/1", ["AI"])
    result = _cached_build(seeds, out, cache)
    build_site(make_app(SEEDS_DIR=seeds, FEED_SIZE=2, SEARCH_INDEX="off"), tmp_path / "scratch")
    assert published(out) == published(tmp_path / "scratch")
    assert taken_up == [2] and result.written
    assert _cached_build(seeds, out, cache).written == 0  # the state of the changed one too
    assert taken_up == [2, 3]


def test_a_merged_record_takes_up_no_kept_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record merged from the files that hold one article URL is not any file's own record:
    it takes up no digest kept for the file whose path it has, unchanged as that file is."""
    seeds, out, cache = tmp_path / "records", tmp_path / "site", tmp_path / "cache"
    seeds.mkdir()
    _story(seeds / "a.md", "First", "https://a.example/same", ["AI"])
    _story(seeds / "c.md", "Other", "https://a.example/other", ["AI"])
    _cached_build(seeds, out, cache)
    taken_up = _digests_taken_up(monkeypatch)
    _story(seeds / "b.md", "Second", "https://a.example/same", ["Robots"], day=2)
    _cached_build(seeds, out, cache)
    build_site(make_app(SEEDS_DIR=seeds, FEED_SIZE=2, SEARCH_INDEX="off"), tmp_path / "scratch")
    assert published(out) == published(tmp_path / "scratch")
    assert taken_up == [1]  # c.md's: a.md's record is merged with b.md's


@contextlib.contextmanager
def _patched(module: object, name: str, value: Any) -> Any:
    """`module.name` is `value` within (hypothesis runs a test many times per fixture)."""
    real = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, real)


def _touch(path: str) -> str:
    Path(path).touch()
    return path


def test_forked_processes_start_before_their_first_result_is_asked_for(tmp_path: Path) -> None:
    """The previous build's files are linked by a process started before the collection loads,
    and that process must work meanwhile: `_forked` starts its processes (and hands them their
    first tasks) when called, not when its first result is read."""
    marks = [str(tmp_path / f"mark-{n}") for n in range(2)]
    with contextlib.closing(_forked(_touch, marks, 2)) as results:
        deadline = time.monotonic() + 10
        while not all(Path(mark).exists() for mark in marks):
            assert time.monotonic() < deadline, "no task was done before a result was asked for"
            time.sleep(0.01)
        assert sorted(results) == marks


def _frozen(_: int) -> int:
    return gc.get_freeze_count()


def test_forked_processes_leave_what_they_inherit_out_of_their_collections() -> None:
    """A build process's garbage collector walks only what the process makes: what it inherits
    (the collection, stories, entries and pages, millions of objects) is frozen, so that its
    full passes neither walk those nor write to their pages."""
    inherited = [[] for _ in range(10_000)]  # tracked by the collector, not frozen here
    before = gc.get_freeze_count()
    with contextlib.closing(_forked(_frozen, [0], 1)) as results:
        (frozen,) = list(results)
    assert frozen >= before + len(inherited)


def test_a_parallel_build_freezes_the_entries_it_shares_before_it_forks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The entries a parallel build makes for its processes are long-lived and hold no cycles:
    they are frozen before the processes fork, so that the build's collector does not walk
    them again and again while the processes render."""
    monkeypatch.setattr(feedsvc.build, "PARALLEL_MINIMUM", 1)
    monkeypatch.setattr(feedsvc.build, "SHARE_MINIMUM", 1)
    seeds = write_collection(tmp_path / "records", 40)
    app = make_app(SEEDS_DIR=seeds, FEED_SIZE=4, SEARCH_INDEX="off")
    before = gc.get_freeze_count()
    build_site(app, tmp_path / "site", workers=2)
    assert gc.get_freeze_count() >= before + 40  # an entry is several objects


def test_a_feeds_key_names_its_own_values_and_the_records_its_group_holds() -> None:
    """`_feed_key` covers what a feed's hooks name, place and date it by: a topic whose name or
    images changed, or whose group holds other records than the feed shows, has another key; the
    same feed made again has the same key."""
    collection, site, _ = feedsvc.build._app_site(make_app(SEEDS_DIR=RECORDS))
    prints = Fingerprints()
    group = next(group for group in collection.topics.values() if len(group.records) > 1)
    key = feedsvc.build._feed_key(prints, feedsvc.feeds.TopicFeed(group), site)
    assert feedsvc.build._feed_key(prints, feedsvc.feeds.TopicFeed(group), site) == key
    renamed = dataclasses.replace(group, name=group.name + " again")
    assert feedsvc.build._feed_key(prints, feedsvc.feeds.TopicFeed(renamed), site) != key
    image = next(record.images[0] for record in collection.records if record.images)
    pictured = dataclasses.replace(group, images=(image,))
    assert feedsvc.build._feed_key(prints, feedsvc.feeds.TopicFeed(pictured), site) != key
    as_provider = feedsvc.build._feed_key(prints, feedsvc.feeds.ProviderFeed(group), site)
    assert as_provider != key
    feed = feedsvc.feeds.TopicFeed(group)
    feed.records = group.records[:1]  # the group holds more than the feed shows
    shown = feedsvc.build._feed_key(prints, feed, site)
    alone = feedsvc.feeds.TopicFeed(dataclasses.replace(group, records=group.records[:1]))
    assert shown != key and shown != feedsvc.build._feed_key(prints, alone, site)
    assert feedsvc.build._feed_key(prints, feedsvc.feeds.TopicFeed(group), site, "listing") != key
