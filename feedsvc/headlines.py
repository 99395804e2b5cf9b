"""Headline words: whether two records that share an article URL report one event.

A shared URL alone is weak evidence (a record's related coverage is the aggregator's topical
neighbourhood), so `same_event` also asks the headlines: two distinctive words in common, one of
them neither a topic word, nor a company's name, nor a word common in the collection's headlines
(`WordCounts`), and when that is all, the excerpts one distinctive word more; excerpts that
share three make up for headlines that share two words but no distinctive one. Measured on
real records in bench/README.md (Real sample, Held-out sample, Whole-day sample, Excerpts).
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import TypeVar

from feedsvc.comparison import own_keys
from feedsvc.records import Record

_K = TypeVar("_K")


def same_event(one: Record, other: Record, common: AbstractSet[str] = frozenset()) -> bool:
    """Whether two records that hold a common article URL within the window report one event.
    A shared URL alone is weak evidence: a record's related coverage is the aggregator's
    topical neighbourhood. Depends on the two records and the words `common` around them only
    (`WordCounts.common_of`), so that regrouping stays local.

    The headlines must share two distinctive words (`headline_words`; a topic word such as
    "facial" or "driving" counts half), and one of them neither a topic word, nor the name of a
    company or platform behind many events (`ENTITY_WORDS`), nor a word common in the
    collection's headlines around the pair's time (`common`, `WordCounts`: "bing" in February
    2023): "Meta pauses Galactica demo" and "Meta fires Galactica AI" are one event, "Facebook
    takes down AI that churns out fake papers" and "Facebook says it has created a human-level
    board game AI" are two. Three shared words that are not names (a topic word counting half)
    are one event however common they are: an event said day after day makes its own words
    common ("Tesla recalls 362,758 vehicles, says Full Self-Driving Beta software may cause
    crashes" and "Regulators force Tesla to recall 363,000 'Full Self-Driving' vehicles" share
    "recall", "full", "self", "driving" and "vehicle"); on real pairs, three shared words were
    right for 81 % of the pairs they linked, two for 58 % (bench/README.md, Real sample).
    But topic words are the field, not particulars of an event: three shared words that need
    them to make three are asked what the least evidence is asked (the excerpts, below), as
    "Waymo seeks permit to sell self-driving car rides in San Francisco" and "Phoenix airport 1st
    to offer self-driving ride service Waymo" share "waymo", "ride" and a topic ("self",
    "driving"), three days apart, in one neighbourhood's list, and their excerpts nothing more.
    When the headlines give only that least evidence (two shared words, not three that are not
    names) and both records have an excerpt, the texts must add a distinctive word
    (`_texts_agree`): "Nvidia to build Israel's most potent AI supercomputer" and "Nvidia's new
    Grace Hopper superchip to fuel its DGX GH200 AI supercomputer" are two events. And when the
    headlines share two words that are not common but no distinctive one, the texts make up for
    it with three distinctive words (`_texts_make_up`).
    Two records that are one article (their own URLs have a comparison key in common: a copy
    with a tracking parameter, an AMP form) are one event when their headlines have any word in
    common ("Computer Vision and the CCPA" twice: "vision" and "ccpa" are not enough otherwise).
    The shared word bounds the cost: most pairs the headlines refuse share none, and working out
    the own keys of every refused pair cost a fifth of grouping 100,000 records.
    And when the records have excerpts and were published within `NAME_HOURS` of each other, a
    shared distinctive word that either record writes as a name (`written_names`: Databricks,
    LakehouseIQ, RTX, S24) needs one distinctive word more, in the headlines or the texts, not
    what `_texts_agree` asks (`_names_agree`).
    Whatever words the headlines share, two records with excerpts whose headlines each name a
    particular of their own that the other record's headline and excerpt lack are two events
    (`_particulars_differ`: the TPU's I/O conference and LaMDA both "next-generation").
    How a round is told and when ("raises", "Series B", "funding", "January 2020":
    `FIELD_WORDS_LISTED`) are topic words, and an amount of money ("$20M") counts as two words but
    is no distinctive one: rounds of one week raise the same sums in the same words, the reports
    of one round share its company ("GumGum Secures $22M in Series B Funding" and "Aisera Secures
    $20M in Series B Funding" are two events, issue 13).
    A round-up (`headline_kind` ROUND_UP: "The Morning After: Getty Images sues AI art
    generator") tells several stories and belongs to none: it joins a story only as one article.
    A headline that asks or explains (ASKING: "How AI is about to change your Google search
    results", "Will artificial intelligence replace artists after winning a competition?") is
    analysis or a how-to more often than a report: it joins a headline that does not ask on
    three shared particulars (`_PARTICULARS`) or as one article, not on the least evidence, as an
    analysis of a field shares two words with any event of it ("Why 2023 was a such bumpy ride
    for self-driving cars" and a column "Enjoy the ride in a car with no driver"). Two that ask
    are judged as two reports are: one analysis republished under a new headline ("Why some
    cities and states balk at face recognition tech", "Why some cities, states and lawmakers want
    to curb facial recognition technology").
    Measured on real records in bench/README.md (Real sample, Held-out sample, Whole-day sample)."""
    shared = headline_words(one.title) & headline_words(other.title)
    if not shared:  # (most pairs asked)
        return False
    kind, other_kind = headline_kind(one.title), headline_kind(other.title)
    if kind == ROUND_UP or other_kind == ROUND_UP:
        return _one_article(one, other)
    if kind != other_kind and _particulars(shared, common) < _PARTICULARS:  # one asks
        return _one_article(one, other)
    topical = shared & TOPIC_WORDS
    weight = 2 * len(shared) - len(topical)  # twice the shared words, a topic word half
    excerpts = bool(one.excerpt and other.excerpt)
    if excerpts and _particulars_differ(one, other, common):
        return _one_article(one, other)
    if weight >= 4:
        names = len(shared & ENTITY_WORDS)
        three = weight - 2 * names >= 6  # three shared words not names, a topic word half
        if three and (not excerpts or len(shared) - names - len(topical) >= _PARTICULARS):
            return True
        if (three or any(_distinctive(word, common) for word in shared)) and (
            not excerpts or _texts_agree(one, other, shared, common)
        ):
            return True
    if excerpts and (
        _texts_make_up(one, other, shared, common) or _names_agree(one, other, shared, common)
    ):
        return True
    return _one_article(one, other)


def _distinctive(word: str, common: AbstractSet[str]) -> bool:
    """Whether a shared word is a particular of an event: neither a listed name, a topic or field
    word, a word common around the pair's time, nor an amount of money. An amount counts as a word
    of a headline (Nvidia, Arm and "$40 billion" are one deal) but is no particular on its own:
    rounds of one week raise the same sums ("Aisera Secures $20M in Series B Funding" and
    "SoftBank-backed Eureka AI bags $20m in series B round" are two rounds)."""
    return word not in _WEAK_WORDS and word not in common and not word.startswith(AMOUNT_MARK)


# What a headline of a round-up, newsletter or digest says: it gathers several stories.
# A briefing or digest is one by its series' name ("Daily briefing:", "Data Digest"), not as a
# word of an event ("a White House briefing on AI", "helps doctors digest records"); "This Week
# In XR:" begins a headline ("unveiled this week in Paris" is an event's).
_ROUND_UP = re.compile(
    r"\b(?:round-?ups?|round up|recap|the morning after|newsletter|top videos|top stories"
    r"|week in review|(?:daily|morning|evening|weekly|news|data) (?:briefing|digest))\b"
    r"|\b(?:briefing|digest|weekly):|^this week in\b"
    r"|, and more(?: of today| tech news| news|\W*$)",
    re.IGNORECASE,
)


# What a headline that asks or explains begins with: an explainer, a how-to, analysis or a
# column ("How ...", "Why ...", "What to Know About ...", "In Self-Driving, Amazon Invests While
# Walmart Partners", "Can a Self-Driving 40-Ton Truck ...?"). Not a question mark at its end: a
# report of a rumour ends with one ("MediaTek likely to incorporate Nvidia AI GPU in smartphone
# SoC?"), and the blind samples' analyses that end with one begin with one of these words.
_ASKING = re.compile(
    r"^(?:how|why|what|when|where|who|is|are|can|could|should|will|would|does|do|in)\b",
    re.IGNORECASE,
)


# What a headline is (`headline_kind`): a report, one that asks or explains, or a round-up's.
REPORT, ASKING, ROUND_UP = 0, 1, 2


def _headline_kind(title: str) -> int:
    """ROUND_UP for a round-up's, a newsletter's or a digest's headline (`_ROUND_UP`: "The
    Morning After: ...", "This Week In XR: ...", "AI News roundup: ...", "Daily briefing: ...",
    "..., and more of today's top videos"): every such record of the blind samples was an event
    of its own on the strict reading (19 of 19, bench/README.md, Stories), joined to one of the
    stories it tells by the words they share. ASKING for a headline that asks or explains
    (`_ASKING`): such a record joined to a report by two shared words was more often analysis of
    its field than a report of the event (bench/README.md, Stories). REPORT otherwise.
    Remembered while a grouping runs, as the headline words are: `same_event` asks it of both
    records of every pair whose headlines share a word."""
    if _ROUND_UP.search(title):
        return ROUND_UP
    if _ASKING.match(title):
        return ASKING
    return REPORT


headline_kind = lru_cache(maxsize=1 << 17)(_headline_kind)


def _particulars(shared: AbstractSet[str], common: AbstractSet[str]) -> int:
    """How many of the headlines' shared words are particulars of an event (`_distinctive`)."""
    return sum(_distinctive(word, common) for word in shared)


def _one_article(one: Record, other: Record) -> bool:
    mine = own_keys(one.url, one.original_url)
    return any(key in mine for key in own_keys(other.url, other.original_url))


def _particulars_differ(one: Record, other: Record, common: AbstractSet[str]) -> bool:
    """Whether each record's headline names a particular of its own (`_own_name`) that the
    other record's headline and excerpt lack: two events of one subject, whatever words their
    headlines share. Shared words may be one subject's name ("Elon Musk", "Google") or a phrase of
    the field ("raises seed funding", "next-generation"), while what happened is told by the
    names each headline holds alone: "Rezo.ai Raises Seed Funding Led By Modulor Capital" and
    "Brazil: AI startup Adroit Robotics raises seed funding" (two startups), "Google Launches
    Next-Generation AI Chip at I/O Developer Conference" and "Google demos LaMDA, a
    next-generation AI for dialogue" (two announcements of one conference). The reports of one
    event name its particulars in their first lines: a name one headline holds, the other's
    excerpt repeats. Asked only of records that both have an excerpt (the text to look in), and
    not when an excerpt says no word its headline does not (nothing to look in, as in
    `_texts_agree`). Measured in bench/README.md (Stories)."""
    mine, theirs = text_words(one.title, one.excerpt), text_words(other.title, other.excerpt)
    if len(mine) <= len(headline_words(one.title)) or len(theirs) <= len(
        headline_words(other.title)
    ):
        return False  # first: two length tests, before two scans of the headlines' words
    return _own_name(one, theirs, common) and _own_name(other, mine, common)


def _own_name(record: Record, others: AbstractSet[str], common: AbstractSet[str]) -> bool:
    """Whether a record's headline holds a distinctive word (`_distinctive`) that the record
    writes as a name (`written_names`), that its own excerpt repeats, and that the other
    record's words (`others`: its headline's and excerpt's) lack. Its excerpt
    repeats a particular of its event ("Rezo.ai", "LaMDA", "Grok"), not the headline's wording of
    a place or body the other report words otherwise ("Met Police" told "the Metropolitan
    Police", "UK" against "British": Clearview's fine parted without it, bench/README.md,
    Stories). Letters only: a figure is written many ways in the reports of one event
    ("\u00a37.5m", "$9M", "$9.4M"; "362,758", "363K")."""
    names = written_names(record.title, record.excerpt)
    told = headline_words(record.excerpt)
    return any(
        word in names
        and word in told
        and word not in others
        and word.isalpha()
        and _distinctive(word, common)
        for word in headline_words(record.title)
    )


def _texts_agree(
    one: Record, other: Record, headlines: AbstractSet[str], common: AbstractSet[str]
) -> bool:
    """Whether the excerpts bear out a link the headlines make on the least evidence (two
    shared words, one of them distinctive; `headlines`: the words they share): the records'
    headlines and excerpts together share a distinctive word (neither a name, a topic word nor
    common) that the headlines do not, or an excerpt says nothing its headline does not
    (nothing to ask). Asked only of records that both have an excerpt. Two headlines share two
    words by chance far more often than two texts share three: "Nvidia to build Israel's most
    potent AI supercomputer" and
    "Nvidia's new Grace Hopper superchip to fuel its DGX GH200 AI supercomputer" share "nvidia"
    and "supercomputer", and their excerpts nothing more ("Israel-1" against "GH200"), while the
    articles of one event repeat its particulars (a name, a figure, a place) in their first
    lines ("AlphaFold" in two excerpts of DeepMind's protein structures). Measured in
    bench/README.md (Stories, Excerpts)."""
    mine, theirs = text_words(one.title, one.excerpt), text_words(other.title, other.excerpt)
    if len(mine) == len(headline_words(one.title)) or len(theirs) == len(
        headline_words(other.title)
    ):
        return True  # an excerpt that says no word its headline does not: nothing to ask
    shared = mine & theirs
    return any(word not in headlines and _distinctive(word, common) for word in shared)


# Shared headline words neither names nor topic words that make one event whatever the excerpts
# say; three made up with topic words ("self", "driving") ask the excerpts (`same_event`).
_PARTICULARS = 3


# Distinctive words (neither names, topic words nor common) that two records' texts, headline and
# excerpt, must share to make up for headlines that share two words but no distinctive one.
TEXT_WORDS_MIN = 3


def _texts_make_up(
    one: Record, other: Record, headlines: AbstractSet[str], common: AbstractSet[str]
) -> bool:
    """Whether the excerpts make up for headlines that fall short of `same_event`'s evidence
    (`headlines`: the words they share): the headlines share two words that are not common
    (names and topic words included), and the records' headlines and excerpts together
    `TEXT_WORDS_MIN` distinctive words. "Two Chinese Cities Approve Baidu's Unmanned
    Self-Driving Taxis" and "Chongqing, Wuhan kick off commercial operation of unmanned auto-driving
    business" share "unmanned" and half a word, their excerpts "China" and "road" besides. One
    of the headlines' words must be no topic word: headlines that share only a topic ("facial
    recognition") share no particular of an event, and texts of one topic share its field's
    words ("IRS will transition away from facial recognition after wave of criticism" and
    "Facial recognition companies attempt to appease state lawmakers": "concern", "irs",
    "lawmakers"; a neighbourhood's list held both, bench/README.md, Stories). The counterpart of
    `_texts_agree`: the excerpts bear out or part a link the headlines barely make, and make one
    the headlines barely miss. Asked only of records that both have an excerpt."""
    if len(headlines - common) < 2 or headlines <= TOPIC_WORDS:
        return False
    shared = text_words(one.title, one.excerpt) & text_words(other.title, other.excerpt)
    strong = sum(_distinctive(word, common) for word in shared)
    return strong >= TEXT_WORDS_MIN


# Hours within which two records' texts, a shared name and one distinctive word more make one
# event (`_names_agree`): the reports of one event come within hours of each other, the analyses,
# opinion pieces and follow-ups that share its names a day or more later.
NAME_HOURS = 12.0
_NAME_SECONDS = NAME_HOURS * 3600


def _names_agree(
    one: Record, other: Record, headlines: AbstractSet[str], common: AbstractSet[str]
) -> bool:
    """Whether a name makes up for what `_texts_agree` asks (`headlines`: the words the headlines
    share): the records were published within `NAME_HOURS` of each other, their headlines share
    a distinctive word (neither a listed name, a topic word nor common) that either record writes
    as a name (`written_names`), and one distinctive word more: in the headlines, or in both
    records' headlines and excerpts together. A word written as a name is a particular of an
    event (a product, a person, a place, a model number), and rare: "Databricks" and "Lakehouse"
    are one event, "human" and "creative" (Adobe Firefly and a column on AI and creativity) are
    two words of the field that most events share. Asked only of records that both have an
    excerpt: one without is judged by its headline alone. Measured in bench/README.md (Stories)."""
    if abs((one.published - other.published).total_seconds()) > _NAME_SECONDS:
        return False
    distinctive = [word for word in headlines if _distinctive(word, common)]
    if not distinctive:
        return False
    names = written_names(one.title, one.excerpt) | written_names(other.title, other.excerpt)
    if not any(word in names for word in distinctive):
        return False
    if len(distinctive) >= 2:
        return True
    shared = text_words(one.title, one.excerpt) & text_words(other.title, other.excerpt)
    return any(word not in headlines and _distinctive(word, common) for word in shared)


# The word lists below were written for the collection feedsvc publishes (everyday-cc/ai: AI
# news in English) and checked against a labelled sample of it (bench/README.md, Real sample).
# English function words, and words of a headline that say how it is told, not what happened.
_STOP_WORDS = """a about above after again against all also am amid an and any are as at be because
been before being below between both but by can could did do does doing don down during each
few for from further get gets got had has have having he her here hers him his how i if in into
is isn it its itself just let like make makes made may me might more most must my no nor not
now of off on once one only or other our ours out over own same say says said she should so
some such than that the their theirs them then there these they this those three through to too
two under until up very via vs was we were what when where which while who whom why will with
won would yet you your yours"""
# Words generic to an AI news collection: its field, news verbs, and time words. Shared by
# headlines of different events every day, they are no evidence of one event.
_GENERIC_WORDS = """ai artificial intelligence machine learning ml deep neural network model
algorithm data tech technology technologies computer computing software digital system tool
platform app automation startup company firm new news announce launch unveil introduce debut
reveal join partner partnership team collaboration collaborate deal build use help way
available first latest report study research researcher scientist university today week year
day time big huge top best know everything need future world people public power powerful
massive service program capability feature update version"""
# The collection's topics ("self-driving", "facial recognition", "chip", "chatbot"): weak
# evidence, half a word ("Italy" and "facial recognition" make one event, "facial recognition"
# alone does not).
TOPIC_WORDS_LISTED = """robot robotic robotics bot chatbot self driving driverless autonomous
full car vehicle chip gpu processor hardware compute accelerator cloud inference training gaming
dataset benchmark facial recognition speech vision language natural processing generative
conversational"""
# Words of the collection's field of money and dates: how a round is told ("raises", "series",
# "funding", "secures") and when ("January 2020"). Every startup's round and every monthly round-up
# says them: weak evidence, as topic words are ("GumGum Secures $22M in Series B Funding" and
# "Aisera Secures $20M in Series B Funding" are two rounds; one round's reports share the company).
FIELD_WORDS_LISTED = """raise raised fund funding funded financing finance invest investment
investor round seed series secure secured bag bagged land landed close closed led back backed
valuation venture capital million billion january february march april june july august
september october november december"""
# Companies and platforms behind many events of the collection: evidence together with another
# word, not on their own ("Nvidia" and "gaming" joined Nvidia's earnings to a GPU leak).
ENTITY_WORDS_LISTED = """google alphabet microsoft azure amazon aws sagemaker alexa meta facebook
apple nvidia openai deepmind ibm intel tesla qualcomm baidu samsung"""
_FIRST_YEAR, _LAST_YEAR = 1990, 2049  # a year said in a headline: when, not what (a field word)
# Suffixes a stem drops, with the letters it keeps at least ("papers" -> "paper", not "pap").
_SUFFIXES = (("ings", 4), ("ing", 4), ("ers", 4), ("er", 4), ("ed", 3), ("s", 3))
_HEADLINE_WORD = re.compile(r"[a-z0-9]{2,}")  # (runs of one character are no word)
_POSSESSIVE = re.compile("['\u2019]s\\b")
# A name joined to its number by a hyphen ("COVID-19", "GPT-3", "A100-80"): one word, not two.
_NAME_NUMBER = re.compile(r"(?<=[A-Za-z])-(?=\d)")
# An amount of money ("$20M", "$5.1 Mn", "$100 Million", "\u20ac3bn"), written as two words of its
# own however a headline writes it (`_amount_word`: "$40B" and "$40 billion" both "usd40b" and
# "usdx40b"), so that it counts as the two words "$40 billion" was ("40", "billion").
_AMOUNT = re.compile(
    r"[$\u20ac\u00a3]\s?(\d[\d,]*(?:\.\d+)?)\s?(mn|bn|m|b|k|million|billion|mil)?\b", re.IGNORECASE
)
AMOUNT_MARK = "usd"  # what an amount's words begin with (few other words do: "USDA", weak too)
_UNITS = {"mn": "m", "mil": "m", "million": "m", "bn": "b", "billion": "b"}


def _amount_word(match: re.Match[str]) -> str:
    number = match.group(1).replace(",", "").replace(".", "p")
    unit = (match.group(2) or "").lower()
    amount = f"{number}{_UNITS.get(unit, unit)}"
    return f" {AMOUNT_MARK}{amount} {AMOUNT_MARK}x{amount} "


def _stem(word: str) -> str:
    """A light stem, so that "programmers" meets "programming" and "warehouses" meets
    "warehouse"."""
    if word[-1] not in "sgrd":  # no suffix below ends otherwise (most words: the quick way)
        return word
    if word.endswith("ss"):
        return word
    if word.endswith("ies") and len(word) > 5:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes")):
        return word[:-2]
    for suffix, kept in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= kept:
            return word[: -len(suffix)]
    return word


_IGNORED_STEMS = frozenset(_stem(word) for word in f"{_STOP_WORDS} {_GENERIC_WORDS}".split())
ENTITY_WORDS = frozenset(_stem(word) for word in ENTITY_WORDS_LISTED.split())
TOPIC_WORDS = frozenset(
    _stem(word) for word in f"{TOPIC_WORDS_LISTED} {FIELD_WORDS_LISTED}".split()
) | frozenset(str(year) for year in range(_FIRST_YEAR, _LAST_YEAR + 1))
_WEAK_WORDS = ENTITY_WORDS | TOPIC_WORDS


def _headline_words(title: str) -> frozenset[str]:
    """The distinctive words of a headline, stemmed: lower case, accents and possessives
    dropped, without function words and words generic to the collection (topic words stay: they
    count half in `same_event`). A name joined to its number by a hyphen is one word
    ("COVID-19": two, it made two of the three shared words that link headlines whatever their
    excerpts say, bench/README.md, Stories). Remembered per title:
    `same_event` runs for every pair of records holding a shared key."""
    text = title
    if "-" in text:
        text = _NAME_NUMBER.sub("", text)
    if "$" in text or "\u20ac" in text or "\u00a3" in text:
        text = _AMOUNT.sub(_amount_word, text)
    if "'" in text or "\u2019" in text:
        text = _POSSESSIVE.sub("", text).replace("'", "").replace("\u2019", "")
    if not text.isascii():  # (the accents dropped; ASCII is its own NFKD form)
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    # Most words end in a letter no suffix of `_stem` ends in and are their own stem; the others'
    # stems are remembered while a grouping runs (`forget_words`).
    stems = _stems
    words = [
        word if word[-1] not in "sgrd" else stems.get(word) or _remember_stem(word)
        for word in _HEADLINE_WORD.findall(text.lower())
    ]
    return frozenset(words) - _IGNORED_STEMS


_stems: dict[str, str] = {}  # word -> `_stem(word)`, for the words that may have a suffix
_STEMS_KEPT = 1 << 16  # at most (a grouping forgets them, `forget_words`)


def _remember_stem(word: str) -> str:
    if len(_stems) >= _STEMS_KEPT:
        _stems.clear()
    stem = _stems[word] = _stem(word)
    return stem


headline_words = lru_cache(maxsize=1 << 17)(_headline_words)


def _text_words(title: str, excerpt: str) -> frozenset[str]:
    """The distinctive words of a headline and its excerpt together (as `headline_words`).
    Remembered while a grouping runs, as headline words are."""
    return _headline_words(f"{title} {excerpt}")


text_words = lru_cache(maxsize=1 << 14)(_text_words)


# Words that English writes capitalized without their being a particular of an event.
_CALENDAR_STEMS = frozenset(
    _stem(word)
    for word in """monday tuesday wednesday thursday friday saturday sunday january february
    march april june july august september october november december""".split()
)
_WRITTEN_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
# What begins a sentence: a capital after these is English spelling, not a name.
_SENTENCE_MARKS = frozenset(".!?:;|\u2013\u2014\u2026")
_TITLE_CASE_SHARE = 0.6  # of a text's words of four letters or more capitalized: title case


def _written_names(title: str, excerpt: str) -> frozenset[str]:
    """The headline words (`headline_words`) that a record's headline or excerpt writes as a
    name: capitalized though not the first word of a sentence, in a text that is not title case
    (most of its words of four letters or more capitalized: there capitals say nothing); or with
    a capital after its first letter ("AMD", "LakehouseIQ", "DALL-E"), or letters and digits
    ("S24", "GH200"), in any text. Weekdays and months are not names. Remembered while a grouping
    runs, as the texts' words are (`forget_words`)."""
    names: set[str] = set()
    for text in (title, excerpt):
        words = list(_WRITTEN_WORD.finditer(text))
        long = [word for word in map(re.Match.group, words) if len(word) >= 4 and word.isalpha()]
        capitals = sum(word[0].isupper() for word in long)
        titled = bool(long) and capitals >= _TITLE_CASE_SHARE * len(long)
        end = 0
        for match in words:
            word, gap = match.group(), text[end : match.start()]
            end = match.end()
            if len(word) < 2:
                continue
            inner = any(letter.isupper() for letter in word[1:])
            mixed = any(c.isdigit() for c in word) and any(c.isalpha() for c in word)
            capital = (
                not titled
                and word[0].isupper()
                and match.start() > 0
                and not any(mark in _SENTENCE_MARKS for mark in gap)
                and " - " not in gap
            )
            if inner or mixed or capital:
                names |= _headline_words(word)
    return frozenset(names - _CALENDAR_STEMS)


written_names = lru_cache(maxsize=1 << 14)(_written_names)


def forget_words() -> None:
    """Forget the words remembered while a grouping ran: every title's, every excerpt's, the
    names they write and their stems."""
    headline_words.cache_clear()
    headline_kind.cache_clear()
    text_words.cache_clear()
    written_names.cache_clear()
    _stems.clear()


class WordCounts:
    """On how many days of a window of time each headline word is said, and so which words are
    common around a day: said on more than `share` of the days of the window that have records,
    and on at least `minimum` days. The window is `window_periods` periods of `period_days`
    (a day, three weeks) centred on a period. `common[period]`: the words common around it.

    Why days, around a time: a word of one event is said over a day or two, however many
    providers and aggregator clusters report it (20 records of one event in bench.stories),
    while a word behind many events is said day after day (as "bing", "ceo" and "next" joined
    different events of February 2023). Counting clusters over the whole collection misses a
    word of one period ("bing"), and counting clusters in a window made every event's own words
    common where its coverage is spread over clusters (bench/README.md, Stories). The periods
    are fixed (whole periods since the epoch), so that a change tells exactly which words turned
    common or stopped being, and around which periods (`settle`). The minimum keeps small
    collections (the seeds, a test's few records) without common words."""

    def __init__(
        self, share: float, minimum: int, period_days: float = 1.0, window_periods: int = 21
    ) -> None:
        self.share = share
        self.minimum = max(1, minimum)
        self.period_seconds = period_days * 86400
        self.reach = max(0, window_periods - 1) // 2  # periods each side of a window's centre
        self.sizes: dict[int, int] = {}  # period -> its records
        self.holders: dict[int, dict[str, int]] = {}  # period -> word -> its records holding it
        self.common: dict[int, frozenset[str]] = {}  # period -> common words (when any)
        self.thresholds: dict[int, int] = {}  # period -> the threshold `common` was settled at
        self._touched: dict[int, set[str]] = {}  # period -> words said or unsaid since `settle`

    def period_of(self, record: Record) -> int:
        """The period of a record's publication: whole periods since the epoch."""
        return int(record.published.timestamp() // self.period_seconds)

    def periods(self, records: Iterable[Record]) -> array[int]:
        """`period_of` of each record."""
        seconds = self.period_seconds
        stamps = map(datetime.timestamp, map(_PUBLISHED, records))
        return array("q", [int(stamp // seconds) for stamp in stamps])

    def common_of(self, earlier: Record) -> frozenset[str]:
        """The words common around the earlier record of a pair."""
        return self.common.get(self.period_of(earlier), _NO_WORDS)

    def window(self, period: int) -> range:
        return range(period - self.reach, period + self.reach + 1)

    @classmethod
    def of(
        cls,
        ordered: Sequence[Record],
        share: float,
        minimum: int,
        period_days: float = 1.0,
        window_periods: int = 21,
        periods_of: Sequence[int] | None = None,
    ) -> WordCounts:
        """The counts of a collection, from scratch (`ordered` by publication): the window slides
        over the periods, each period's words counted in once and out once. `periods_of`: each
        record's `period_of`, when worked out already."""
        counts = cls(share, minimum, period_days, window_periods)
        if periods_of is None:
            periods_of = counts.periods(ordered)
        sizes, said_in = counts.sizes, counts.holders
        for record, period in zip(ordered, periods_of, strict=True):
            sizes[period] = sizes.get(period, 0) + 1
            words = headline_words(record.title)
            if words:
                holders = said_in.get(period)
                if holders is None:
                    holders = said_in[period] = {}
                for word in words:
                    holders[word] = holders.get(word, 0) + 1
        periods = sorted(counts.sizes)
        said: dict[str, int] = {}  # word -> periods of the window it is said in
        days = 0  # periods of the window with records
        entered = left = 0  # how far the window's two ends have gone through `periods`
        common: set[str] = set()
        threshold = 0
        for centre in periods:
            moved: set[str] = set()
            while entered < len(periods) and periods[entered] <= centre + counts.reach:
                days += 1
                for word in counts.holders.get(periods[entered], _NO_COUNTS):
                    said[word] = said.get(word, 0) + 1
                    moved.add(word)
                entered += 1
            while periods[left] < centre - counts.reach:
                days -= 1
                for word in counts.holders.get(periods[left], _NO_COUNTS):
                    _bump(said, word, -1)
                    moved.add(word)
                left += 1
            now = counts.thresholds[centre] = counts._threshold(days)
            if now != threshold:
                threshold, moved = now, set(said) | common
            for word in moved:
                if said.get(word, 0) >= threshold:
                    common.add(word)
                else:
                    common.discard(word)
            if common:
                counts.common[centre] = frozenset(common)
        return counts

    def _threshold(self, days: int) -> int:
        return max(self.minimum, int(self.share * days) + 1)

    def threshold(self, period: int) -> int:
        """The fewest periods of the window around `period` that say a word common there."""
        return self._threshold(sum(near in self.sizes for near in self.window(period)))

    def said(self, word: str, period: int) -> int:
        """The periods of the window around `period` that say `word`."""
        return sum(word in self.holders.get(near, _NO_COUNTS) for near in self.window(period))

    def add(self, record: Record) -> None:
        """Count a record in."""
        period = self.period_of(record)
        touched = self._touched.setdefault(period, set())
        self.sizes[period] = self.sizes.get(period, 0) + 1
        words = headline_words(record.title)
        if words:
            holders = self.holders.setdefault(period, {})
            for word in words:
                count = holders.get(word, 0)
                holders[word] = count + 1
                if not count:
                    touched.add(word)

    def remove(self, record: Record) -> None:
        """Count a record out."""
        period = self.period_of(record)
        touched = self._touched.setdefault(period, set())
        _bump(self.sizes, period, -1)
        words = headline_words(record.title)
        if words:
            holders = self.holders[period]
            for word in words:
                _bump(holders, word, -1)
                if word not in holders:
                    touched.add(word)
            if not holders:
                del self.holders[period]

    def settle(self) -> dict[str, set[int]]:
        """Bring `common` up to date after counting: the words that turned common or stopped
        being, each with the periods around which they did. Only the words said or unsaid in a
        period can change, in the windows holding it, unless a window's threshold moved."""
        touched, self._touched = self._touched, {}
        windows: dict[int, set[str]] = {}
        for period, words in touched.items():
            for centre in self.window(period):
                windows.setdefault(centre, set()).update(words)
        changed: dict[str, set[int]] = {}
        for centre, words in windows.items():
            before = self.common.get(centre, _NO_WORDS)
            if centre not in self.sizes:  # no records there: no pair asks its words
                self.thresholds.pop(centre, None)
                self.common.pop(centre, None)
                for word in before:
                    changed.setdefault(word, set()).add(centre)
                continue
            threshold = self.threshold(centre)
            if threshold != self.thresholds.get(centre):
                self.thresholds[centre] = threshold
                words = set(before)
                for near in self.window(centre):
                    words.update(self.holders.get(near, _NO_COUNTS))
            common = set(before)
            for word in words:
                if (self.said(word, centre) >= threshold) != (word in before):
                    changed.setdefault(word, set()).add(centre)
                    common ^= {word}
            if common:
                self.common[centre] = frozenset(common)
            else:
                self.common.pop(centre, None)
        return changed


_NO_WORDS: frozenset[str] = frozenset()
_PUBLISHED = attrgetter("published")
_NO_COUNTS: dict[str, int] = {}


def _bump(counts: dict[_K, int], key: _K, step: int) -> None:
    count = counts.get(key, 0) + step
    if count:
        counts[key] = count
    else:
        del counts[key]
