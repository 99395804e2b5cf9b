"""Grouping records into stories: 100,000 synthetic records, from scratch and after one change.

Records are made in memory (parsing is measured by bench/loading.py): one every 37 minutes, each
with 2-8 related articles, about a third of which are another record's article or a shared
"event" URL from the last day, so stories of a few records form; one URL in 200 is a hub.
`python -m bench.stories [--records N]` prints the stories found and the timings.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from feedsvc.records import Record, Related, pack_related
from feedsvc.stories import _record_keys, comparison_key, group_stories
from feedsvc.urls import entry_id

START = datetime(2020, 1, 1, tzinfo=UTC)


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
                title=f"Record {index}",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    records = synthetic_records(args.records)
    comparison_key.cache_clear()
    _record_keys.cache_clear()
    started = time.perf_counter()
    stories = group_stories(records)
    cold = time.perf_counter() - started
    changed = list(records)
    changed[len(changed) // 2] = replace(changed[len(changed) // 2], title="Edited")
    started = time.perf_counter()
    group_stories(changed)
    warm = time.perf_counter() - started
    sizes = sorted((len(story.records) for story in stories), reverse=True)
    print(
        f"{len(records)} records -> {len(stories)} stories; largest {sizes[:5]}; "
        f"multi-record stories {sum(1 for size in sizes if size > 1)}"
    )
    print(f"grouping from scratch: {cold:.2f} s; regrouping after one changed record: {warm:.2f} s")


if __name__ == "__main__":
    main()
