"""The record digests kept from one build to the next (`feedsvc.digeststate`): taken up only
for the parse cache they were written with and feedsvc's code, whole and undamaged; otherwise
not at all. (That a build takes them up only for the records they are of, and that its site is
then the site built from scratch: tests/test_build.py.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import feedsvc.storystate
from feedsvc import digeststate

DIGESTS = {"a.md": b"1" * 16, "folder/b.md": b"2" * 16, "c.md": b"3" * 16}
CACHE = b"c" * 16


def test_the_digests_saved_are_those_loaded(tmp_path: Path) -> None:
    path = digeststate.state_file(tmp_path / "cache")
    assert path == tmp_path / "cache.digests"
    digeststate.save(path, DIGESTS, CACHE)
    assert digeststate.load(path, CACHE) == DIGESTS
    digeststate.save(path, {}, CACHE)
    assert digeststate.load(path, CACHE) == {}


def test_digests_of_another_parse_cache_are_not_used(tmp_path: Path) -> None:
    path = tmp_path / "cache.digests"
    digeststate.save(path, DIGESTS, CACHE)
    assert digeststate.load(path, b"d" * 16) is None


def test_digests_of_another_code_are_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cache.digests"
    digeststate.save(path, DIGESTS, CACHE)
    monkeypatch.setattr(feedsvc.digeststate, "source_digest", lambda: b"other code")
    assert digeststate.load(path, CACHE) is None


@pytest.mark.parametrize("offset", [-3, -20, -40])
def test_damaged_digests_are_not_used(
    tmp_path: Path, offset: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A byte changed anywhere in the payload, the digests' bytes included."""
    path = tmp_path / "cache.digests"
    digeststate.save(path, DIGESTS, CACHE)
    data = bytearray(path.read_bytes())
    data[offset] ^= 1
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        assert digeststate.load(path, CACHE) is None
    assert "corrupt" in caplog.text


def test_a_missing_or_unwritable_state_is_no_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert digeststate.load(tmp_path / "none.digests", CACHE) is None
    (tmp_path / "taken.digests").mkdir()
    with caplog.at_level(logging.WARNING):
        digeststate.save(tmp_path / "taken.digests", DIGESTS, CACHE)
    assert "cannot be written" in caplog.text
    assert [path.name for path in tmp_path.iterdir()] == ["taken.digests"]  # no temporary left
