"""Bad records: each hostile file is rejected, or published with a warning, naming the file and the
reason, and the rest of the collection still serves every one of its feeds.

The records are written into a temporary folder by each test, beside one good record; the checks
go through the whole service (load, index, render, serve), so they hold whichever YAML loader
frontmatter.py uses.
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.errors import Problem
from feedsvc.feeds import iter_feeds
from feedsvc.fields import MAX_TOPICS, parse_bytes
from feedsvc.frontmatter import MAX_NESTING
from feedsvc.render import FORMATS
from feedsvc.repository import CollectionLoader
from tests.conftest import SECRET_MARKER, entry_ids, entry_links, make_app, read_feed

GOOD = b"""---
title: The good record
publishedDateTime: 2023-05-01T10:00:00Z
webUrl: https://good.example/article
provider: {name: Good News, domain: good.example}
topics: [Robotics]
---
"""
GOOD_FEEDS = ["/feeds/all", "/feeds/topics/robotics", "/feeds/providers/good-example"]
VALID = (
    "title: {title}\npublishedDateTime: 2023-04-01T08:00:00Z\n"
    "webUrl: https://bad.example/{slug}\ntopics: [Hostile]\n"
)


def valid(title: str = "Hostile", slug: str = "a", extra: str = "") -> bytes:
    return ("---\n" + VALID.format(title=title, slug=slug) + extra + "---\n").encode()


def serve(folder: Path, **config: Any) -> Flask:
    app = make_app(SEEDS_DIR=folder, **config)
    return app


def problems_of(app: Flask, name: str) -> list[Problem]:
    collection = app.extensions["feedsvc"].collection
    return [p for p in (*collection.rejections, *collection.warnings) if p.path == name]


def rejection_of(app: Flask, name: str) -> str:
    collection = app.extensions["feedsvc"].collection
    found = [str(p) for p in collection.rejections if p.path == name]
    assert found, f"{name} was not rejected"
    assert all(text.startswith(name) and "\n" not in text for text in found)
    return " ".join(found)


def assert_good_record_serves(app: Flask) -> None:
    """The good record is in all, its topic and its provider feed, in every format, and every
    feed of the collection is served well-formed."""
    client = app.test_client()
    collection = app.extensions["feedsvc"].collection
    paths = {feed.path for feed in iter_feeds(collection)} | set(GOOD_FEEDS)
    for path in paths:
        for extension in FORMATS:
            response = client.get(f"{path}.{extension}")
            assert response.status_code == 200, path
            links = {link for _, link in entry_links(response.data, extension)}
            assert SECRET_MARKER.encode() not in response.data
            if path in GOOD_FEEDS:
                assert "https://good.example/article" in links, path


def with_good(folder: Path) -> Path:
    (folder / "good.md").write_bytes(GOOD)
    return folder


# Far beyond any honest run, even on a loaded machine: only a hang gets there.
HANG_SECONDS = 60


@contextmanager
def no_hang(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Fail, instead of waiting for ever, when the block has not finished within `seconds`. The
    alarm interrupts Python code and blocking system calls alike (opening a FIFO); a slow
    machine does not fail it, as a wall-clock bound of a second or two would."""

    def expired(signum: int, frame: object) -> None:
        pytest.fail(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- rejected whole -------------------------------------------------------------------------------

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
)
BOMB_RECORD = BOMB + "".join(
    f"{key}: *i\n"
    for key in ("title", "publishedDateTime", "webUrl", "provider", "topics", "quality", "related")
)

