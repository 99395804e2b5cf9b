"""A synthetic collection shaped like real records (FEEDS.md §1), for benchmarks.

Deterministic for a given size and seed: every record has one image, 1-4 of 30 topics, one of
500 providers (a quarter with site-relative logos), 2-8 related articles, and about 2-6 KB of YAML.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
TOPICS = 30
PROVIDERS = 500
WORDS = (
    "model data vision neural robot cloud chip startup funding research privacy market language "
    "training inference agent policy regulation open source benchmark camera drone health bank"
).split()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize()


def _provider(index: int) -> dict[str, object]:
    domain = f"provider{index}.example.com"
    logo = (
        f"/assets/images/organizations/{domain}-50x50.jpg"
        if index % 4 == 0
        else (f"https://logos.example.com/{domain}-50x50.jpg")
    )
    return {
        "name": f"Provider {index} & Co",
        "domain": domain,
        "images": [{"url": logo, "width": 50, "height": 50}],
    }


def _image(rng: random.Random, key: str) -> dict[str, object]:
    return {
        "url": f"https://images.example.com/{key}/lead.jpg?w=1200&h=675",
        "width": 1200,
        "height": 675,
        "isCached": True,
    }


def make_record(rng: random.Random, index: int, start: datetime) -> dict[str, object]:
    published = start + timedelta(minutes=37 * index)
    provider = rng.randrange(PROVIDERS)
    related = []
    for r in range(rng.randint(2, 8)):
        other = rng.randrange(PROVIDERS)
        related.append(
            {
                "title": _sentence(rng, 9),
                "excerpt": _sentence(rng, 30),
                "publishedDateTime": published - timedelta(hours=r + 1),
                "webUrl": f"https://provider{other}.example.com/related/{index}-{r}",
                "type": "article",
                "provider": {
                    "name": f"Provider {other} & Co",
                    "domain": f"provider{other}.example.com",
                },
                "quality": rng.randint(1, 99),
                "images": [_image(rng, f"r{index}-{r}")],
            }
        )
    return {
        "category": "news",
        "title": _sentence(rng, 10),
        "excerpt": _sentence(rng, 40),
        "publishedDateTime": published,
        "originalUrl": f"https://provider{provider}.example.com/news/{index}",
        "webUrl": f"https://provider{provider}.example.com/news/{index}",
        "type": "article",
        "quality": rng.randint(1, 99),
        "heat": -1,
        "published": False,
        "provider": _provider(provider),
        "topics": [f"Topic {t}" for t in rng.sample(range(TOPICS), rng.randint(1, 4))],
        "images": [_image(rng, str(index))],
        "related": related,
        "secured": "c2VjcmV0" * 40,
    }


def write_collection(folder: Path, size: int, seed: int = 7) -> Path:
    """Write `size` records into `folder` (created); returns the folder."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for index in range(size):
        record = make_record(rng, index, start)
        text = yaml.dump(record, Dumper=DUMPER, sort_keys=False, allow_unicode=True)
        (folder / f"{index:06d}-record.md").write_text(f"---\n{text}---\n", encoding="utf-8")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", type=int, default=10_000)
    arguments = parser.parse_args()
    write_collection(arguments.folder, arguments.size)


if __name__ == "__main__":
    main()
