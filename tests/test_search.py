"""Search: the query language (parsing, canonical form, bounds) and the FTS5 index, whose answers
are checked against a plain Python search over the same records, written here from the README's
description of the language (a hypothesis property over words, phrases, prefixes, exclusions and
filters), also after random reloads and in a forked worker."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import re
import sqlite3
import tempfile
import threading
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc import fulltext
from feedsvc.errors import QueryError
from feedsvc.fields import slug_of
from feedsvc.fulltext import SearchIndex, fts_query, open_index
from feedsvc.records import (
    ParseResult,
    Record,
    Related,
    pack_related,
    shared_provider,
    shared_topic,
)
from feedsvc.repository import Collection, build_collection
from feedsvc.search import (
    MAX_QUERY_CHARS,
    MAX_RESULTS,
    MAX_TERMS,
    Question,
    Term,
    describe,
    parse_terms,
    read_question,
    searchable,
)
from feedsvc.urls import entry_id

# -- the query language ---------------------------------------------------------------------------


def terms(query: str) -> list[str]:
    return [str(term) for term in parse_terms(query)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("openai", ["openai"]),
        ("OpenAI  GPT", ["gpt", "openai"]),  # ASCII folded, sorted, one space
        ('"Large  language model"', ['"large language model"']),
        ('"openai"', ["openai"]),  # a phrase of one word is that word
        ("robot* -crypto", ["robot*", "-crypto"]),
        ('-"stock market"', ['-"stock market"']),
        ('"stock mar"*', ['"stock mar"*']),
        ("a a A", ["a"]),
        ("- & — *", []),  # nothing a word could match
        ('foo"bar baz"', ['"bar baz"', "foo"]),  # a quote starts a phrase
        ('"-x"', ['"-x"']),  # the quotes keep "-" from meaning exclusion
        ("--x", ["-x"]),
        ("gpt-4", ["gpt-4"]),
        ("東京*", ["東京"]),  # a CJK character is a word of its own: no prefix
        ("Ärzte", ["Ärzte"]),  # only ASCII letters are folded in the canonical form
        ("a\x00b", ["a", "b"]),  # controls separate words
        ("NEAR(a b) title:x OR ^y", ["^y", "b)", "near(a", "or", "title:x"]),
    ],
)
def test_terms_and_their_canonical_spelling(query: str, expected: list[str]) -> None:
    assert terms(query) == expected


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ('"unbalanced', "unbalanced quote"),
        ('a "b" "c', "unbalanced quote"),
        ("x" * (MAX_QUERY_CHARS + 1), f"longer than {MAX_QUERY_CHARS}"),
        (" ".join(f"w{i}" for i in range(MAX_TERMS + 1)), f"more than {MAX_TERMS}"),
        ("a*", "at least 2 letters"),
        ("gpt-4*", "at least 2 letters"),
    ],
)
def test_malformed_queries_say_why_in_one_line(query: str, reason: str) -> None:
    with pytest.raises(QueryError) as raised:
        parse_terms(query)
    assert reason in str(raised.value) and "\n" not in str(raised.value)


query_text = st.text(
    st.one_of(
        st.sampled_from(list('"-* abcAB\t\u3000東京é')),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=40,
)


@given(query_text)
def test_the_canonical_spelling_reads_back_as_the_same_terms(query: str) -> None:
    try:
        parsed = parse_terms(query)
    except QueryError:
        return
    assert parse_terms(" ".join(map(str, parsed))) == parsed


@given(query_text)
def test_every_term_reaches_fts5_as_a_quoted_string(query: str) -> None:
    """Whatever is typed, the FTS5 query is made of our own syntax around quoted strings: with
    the strings taken out, only the fixed vocabulary of `fts_query` remains."""
    try:
        question = Question(terms=parse_terms(query))
    except QueryError:
        return
    skeleton = re.sub(r'"(?:[^"]|"")*"', "S", fts_query(question))
    words = set(re.findall(r"[^\s(){}:*]+", skeleton))
    assert words <= {"S", "AND", "OR", "NOT", "facets", "title", "excerpt", "provider"} | {
        "topics",
        "related",
    }, skeleton


def question(query: str) -> Question:
    pairs = [tuple(pair.split("=", 1)) for pair in query.split("&")] if query else []
    return read_question(pairs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ("q=OpenAI", "q=openai"),
        ("topic=Computer Vision&topic=AI&q=x", "q=x&topic=ai&topic=computer-vision"),
        (
            "not_provider=usnews.com&provider=b&provider=a",
            "provider=a&provider=b&not_provider=usnews-com",
        ),
        ("since=2024-03-01&topic=ai&topic=ai&q=", "topic=ai&since=2024-03-01"),
        ('q=gpt* "stock market" -x~', "q=%22stock+market%22+gpt*+-x%7E"),
        ("utm_source=x&q=a&q=b", "q=a"),  # the first q counts; unknown names are dropped
        ("", ""),
    ],
)
def test_one_canonical_query_string_per_question(query: str, canonical: str) -> None:
    assert question(query).query_string() == canonical
    if canonical:
        assert question(canonical.replace("+", " ").replace("%22", '"').replace("%7E", "~")) == (
            question(query)
        )


def test_the_page_comes_last_and_only_after_the_first() -> None:
    asked = question("q=a&topic=ai")
    assert asked.query_string(1) == "q=a&topic=ai"
    assert asked.query_string(3) == "q=a&topic=ai&page=3"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("since=2024-02-30", "since must be a day"),
        ("since=yesterday", "since must be a day"),
        ("since=２０２４-01-01", "since must be a day"),
        ("topic=!!!", "has no letter or digit"),
        ("topic=" + "a" * 101, "longer than 100"),
        ("&".join(["topic=a"] * 17), "at most 16"),
    ],
)
def test_malformed_filters_say_why(query: str, reason: str) -> None:
    with pytest.raises(QueryError, match=reason):
        question(query)


def test_titles_say_what_was_asked(collection: Collection) -> None:
    def words(query: str) -> str:
        return describe(question(query), collection.topics, collection.providers)

    assert words("q=OpenAI&topic=ai") == 'search "openai" in AI'
    assert words("topic=computer-vision&topic=ai&not_provider=usnews.com") == (
        "articles in AI or Computer Vision not from U.S. News & World Report"
    )
    assert words("q=x&not_topic=nowhere&since=2024-01-02") == (
        'search "x" not in nowhere since 2024-01-02'
    )


# -- the index against a reference search ----------------------------------------------------------
#
# The reference reads the README's promises literally: text is split into words at every
# character that is not a letter or digit, compared without case or accents; CJK characters are
# words of their own; a phrase is consecutive words within one field value (the title, the
# excerpt, the provider's name, one topic's name, one related article's title); a prefix is the
# start of the last word.

VOCABULARY = ["model", "models", "modem", "vision", "Vision", "café", "CAFE", "naïve", "robot"]
VOCABULARY += ["gpt-4", "東京", "都庁", "open", "source", "Open-Source", "a", "x"]
VOCABULARY += ["all", "t6169"]  # the tokens of the facets column, which terms must not reach
TOPICS = ["AI", "Computer Vision", "Robotics", "AI in Autos"]
PROVIDERS = ["example.com", "news.example.org", "blog.example.net"]
MOMENTS = [datetime(2024, 1, day, hour, tzinfo=UTC) for day in (1, 2, 3) for hour in (0, 12)]
MOMENTS.append(datetime(2024, 1, 2, 12, 0, 0, 500_000, tzinfo=UTC))  # within a second of one


def fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def words_of(text: str) -> list[str]:
    spaced = re.sub(r"([\u3040-\u30ff\u4e00-\u9fff])", r" \1 ", text)
    return [fold(word) for word in re.findall(r"[^\W_]+", spaced)]


@dataclass(frozen=True)
class Article:
    """What hypothesis draws for one record."""

    title: list[str]
    excerpt: list[str]
    topics: list[str]
    provider: str | None
    related: list[list[str]]
    moment: datetime


def make_record(number: int, article: Article) -> Record:
    url = f"https://site.example/{number}"
    provider = (
        shared_provider(
            article.provider.split(".")[0].title(), article.provider, slug_of(article.provider)
        )
        if article.provider
        else None
    )
    related = [
        Related(" ".join(words), f"https://other.example/{number}/{i}", None, None)
        for i, words in enumerate(article.related)
    ]
    return Record(
        path=f"{number}.md",
        id=entry_id(url),
        title=" ".join(article.title) or "untitled",
        excerpt=" ".join(article.excerpt),
        published=article.moment,
        url=url,
        original_url=None,
        provider=provider,
        topics=tuple(shared_topic(name, slug_of(name)) for name in dict.fromkeys(article.topics)),
        images=(),
        coverage=pack_related(related),
    )


def fields(record: Record) -> list[list[str]]:
    values = [record.title, record.excerpt]
    values += [record.provider.name] if record.provider else []
    values += [topic.name for topic in record.topics]
    values += [item.title for item in record.related]
    return [words_of(value) for value in values]


def term_matches(term: Term, record: Record) -> bool:
    wanted = words_of(term.text)
    for words in fields(record):
        for start in range(len(words) - len(wanted) + 1):
            window = words[start : start + len(wanted)]
            if window[:-1] == wanted[:-1] and (
                window[-1].startswith(wanted[-1]) if term.prefix else window[-1] == wanted[-1]
            ):
                return True
    return False


def reference(records: Iterable[Record], asked: Question) -> list[Record]:
    def topics(record: Record) -> set[str]:
        return {topic.slug for topic in record.topics}

    def provider(record: Record) -> set[str]:
        return {record.provider.slug} if record.provider else set()

    def matches(record: Record) -> bool:
        return (
            all(term_matches(term, record) != term.exclude for term in asked.terms)
            and (not asked.topics or bool(topics(record) & set(asked.topics)))
            and (not asked.providers or bool(provider(record) & set(asked.providers)))
            and not topics(record) & set(asked.not_topics)
            and not provider(record) & set(asked.not_providers)
            and (asked.since is None or record.published.date() >= asked.since)
        )

    return [record for record in records if matches(record)][:MAX_RESULTS]


words = st.sampled_from(VOCABULARY)
articles = st.builds(
    Article,
    title=st.lists(words, min_size=1, max_size=5),
    excerpt=st.lists(words, max_size=6),
    topics=st.lists(st.sampled_from(TOPICS), max_size=3),
    provider=st.one_of(st.none(), st.sampled_from(PROVIDERS)),
    related=st.lists(st.lists(words, min_size=1, max_size=3), max_size=3),
    moment=st.sampled_from(MOMENTS),
)


@st.composite
def search_terms(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["word", "phrase", "prefix", "phrase-prefix"]))
    if kind == "word":
        text = draw(words)
    elif kind == "prefix":
        text = draw(st.sampled_from(["mod", "mo", "vis", "caf", "na", "op", "ro"])) + "*"
    else:
        pair = " ".join(draw(st.lists(words, min_size=2, max_size=2)))
        text = f'"{pair}"' + ("*" if kind == "phrase-prefix" and len(pair) > 1 else "")
    if text.endswith("*") and len(words_of(text)[-1]) < 2:
        text = text[:-1]  # too short a prefix is refused; tested elsewhere
    return ("-" if draw(st.booleans()) else "") + text


questions = st.builds(
    lambda q, topics, providers, not_topics, not_providers, since: read_question(
        [("q", " ".join(q))]
        + [("topic", name) for name in topics]
        + [("provider", name) for name in providers]
        + [("not_topic", name) for name in not_topics]
        + [("not_provider", name) for name in not_providers]
        + ([("since", since)] if since else [])
    ),
    st.lists(search_terms(), max_size=3),
    st.lists(st.sampled_from(TOPICS), max_size=2),
    st.lists(st.sampled_from(PROVIDERS), max_size=1),
    st.lists(st.sampled_from(TOPICS), max_size=1),
    st.lists(st.sampled_from(PROVIDERS), max_size=1),
    st.sampled_from([None, "2024-01-02", "2024-01-04"]),
)


def collection_of(records: Iterable[Record]) -> Collection:
    records = list(records)
    version = "".join(record.id[-4:] for record in records)  # a new name for new contents
    return build_collection([ParseResult(record) for record in records], version)


def titles(records: Iterable[Record]) -> list[str]:
    return [record.title for record in records]


SEARCH_SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SEARCH_SETTINGS
@given(st.lists(articles, min_size=1, max_size=12), st.lists(questions, min_size=1, max_size=4))
def test_the_index_finds_what_the_reference_finds(
    drawn: list[Article], asked: list[Question]
) -> None:
    collection = collection_of(make_record(n, article) for n, article in enumerate(drawn))
    index = open_index(None, collection)
    for one in asked:
        found = index.search(one)
        assert titles(found) == titles(reference(collection.records, one)), fts_query(one)
        assert list(found) == list(reference(collection.records, one))


@SEARCH_SETTINGS
@given(
    st.lists(articles, min_size=1, max_size=10),
    st.lists(
        st.tuples(st.sampled_from(["add", "edit", "remove", "keep"]), st.integers(0, 20), articles),
        min_size=1,
        max_size=6,
    ),
    st.lists(questions, min_size=1, max_size=3),
    st.sampled_from([1, 3, 1000]),
)
def test_reloads_keep_the_index_equal_to_a_fresh_one(
    drawn: list[Article],
    steps: list[tuple[str, int, Article]],
    asked: list[Question],
    fold_at: int,
) -> None:
    """A collection changed step by step (added, edited and removed records, unchanged records
    kept as the same objects, as reloads keep them) answers as a fresh index of it does, also
    while and after its overlay is folded into new base files (past `fold_at` rows)."""
    current = {n: make_record(n, article) for n, article in enumerate(drawn)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fulltext, "FOLD_AT", fold_at)
        index = open_index(None, collection_of(current.values()))
        for version, (action, number, article) in enumerate(steps, start=2):
            if action in ("add", "edit"):
                current[number] = make_record(number, article)
            elif action == "remove":
                current.pop(number, None)
            collection = collection_of(current.values())
            index.follow(collection, version)
            for one in asked:
                assert titles(index.search(one)) == titles(reference(collection.records, one))
        wait_for_fold(index)
        for one in asked:
            assert titles(index.search(one)) == titles(reference(collection.records, one))


def wait_for_fold(index: SearchIndex) -> None:
    deadline = time.monotonic() + 30
    while index.folding:
        assert time.monotonic() < deadline, "the overlay was not folded within 30 s"
        time.sleep(0.005)


@settings(SEARCH_SETTINGS, max_examples=40)  # each example writes a file at every restart
@given(
    st.lists(articles, min_size=1, max_size=10),
    st.lists(
        st.tuples(
            st.sampled_from(["add", "edit", "remove", "keep"]),
            st.integers(0, 20),
            articles,
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(questions, min_size=1, max_size=3),
)
def test_restarts_update_the_base_file_to_answer_as_a_fresh_index(
    drawn: list[Article],
    steps: list[tuple[str, int, Article, bool]],
    asked: list[Question],
) -> None:
    """A collection changed step by step, each step either a restart (the base file of the last
    start updated by the rows that differ, never built again) or a reload (the overlay): every
    question is answered exactly as by an index built from nothing over the same records."""
    current = {n: make_record(n, article) for n, article in enumerate(drawn)}
    with tempfile.TemporaryDirectory() as folder, pytest.MonkeyPatch.context() as patch:
        patch.setattr(fulltext, "REBUILD_FRACTION", float("inf"))
        path = Path(folder) / "search.sqlite"
        index = SearchIndex(path, versioned(current.values(), 1))
        for version, (action, number, article, restart) in enumerate(steps, start=2):
            if action in ("add", "edit"):
                current[number] = make_record(number, article)
            elif action == "remove":
                current.pop(number, None)
            collection = versioned(current.values(), version)
            if restart:
                built = path.stat().st_ino
                index = SearchIndex(path, collection)
                assert fulltext._stored_meta(path)["key"] == fulltext._key(collection)  # noqa: SLF001
                assert path.stat().st_ino != built  # a new file (readers of the old keep it)
            else:
                index.follow(collection, version)
            fresh = open_index(None, collection)
            for one in asked:
                assert list(index.search(one)) == list(fresh.search(one)), fts_query(one)
                assert titles(fresh.search(one)) == titles(reference(collection.records, one))


def versioned(records: Iterable[Record], version: int) -> Collection:
    """`collection_of`, under a version name of its own (as a load names different files)."""
    return dataclasses.replace(collection_of(records), version=f"v{version}")


def test_records_made_anew_with_equal_fields_are_the_same_articles() -> None:
    """A merged duplicate is a new object in every version: equal, not identical. Reloads that
    make it anew, next to records added and removed around it, index it once."""
    drawn = [Article(["model"], [], [], None, [], moment) for moment in MOMENTS]
    records = [make_record(n, article) for n, article in enumerate(drawn)]
    index = open_index(None, collection_of(records))
    for version in range(2, 8):
        records = [dataclasses.replace(record) for record in records]  # all equal copies
        if version % 2:
            records.append(
                make_record(100 + version, Article(["model"], [], [], None, [], MOMENTS[3]))
            )
        else:
            records.pop(version % len(records))
        collection = collection_of(records)
        index.follow(collection, version)
        asked = question("q=model")
        assert titles(index.search(asked)) == titles(reference(collection.records, asked))
        assert len(index.search(asked)) == len(records)


def test_the_stretch_where_two_versions_differ() -> None:
    records = tuple(
        make_record(n, Article(["x"], [], [], None, [], MOMENTS[0])) for n in range(10_000)
    )
    new = make_record(-1, Article(["x"], [], [], None, [], MOMENTS[0]))
    copy = dataclasses.replace(records[5000])
    cases = [
        (records, (10_000, 10_000, 10_000)),
        ((new, *records), (0, 0, 1)),
        ((*records, new), (10_000, 10_000, 10_001)),
        (records[:4999] + (new,) + records[5000:], (4999, 5000, 5000)),
        (records[:5000] + records[5001:], (5000, 5001, 5000)),
        (records[:5000] + (copy,) + records[5001:], (10_000, 10_000, 10_000)),  # equal: the same
        (records[:5000] + (copy,) + records[5001:5100] + records[5101:], (5100, 5101, 5100)),
        ((new,), (0, 10_000, 1)),
        ((), (0, 10_000, 0)),
    ]
    for changed, expected in cases:
        start, old_end, new_end = fulltext._differing(records, changed)
        assert (start, old_end, new_end) == expected, expected
        assert records[:start] == changed[:start] and records[old_end:] == changed[new_end:]


def test_terms_reach_neither_the_filters_tokens_nor_across_values() -> None:
    """The facets column holds the filters' tokens (`all`, a topic's slug in hex): a term never
    matches them. Topics and related titles are several values in one column: a phrase never
    runs from one into the next."""
    drawn = [
        Article(
            ["model"],
            [],
            ["AI", "Computer Vision"],
            "example.com",
            [["open"], ["source"]],
            MOMENTS[0],
        ),
        Article(["all t6169 p6578616d706c652d636f6d"], [], [], None, [], MOMENTS[1]),
    ]
    collection = collection_of(make_record(n, article) for n, article in enumerate(drawn))
    index = open_index(None, collection)
    for query in ("all", "t6169", "p6578616d706c652d636f6d", '"open source"', '"ai computer"'):
        asked = question(f"q={query}")
        assert titles(index.search(asked)) == titles(reference(collection.records, asked)), query
    assert titles(index.search(question("q=open source"))) == ["model"]


def test_exclusions_alone_and_filters_alone_are_questions(collection: Collection) -> None:
    index = open_index(None, collection)
    everything = titles(collection.records)
    assert titles(index.search(question("q=-zzzz"))) == everything
    assert titles(index.search(question("since=1990-01-01"))) == everything
    assert titles(index.search(question("not_topic=ai"))) == titles(
        record for record in collection.records if "ai" not in {t.slug for t in record.topics}
    )


def test_unicode_is_searched_as_readers_expect() -> None:
    texts = [
        "Café crème in Zürich",
        "東京都庁の新しいAI",
        "ﬁnance ＡＩ report",
        "شركة كَتَبَت التقرير",
        "שָׁלוֹם world",
        "soft\u00adware news",
    ]
    articles_ = [Article([t], [], [], None, [], MOMENTS[0]) for t in texts]
    collection = collection_of(make_record(n, article) for n, article in enumerate(articles_))
    index = open_index(None, collection)
    for query, expected in [
        ("cafe CRÈME zurich", texts[0]),
        ("東京", texts[1]),  # inside a longer run of CJK
        ("都庁", texts[1]),
        ('"京都"', texts[1]),  # any run of its characters
        ("finance AI", texts[2]),  # compatibility forms folded
        ("كتبت", texts[3]),  # without the vowel marks
        ("שלום", texts[4]),
        ("software", texts[5]),
    ]:
        assert titles(index.search(question(f"q={query}"))) == [expected], query


# -- the base file ---------------------------------------------------------------------------


def test_a_warm_start_reuses_the_base_updates_it_by_what_changed_or_builds_it(
    tmp_path: Path,
    collection: Collection,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO, "feedsvc.fulltext")
    monkeypatch.setattr(fulltext, "REBUILD_FRACTION", 0.25)  # of nine rows: two may change
    path = tmp_path / "cache" / "search.sqlite"
    first = SearchIndex(path, collection)
    built = path.stat()
    assert "built" in caplog.text
    caplog.clear()
    again = SearchIndex(path, collection)
    assert "reused" in caplog.text and path.stat().st_ino == built.st_ino
    assert titles(again.search(question("q=vision"))) == titles(first.search(question("q=vision")))

    # One record edited while the server was down: its row is patched, in a new file.
    records = list(collection.records)
    records[4] = dataclasses.replace(records[4], title=f"Zebra {records[4].title}")
    edited = dataclasses.replace(collection, records=tuple(records), version="edited")
    caplog.clear()
    updated = SearchIndex(path, edited)
    assert "updated (2 rows changed)" in caplog.text  # the row masked, and its patch
    assert path.stat().st_ino != built.st_ino
    assert titles(updated.search(question("q=zebra"))) == [records[4].title]
    for asked in ("q=vision", "q=italy", "topic=ai"):
        assert titles(updated.search(question(asked))) == titles(
            open_index(None, edited).search(question(asked))
        )
    caplog.clear()
    back = SearchIndex(path, dataclasses.replace(collection, version="back"))
    assert "updated (2 rows changed)" in caplog.text  # unmasked, and the patch's row taken out
    assert titles(back.search(question("q=zebra"))) == []

    smaller = collection_of(collection.records[3:])  # three rows masked: more than a quarter
    caplog.clear()
    SearchIndex(path, smaller)
    assert "built" in caplog.text
    with sqlite3.connect(path) as db:  # as an older feedsvc would have left it
        db.execute("UPDATE meta SET value = 'format=1 parse=1' WHERE name = 'layout'")
    caplog.clear()
    SearchIndex(path, collection)
    assert "built" in caplog.text
    path.write_bytes(b"not a database")
    caplog.clear()
    rebuilt = SearchIndex(path, collection)
    assert "cannot be used" in caplog.text and "built" in caplog.text
    assert titles(rebuilt.search(question("q=vision"))) == titles(
        first.search(question("q=vision"))
    )
    assert not list(path.parent.glob(".search-*")), "temporary files are left behind"


def changed_titles(records: list[Record], numbers: Iterable[int]) -> list[Record]:
    """`records` with those at `numbers` retitled "Zebra ...", as edits would."""
    records = list(records)
    for number in numbers:
        records[number] = dataclasses.replace(records[number], title=f"Zebra {number}")
    return records


def generation(path: Path) -> str:
    return fulltext._stored_meta(path)["generation"]  # noqa: SLF001


def test_an_overlay_past_its_bound_is_folded_into_a_new_base_file(
    tmp_path: Path, collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fulltext, "FOLD_AT", 2)
    path = tmp_path / "search.sqlite"
    index = SearchIndex(path, versioned(collection.records, 1))
    first = generation(path)
    index.search(question("q=vision"))
    edited = versioned(changed_titles(list(collection.records), [1, 4, 6]), 2)
    index.follow(edited, 2)  # three rows overlaid and three masked: past the bound
    wait_for_fold(index)
    assert index.folds == 1 and index.overlay_size == 0
    assert generation(path) != first
    assert fulltext._stored_meta(path)["key"] == fulltext._key(edited)  # noqa: SLF001
    for asked in ("q=zebra", "q=vision", "topic=ai", "q=-zebra"):
        assert titles(index.search(question(asked))) == titles(
            reference(edited.records, question(asked))
        )
    restarted = SearchIndex(path, edited)  # the next start finds the folded file as it is
    assert generation(path) != first and restarted.overlay_size == 0


def test_searches_and_reloads_go_on_while_the_overlay_is_folded(
    tmp_path: Path, collection: Collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fold is held in the middle of writing the new file: searches and a reload are
    answered meanwhile, and what the reload changed stays in the overlay after the swap."""
    writing, go_on = threading.Event(), threading.Event()
    update_base = fulltext._update_base  # noqa: SLF001

    def held(*args: object) -> int | None:
        writing.set()
        assert go_on.wait(30)
        return update_base(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(fulltext, "_update_base", held)
    monkeypatch.setattr(fulltext, "FOLD_AT", 2)
    index = SearchIndex(tmp_path / "search.sqlite", versioned(collection.records, 1))
    index.search(question("q=vision"))
    edited = versioned(changed_titles(list(collection.records), [1, 4, 6]), 2)
    index.follow(edited, 2)
    assert writing.wait(30) and index.folding
    assert titles(index.search(question("q=zebra"))) == ["Zebra 1", "Zebra 4", "Zebra 6"]
    later = versioned(changed_titles(list(edited.records), [0]), 3)
    index.follow(later, 3)
    assert titles(index.search(question("q=zebra"))) == titles(
        reference(later.records, question("q=zebra"))
    )
    assert index.folding  # all of it answered while the fold waits
    go_on.set()
    wait_for_fold(index)
    assert index.folds == 1 and index.overlay_size == 1  # the reload's change, kept
    for asked in ("q=zebra", "q=vision", "topic=ai", "q=-zebra"):
        assert titles(index.search(question(asked))) == titles(
            reference(later.records, question(asked))
        )


def test_a_base_file_another_server_replaced_is_adopted(
    tmp_path: Path, collection: Collection
) -> None:
    """Two servers sharing one file (or a worker that had not searched yet when its sibling
    folded): the one whose file was replaced searches its own records, not the file's."""
    path = tmp_path / "search.sqlite"
    ours = SearchIndex(path, versioned(collection.records, 1))
    theirs = versioned(changed_titles(list(collection.records[2:]), [0, 3]), 2)
    SearchIndex(path, theirs)  # rewrites the file before ours attaches it
    for asked in ("q=zebra", "q=vision", "topic=ai", "q=-vision"):
        assert titles(ours.search(question(asked))) == titles(
            reference(collection.records, question(asked))
        )
    assert ours.overlay_size == 4  # two records it has and the file had not, two edited back
    edited = versioned(changed_titles(list(collection.records), [5]), 3)
    ours.follow(edited, 3)
    assert titles(ours.search(question("q=zebra"))) == ["Zebra 5"]


def test_a_temporary_base_goes_with_its_index(collection: Collection) -> None:
    index = open_index(None, collection)
    folder = index.base.parent
    assert folder.is_dir()
    del index
    assert not folder.exists()


def _search_in_child(index: SearchIndex, asked: Question, queue: multiprocessing.Queue) -> None:
    queue.put(titles(index.search(asked)))


def test_a_forked_worker_searches_its_parents_version(collection: Collection) -> None:
    index = open_index(None, collection)
    asked = question("q=vision")
    index.search(asked)  # the parent has a connection of its own, which the child must not use
    changed = collection_of(collection.records[2:])
    index.follow(changed, 2)
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue = context.Queue()
    child = context.Process(target=_search_in_child, args=(index, asked, queue))
    child.start()
    found = queue.get(timeout=30)
    child.join(timeout=30)
    assert found == titles(reference(changed.records, asked)) == titles(index.search(asked))
    assert child.exitcode == 0 and index.base.exists()


def test_a_query_over_its_cpu_budget_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    many = [
        Article(["model vision"], [], [], None, [], MOMENTS[0] + timedelta(minutes=n))
        for n in range(2000)
    ]
    index = open_index(None, collection_of(make_record(n, a) for n, a in enumerate(many)))
    asked = question("q=model")
    assert len(index.search(asked)) == MAX_RESULTS
    monkeypatch.setattr(fulltext, "QUERY_CPU_SECONDS", 0.0)
    with pytest.raises(QueryError, match="takes too long"):
        index.search(asked)
    monkeypatch.undo()
    assert len(index.search(asked)) == MAX_RESULTS  # the next query has its own budget


def test_matches_are_capped_at_the_newest() -> None:
    many = [
        Article(["model"], [], [], None, [], MOMENTS[0] + timedelta(seconds=n // 3))
        for n in range(MAX_RESULTS + 10)
    ]
    collection = collection_of(make_record(n, a) for n, a in enumerate(many))
    found = open_index(None, collection).search(question("q=model"))
    assert list(found) == list(collection.records[:MAX_RESULTS])


def test_searchable_leaves_ascii_alone() -> None:
    assert searchable("Plain ASCII, as most text is: x*y") == "Plain ASCII, as most text is: x*y"