REJECTED: dict[str, tuple[bytes, str]] = {
    "not-a-mapping.md": (b"---\n- a\n- b\n---\n", "should be a mapping"),
    "a-string.md": (b"---\njust words\n---\n", "should be a mapping"),
    "several-documents.yaml": (
        VALID.format(title="One", slug="1").encode()
        + b"---\n"
        + VALID.format(title="Two", slug="2").encode(),
        "YAML",
    ),
    "unterminated.md": (b"---\ntitle: x\npublishedDateTime: 2023-01-01\n", "no closing '---'"),
    "tabs.md": (b"---\ntitle: x\n\tpublishedDateTime: 2023-01-01\n---\n", "YAML"),
    "invalid-utf8.md": (valid()[:20] + b"\xff\xfe\xc3\x28" + valid()[20:], "not UTF-8"),
    "binary.md": (bytes(range(256)) * 8, "not UTF-8"),
    "binary-nul.txt": (b"\x00" * 4096, "control characters are not allowed (character 1)"),
    "alias-bomb.md": (("---\n" + BOMB_RECORD + "---\n").encode(), "should be text"),
    "recursive-alias.md": (b"---\na: &a [*a]\ntitle: *a\n---\n", ""),
    "python-object.yml": (
        b"title: !!python/object/apply:os.system ['touch /tmp/feedsvc-pwned']\n"
        b"publishedDateTime: 2023-01-01\nwebUrl: https://x.example/\n",
        "tag",
    ),
    "python-name.yml": (b"title: !!python/name:os.system\n", "tag"),
    "custom-tag.yml": (b"title: !custom {a: 1}\n", "tag"),
    "title-list.md": (valid(title="[a, b]"), "title: should be text"),
    "title-mapping.md": (valid(title="{a: 1}"), "title: should be text"),
    "title-yes.md": (valid(title="yes"), "title"),
    "title-empty.md": (valid(title="''"), "title: is empty"),
    "title-controls.md": (valid(title='"\\x01\\x02\\x1b\\x7f\\x9f"'), "title: is empty"),
    "date-text.md": (
        b"---\ntitle: x\npublishedDateTime: soon\nwebUrl: https://x.example/\n---\n",
        "not a date",
    ),
    "date-year-1.md": (
        b"---\ntitle: x\npublishedDateTime: 0001-01-01\nwebUrl: https://x.example/\n---\n",
        "out of range",
    ),
    "date-year-9999.md": (
        b"---\ntitle: x\npublishedDateTime: 9999-12-31T23:00:00-05:00\nwebUrl: https://x.example/\n---\n",
        "out of range",
    ),
    "date-february-30.md": (
        b"---\ntitle: x\npublishedDateTime: 2023-02-30\nwebUrl: https://x.example/\n---\n",
        "publishedDateTime: is not a date",
    ),
    "date-hour-25.md": (
        b"---\ntitle: x\npublishedDateTime: 2023-01-01T25:00:00Z\nwebUrl: https://x.example/\n---\n",
        "publishedDateTime: is not a date",
    ),
    "date-offset-99.md": (
        b"---\ntitle: x\npublishedDateTime: 2023-01-01T00:00:00+99:00\nwebUrl: https://x.example/\n---\n",
        "publishedDateTime",
    ),
    "date-quoted-far.md": (
        b"---\ntitle: x\npublishedDateTime: '99999-01-01'\nwebUrl: https://x.example/\n---\n",
        "not a date",
    ),
    "date-list.md": (
        b"---\ntitle: x\npublishedDateTime: [2023]\nwebUrl: https://x.example/\n---\n",
        "not a date",
    ),
    "url-javascript.md": (
        b"---\ntitle: x\npublishedDateTime: 2023-01-01\nwebUrl: 'javascript:alert(1)'\n---\n",
        "javascript",
    ),
    "url-data.md": (
        b"---\ntitle: x\npublishedDateTime: 2023-01-01\n"
        b"webUrl: 'data:text/html,<script>1</script>'\n---\n",
        "data",
    ),
    "url-file.md": (
        b"---\ntitle: x\npublishedDateTime: 2023-01-01\nwebUrl: file:///etc/passwd\n---\n",
        "file",
    ),
    "url-no-host.md": (
        b"---\ntitle: x\npublishedDateTime: 2023-01-01\nwebUrl: 'https:///path'\n---\n",
        "webUrl",
    ),
    "url-relative.md": (
        b"---\ntitle: x\npublishedDateTime: 2023-01-01\nwebUrl: //\n---\n",
        "webUrl",
    ),
    "url-host-nul.md": (
        b'---\ntitle: x\npublishedDateTime: 2023-01-01\nwebUrl: "http://a.exam\\0ple:81/p"\n---\n',
        "characters no host name has",
    ),
    "url-host-space.md": (
        b'---\ntitle: x\npublishedDateTime: 2023-01-01\nwebUrl: "http://a b.example/"\n---\n',
        "characters no host name has",
    ),
    "url-list.md": (
        b"---\ntitle: x\npublishedDateTime: 2023-01-01\nwebUrl: [https://x.example/]\n---\n",
        "should be a URL",
    ),
    "deep-flow.md": (b"---\ntitle: " + b"[" * 100_000 + b"]" * 100_000 + b"\n---\n", "nested"),
    "deep-mapping.md": (
        b"---\ntitle: " + b"{a: " * 60_000 + b"1" + b"}" * 60_000 + b"\n---\n",
        "nested",
    ),
    "deep-block.md": (
        b"---\ntitle: x\nt:\n" + b"".join(b" " * i + b"- \n" for i in range(0, 400, 2)) + b"---\n",
        "",
    ),
    "empty.txt": (b"", "empty"),
    "only-dashes.md": (b"---\n---\n", "empty"),
    "whitespace.md": (b"   \n\n\t\n", ""),
    "bom-only.md": (b"\xef\xbb\xbf", "empty"),
}


