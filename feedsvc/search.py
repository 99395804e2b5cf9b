"""Search: the query language readers type, the questions it makes, and the feed of a question's
matches. The full-text index that answers them is `feedsvc.fulltext`.

The query language is ours (README, Search): words, "quoted phrases", a prefix* and -exclusion,
every term required (AND). `parse_terms` reads it into `Term`s, and `fulltext` writes each term as
an FTS5 string (quoted, an inner quote doubled), so a reader's text never becomes FTS5 syntax:
`NEAR`, `OR`, `^` and `title:` are words like any other. A `Question` is the terms and the
filters (topics and providers, any of; topics and providers left out; a first day). It has one
canonical query string, which its feeds' self links and ids use and which the web module
redirects every other spelling of the same question to.

Bounds keep a question cheap to parse and to answer: `MAX_QUERY_CHARS`, `MAX_TERMS`,
`MAX_FILTERS`, a prefix of at least `MIN_PREFIX` characters, and at most `MAX_RESULTS` matches
(the newest), so that a word found in every record costs what a rare one does.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote_plus

from feedsvc.errors import QueryError
from feedsvc.feeds import Feed, Site
from feedsvc.fields import slug_of
from feedsvc.records import Record
from feedsvc.repository import Group

MAX_QUERY_CHARS = 256
MAX_TERMS = 16
MAX_FILTERS = 16  # topic, provider, not_topic and not_provider values together
MAX_FILTER_CHARS = 100
MIN_PREFIX = 2
MAX_RESULTS = 1000

# The filters a question may carry, in the order of the canonical query string.
FILTERS = ("topic", "provider", "not_topic", "not_provider")
# A term: an optional "-", then a "phrase" (with its closing quote, if any, and an optional "*")
# or a word (anything up to white space or a quote).
_TERM = re.compile(r'(-?)(?:"([^"]*)("?)(\*?)|([^\s"]+))')
# Controls and what cannot be encoded (lone surrogates) separate words, as spaces do.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


# -- text as the index sees it ------------------------------------------------------------------
#
# FTS5's unicode61 tokenizer (with remove_diacritics 2) folds case and Latin accents and splits on
# every character that is not a letter, digit or private-use character. `searchable` prepares
# records and queries alike for what it does not do:
# - compatibility forms are folded (NFKC: full-width "ＡＩ" is "AI", the ligature "ﬁ" is "fi");
# - Arabic and Hebrew vowel marks and the Arabic tatweel are dropped, so that a word is found
#   with or without them; soft hyphens and zero-width joiners are dropped, zero-width spaces
#   separate words;
# - CJK has no spaces between words and unicode61 does not segment it, so each Han, kana and
#   Hangul character is made a word of its own: a CJK query becomes the phrase of its
#   characters, which finds it inside longer runs (東京 finds 東京都庁);
# - private-use characters are dropped, so that no query can spell the separator token.
# Not done: Thai, Lao, Khmer and Myanmar are not segmented (a word is found only where spaces or
# punctuation delimit it); letters that are not accented forms (ø, æ, ß) are not folded.


def _characters(*ranges: tuple[int, int], category: str | None = None) -> str:
    """A regex character class of the code points in `ranges` (of `category`, when given)."""
    chosen = [
        chr(point)
        for start, stop in ranges
        for point in range(start, stop + 1)
        if category is None or unicodedata.category(chr(point)) == category
    ]
    return "[" + "".join(re.escape(char) for char in chosen) + "]"


_VOWEL_MARKS = _characters(
    (0x0591, 0x05C7), (0x0610, 0x061A), (0x064B, 0x065F), (0x06D6, 0x06ED), category="Mn"
)
_DROPPED = re.compile(
    "|".join(
        (
            _VOWEL_MARKS,
            "[\u0670\u0640\u00ad\u200c\u200d\u2060\ufeff]",
            "[\ue000-\uf8ff\U000f0000-\U0010ffff]",
        )
    )
)
_CJK_RANGES = (
    "\u1100-\u11ff\u2e80-\u2fdf\u3040-\u30ff\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7ff\uf900-\ufaff\U00020000-\U0003134f"
)
_CJK = re.compile(f"[{_CJK_RANGES}]")
_CJK_CHARACTER = re.compile(f"([{_CJK_RANGES}])")
_WORD = re.compile(r"[^\W_]+")  # unicode61's tokens, near enough for telling terms apart
# Joins the values of a field that has several (topics, related titles) in the index: a token of
# its own, so that a phrase cannot run from one value into the next, and one no query can spell.
SEPARATOR = " \ue000 "


def searchable(text: str) -> str:
    """`text` as it is indexed and looked up (see above); ASCII text is left as it is."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    text = _DROPPED.sub("", text.replace("\u200b", " "))
    return _CJK_CHARACTER.sub(r" \1 ", text) if _CJK.search(text) else text


