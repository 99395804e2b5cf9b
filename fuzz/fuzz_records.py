"""Coverage-guided fuzzing of the record parser with atheris (libFuzzer for Python).

    make fuzz FUZZ_SECONDS=600

Each input is the bytes of one record file. The properties: `parse_bytes` returns (never
raises, never reports an internal error), within a bounded time (libFuzzer's -timeout); an
accepted record holds only text XML can carry, pickles for the parse cache, and renders into a
well-formed Atom and RSS feed. The corpus starts from tests/data/ and seeds/; new inputs and
crashes go to .fuzz/ (not committed).
"""

from __future__ import annotations

import pickle
import sys
from datetime import UTC, datetime

import atheris

with atheris.instrument_imports(include=["feedsvc", "yaml"]):
    from feedsvc.feeds import Site, feed_document, find_feed
    from feedsvc.fields import _XML_FORBIDDEN, parse_bytes
    from feedsvc.records import ParseResult
    from feedsvc.render import FORMATS
    from feedsvc.repository import build_collection

from lxml import etree

SITE = Site("http://fuzz.example", "fuzz", "en", 50)
_PARSER = etree.XMLParser(resolve_entities=False, recover=False)


def check_record(result: ParseResult) -> None:
    record = result.record
    assert record is not None
    texts = [record.title, record.excerpt, record.url]
    texts += [topic.name for topic in record.topics]
    if record.provider is not None:
        texts.append(record.provider.name)
    for text in texts:
        assert not _XML_FORBIDDEN.search(text), repr(text)
    assert record.published.tzinfo is not None
    assert record.published <= datetime(9999, 1, 1, tzinfo=UTC)
    assert pickle.loads(pickle.dumps(result)) == result
    collection = build_collection([result])
    feed = find_feed(collection, "all", None)
    assert feed is not None
    for extension, fmt in FORMATS.items():
        body = fmt.render(feed_document(feed, SITE, extension, 1))
        if extension != "json":
            etree.fromstring(body, _PARSER)


def test_one_input(data: bytes) -> None:
    result = parse_bytes(data, "fuzz.md", "https://assets.fuzz.example/")
    for problem in result.problems:
        assert "internal error" not in problem.message, problem
        assert "\n" not in str(problem), problem
    if result.record is not None:
        check_record(result)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