@pytest.mark.parametrize("name", REJECTED)
def test_hostile_file_is_rejected_by_name_and_the_rest_serves(tmp_records: Path, name: str) -> None:
    content, reason = REJECTED[name]
    (with_good(tmp_records) / name).write_bytes(content)
    with no_hang():
        app = serve(tmp_records)
    assert reason in rejection_of(app, name)
    assert len(app.extensions["feedsvc"].collection.records) == 1
    assert_good_record_serves(app)
    assert not Path("/tmp/feedsvc-pwned").exists()


def test_the_alias_bomb_is_bounded_in_time_and_memory() -> None:
    """Nine levels of nine aliases: expanded, 387 million items. Read as the references they
    are, the parse allocates some 30 KB at its peak (tracemalloc counts this call only)."""
    raw = ("---\n" + BOMB_RECORD + "---\n").encode()
    tracemalloc.start()
    try:
        with no_hang():
            result = parse_bytes(raw, "bomb.md")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024, f"the parse allocated {peak} bytes at its peak"
    assert result.record is None
    assert all(len(problem.message) < 200 for problem in result.problems)


def test_nesting_just_under_the_limit_is_only_a_wrong_type() -> None:
    depth = MAX_NESTING - 10
    raw = valid(extra="topics: " + "[" * depth + "]" * depth + "\n")
    result = parse_bytes(raw, "deep.md")
    assert result.record is not None


# -- published, with a warning --------------------------------------------------------------------

WARNED: dict[str, tuple[bytes, str]] = {
    "width-word.md": (
        valid(extra="images: [{url: 'https://x.example/a.jpg', width: wide}]\n"),
        "width",
    ),
    "topics-mapping.md": (valid().replace(b"topics: [Hostile]", b"topics: {a: 1}"), "topics"),
    "provider-list.md": (valid(extra="provider: [a, b]\n"), "provider"),
    "quality-list.md": (valid(extra="quality: [1]\n"), "quality"),
    "quality-huge.md": (valid(extra="quality: " + "9" * 5000 + "\n"), "quality"),
    "published-word.md": (valid(extra="published: maybe\n"), "published"),
    "related-text.md": (valid(extra="related: 12\n"), "related"),
    "image-javascript.md": (valid(extra="images: ['javascript:alert(1)']\n"), "javascript"),
    "image-data.md": (valid(extra="images: ['data:image/png;base64,AAAA']\n"), "data"),
    "image-file.md": (valid(extra="images: ['file:///etc/passwd']\n"), "file"),
    "image-host-control.md": (valid(extra='images: ["http://a\\x01b.example/x.jpg"]\n'), "host"),
    "related-javascript.md": (
        valid(extra="related: [{title: r, webUrl: 'javascript:x'}]\n"),
        "javascript",
    ),
    "original-url-data.md": (valid(extra="originalUrl: 'data:,x'\n"), "originalUrl"),
}


