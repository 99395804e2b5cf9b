"""Build benchmark: a full static build, then rebuilds into the same folder.

On a synthetic collection (bench/synth.py, default 10,000 records), in the same run:

1. `feedsvc check` once, which fills the parse cache (timed, as the load alone);
2. a full build into an empty folder;
3. a rebuild with nothing changed;
4. a rebuild after one older record's title changed (same length): the pages that show it;
5. a rebuild after one record was added, the newest: every page of the all-items feed and of the
   record's topics and provider shifts by one entry;
6. a rebuild after that record was removed again.

Every run is `feedsvc build` in a fresh process, as a user runs it: wall time from start to exit,
CPU time of the process and its workers, and the files it wrote, kept and removed (from its summary
line). Ratios are against the full build of the same run. The machine's load average is printed
beside each row: on a shared machine, wall times depend on it. What a build leaves to a process
of its own once the new site is in place (removing the old tree, writing the parse cache and the
stories grouping for the next build) is waited for before the next row, and shown as
"after exit": seconds from the build's exit until that process is gone (its CPU time is in no
column: the process is not the build's to wait for).

When `hugo` is installed, the same records are then built by Hugo for comparison, in a site of
its own made in the same temporary folder: each record a page (its title, date, excerpt and other
coverage), `topics` and `providers` taxonomies, the RSS feed of the home page and of every term
(50 items), one minimal HTML template per kind, no theme. Then the rebuild after one title
changed: Hugo has no incremental build, so it builds everything again.

    python -m bench.build [--records 10000] [--workers 2] [--folder DIR] [--no-hugo]

`--folder` is where the records and sites are written (default: a temporary folder in TMPDIR);
file creation costs differ a lot between folders of one disk (see bench/README.md).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.synth import DUMPER, make_record, write_collection

BASE_URL = "https://news.example.org/"
SUMMARY = re.compile(r"wrote (\d+), kept (\d+), removed (\d+) files")


@dataclass(frozen=True)
class Run:
    name: str
    wall: float
    cpu: float
    system: float  # of `cpu`: in the kernel (file creation and links are most of it)
    written: int | None
    kept: int | None
    removed: int | None
    load: float
    after: float | None = None  # s from exit until the build's background process was gone


def feedsvc(
    name: str, arguments: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> Run:
    """One `feedsvc` command in its own process, timed (CPU: it and every process it waited for);
    the run stops, with the command's errors, if it exits with another status than `ok`."""
    command = [sys.executable, "-m", "feedsvc", *arguments]
    done, wall, cpu, system = timed(command, env, ok)
    found = SUMMARY.search(done.stdout)
    counts = [int(value) for value in found.groups()] if found else [None, None, None]
    load = os.getloadavg()[0]
    after = None
    if "--out" in arguments:
        after = background_done(arguments[arguments.index("--out") + 1])
    return Run(name, wall, cpu, system, *counts, load=load, after=after)


def background_done(out: str, seconds: float = 120) -> float:
    """Wait until no process names `out` in its command line (the build's background process,
    forked from it, has its command line); how long that took."""
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if not any(out.encode() in line for line in command_lines()):
            break
        time.sleep(0.02)
    return time.perf_counter() - started


def command_lines() -> list[bytes]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                continue
    return lines


def timed(
    command: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)
) -> tuple[subprocess.CompletedProcess[str], float, float, float]:
    """Run `command`; what it did, its wall time, its CPU time (it and every process it waited
    for) and the part of that in the kernel."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    system = after.ru_stime - before.ru_stime
    return done, wall, after.ru_utime - before.ru_utime + system, system


def change_title(seeds: Path, records: int) -> None:
    """An older record's title with its letters' case swapped: the same length, other bytes."""
    path = seeds / f"{records // 2:06d}-record.md"
    text = path.read_text(encoding="utf-8")
    title = re.search(r"^title: (.*)$", text, re.MULTILINE)
    assert title is not None
    path.write_text(text.replace(title.group(0), f"title: {title.group(1).swapcase()}", 1))


def add_newest(seeds: Path, records: int) -> None:
    """A record dated after every other one (synth dates records 37 minutes apart)."""
    record = make_record(random.Random(records), records, datetime(2020, 1, 1, tzinfo=UTC))
    text = yaml.dump(record, Dumper=DUMPER, sort_keys=False, allow_unicode=True)
    (seeds / f"{records:06d}-record.md").write_text(f"---\n{text}---\n", encoding="utf-8")


def remove_newest(seeds: Path, records: int) -> None:
    (seeds / f"{records:06d}-record.md").unlink()


def run(records: int, workers: int, folder: Path, hugo: bool) -> list[Run]:
    seeds = write_collection(folder / "records", records)
    out = folder / "site"
    env = {**os.environ, "FEEDSVC_PARSE_CACHE": str(folder / "parse-cache")}
    build = ["build", "--seeds", str(seeds), "--out", str(out), "--base-url", BASE_URL]
    build += ["--workers", str(workers)]
    # check exits 1 when it rejects records; a build that exits 1 failed
    load = "load (feedsvc check, fills the parse cache)"
    runs = [feedsvc(load, ["check", str(seeds)], env, ok=(0, 1))]
    runs.append(feedsvc("full build (empty --out)", build, env))
    steps: list[tuple[str, Callable[[Path, int], None] | None]] = [
        ("rebuild, nothing changed", None),
        ("rebuild, one older record's title changed", change_title),
        ("rebuild, one record added (the newest)", add_newest),
        ("rebuild, that record removed", remove_newest),
    ]
    for name, change in steps:
        if change is not None:
            change(seeds, records)
        runs.append(feedsvc(name, build, env))
        print(f"{name}: {runs[-1].wall:.1f} s", file=sys.stderr)
    if hugo:
        runs += hugo_runs(seeds, folder, env)
    return runs


HUGO_CONFIG = """\
baseURL = "https://news.example.org/"
title = "feedsvc"
languageCode = "en"
[taxonomies]
  topic = "topics"
  provider = "providers"