@dataclass(frozen=True, slots=True)
class Term:
    """One term of a query: `text` as the reader wrote it (ASCII letters lower-cased), without
    the quotes, `-` and `*` that mark it."""

    text: str
    phrase: bool = False
    prefix: bool = False
    exclude: bool = False

    def __str__(self) -> str:
        """The term as the query language writes it: its canonical spelling."""
        body = f'"{self.text}"' if self.phrase else self.text
        return ("-" if self.exclude else "") + body + ("*" if self.prefix else "")


def parse_terms(query: str) -> tuple[Term, ...]:
    """The terms of `query`, each once, in canonical order (required terms first, each group
    sorted). Terms without a letter or digit (`-`, `&`) are dropped: they could match nothing.

    :raises QueryError: the query is too long, has too many terms, an unbalanced quote, or a
        prefix too short to look up.
    """
    if len(query) > MAX_QUERY_CHARS:
        raise QueryError(f"q is longer than {MAX_QUERY_CHARS} characters")
    terms = set()
    for match in _TERM.finditer(_CONTROL.sub(" ", query)):
        term = _term(match)
        if term is not None:
            terms.add(term)
    if len(terms) > MAX_TERMS:
        raise QueryError(f"q has more than {MAX_TERMS} different terms")
    return tuple(sorted(terms, key=lambda term: (term.exclude, str(term))))


def _term(match: re.Match[str]) -> Term | None:
    exclude = bool(match[1])
    if match[2] is not None:
        if not match[3]:
            raise QueryError('q has an unbalanced quote: a phrase ends with a second "')
        text, prefix = " ".join(match[2].split()), bool(match[4])
        # A phrase of one word is that word (the same FTS5 string), unless the quotes keep a
        # "-" or "*" in it from meaning exclusion or prefix.
        phrase = " " in text or text.startswith("-") or text.endswith("*")
    else:
        word = match[5]
        text, prefix, phrase = word.lstrip("-").rstrip("*"), word.endswith("*"), False
    text = text.translate(_ASCII_LOWER)
    words = _WORD.findall(searchable(text))
    if not words:
        return None
    last = words[-1]
    if prefix and _CJK.fullmatch(last):
        prefix = False  # a CJK character is a word of its own: nothing longer starts with it
    if prefix and len(last) < MIN_PREFIX:
        shown = str(Term(text, phrase, prefix, exclude))
        raise QueryError(
            f"a prefix needs at least {MIN_PREFIX} letters or digits before the *: {shown!r}"
        )
    return Term(text, phrase, prefix, exclude)


@dataclass(frozen=True, slots=True)
class Question:
    """What a reader asked: terms, and filters on topics, providers and the first day. Within a
    filter any value matches; terms and filters must all hold."""

    terms: tuple[Term, ...] = ()
    topics: tuple[str, ...] = ()  # slugs, sorted, each once (as are the three below)
    providers: tuple[str, ...] = ()
    not_topics: tuple[str, ...] = ()
    not_providers: tuple[str, ...] = ()
    since: date | None = None

    @property
    def q(self) -> str:
        """The query in its canonical spelling."""
        return " ".join(map(str, self.terms))

    @property
    def empty(self) -> bool:
        """Nothing asked: no term and no filter (that question's feed is the all-items feed)."""
        return self == Question()

    def values(self, name: str) -> tuple[str, ...]:
        """The slugs of the filter `name` (one of `FILTERS`)."""
        found: tuple[str, ...] = getattr(self, _FILTER_FIELDS[name])
        return found

    def query_string(self, page: int = 1) -> str:
        """The canonical query string: q, each filter's values in order, since, then page (when
        not 1); encoded as a browser's form encodes it, so that a form sent with canonical
        values needs no redirect."""
        pairs = [("q", self.q)] if self.terms else []
        pairs += [(name, value) for name in FILTERS for value in self.values(name)]
        if self.since is not None:
            pairs.append(("since", self.since.isoformat()))
        if page > 1:
            pairs.append(("page", str(page)))
        return "&".join(f"{name}={_form_quote(value)}" for name, value in pairs)


