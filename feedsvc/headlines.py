"""Headline words: whether two records that share an article URL report one event.

A shared URL alone is weak evidence (a record's related coverage is the aggregator's topical
neighbourhood), so `same_event` also asks the headlines: two distinctive words in common, one of
them neither a topic word, nor a company's name, nor a word common in the collection's headlines
(`WordCounts`). Measured on real records in bench/README.md (Real sample, Held-out sample,
Whole-day sample).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from functools import lru_cache

from feedsvc.comparison import own_keys
from feedsvc.records import Record


def same_event(one: Record, other: Record, common: AbstractSet[str] = frozenset()) -> bool:
    """Whether two records that hold a common article URL within the window report one event.
    A shared URL alone is weak evidence: a record's related coverage is the aggregator's
    topical neighbourhood. Depends on the two records and the collection's `common` words only
    (`WordCounts`), so that regrouping stays local.

    The headlines must share two distinctive words (`headline_words`; a topic word such as
    "facial" or "driving" counts half), and one of them neither a topic word, nor the name of a
    company or platform behind many events (`ENTITY_WORDS`), nor a word common in the
    collection's headlines (`common`: "bing", "ceo" in February 2023): "Meta pauses Galactica
    demo" and "Meta fires Galactica AI" are one event, "Facebook takes down AI that churns out
    fake papers" and "Facebook says it has created a human-level board game AI" are two.
    Two records that are one article (their own URLs have a comparison key in common: a copy
    with a tracking parameter, an AMP form) are one event when their headlines have any word in
    common ("Computer Vision and the CCPA" twice: "vision" and "ccpa" are not enough otherwise).
    The shared word bounds the cost: most pairs the headlines refuse share none, and working out
    the own keys of every refused pair cost a fifth of grouping 100,000 records.
    Measured on real records in bench/README.md (Real sample, Held-out sample, Whole-day sample)."""
    shared = headline_words(one.title) & headline_words(other.title)
    topical = shared & TOPIC_WORDS
    if 2 * len(shared) - len(topical) >= 4 and any(
        word not in _WEAK_WORDS and word not in common for word in shared
    ):
        return True
    if not shared:
        return False
    mine = own_keys(one.url, one.original_url)
    return any(key in mine for key in own_keys(other.url, other.original_url))


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
# Companies and platforms behind many events of the collection: evidence together with another
# word, not on their own ("Nvidia" and "gaming" joined Nvidia's earnings to a GPU leak).
ENTITY_WORDS_LISTED = """google alphabet microsoft azure amazon aws sagemaker alexa meta facebook
apple nvidia openai deepmind ibm intel tesla qualcomm baidu samsung"""
# Suffixes a stem drops, with the letters it keeps at least ("papers" -> "paper", not "pap").
_SUFFIXES = (("ings", 4), ("ing", 4), ("ers", 4), ("er", 4), ("ed", 3), ("s", 3))
_HEADLINE_WORD = re.compile(r"[a-z0-9]+")
_POSSESSIVE = re.compile("['\u2019]s\\b")


def _stem(word: str) -> str:
    """A light stem, so that "programmers" meets "programming" and "warehouses" meets
    "warehouse"."""
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
TOPIC_WORDS = frozenset(_stem(word) for word in TOPIC_WORDS_LISTED.split())
_WEAK_WORDS = ENTITY_WORDS | TOPIC_WORDS


def _headline_words(title: str) -> frozenset[str]:
    """The distinctive words of a headline, stemmed: lower case, accents and possessives
    dropped, without function words and words generic to the collection (topic words stay: they
    count half in `same_event`). Remembered per title:
    `same_event` runs for every pair of records holding a shared key."""
    text = _POSSESSIVE.sub("", title).replace("'", "").replace("\u2019", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    stems = (_stem(word) for word in _HEADLINE_WORD.findall(text) if len(word) > 1)
    return frozenset(stem for stem in stems if stem not in _IGNORED_STEMS)


headline_words = lru_cache(maxsize=1 << 17)(_headline_words)


class WordCounts:
    """How many clusters (`cluster_of`) hold each headline word, and so which words are common:
    held by more than `share` of the collection's clusters and by at least `minimum`.

    Counted by cluster, not by record: the 57 records of one recall are one event saying
    "recall", and three clusters saying "bing" three events. Counted over the whole collection,
    not a window around each record: one set of common words, so that a change can tell exactly
    which words turned common or stopped being (`settle`), and no time index is kept. The
    minimum keeps small collections (the seeds, a test's few records) without common words.

    A cluster of one record (most of them) keeps nothing of its words: the words' counts alone
    say what it adds. A cluster of several keeps how many of its records hold each word, so that
    a word leaves the count only with the cluster's last record holding it."""

    def __init__(self, share: float, minimum: int) -> None:
        self.share = share
        self.minimum = max(1, minimum)
        self.clusters: dict[int, int] = {}  # cluster -> its records
        self.holders: dict[str, int] = {}  # word -> the clusters holding it
        self.several: dict[int, dict[str, int]] = {}  # cluster of 2+ -> word -> records holding
        self.common: set[str] = set()

    @classmethod
    def of(
        cls, records: Iterable[Record], clusters: Iterable[int], share: float, minimum: int
    ) -> WordCounts:
        """The counts of a collection, from scratch, given each record's cluster."""
        counts = cls(share, minimum)
        members: dict[int, Record | list[Record]] = {}
        for record, cluster in zip(records, clusters, strict=True):
            held = members.get(cluster)
            if held is None:
                members[cluster] = record
            elif isinstance(held, list):
                held.append(record)
            else:
                members[cluster] = [held, record]
        holders = counts.holders
        for cluster, held in members.items():
            if isinstance(held, list):
                words = counts.several[cluster] = {}
                for record in held:
                    for word in headline_words(record.title):
                        words[word] = words.get(word, 0) + 1
                counts.clusters[cluster] = len(held)
            else:
                words = dict.fromkeys(headline_words(held.title), 1)
                counts.clusters[cluster] = 1
            for word in words:
                holders[word] = holders.get(word, 0) + 1
        threshold = counts.threshold()
        counts.common = {word for word, count in holders.items() if count >= threshold}
        return counts

    def threshold(self) -> int:
        """The fewest clusters that hold a common word."""
        return max(self.minimum, int(self.share * len(self.clusters)) + 1)

    def add(
        self, record: Record, cluster: int, member: Callable[[Record], Record]
    ) -> frozenset[str]:
        """Count a record of `cluster` in; its headline words. `member(record)` is another
        record of its cluster, asked for when the cluster had one record."""
        before = self.clusters.get(cluster, 0)
        self.clusters[cluster] = before + 1
        words = headline_words(record.title)
        if before == 0:
            for word in words:
                self.holders[word] = self.holders.get(word, 0) + 1
            return words
        if before == 1:
            self.several[cluster] = dict.fromkeys(headline_words(member(record).title), 1)
        held = self.several[cluster]
        for word in words:
            count = held.get(word, 0)
            held[word] = count + 1
            if not count:
                self.holders[word] = self.holders.get(word, 0) + 1
        return words

    def remove(self, record: Record, cluster: int) -> frozenset[str]:
        """Count a record of `cluster` out; its headline words."""
        before = self.clusters[cluster]
        words = headline_words(record.title)
        if before == 1:
            del self.clusters[cluster]
            for word in words:
                _bump(self.holders, word, -1)
            return words
        self.clusters[cluster] = before - 1
        held = self.several[cluster]
        for word in words:
            _bump(held, word, -1)
            if word not in held:
                _bump(self.holders, word, -1)
        if before == 2:  # one record left, which needs no words kept
            del self.several[cluster]
        return words

    def settle(self, touched: Iterable[str], threshold_before: int) -> set[str]:
        """Bring `common` up to date after counting; the words that turned common or stopped
        being. Only the words counted can change, unless the threshold moved."""
        threshold = self.threshold()
        words = set(touched)
        if threshold != threshold_before:
            words.update(self.holders)
            words.update(self.common)
        changed = set()
        for word in words:
            if (self.holders.get(word, 0) >= threshold) != (word in self.common):
                changed.add(word)
                self.common ^= {word}
        return changed


def _bump(counts: dict[str, int], key: str, step: int) -> None:
    count = counts.get(key, 0) + step
    if count:
        counts[key] = count
    else:
        del counts[key]