@pytest.mark.parametrize("name", WARNED)
def test_bad_optional_field_is_left_out_with_a_warning(tmp_records: Path, name: str) -> None:
    content, reason = WARNED[name]
    (with_good(tmp_records) / name).write_bytes(content)
    app = serve(tmp_records)
    warnings = " ".join(str(p) for p in problems_of(app, name))
    assert reason in warnings and warnings.startswith(name)
    assert len(app.extensions["feedsvc"].collection.records) == 2
    assert_good_record_serves(app)
    body = app.test_client().get("/feeds/topics/hostile.atom").data
    for scheme in (b"javascript:", b"data:", b"file:"):
        assert scheme not in body


def test_control_characters_in_every_text_field_are_dropped(tmp_records: Path) -> None:
    controls = "".join(chr(code) for code in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20)])
    controls += "\x7f\x85\ufffe\uffff"
    escaped = controls.encode("unicode_escape").decode().replace('"', '\\"')
    value = f'"A{escaped}Z"'
    fields = f"""---
title: {value}
excerpt: {value}
publishedDateTime: 2023-04-01T08:00:00Z
webUrl: https://bad.example/controls
provider: {{name: {value}, domain: {value}}}
topics: [{value}]
images: [{{url: https://x.example/a.jpg, title: {value}}}]
related: [{{title: {value}, webUrl: https://r.example/, provider: {{name: {value}}}}}]
---
"""
    (with_good(tmp_records) / "controls.md").write_text(fields, encoding="utf-8")
    app = serve(tmp_records)
    assert len(app.extensions["feedsvc"].collection.records) == 2
    assert_good_record_serves(app)
    client = app.test_client()
    for feed in iter_feeds(app.extensions["feedsvc"].collection):
        for extension in FORMATS:
            body = client.get(f"{feed.path}.{extension}").data
            text = body.decode("utf-8")
            assert not any(char in text for char in controls if char not in "\x85")


def test_ten_thousand_topics_are_cut_to_the_cap_with_a_warning(tmp_records: Path) -> None:
    topics = "[" + ", ".join(f"Topic {index}" for index in range(10_000)) + "]"
    raw = valid().replace(b"topics: [Hostile]", f"topics: {topics}".encode())
    (with_good(tmp_records) / "many-topics.md").write_bytes(raw)
    with no_hang():
        app = serve(tmp_records)
    record = next(
        r for r in app.extensions["feedsvc"].collection.records if r.path == "many-topics.md"
    )
    assert len(record.topics) == MAX_TOPICS
    assert "10000 items" in " ".join(str(p) for p in problems_of(app, "many-topics.md"))
    assert_good_record_serves(app)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bom.md", b"\xef\xbb\xbf" + valid()),
        ("crlf.md", valid().replace(b"\n", b"\r\n")),
        ("bom-crlf.md", b"\xef\xbb\xbf" + valid().replace(b"\n", b"\r\n")),
        ("cr-only.md", valid().replace(b"\n", b"\r")),
        ("trailing-body.md", valid() + b"# Body\n\n---\nnot: front matter\n"),
        ("tabs-in-values.md", valid(title='"a\\tb"')),
    ],
)
def test_byte_order_marks_and_line_ends_are_read(
    tmp_records: Path, name: str, content: bytes
) -> None:
    (with_good(tmp_records) / name).write_bytes(content)
    app = serve(tmp_records)
    problems = problems_of(app, name)
    if name == "cr-only.md":  # old Mac line ends: YAML reads them, front matter does not
        assert problems or len(app.extensions["feedsvc"].collection.records) == 2
    else:
        assert not [p for p in problems if p.severity == "error"], problems
        assert len(app.extensions["feedsvc"].collection.records) == 2
    assert_good_record_serves(app)


