from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedsvc.errors import FolderError, Problem
from feedsvc.fields import record_from_mapping
from feedsvc.repository import EPOCH, build_collection, find_record_files, load_collection
from tests.conftest import ASSET_BASE_URL, RECORDS, make_app


def test_finds_record_files_recursively_skipping_hidden_and_other_extensions() -> None:
    names = [path.relative_to(RECORDS).as_posix() for path in find_record_files(RECORDS)]
    assert "2023/nested/2023-02-01-whole-file-yaml.yaml" in names
    assert "2023-01-06-naive-date-http-image.markdown" in names
    assert "000_6533b3114b6f9df0.txt" in names
    assert not any(name.startswith(".") or "/." in name for name in names)
    assert "notes.json" not in names


def test_broken_records_are_rejected_and_the_rest_load(collection) -> None:  # type: ignore[no-untyped-def]
    rejected = {problem.path for problem in collection.rejections}
    assert rejected == {path.name for path in RECORDS.glob("broken-*")}
    assert len(collection.records) == 9
    assert all(not record.path.startswith("broken-") for record in collection.records)


def test_rejections_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="feedsvc.repository"):
        load_collection(RECORDS, ASSET_BASE_URL)
    rejected = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rejected ")]
    assert len(rejected) == len(set(rejected)) == 9
    assert any("broken-bad-date.md: publishedDateTime: is not a date" in m for m in rejected)


def test_records_sharing_an_article_url_are_one_entry(collection, caplog) -> None:  # type: ignore[no-untyped-def]
    twice = [r for r in collection.records if r.url == "https://news.example.net/twice"]
    assert len(twice) == 1
    merged = twice[0]
    assert merged.published == datetime(2023, 2, 2, 10, 0, tzinfo=UTC)
    assert merged.title == "One article recorded twice"
    assert {t.slug for t in merged.topics} == {"ai", "computer-vision"}
    note = next(p for p in collection.warnings if "merged" in p.message)
    assert note.path == "2023/nested/2023-02-03-duplicate-b.md"


def _copy(path: str, published: str, topic: str):  # type: ignore[no-untyped-def]
    data = {
        "title": f"Copy in {path}",
        "webUrl": "https://x.example/same",
        "publishedDateTime": published,
        "topics": [topic],
    }
    return record_from_mapping(data, path)


