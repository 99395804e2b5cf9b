from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.cli import cli
from tests.conftest import RECORDS
from tests.servers import serve_refused


def test_help_names_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output


def test_serve_help_explains_its_options(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--seeds", "--host", "--port", "--workers"):
        assert option in result.output


def test_serve_reports_a_bad_setting_without_a_traceback(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["serve"], env={"FEEDSVC_FEED_SIZE": "0"})
    assert result.exit_code == 1
    assert "FEED_SIZE must be at least 1" in result.output
    assert "Traceback" not in result.output


# The offline commands never touch the developer's parse cache.
OFFLINE = {"FEEDSVC_PARSE_CACHE": "off"}
BROKEN = sorted(path.name for path in RECORDS.glob("broken-*"))


def test_every_command_takes_the_shared_options(runner: CliRunner) -> None:
    for command in ("serve", "check", "stats", "build"):
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0, command
        for option in ("--seeds", "--asset-base-url", "--log-level"):
            assert option in result.output, (command, option)


def test_python_dash_m_runs_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "check", "--help"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.startswith("Usage: feedsvc check")


def test_check_names_each_rejected_file_with_its_field_and_exits_1(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", str(RECORDS)], env=OFFLINE)
    assert result.exit_code == 1
    rejected = [line for line in result.stdout.splitlines() if line.startswith("rejected ")]
    assert sorted(line.split()[1].rstrip(":") for line in rejected) == BROKEN
    assert "rejected broken-no-title.md: title: is missing" in rejected
    assert "rejected broken-bad-date.md: publishedDateTime: is not a date" in result.stdout
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning ")]
    assert any("merged into one entry" in line for line in warnings)
    assert any("served as image/jpeg" in line for line in warnings)
    summary = result.stdout.splitlines()[-1]
    assert f"{len(BROKEN)} rejected" in summary and "9 entries published" in summary


def test_check_of_a_clean_folder_exits_0(runner: CliRunner, tmp_records: Path) -> None:
    for path in RECORDS.glob("00*.txt"):
        shutil.copy(path, tmp_records)
    result = runner.invoke(cli, ["check", str(tmp_records)], env=OFFLINE)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"2 files checked in {tmp_records}: all usable; 2 entries published, 0 warnings"
    ]


def test_check_reads_the_folder_from_seeds_and_the_environment(
    runner: CliRunner, tmp_records: Path
) -> None:
    (tmp_records / "broken.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    by_option = runner.invoke(cli, ["check", "--seeds", str(tmp_records)], env=OFFLINE)
    by_env = runner.invoke(cli, ["check"], env={**OFFLINE, "FEEDSVC_SEEDS_DIR": str(tmp_records)})
    for result in (by_option, by_env):
        assert result.exit_code == 1
        assert "rejected broken.md: publishedDateTime: is missing" in result.stdout


def test_check_json_lists_every_problem(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", "--format", "json", str(RECORDS)], env=OFFLINE)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert (report["files"], report["records"], report["rejected_files"]) == (19, 9, len(BROKEN))
    assert sorted({problem["file"] for problem in report["rejections"]}) == BROKEN
    no_title = next(p for p in report["rejections"] if p["file"] == "broken-no-title.md")
    assert no_title == {
        "file": "broken-no-title.md",
        "field": "title",
        "message": "is missing",
        "severity": "error",
    }
    assert {p["severity"] for p in report["warnings"]} == {"warning"}
    assert any(p["field"] == "webUrl" for p in report["warnings"])


def test_check_usage_errors_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    missing = runner.invoke(cli, ["check", str(tmp_path / "missing")], env=OFFLINE)
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad_format = runner.invoke(cli, ["check", "--format", "xml", str(RECORDS)], env=OFFLINE)
    assert bad_format.exit_code == 2


def test_a_bad_setting_is_an_error_message_not_a_traceback(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["check", str(RECORDS)], env={"FEEDSVC_FEED_SIZE": "zero"})
    assert result.exit_code == 1
    assert "FEED_SIZE must be int" in result.output and "Traceback" not in result.output


def test_stats_json_counts_entries_and_newest_dates(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["stats", "--seeds", str(RECORDS), "--format", "json"], env=OFFLINE)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["entries"] == 9
    assert report["newest"] == "2023-04-01T17:00:00+00:00"
    ai = report["topics"][0]
    assert ai == {"slug": "ai", "name": "AI", "entries": 7, "newest": "2023-04-01T17:00:00+00:00"}
    assert [t["entries"] for t in report["topics"]] == sorted(
        (t["entries"] for t in report["topics"]), reverse=True
    )
    slugs = {p["slug"] for p in report["providers"]}
    assert {"usnews-com", "theiet-org", "chosun-com"} <= slugs


def test_stats_table_has_a_row_per_topic_and_provider(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["stats", "--seeds", str(RECORDS)], env=OFFLINE)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "9 entries, newest 2023-04-01T17:00:00+00:00"
    assert "TOPICS (4)" in lines and "PROVIDERS (6)" in lines
    row = next(line for line in lines if line.split()[2:3] == ["computer-vision"])
    assert row.split() == ["4", "2023-02-02", "computer-vision", "Computer", "Vision"]


def test_check_logs_only_errors_unless_a_level_is_asked_for(
    runner: CliRunner, caplog: pytest.LogCaptureFixture
) -> None:
    runner.invoke(cli, ["check", str(RECORDS)], env=OFFLINE)
    assert not [r for r in caplog.records if r.name.startswith("feedsvc")]
    runner.invoke(cli, ["check", "--log-level", "info", str(RECORDS)], env=OFFLINE)
    assert "loaded 9 records" in caplog.text
    caplog.clear()
    runner.invoke(cli, ["check", str(RECORDS)], env={**OFFLINE, "FEEDSVC_LOG_LEVEL": "WARNING"})
    assert "rejected broken-no-title.md" in caplog.text and "loaded 9" not in caplog.text


def unusable_folders(tmp_path: Path) -> dict[Path, str]:
    """Seeds folders that would publish nothing, with the reason each is refused."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    record = tmp_path / "record.txt"
    record.write_text("---\ntitle: x\n---\n", encoding="utf-8")
    return {
        tmp_path / "missing": "does not exist",
        record: "is not a folder",
        fifo: "is not a folder",
        Path("/dev/null"): "is not a folder",
    }


def test_an_unusable_seeds_folder_is_one_line_and_exit_2_wherever_it_came_from(
    runner: CliRunner, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    commands = (["check"], ["stats"], ["build", "--out", str(out), "--base-url", "http://x/"])
    for folder, reason in unusable_folders(tmp_path).items():
        for command in commands:
            ways = {
                "option": ([*command, "--seeds", str(folder)], OFFLINE),
                "environment": (command, {**OFFLINE, "FEEDSVC_SEEDS_DIR": str(folder)}),
            }
            if command == ["check"]:
                ways["argument"] = (["check", str(folder)], OFFLINE)
            for way, (arguments, env) in ways.items():
                result = runner.invoke(cli, arguments, env=env)
                case = (command[0], way, folder)
                assert result.exit_code == 2, case
                assert result.stderr == f"Error: seeds folder {folder} {reason}\n", case
                assert result.stdout == "", case
    assert not out.exists()


def test_serve_refuses_an_unusable_seeds_folder_at_start(tmp_path: Path) -> None:
    """In a child process with a time-out: a server that started anyway would serve an empty
    site (as it did) and never return; it is then stopped by its PID, workers and all."""
    missing = tmp_path / "missing"
    cases = [(["--seeds", str(missing)], {}, missing, "does not exist")]
    for folder, reason in unusable_folders(tmp_path).items():
        cases.append(([], {"SEEDS_DIR": str(folder)}, folder, reason))
    for options, settings, folder, reason in cases:
        status, stderr = serve_refused(*options, settings=settings)
        assert status == 2, stderr
        assert stderr == f"Error: seeds folder {folder} {reason}\n"


def unreadable_folder(root: Path) -> str:
    """A folder under `root` that a scan cannot read, even as root (who may read anything):
    nested so deep that its path is longer than the system allows (ENAMETOOLONG)."""
    name = "n" * 250
    descriptor = os.open(root, os.O_RDONLY)
    try:
        for _ in range(18):
            os.mkdir(name, dir_fd=descriptor)
            inner = os.open(name, os.O_RDONLY, dir_fd=descriptor)
            os.close(descriptor)
            descriptor = inner
    finally:
        os.close(descriptor)
    return name


def test_a_folder_that_cannot_be_read_makes_check_fail(
    runner: CliRunner, tmp_records: Path
) -> None:
    shutil.copy(RECORDS / "000_6533b3114b6f9df0.txt", tmp_records)
    unreadable_folder(tmp_records)
    result = runner.invoke(cli, ["check", str(tmp_records)], env=OFFLINE)
    assert result.exit_code == 1, result.output
    rejected = [line for line in result.stdout.splitlines() if line.startswith("rejected ")]
    assert len(rejected) == 1 and "folder cannot be read (File name too long)" in rejected[0]
    assert "1 rejected; 1 entries published" in result.stdout.splitlines()[-1]
    report = json.loads(
        runner.invoke(cli, ["check", "--format", "json", str(tmp_records)], env=OFFLINE).stdout
    )
    assert report["ok"] is False and report["rejected_files"] == 1


def test_check_reports_links_as_skipped(
    runner: CliRunner, tmp_records: Path, tmp_path: Path
) -> None:
    shutil.copy(RECORDS / "000_6533b3114b6f9df0.txt", tmp_records)
    (tmp_records / "linked.md").symlink_to(RECORDS / "001_a1e971cc52df9b4c.txt")
    (tmp_records / "linked-folder").symlink_to(tmp_path)
    (tmp_records / "notes.json").symlink_to(RECORDS / "001_a1e971cc52df9b4c.txt")  # not a record
    result = runner.invoke(cli, ["check", str(tmp_records)], env=OFFLINE)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "skipped  linked-folder: a link: links are not followed",
        "skipped  linked.md: a link: links are not followed",
        f"1 files checked in {tmp_records}: all usable; 1 entries published, 0 warnings, "
        "2 links skipped",
    ]
    report = json.loads(
        runner.invoke(cli, ["check", "--format", "json", str(tmp_records)], env=OFFLINE).stdout
    )
    assert [(p["file"], p["severity"]) for p in report["skipped"]] == [
        ("linked-folder", "warning"),
        ("linked.md", "warning"),
    ]
