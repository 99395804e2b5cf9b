from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from feedsvc.cli import cli


def test_help_names_the_commands(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output


def test_serve_help_explains_its_options(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--seeds", "--host", "--port", "--workers"):
        assert option in result.output


def test_serve_refuses_a_missing_folder_as_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["serve", "--seeds", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_serve_reports_a_bad_setting_without_a_traceback(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["serve"], env={"FEEDSVC_FEED_SIZE": "0"})
    assert result.exit_code == 1
    assert "FEED_SIZE must be at least 1" in result.output
    assert "Traceback" not in result.output