# -- size, links, files that change or cannot be read ----------------------------------------------


def test_a_file_over_the_size_limit_is_rejected_unread(tmp_records: Path) -> None:
    big = valid(extra="excerpt: '" + "x" * (1024 * 1024) + "'\n")
    (with_good(tmp_records) / "big.md").write_bytes(big)
    app = serve(tmp_records)
    assert "MAX_RECORD_BYTES" in rejection_of(app, "big.md")
    assert_good_record_serves(app)
    # the limit is a setting
    app = serve(tmp_records, MAX_RECORD_BYTES=2 * 1024 * 1024)
    assert not problems_of(app, "big.md")


def test_the_size_limit_holds_for_a_file_that_grows_after_it_was_measured(
    tmp_records: Path,
) -> None:
    """A file can grow between the stat and the read: no more than the limit is ever read."""
    loader = CollectionLoader(with_good(tmp_records), max_bytes=len(GOOD) + 10)
    (tmp_records / "growing.md").write_bytes(valid(extra=f"excerpt: {'x' * 1000}\n"))
    real_stat = os.stat

    class StaleStat:
        def __init__(self, result: os.stat_result) -> None:
            self.result = result
            self.st_size = 10  # as it was a moment ago

        def __getattr__(self, name: str) -> Any:
            return getattr(self.result, name)

    def stale_stat(path: Any, *args: Any, **kwargs: Any) -> Any:
        result = real_stat(path, *args, **kwargs)
        return StaleStat(result) if str(path).endswith("growing.md") else result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "stat", stale_stat)
        collection = loader.load()
        grown = CollectionLoader(tmp_records).load()  # within the default limit
    assert any("MAX_RECORD_BYTES" in str(p) for p in collection.rejections)
    assert len(collection.records) == 1
    # Grown, but within the limit: read whole, not as far as the stat said.
    assert not grown.rejections
    assert "x" * 1000 in {record.excerpt for record in grown.records}


def test_links_outside_the_collection_and_link_loops_are_not_followed(tmp_path: Path) -> None:
    (tmp_path / "records").mkdir()
    folder = with_good(tmp_path / "records")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.md").write_bytes(valid(title="Outside", slug="outside"))
    (folder / "link-to-file.md").symlink_to(outside / "secret.md")
    (folder / "link-to-folder").symlink_to(outside)
    (folder / "loop").symlink_to(folder)
    (folder / "self.md").symlink_to(folder / "self.md")
    (folder / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    (folder / "sub").mkdir()
    (folder / "sub" / "up").symlink_to(folder)
    app = serve(folder)
    collection = app.extensions["feedsvc"].collection
    assert [record.path for record in collection.records] == ["good.md"]
    assert collection.rejections == ()
    assert_good_record_serves(app)


def test_a_folder_named_like_a_record_and_special_files_are_skipped(tmp_records: Path) -> None:
    (with_good(tmp_records) / "folder.md").mkdir()
    os.mkfifo(tmp_records / "fifo.md")  # reading it would block the load forever
    with no_hang():
        app = serve(tmp_records)
    assert [r.path for r in app.extensions["feedsvc"].collection.records] == ["good.md"]
    assert_good_record_serves(app)


def test_a_file_that_disappears_while_the_folder_is_read(tmp_records: Path) -> None:
    """Listed, then gone before it is opened: rejected as unreadable, the rest loads."""
    (with_good(tmp_records) / "vanishing.md").write_bytes(valid())
    real_open = os.open

    def vanish_then_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file).endswith("vanishing.md") and (tmp_records / "vanishing.md").exists():
            (tmp_records / "vanishing.md").unlink()
        return real_open(file, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "open", vanish_then_open)
        app = serve(tmp_records)
    assert "cannot be read" in rejection_of(app, "vanishing.md")
    assert_good_record_serves(app)


