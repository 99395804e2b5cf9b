"""Story grouping over a folder of real records: the figures, and a sample of stories to judge.

`python -m bench.stories_sample FOLDER [--window 3] [--hub-limit 30] [--check 30] [--seed 2022]`
loads FOLDER the way the server does (`load_collection`), groups it (`group_stories`) and prints:
records loaded and rejected, the stories, how many hold several records, their sizes, the largest,
and whether any story reached the cap. Then `--check` multi-record stories drawn at random with
`--seed` (all of them when there are fewer), each with its records and the keys its records share,
so that a person can judge whether the story is one event and, when it is not, which shared URL
joined it. `--hub-limit` changes the number of clusters above which a shared URL links no records.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

from feedsvc.comparison import record_keys
from feedsvc.records import Record
from feedsvc.repository import load_collection
from feedsvc.stories import (
    DEFAULT_WINDOW_DAYS,
    HUB_LIMIT,
    MAX_STORY_RECORDS,
    Story,
    group_stories,
)


def size_buckets(sizes: list[int]) -> list[tuple[str, int]]:
    """Stories counted by size: 1, 2, 3, 4-5, 6-10, 11-20, 21-49, and the cap."""
    bounds = [(1, 1), (2, 2), (3, 3), (4, 5), (6, 10), (11, 20), (21, MAX_STORY_RECORDS - 1)]
    rows = []
    for low, high in bounds:
        label = str(low) if low == high else f"{low}-{high}"
        rows.append((label, sum(1 for size in sizes if low <= size <= high)))
    rows.append((f"{MAX_STORY_RECORDS} (cap)", sizes.count(MAX_STORY_RECORDS)))
    return rows


def shared_keys(story: Story) -> list[tuple[str, list[int]]]:
    """The comparison keys that two or more of the story's records hold: what joined them.
    Each key comes with the positions (in the story, from 1) of the records holding it."""
    holders: dict[str, list[int]] = {}
    for position, record in enumerate(story.records, 1):
        for key in record_keys(record):
            holders.setdefault(key, []).append(position)
    return sorted(
        ((key, spots) for key, spots in holders.items() if len(spots) > 1),
        key=lambda item: (-len(item[1]), item[0]),
    )


def describe(record: Record) -> str:
    provider = record.provider.name if record.provider else "-"
    return f"{record.published:%Y-%m-%d %H:%M} {provider}: {record.title}\n        {record.url}"


def print_story(number: int, story: Story) -> None:
    print(f"\n[{number}] {len(story.records)} records, lead: {story.lead.title}")
    for position, record in enumerate(story.records, 1):
        print(f"  {position:2}. {describe(record)}")
    for key, spots in shared_keys(story):
        print(f"    shared by {','.join(map(str, spots))}: {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--window", type=float, default=DEFAULT_WINDOW_DAYS)
    parser.add_argument("--hub-limit", type=int, default=HUB_LIMIT, help="hub URL limit")
    parser.add_argument("--check", type=int, default=30, help="multi-record stories to list")
    parser.add_argument("--seed", type=int, default=2022)
    args = parser.parse_args()

    collection = load_collection(args.folder)
    records = collection.records
    reasons = Counter(problem.message for problem in collection.rejections)
    print(f"records loaded: {len(records)}; files rejected: {len(collection.rejections)}")
    for reason, count in reasons.most_common():
        print(f"  rejected {count}: {reason}")
    print(f"warnings: {len(collection.warnings)}")
    if records:
        dates = sorted(record.published for record in records)
        print(f"published from {dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}")
    with_related = sum(1 for record in records if record.coverage)
    print(f"records with related articles: {with_related}")

    stories = group_stories(records, args.window, args.hub_limit)
    multi = [story for story in stories if len(story.records) > 1]
    sizes = [len(story.records) for story in stories]
    print(f"\nwindow {args.window} days, hub limit {args.hub_limit}, cap {MAX_STORY_RECORDS}")
    print(f"stories: {len(stories)}; of several records: {len(multi)}")
    print(f"records in multi-record stories: {sum(len(story.records) for story in multi)}")
    print("size distribution: " + ", ".join(f"{k}: {v}" for k, v in size_buckets(sizes)))
    if stories:
        largest = max(stories, key=lambda story: (len(story.records), story.id))
        print(f"largest story: {len(largest.records)} records")
        for record in largest.records:
            print(f"  - {record.title}")

    picked = sorted(random.Random(args.seed).sample(multi, min(args.check, len(multi))),
                    key=lambda story: story.id)  # fmt: skip
    print(f"\n{len(picked)} multi-record stories (seed {args.seed}) to judge:")
    for number, story in enumerate(picked, 1):
        print_story(number, story)


if __name__ == "__main__":
    main()
