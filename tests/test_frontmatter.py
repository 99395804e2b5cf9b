"""The front matter loader: YAML read as plain values, its errors named by the file's own line,
and what hostile YAML could do (construct objects, recurse, nest without end) refused. Seen through
the parse of a whole file, as the service sees it; `tests/test_hostile_records.py` serves them.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

import feedsvc
from feedsvc.fields import parse_text
from feedsvc.frontmatter import load_yaml

PACKAGE = Path(feedsvc.__file__).parent


def test_yaml_errors_name_the_line_of_the_file() -> None:
    result = parse_text("---\ntitle: ok\nbad: [unclosed\n---\n", "x.md")
    assert result.rejection is not None
    assert "(line 4)" in result.rejection.message
    result = parse_text("title: ok\nbad: [unclosed\n", "x.yaml")
    assert result.rejection is not None
    assert "(line 3)" in result.rejection.message


def test_yaml_gives_only_plain_values_and_fields_convert_the_text() -> None:
    text = (
        "---\ntitle: 2023\npublishedDateTime: 2001-12-14 21:59:43.10 -5\n"
        "webUrl: https://x.example/a\nquality: !!int '7'\nheat: 012\npublished: yes\n"
        "excerpt: ~\nimages: [{url: 'https://x.example/i.png', width: 640, height: &h 480}]\n"
        "topics: [AI, *h]\nsecured: !!binary aGk=\n---\n"
    )
    assert load_yaml(text.split("---\n")[1])["images"][0] == {
        "url": "https://x.example/i.png",
        "width": "640",
        "height": "480",
    }
    result = parse_text(text, "x.md")
    record = result.record
    assert record is not None and result.problems == ()
    assert record.title == "2023" and record.excerpt == ""
    assert record.published == datetime(2001, 12, 15, 2, 59, 43, 100000, tzinfo=UTC)
    assert (record.quality, record.heat, record.published_flag) == (7, 12, True)
    assert (record.images[0].width, record.images[0].height) == (640, 480)
    assert [t.name for t in record.topics] == ["AI", "480"]


@pytest.mark.parametrize(
    "value",
    [
        "!!python/object/apply:os.system ['true']",
        "!!python/name:os.system",
        "!!python/object:feedsvc.records.Record {}",
        "!custom x",
        "!<tag:example.com,2000:x> y",
    ],
)
def test_yaml_tags_that_construct_objects_are_refused(value: str) -> None:
    result = parse_text(
        f"title: {value}\npublishedDateTime: 2023-01-01\nwebUrl: https://x.example/", "x.md"
    )
    assert result.record is None and result.rejection is not None
    assert "could not determine a constructor" in result.rejection.message


def test_quoted_yes_no_words_stay_text_and_bare_ones_are_yes_no() -> None:
    base = "publishedDateTime: 2023-01-01\nwebUrl: https://x.example/\n"
    assert parse_text(f"title: 'no'\npublished: Off\n{base}", "x.md").record is not None
    rejected = parse_text(f"title: no\n{base}", "x.md").rejection
    assert rejected is not None and "yes/no value" in rejected.message


def test_recursive_or_too_deep_yaml_is_rejected() -> None:
    # 100,000 levels crashed the process (C stack) when PyYAML composed nodes recursively in C.
    for text in ("a: &x [1, *x]\n", "a: " + "[" * 100_000 + "]" * 100_000 + "\n"):
        result = parse_text(text, "x.md")
        assert result.rejection is not None and "is not valid YAML" in result.rejection.message


def imports_of(module: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_loader_imports_yaml_and_the_record_model_imports_no_parsing() -> None:
    importers = {
        module.stem
        for module in PACKAGE.glob("*.py")
        if any(name.split(".")[0] == "yaml" for name in imports_of(module))
    }
    assert importers == {"frontmatter"}
    assert "feedsvc.fields" not in imports_of(PACKAGE / "frontmatter.py")
    model = imports_of(PACKAGE / "records.py")
    assert not model & {"feedsvc.fields", "feedsvc.frontmatter", "slugify"}
