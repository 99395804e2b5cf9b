"""Grouping records into stories: 100,000 synthetic records, from scratch and after one change.

Records are made in memory (parsing is measured by bench/loading.py): one every 37 minutes, each
with 2-8 related articles, about a third of which are another record's article or a shared
"event" URL from the last day, so stories of a few records form; one URL in 200 is a hub. The
headlines of an event's records share words (`headline`), as `same_event` asks, and a fifth of
the records take another event's words, so some shared URLs link and others do not; the words
are drawn with a skewed frequency, so that some are common and link nothing alone.
`python -m bench.stories [--records N]` prints the stories found and the timings.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from feedsvc.records import Record, Related, pack_related
from feedsvc.stories import _Grouping
from feedsvc.urls import entry_id

START = datetime(2020, 1, 1, tzinfo=UTC)


# Made-up words with a skewed (Zipf-like) frequency, as real headline words have: the first of
# the 21,952 is drawn about 10,000 times as often as the 10,000th. Each event (20 records in a
# row: the wire URL's number) has two words and each headline a third drawn alike, so that a
# few words are said day after day (common, `WordCounts`) and most on a day or two.
_SYLLABLES = (
    "zor quel vant mir dax pel ka lo ne ri su to bra fen gil hu jo kev lum mox nar ost pra rin "
    "sil tam urb vex"
).split()
WORDS = [f"{a}{b}{c}" for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES]
_ZIPF = list(itertools.accumulate(1 / rank for rank in range(1, len(WORDS) + 1)))


def event_words(event: int) -> list[str]:
    return random.Random(event).choices(WORDS, cum_weights=_ZIPF, k=2)


def headline(index: int, rng: random.Random) -> str:
    """Two words of the record's event, and one of the event before or after, now and then; a
    third word of its own."""
    event = index // 20 + (rng.random() < 0.2) * rng.choice((-1, 1))
    first, second = event_words(event)
    (third,) = rng.choices(WORDS, cum_weights=_ZIPF, k=1)
    return f"{first.title()} {second} {third} ({index})"


def synthetic_records(count: int, seed: int = 7) -> list[Record]:
    rng = random.Random(seed)
    records = []
    for index in range(count):
        url = f"https://provider{rng.randrange(500)}.example.com/news/{index}?utm_source=feed"
        related = []
        for r in range(rng.randint(2, 8)):
            roll = rng.random()
            if roll < 0.2 and index:
                other = max(0, index - rng.randrange(1, 40))
                target = f"https://provider{other % 500}.example.com/news/{other}"
            elif roll < 0.33:
                target = f"https://wire.example.com/event/{index // 20 - rng.randrange(2)}"
            elif roll < 0.335:
                target = "https://hub.example.com/technology/"
            else:
                target = f"https://other{r}.example.com/related/{index}-{r}"
            related.append(Related(f"Related {r}", target, None, f"Other {r}"))
        records.append(
            Record(
                path=f"{index}.md",
                id=entry_id(url),
                title=headline(index, rng),
                excerpt="",
                published=START + timedelta(minutes=37 * index),
                url=url,
                original_url=None,
                provider=None,
                topics=(),
                images=(),
                coverage=pack_related(related),
                quality=rng.choice((None, 1, 2, 3)),
            )
        )
    return records


def resident_mib() -> float:
    """This process's resident size (VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=20, help="one-file regroups to time")
    args = parser.parse_args()
    records = synthetic_records(args.records)
    gc.collect()
    gc.freeze()  # as the server does after a load: the records are not the collector's work
    before = resident_mib()
    started, cpu = time.perf_counter(), time.process_time()
    grouping = _Grouping.of(records)
    cold, cold_cpu = time.perf_counter() - started, time.process_time() - cpu
    stories = grouping.index().stories
    gc.collect()
    kept = resident_mib() - before
    started, cpu = time.perf_counter(), time.process_time()
    _Grouping.of(records)
    warm, warm_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"{len(records)} records -> {len(stories)} stories; largest "
        f"{sorted((len(story.records) for story in stories), reverse=True)[:5]}; "
        f"multi-record stories {sum(1 for story in stories if len(story.records) > 1)}"
    )
    print(
        f"grouping from scratch: {cold:.2f} s ({cold_cpu:.2f} s CPU) the first time in the "
        f"process, {warm:.2f} s ({warm_cpu:.2f} s CPU) again"
    )
    print(f"the process grew {kept:.1f} MiB by the first grouping (resident, kept with it)")
    print(f"one changed record, regrouped in place ({args.changes} records, spread):")
    rng = random.Random(11)
    timings, cpu_timings = [], []
    for _ in range(args.changes):
        old = records[rng.randrange(len(records))]
        new = replace(old, title=old.title + " (edited)")
        records[records.index(old)] = new
        started, cpu = time.perf_counter(), time.process_time()
        grouping.update((old,), (new,))
        grouping.index()
        timings.append(time.perf_counter() - started)
        cpu_timings.append(time.process_time() - cpu)
    timings.sort()
    cpu_timings.sort()
    print(
        f"  median {timings[len(timings) // 2] * 1000:.1f} ms "
        f"({cpu_timings[len(timings) // 2] * 1000:.1f} ms CPU), max {timings[-1] * 1000:.1f} ms "
        f"({cpu_timings[-1] * 1000:.1f} ms CPU), with the version's StoryIndex"
    )


if __name__ == "__main__":
    main()
