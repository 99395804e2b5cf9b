"""One record file in, one typed `Record` (or its problems) out: the field converters of
`feedsvc/fields.py` and the model of `feedsvc/records.py`, through the parse of whole files.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from feedsvc.feeds import iter_feeds
from feedsvc.fields import FIELDS, clean_text, parse_file, parse_text, record_from_mapping
from feedsvc.records import Related, pack_related, shared_image, unpack_related
from feedsvc.render import FORMATS
from feedsvc.repository import Collection
from tests.conftest import ASSET_BASE_URL, RECORDS, SECRET_MARKER


def parse(name: str, asset_base_url: str | None = ASSET_BASE_URL):  # type: ignore[no-untyped-def]
    return parse_file(RECORDS / name, RECORDS, asset_base_url)


def test_seed_record_is_read_in_full() -> None:
    result = parse("000_6533b3114b6f9df0.txt")
    record = result.record
    assert result.problems == ()
    assert record is not None
    assert record.title == "Italy Outlaws Facial Recognition Tech, Except to Fight Crime"
    assert record.published == datetime(2022, 11, 14, 18, 33, tzinfo=UTC)
    assert record.url.startswith("https://www.usnews.com/news/world/articles/2022-11-14/")
    assert record.provider is not None
    assert (record.provider.name, record.provider.slug) == (
        "U.S. News & World Report",
        "usnews-com",
    )
    assert record.provider.images[0].width == 50
    assert [(t.name, t.slug) for t in record.topics] == [
        ("Computer Vision", "computer-vision"),
        ("AI", "ai"),
    ]
    assert record.related[0].provider == "Mint"
    assert record.related[0].url.startswith("https://www.livemint.com/")
    assert (record.quality, record.heat) == (49, -1)


def test_published_false_does_not_hide_a_record() -> None:
    record = parse("001_a1e971cc52df9b4c.txt").record
    assert record is not None
    assert record.published_flag is False


def secured_values() -> list[str]:
    """The `secured` values of the test records, as their files hold them."""
    values = []
    for path in sorted(RECORDS.rglob("*")):
        if path.is_file():
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("secured:"):
                    values.append(line.removeprefix("secured:").strip().strip('"'))
    return values


def test_secured_never_leaves_the_records_module() -> None:
    record = parse("2023-01-05-odd-urls-and-text.md").record
    assert record is not None
    assert SECRET_MARKER not in repr(record)
    assert all("secured" not in spec.keys for spec in FIELDS.values())


def test_secured_is_served_nowhere(client: FlaskClient, collection: Collection) -> None:
    """No feed in any format, page, list or status shows any record's `secured` value (a
    piece of it either: a truncated or wrapped copy still leaks)."""
    pieces = [value[:16].encode() for value in secured_values()]
    assert len(pieces) == 3 and any(piece.startswith(SECRET_MARKER.encode()) for piece in pieces)
    urls = ["/", "/feeds.opml", "/healthz", "/metrics"]
    for feed in iter_feeds(collection):
        urls += [f"{feed.path}.{extension}" for extension in FORMATS] + [feed.html_path]
    for url in urls:
        response = client.get(url, headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200, url
        assert not [piece for piece in pieces if piece in response.data], url


def test_odd_urls_and_text_are_kept_and_cleaned() -> None:
    record = parse("2023-01-05-odd-urls-and-text.md").record
    assert record is not None
    assert record.title == 'Uber & Lyft: "robotaxi" plans <UBER.N> — what’s next®'
    assert (
        record.url == "https://www.example.com/news/uber%20lyft%20robotaxi?id=42&ref=feed&x=$!;,*+"
    )
    assert record.published == datetime(2023, 1, 5, 7, 30, tzinfo=UTC)
    assert record.provider is not None and record.provider.name == "조선일보"
    logo = record.provider.images[0]
    assert logo.url == "https://assets.example.com/assets/images/organizations/chosun.com-50x50.jpg"
    first, second = record.images
    assert (first.media_type, first.width, first.height) == ("image/jpeg", 1280, 640)
    assert (second.media_type, second.width) == ("image/webp", 600)


def test_relative_logo_without_asset_base_url_is_left_out_with_a_warning() -> None:
    result = parse("2023-01-05-odd-urls-and-text.md", asset_base_url=None)
    assert result.record is not None and result.record.provider is not None
    assert result.record.provider.images == ()
    warning = next(p for p in result.problems if p.field == "provider.images[0].url")
    assert warning.severity == "warning"
    assert "ASSET_BASE_URL" in warning.message


def test_unknown_image_type_falls_back_with_a_warning() -> None:
    result = parse("2023-01-05-odd-urls-and-text.md")
    warning = next(p for p in result.problems if p.field == "images[0].url")
    assert "image/jpeg" in warning.message


def test_naive_dates_are_utc_and_single_topic_string_is_a_list() -> None:
    record = parse("2023-01-06-naive-date-http-image.markdown").record
    assert record is not None
    assert record.published == datetime(2023, 1, 6, 8, 0, tzinfo=UTC)
    assert record.url == "http://blog.example.org/posts/naive?utm=feed"
    assert [t.slug for t in record.topics] == ["computer-vision"]
    assert record.images[0].media_type == "image/png"
    assert record.published_flag is True


def test_whole_file_yaml_and_date_only() -> None:
    record = parse("2023/nested/2023-02-01-whole-file-yaml.yaml").record
    assert record is not None
    assert record.path == "2023/nested/2023-02-01-whole-file-yaml.yaml"
    assert record.published == datetime(2023, 2, 1, tzinfo=UTC)
    assert record.url == "https://news.example.net/whole-file"


def test_crlf_and_byte_order_mark() -> None:
    record = parse("2023-04-01-crlf-bom.md").record
    assert record is not None
    assert record.title == "CRLF line ends and a byte order mark"
    assert record.published == datetime(2023, 4, 1, 17, 0, tzinfo=UTC)


def test_control_characters_are_removed() -> None:
    record = parse("2023-03-01-control-characters.md").record
    assert record is not None
    assert record.title == "Control characters in text"
    assert "\x07" not in record.excerpt and "\t" in record.excerpt and "\n" in record.excerpt
    assert record.provider is not None and record.provider.name == "Example Net"
    assert [t.name for t in record.topics] == ["AI"]


def test_bad_optional_fields_are_dropped_with_warnings_and_the_record_kept() -> None:
    result = parse("2023-03-02-bad-optional-fields.md")
    record = result.record
    assert record is not None
    assert record.url == "https://news.example.net/optional"
    assert record.provider is None and record.topics == () and record.quality is None
    assert [(i.url, i.width, i.height) for i in record.images] == [
        ("https://news.example.net/ok.gif", None, None)
    ]
    assert [r.url for r in record.related] == ["https://other.example.com/good"]
    fields = {p.field for p in result.problems}
    assert {"webUrl", "quality", "published", "provider", "topics", "images[0].url"} <= fields
    assert all(p.severity == "warning" for p in result.problems)


@pytest.mark.parametrize(
    ("name", "field", "message"),
    [
        ("broken-no-title.md", "title", "is missing"),
        ("broken-bad-yaml.md", "", "is not valid YAML"),
        ("broken-bad-date.md", "publishedDateTime", "is not a date: 'next tuesday'"),
        ("broken-no-url.md", "webUrl", "'file' scheme"),
        ("broken-list.md", "", "should be a mapping of fields, but it is a list"),
        ("broken-unterminated.md", "", "no closing '---'"),
        ("broken-python-tag.yml", "", "could not determine a constructor"),
        ("broken-empty.txt", "", "it is empty"),
        ("broken-latin1.md", "", "is not UTF-8 text"),
    ],
)
def test_broken_records_are_rejected_with_file_field_and_reason(
    name: str, field: str, message: str
) -> None:
    result = parse(name)
    assert result.record is None
    rejection = result.rejection
    assert rejection is not None
    assert (rejection.path, rejection.field) == (name, field)
    assert message in rejection.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2022-11-15T17:36:00Z", datetime(2022, 11, 15, 17, 36, tzinfo=UTC)),
        ("2022-11-15T17:36:00+01:00", datetime(2022, 11, 15, 16, 36, tzinfo=UTC)),
        ("2022-11-15 17:36", datetime(2022, 11, 15, 17, 36, tzinfo=UTC)),
        ("Tue, 15 Nov 2022 17:36:00 GMT", datetime(2022, 11, 15, 17, 36, tzinfo=UTC)),
    ],
)
def test_dates_in_text_are_accepted(value: str, expected: datetime) -> None:
    data = {"title": "t", "webUrl": "https://x.example/", "publishedDateTime": value}
    record = record_from_mapping(data, "x.md").record
    assert record is not None and record.published == expected


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00Z", "soon", 1668533760, ["2022"]])
def test_dates_out_of_range_or_of_other_types_are_rejected(value: object) -> None:
    data = {"title": "t", "webUrl": "https://x.example/", "publishedDateTime": value}
    result = record_from_mapping(data, "x.md")
    assert result.rejection is not None and result.rejection.field == "publishedDateTime"


@pytest.mark.parametrize("title", [["a", "list"], {"a": "map"}, True, "   "])
def test_titles_that_are_not_text_are_rejected(title: object) -> None:
    data = {"title": title, "webUrl": "https://x.example/", "publishedDateTime": "2022-01-01"}
    result = record_from_mapping(data, "x.md")
    assert result.rejection is not None and result.rejection.field == "title"


def test_every_problem_of_a_file_is_reported_not_just_the_first() -> None:
    result = record_from_mapping({"excerpt": "only"}, "x.md")
    assert {p.field for p in result.problems if p.severity == "error"} == {
        "title",
        "publishedDateTime",
        "webUrl",
    }


def test_clean_text_drops_only_what_xml_forbids() -> None:
    assert clean_text("a\x00b\x1fc\ud800d\ufffee\uffff\tf\ng\rh") == "abcde\tf\ng\rh"
    # Text that is not printable takes a short way past the regex when it is clean: each
    # character XML forbids, in ASCII text and in other text, with line breaks and without.
    forbidden = [*(chr(code) for code in range(0x20) if chr(code) not in "\t\n\r"), "\x7f"]
    for character in [*forbidden, "\x80", "\x9f", "\ufffe", "\uffff", "\ud800"]:
        for text in (f"<p>a</p>\n<ul>{character}</ul>\t", f"\u00e9\n{character}\u00a0"):
            assert clean_text(text) == text.replace(character, ""), repr(text)
    for clean in ("<p>a</p>\n<ul>\r\n<li>b</li>\t</ul>", "\u201cq\u201d\nb", "a\u00a0b\x85"):
        assert clean_text(clean) == clean


def test_unreadable_path_is_reported(tmp_path: Path) -> None:
    result = parse_file(tmp_path / "gone.md", tmp_path)
    assert result.rejection is not None and "cannot be read" in result.rejection.message


def test_html_references_in_text_are_decoded_once() -> None:
    data = {
        "title": "Data &amp; AI: &lt;b&gt; &#8217;quoted&#x2019; &para=kept",
        "excerpt": "internet.&nbsp;In this post &amp;amp; more",
        "webUrl": "https://x.example/",
        "publishedDateTime": "2022-01-01",
    }
    record = record_from_mapping(data, "x.md").record
    assert record is not None
    assert record.title == "Data & AI: <b> \u2019quoted\u2019 &para=kept"
    assert record.excerpt == "internet.\u00a0In this post &amp; more"


def test_related_articles_are_kept_packed_and_read_back_whole() -> None:
    text = (
        "title: t\npublishedDateTime: 2023-01-01\nwebUrl: https://x.example/\nrelated:\n"
        '  - {title: "One\\x1fand\\x1e two", webUrl: "https://y.example/a\\x1fb",'
        " publishedDateTime: 2022-12-31T23:00:00+01:00, provider: {name: Y}}\n"
        "  - {title: Two, originalUrl: https://z.example/b}\n"
    )
    record = parse_text(text, "x.md").record
    assert record is not None
    assert record.related == (
        Related(
            "Oneand two", "https://y.example/a%1Fb", datetime(2022, 12, 31, 22, tzinfo=UTC), "Y"
        ),
        Related("Two", "https://z.example/b", None, None),
    )
    assert isinstance(record.coverage, str)
    assert unpack_related(pack_related(record.related)) == record.related


def test_images_share_their_sizes_and_media_types_also_when_unpickled() -> None:
    first, second = (
        pickle.loads(
            pickle.dumps(shared_image(f"https://x.example/{n}.jpg", 1200, 675, "image/jpeg"))
        )
        for n in range(2)
    )
    assert first.width is second.width and first.height is second.height
    assert first.media_type is second.media_type
