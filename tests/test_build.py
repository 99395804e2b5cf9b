"""The static build: the same bytes as the server for every URL, laid out for a web server,
replacing the previous output only when complete."""

from __future__ import annotations

import email.utils
import gzip
import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import feedsvc.build
from bench.synth import write_collection
from feedsvc.build import app_urls, build_site, file_for
from feedsvc.cli import cli
from feedsvc.output import (
    MARKER,
    Manifest,
    OutputRefused,
    WorkFolder,
    WrittenFile,
    remove_build,
)
from feedsvc.render import FORMATS
from tests.conftest import BASE_URL, RECORDS, make_app

# Small pages, so that feeds and HTML pages have several.
PAGED = {"FEED_SIZE": 2}


def tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


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


def test_every_link_within_the_site_has_its_file(built: Path) -> None:
    """Links in the pages and feeds (paging, alternates, stylesheets) all lead to a built file."""
    link = re.compile(re.escape(BASE_URL) + r'(/[^"\'<>\s\\]*)')
    checked = set()
    for name, body in tree(built).items():
        if name.endswith(".gz") or name.startswith("static/") or name == MARKER:
            continue
        for target in link.findall(body.decode()):
            target = html.unescape(target)
            if target.endswith("/") and target != "/":  # a category scheme, not a page
                continue
            checked.add(target)
            assert (built / file_for(target)).is_file(), (name, target)
    assert "/feeds/topics/ai.atom?page=2" in checked and "/static/feed.xsl" in checked


def test_a_build_in_several_processes_writes_the_same_site(
    tmp_path: Path, built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feedsvc.build, "PARALLEL_MINIMUM", 1)
    steps: list[int] = []
    result = build_site(make_app(**PAGED), tmp_path / "parallel", progress=steps.append, workers=2)
    assert tree(tmp_path / "parallel") == tree(built)
    assert sum(steps) == result.files == len(app_urls(make_app(**PAGED))) and len(steps) > 1


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
    written: list[Path] = []
    real = feedsvc.build._set_mtime

    def interrupted(target: Path, last_modified: str | None) -> None:
        real(target, last_modified)
        written.append(target)
        if len(written) == 10:
            raise KeyboardInterrupt  # as Ctrl-C half-way through

    monkeypatch.setattr(feedsvc.build, "_set_mtime", interrupted)
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
    return runner.invoke(cli, build_command(seeds, out), env={"FEEDSVC_PARSE_CACHE": "off"})


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
    assert tree(releases / "site") == tree(_fresh_build(runner, seeds, tmp_path / "fresh"))
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