_FILTER_FIELDS = {
    "topic": "topics",
    "provider": "providers",
    "not_topic": "not_topics",
    "not_provider": "not_providers",
}


def _form_quote(value: str) -> str:
    """application/x-www-form-urlencoded as browsers write it (WHATWG URL): space as "+", and
    only ASCII letters, digits and `*-._` left as they are."""
    return quote_plus(value, safe="*").replace("~", "%7E")


def read_question(pairs: Iterable[tuple[str, str]]) -> Question:
    """The question in a query string's (name, value) pairs (`page` and unknown names are left
    to the caller); the first `q` and `since` count, filters may repeat, empty values are
    ignored. Filter values may be slugs or names (`Computer Vision` is `computer-vision`).

    :raises QueryError: a value cannot be read or a bound is passed.
    """
    first: dict[str, str] = {}
    filters: dict[str, set[str]] = {name: set() for name in FILTERS}
    count = 0
    for name, value in pairs:
        if name in ("q", "since"):
            first.setdefault(name, value)
        elif name in filters and value.strip():
            count += 1
            if count > MAX_FILTERS:
                raise QueryError(f"a search takes at most {MAX_FILTERS} topics and providers")
            filters[name].add(_filter_slug(name, value))
    return Question(
        terms=parse_terms(first.get("q", "")),
        topics=tuple(sorted(filters["topic"])),
        providers=tuple(sorted(filters["provider"])),
        not_topics=tuple(sorted(filters["not_topic"])),
        not_providers=tuple(sorted(filters["not_provider"])),
        since=_since(first.get("since", "").strip()),
    )


def _filter_slug(name: str, value: str) -> str:
    if len(value) > MAX_FILTER_CHARS:
        raise QueryError(f"{name} is longer than {MAX_FILTER_CHARS} characters")
    slug = slug_of(_CONTROL.sub(" ", value))
    if not slug:
        raise QueryError(f"{name} {value[:40]!r} has no letter or digit")
    return slug


def _since(raw: str) -> date | None:
    if not raw:
        return None
    try:
        if _DATE.fullmatch(raw):
            return date.fromisoformat(raw)
    except ValueError:
        pass
    raise QueryError(f"since must be a day as YYYY-MM-DD, not {raw[:20]!r}")


def describe(
    question: Question, topics: Mapping[str, Group], providers: Mapping[str, Group]
) -> str:
    """The question in words, as titles show it: `search "openai" in AI`, `articles in Robotics
    or Computer Vision not from example.com`. Topics and providers go by their names (by their
    slugs while the collection has none)."""

    def names(slugs: tuple[str, ...], groups: Mapping[str, Group]) -> str:
        return " or ".join(groups[slug].name if slug in groups else slug for slug in slugs)

    parts = [f'search "{question.q}"' if question.terms else "articles"]
    for prefix, slugs, groups in (
        ("in", question.topics, topics),
        ("from", question.providers, providers),
        ("not in", question.not_topics, topics),
        ("not from", question.not_providers, providers),
    ):
        if slugs:
            parts.append(f"{prefix} {names(slugs, groups)}")
    if question.since is not None:
        parts.append(f"since {question.since.isoformat()}")
    return " ".join(parts)


class SearchFeed(Feed):
    """The matches of a question, newest first (at most `MAX_RESULTS`), at
    `/feeds/search.<format>?<canonical query>`; its HTML page is `/search?<canonical query>`."""

    scope = "search"
    pushed = False  # a question of a reader's, not a topic hubs are told of

    def __init__(self, question: Question, matches: tuple[Record, ...], description: str) -> None:
        super().__init__(matches)
        self.question = question
        self.description = description
        self.query = question.query_string()

    @property
    def name(self) -> str:
        return self.description

    @property
    def path(self) -> str:
        return "/feeds/search"

    @property
    def html_path(self) -> str:
        return "/search"

    def title(self, site: Site) -> str:
        return f"{site.title}: {self.description}"

    def subtitle(self, site: Site) -> str:
        return f"Articles of {site.title} that match this search, newest first."