[services.rss]
  limit = 50
"""
HUGO_SINGLE = """\
<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title></head>
<body><h1>{{ .Title }}</h1><p>{{ .Date.Format "2 January 2006" }}
{{ range .Params.providers }} · {{ . }}{{ end }}</p>{{ .Content }}
<ul>{{ range .Params.topics }}
<li><a href="{{ "topics/" | relURL }}{{ . | urlize }}/">{{ . }}</a></li>{{ end }}</ul>
</body></html>
"""
HUGO_LIST = """\
<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{{ .Title }}</title>
{{ with .OutputFormats.Get "rss" }}
<link rel="alternate" type="application/rss+xml" href="{{ .Permalink }}">{{ end }}
</head><body><h1>{{ .Title }}</h1>
{{ range first 50 .Pages }}<article><h2><a href="{{ .Permalink }}">{{ .Title }}</a></h2>
<p>{{ .Date.Format "2 January 2006" }}</p><p>{{ .Summary }}</p></article>{{ end }}
</body></html>
"""


def write_hugo_site(seeds: Path, site: Path) -> Path:
    """A Hugo site of the records in `seeds` (see the module docstring); its folder."""
    content = site / "content" / "posts"
    content.mkdir(parents=True)
    (site / "config.toml").write_text(HUGO_CONFIG, encoding="utf-8")
    layouts = site / "layouts" / "_default"
    layouts.mkdir(parents=True)
    (layouts / "single.html").write_text(HUGO_SINGLE, encoding="utf-8")
    (layouts / "list.html").write_text(HUGO_LIST, encoding="utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(seeds.glob("*.md")):
        record = yaml.load(path.read_text(encoding="utf-8").split("---\n")[1], Loader=loader)
        (content / path.name).write_text(hugo_page(record), encoding="utf-8")
    return site


def hugo_page(record: dict[str, Any]) -> str:
    """A record as Hugo content: front matter for the taxonomies, the excerpt and the other
    coverage as its Markdown."""
    front = {
        "title": record["title"],
        "date": record["publishedDateTime"].isoformat(),
        "description": record["excerpt"],
        "topics": record["topics"],
        "providers": [record["provider"]["name"]],
        "images": [image["url"] for image in record["images"]],
    }
    coverage = "\n".join(
        f"- [{item['title']}]({item['webUrl']}) ({item['provider']['name']})"
        for item in record["related"]
    )
    text = yaml.dump(front, Dumper=DUMPER, sort_keys=False, allow_unicode=True)
    return f"---\n{text}---\n{record['excerpt']}\n\nOther coverage:\n\n{coverage}\n"


def hugo_runs(seeds: Path, folder: Path, env: dict[str, str]) -> list[Run]:
    """Hugo's full build of the same records, then its build after one title changed."""
    hugo = shutil.which("hugo")
    if hugo is None:
        return []
    site = write_hugo_site(seeds, folder / "hugo")
    command = [hugo, "--source", str(site), "--destination", str(site / "public"), "--quiet"]
    runs = []
    for name in ("hugo: full build", "hugo: build after one older record's title changed"):
        if runs:
            change_title(site / "content" / "posts", len(list(seeds.glob("*.md"))))
        _, wall, cpu, system = timed(command, env)
        files = sum(1 for path in (site / "public").rglob("*") if path.is_file())
        load = os.getloadavg()[0]
        runs.append(Run(f"{name} ({files} files)", wall, cpu, system, None, None, None, load))
        print(f"{name}: {wall:.1f} s", file=sys.stderr)
    return runs


def table(runs: list[Run]) -> str:
    full = runs[1].wall
    lines = [
        "| run | wall s | CPU s | of which system | after exit s | written | kept | removed "
        "| × full build (wall) | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for item in runs:
        counts = [str(value) if value is not None else "" for value in (item.written, item.kept)]
        counts.append(str(item.removed) if item.removed is not None else "")
        after = f"{item.after:.2f}" if item.after is not None else ""
        lines.append(
            f"| {item.name} | {item.wall:.2f} | {item.cpu:.2f} | {item.system:.2f} | {after} | "
            f"{' | '.join(counts)} | "
            f"{item.wall / full:.3f} | {item.load:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--folder", type=Path, help="where to write (default: in TMPDIR)")
    parser.add_argument("--no-hugo", action="store_true", help="leave Hugo out")
    args = parser.parse_args()
    if args.folder is not None and not args.folder.is_dir():
        parser.error(f"--folder {args.folder}: no such folder (make it first, or leave it out)")
    print(
        f"{os.cpu_count()} cores, {args.records} records, {args.workers} workers", file=sys.stderr
    )
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        runs = run(args.records, args.workers, Path(folder), not args.no_hugo)
    print(table(runs))


if __name__ == "__main__":
    main()