@pytest.mark.parametrize("load_order", ["forward", "backward"])
def test_a_merged_article_keeps_the_earliest_copy_whatever_the_file_names(
    load_order: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Here the file names sort against the dates (the test records sort alike both ways)."""
    caplog.set_level(logging.INFO, logger="feedsvc.repository")
    copies = [
        _copy("a-later.md", "2022-01-03T00:00:00Z", "Later"),
        _copy("b-middle.md", "2022-01-02T00:00:00Z", "Middle"),
        _copy("z-earliest.md", "2022-01-01T00:00:00Z", "Earliest"),
    ]
    collection = build_collection(copies if load_order == "forward" else reversed(copies))
    (merged,) = collection.records
    assert merged.title == "Copy in z-earliest.md" and merged.path == "z-earliest.md"
    assert merged.published == datetime(2022, 1, 1, tzinfo=UTC)
    assert {topic.slug for topic in merged.topics} == {"later", "middle", "earliest"}
    message = "same article URL as z-earliest.md; merged into one entry"
    assert collection.warnings == (  # problems are listed by file, whatever the load order
        Problem("a-later.md", "webUrl", message, "warning"),
        Problem("b-middle.md", "webUrl", message, "warning"),
    )
    assert caplog.messages == [
        "merged 3 records of https://x.example/same: z-earliest.md, b-middle.md, a-later.md"
    ]


def test_copies_published_at_the_same_moment_merge_into_the_first_file() -> None:
    same = "2022-01-01T00:00:00Z"
    copies = [_copy("b.md", same, "B"), _copy("a.md", same, "A")]
    (merged,) = build_collection(copies).records
    assert merged.path == "a.md"


def test_records_are_newest_first(collection) -> None:  # type: ignore[no-untyped-def]
    dates = [record.published for record in collection.records]
    assert dates == sorted(dates, reverse=True)


def test_indexes_by_topic_and_provider_slug(collection) -> None:  # type: ignore[no-untyped-def]
    assert set(collection.topics) == {"ai", "ai-in-autos", "aws-ai", "computer-vision"}
    assert collection.topics["computer-vision"].name == "Computer Vision"
    assert "usnews-com" in collection.providers and "chosun-com" in collection.providers
    assert collection.providers["usnews-com"].name == "U.S. News & World Report"
    assert collection.providers["usnews-com"].images[0].width == 50
    assert collection.providers["example-net"].images == ()  # no logo: none, not None
    assert all(group.images == () for group in collection.topics.values())
    for group in (*collection.topics.values(), *collection.providers.values()):
        dates = [record.published for record in group.records]
        assert dates == sorted(dates, reverse=True)
    cv = {r.path for r in collection.topics["computer-vision"].records}
    assert {"000_6533b3114b6f9df0.txt", "001_a1e971cc52df9b4c.txt"} <= cv


def _record(url: str, published: str, path: str):  # type: ignore[no-untyped-def]
    data = {"title": path, "webUrl": url, "publishedDateTime": published, "topics": ["T"]}
    return record_from_mapping(data, path)


def test_ties_are_broken_by_entry_id_whatever_the_load_order() -> None:
    results = [_record(f"https://x.example/{n}", "2022-01-01T00:00:00Z", f"{n}.md") for n in "abcd"]
    forward = build_collection(results)
    backward = build_collection(reversed(results))
    assert [r.id for r in forward.records] == [r.id for r in backward.records]
    assert [r.id for r in forward.records] == sorted(r.id for r in forward.records)
    assert forward.topics == backward.topics


def test_a_collection_carries_what_the_loader_says_of_it() -> None:
    """The version, the modification time, the folders not read and the links not followed are
    the loader's to give; the load time is now, in UTC."""
    before = datetime.now(UTC)
    modified = datetime(2023, 1, 2, tzinfo=UTC)
    unread = Problem("locked", "", "cannot be read (Permission denied)")
    link = Problem("link.md", "", "a link: links are not followed", "warning")
    results = [_record("https://x.example/a", "2022-01-01T00:00:00Z", "a.md")]
    collection = build_collection(results, "v1", modified, unread=[unread], skipped=[link])
    assert (collection.version, collection.modified) == ("v1", modified)
    assert collection.rejections == (unread,) and collection.skipped == (link,)
    assert collection.loaded_at is not None
    assert before <= collection.loaded_at <= datetime.now(UTC)
    unversioned = build_collection(results)
    assert (unversioned.version, unversioned.modified) == ("", EPOCH)
    assert unversioned.rejections == () and unversioned.skipped == ()


def test_empty_folder_gives_an_empty_collection(tmp_path: Path) -> None:
    collection = load_collection(tmp_path)
    assert collection.records == () and collection.updated is None


def test_a_root_that_is_not_a_folder_is_refused_at_load_and_by_the_app(tmp_path: Path) -> None:
    """A load of nothing would serve an empty site; `create_app` (and so wsgi.py) refuses too."""
    (tmp_path / "file.md").write_text("x", encoding="utf-8")
    for root, reason in [
        (tmp_path / "missing", "does not exist"),
        (tmp_path / "file.md", "is not a folder"),
    ]:
        with pytest.raises(FolderError, match=f"^seeds folder {root} {reason}$"):
            load_collection(root)
        with pytest.raises(FolderError):
            make_app(SEEDS_DIR=root)


def test_links_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text(
        "---\ntitle: Outside\npublishedDateTime: 2022-01-01\nwebUrl: https://o.example/\n---\n"
    )
    folder = tmp_path / "records"
    folder.mkdir()
    (folder / "link.md").symlink_to(outside)
    (folder / "loop").symlink_to(folder)
    (folder / "real.md").write_text(outside.read_text().replace("Outside", "Inside"))
    assert [path.name for path in find_record_files(folder)] == ["real.md"]
