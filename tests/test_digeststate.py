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
    assert f"record digests state {path} is corrupt; working them out again" in caplog.text


def test_a_missing_or_unwritable_state_is_no_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert digeststate.load(tmp_path / "none.digests", CACHE) is None
    (tmp_path / "taken.digests").mkdir()
    with caplog.at_level(logging.WARNING):
        digeststate.save(tmp_path / "taken.digests", DIGESTS, CACHE)
    taken = tmp_path / "taken.digests"
    assert f"record digests state {taken} cannot be written (Is a directory)" in caplog.text
    assert [path.name for path in tmp_path.iterdir()] == ["taken.digests"]  # no temporary left


def test_paths_with_spaces_keep_their_digests(tmp_path: Path) -> None:
    """Paths are joined by line feeds, not split at any white space."""
    path = tmp_path / "cache.digests"
    digests = {"a folder/one record.md": b"1" * 16, "b.md": b"2" * 16}
    digeststate.save(path, digests, CACHE)
    assert digeststate.load(path, CACHE) == digests


@pytest.mark.parametrize(
    ("paths", "size", "values"),
    [("", 16, b"1" * 16), ("a.md", 0, b""), ("a.md\nb.md", 16, b"1" * 16)],
    ids=["digests-without-paths", "empty-digests", "fewer-digests-than-paths"],
)
def test_a_state_whose_digests_do_not_fit_its_paths_is_not_used(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    paths: str,
    size: int,
    values: bytes,
) -> None:
    """Written checked but inconsistent (another feedsvc's bug): not trusted, nothing raised."""
    import pickle

    path = tmp_path / "cache.digests"
    state = {"cache": CACHE, "paths": paths, "size": size, "digests": values}
    dumps = pickle.dumps
    monkeypatch.setattr(pickle, "dumps", lambda *_, **__: dumps(state))
    digeststate.save(path, DIGESTS, CACHE)
    assert digeststate.load(path, CACHE) is None


def test_an_unreadable_state_is_a_warning_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pickle

    path = tmp_path / "cache.digests"
    dumps = pickle.dumps
    monkeypatch.setattr(pickle, "dumps", lambda *_, **__: dumps([1]))
    digeststate.save(path, DIGESTS, CACHE)
    with caplog.at_level(logging.WARNING):
        assert digeststate.load(path, CACHE) is None
    assert f"record digests state {path} cannot be used (" in caplog.text
    assert "); working them out again" in caplog.text