def test_a_file_rewritten_while_serving_keeps_every_response_well_formed(tmp_records: Path) -> None:
    """A writer rewrites one record in place (truncate, then write in pieces), reloading after
    each piece, while a client reads: every response, at every cut of the file, is a
    well-formed feed with the good record in it."""
    target = with_good(tmp_records) / "changing.md"
    target.write_bytes(valid())
    app = serve(tmp_records)
    state = app.extensions["feedsvc"]
    done = threading.Event()

    def assert_good_feeds(client: Any) -> None:
        for path in GOOD_FEEDS:
            response = client.get(f"{path}.atom")
            assert response.status_code == 200
            entries = read_feed(response.data).entries
            assert "https://good.example/article" in {e.link for e in entries}

    def writer() -> None:
        client = app.test_client()
        try:
            for content in (valid(title="Version 1"), valid(title="Version 2, longer")):
                with target.open("wb") as handle:
                    for start in range(0, len(content), 7):
                        handle.write(content[start : start + 7])
                        handle.flush()
                        state.reload()
                        assert_good_feeds(client)  # each cut, read once for certain
        finally:
            done.set()

    failures: list[BaseException] = []
    thread = threading.Thread(target=lambda: _record_failure(writer, failures))
    thread.start()
    client, reads = app.test_client(), 0
    with no_hang():
        while not done.is_set() or reads == 0:  # bounded by the writer's work, not by a clock
            assert_good_feeds(client)
            reads += 1
        thread.join()
    assert not failures, failures
    assert {r.title for r in state.collection.records} == {"The good record", "Version 2, longer"}


def _record_failure(function: Callable[[], None], failures: list[BaseException]) -> None:
    try:
        function()
    except BaseException as exc:  # a failed assert in the thread fails the test
        failures.append(exc)


def unreadable_by_root_too(path: Path) -> Callable[[Any], Any]:
    """Root reads files whatever their permissions, so tests running as root simulate EACCES
    (records are opened with `os.open`)."""
    real_open = os.open

    def denying_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file).startswith(str(path)):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    return denying_open


def test_an_unreadable_file_is_rejected_and_the_rest_serves(tmp_records: Path) -> None:
    target = with_good(tmp_records) / "locked.md"
    target.write_bytes(valid())
    target.chmod(0)
    try:
        with pytest.MonkeyPatch.context() as patch:
            if os.geteuid() == 0:
                patch.setattr(os, "open", unreadable_by_root_too(target))
            app = serve(tmp_records)
    finally:
        target.chmod(0o644)
    assert "cannot be read (Permission denied)" in rejection_of(app, "locked.md")
    assert_good_record_serves(app)


def test_an_unreadable_folder_is_skipped_with_a_warning(
    tmp_records: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="feedsvc")
    folder = with_good(tmp_records) / "locked"
    folder.mkdir()
    (folder / "inside.md").write_bytes(valid())
    folder.chmod(0)
    real_scandir = os.scandir

    def denying_scandir(path: Any = ".") -> Any:
        if str(path) == str(folder):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    try:
        with pytest.MonkeyPatch.context() as patch:
            if os.geteuid() == 0:  # root lists any folder: simulate what others would get
                patch.setattr(os, "scandir", denying_scandir)
            app = serve(tmp_records)
    finally:
        folder.chmod(0o755)
    assert [r.path for r in app.extensions["feedsvc"].collection.records] == ["good.md"]
    assert "cannot be read" in caplog.text and "locked" in caplog.text
    assert_good_record_serves(app)


