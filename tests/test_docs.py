"""The README stays true: every setting is documented, and its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

from feedsvc.settings import ENV_PREFIX, declared

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_setting_and_no_other() -> None:
    documented = set(re.findall(rf"^\| `{ENV_PREFIX}_([A-Z_]+)` \|", README, re.MULTILINE))
    assert documented == {name for name, _, _ in declared()}


def test_readme_commands_are_make_targets_that_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in re.findall(r"^make (\w+)", README, re.MULTILINE):
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target


def test_ci_runs_the_readme_test_command() -> None:
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