def test_every_hostile_file_at_once(tmp_records: Path) -> None:
    """All the cases above in one folder: one load, every rejection named, the good record in
    every feed."""
    with_good(tmp_records)
    for name, (content, _) in {**REJECTED, **WARNED}.items():
        unique = content.replace(b"https://bad.example/a", f"https://bad.example/{name}".encode())
        (tmp_records / name).write_bytes(unique)
    app = serve(tmp_records)
    for name in REJECTED:
        rejection_of(app, name)
    assert len(app.extensions["feedsvc"].collection.records) == 1 + len(WARNED)
    assert_good_record_serves(app)
    health = app.test_client().get("/healthz").get_json()
    assert health["rejected"] == len(REJECTED)


# -- property: any record, valid or not -----------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["2023-01-01", "2023-02-30", "yes", "~", "javascript:x", "https://ok.example/"]
    ),
    st.dates(),
    st.datetimes(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
good_values = {
    "title": st.text(min_size=1, max_size=30).map(lambda t: "T " + t),
    "publishedDateTime": st.datetimes(min_value=__import__("datetime").datetime(1990, 1, 1)),
    "webUrl": st.sampled_from(
        ["https://a.example/1", "https://b.example/2?x=1", "http://c.example/"]
    ),
    "topics": st.lists(st.text(max_size=10).map(lambda t: "Topic " + t), max_size=3),
    "provider": st.fixed_dictionaries(
        {"name": st.text(max_size=10), "domain": st.just("p.example")}
    ),
}
KEYS = [*good_values, "excerpt", "originalUrl", "images", "related", "quality", "heat", "published"]
record_mappings = st.dictionaries(
    st.sampled_from(KEYS),
    values,
    max_size=len(KEYS),
).flatmap(
    lambda noise: st.fixed_dictionaries(
        {key: st.one_of(strategy, values) for key, strategy in good_values.items()}
    ).map(lambda base: {**noise, **base})
)


def as_file(data: Any, framing: str) -> bytes:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    return {
        "front": f"---\n{text}---\n",
        "whole": text,
        "crlf": f"---\n{text}---\n".replace("\n", "\r\n"),
        "bom": f"\ufeff---\n{text}---\n",
        "cut": f"---\n{text}"[: len(text) // 2],
    }[framing].encode("utf-8", "surrogatepass")


files = st.one_of(
    st.builds(as_file, record_mappings, st.sampled_from(["front", "whole", "crlf", "bom", "cut"])),
    st.binary(max_size=300),
    st.builds(lambda a, b: a + b, st.just(GOOD[:60]), st.binary(max_size=60)),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(files, min_size=1, max_size=5))
def test_any_files_load_and_every_accepted_record_reaches_its_feeds(contents: list[bytes]) -> None:
    for index, content in enumerate(contents):  # the parser boundary never raises
        parse_bytes(content, f"{index}.md")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for index, content in enumerate(contents):
            (folder / f"{index}.md").write_bytes(content)
        app = serve(folder)
        collection = app.extensions["feedsvc"].collection
        # Every file is published, rejected, or merged into a record with the same URL.
        accounted = {r.path for r in collection.records}
        accounted |= {p.path for p in collection.rejections}
        accounted |= {p.path for p in collection.warnings if "merged" in p.message}
        assert accounted == {f"{index}.md" for index in range(len(contents))}
        client = app.test_client()
        for record in collection.records:
            paths = ["/feeds/all"]
            paths += [f"/feeds/topics/{topic.slug}" for topic in record.topics]
            if record.provider is not None:
                paths.append(f"/feeds/providers/{record.provider.slug}")
            for path in paths:
                for extension in FORMATS:
                    response = client.get(f"{path}.{extension}?page=1")
                    assert response.status_code == 200, path
                    ids = set(entry_ids(response.data, extension))
                    assert record.id in ids or len(ids) == app.config["FEED_SIZE"], path
