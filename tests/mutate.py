"""`make mutate`: mutation testing with mutmut, one scope at a time (results: tests/README.md).

A scope is the functions that are mutated (mutmut names their mutants
`feedsvc.web.x__page__mutmut_3`; fnmatch patterns pick them) and the test files that concern
them. mutmut picks, for each mutant, the tests that ran the mutated function, but only among the
tests it is given: everything loads records and so calls `normalize_url`, and running the whole
suite for each of its mutants would take hours on two cores. So each scope runs mutmut in its own
folder (`.mutate/<scope>/`, links to `feedsvc/`, `tests/`, `seeds/`, `bench/`, and pyproject.toml
with the `[tool.mutmut]` table completed for that scope).

    python -m tests.mutate [SCOPE ...] [--workers N] [--show]
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import subprocess
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutate"


@dataclass(frozen=True)
class Scope:
    functions: tuple[str, ...]  # mutant name patterns: "urls.*", "web.x__page"
    tests: tuple[str, ...]  # pytest arguments that select the tests

    def modules(self) -> list[str]:
        return sorted({function.split(".")[0] for function in self.functions})

    def patterns(self) -> list[str]:
        return [f"feedsvc.{function}__mutmut_*" for function in self.functions]


SCOPES = {
    "urls": Scope(
        ("urls.*",), ("tests/test_urls.py", "tests/test_records.py", "tests/test_settings.py")
    ),
    "parsecache": Scope(("parsecache.*",), ("tests/test_parsecache.py",)),
    # The merge of duplicates and the indexes, not the loading and watching around them.
    # (Built whole or updated by a reload, with the version and modification time a reload
    # updates by the files that changed.)
    "repository": Scope(
        (
            "repository.x_merge_copies",
            "repository.x_newest_first",
            "repository.x__position",
            "repository.x_topic_group",
            "repository.x_provider_group",
            "repository.xǁ_GroupIndexǁ*",
            "repository.xǁIndexesǁ*",
            "repository.x_build_collection",
            "repository.x__path_of",
            "repository.xǁCollectionLoaderǁ_index*",
            "repository.xǁCollectionLoaderǁ_modified",
            "repository.xǁCollectionLoaderǁ_collection",
            "repository.x__file_hash",
        ),
        (
            "tests/test_repository.py",
            "tests/test_feeds.py",
            "tests/test_properties.py",
            "tests/test_reload.py::test_reloads_give_what_a_load_from_nothing_gives",
            "tests/test_reload.py::test_a_reload_keeps_the_objects_of_what_did_not_change",
            "tests/test_reload.py::test_a_record_file_added_and_removed_between_reloads_moves_the_time",
            "tests/test_reload.py::test_deleting_the_newest_record_does_not_move_last_modified_back",
            "tests/test_reload.py::test_editing_an_older_record_moves_etag_and_last_modified",
            "tests/test_reload.py::test_the_version_is_a_function_of_the_files_alone",
            "tests/test_reload.py::test_a_failed_update_of_the_indexes_makes_them_again",
            "tests/test_reload.py::test_the_version_follows_every_content_and_name_and_comes_back_with_them",
            "tests/test_reload.py::test_removing_the_last_record_file_leaves_an_empty_collection",
            "tests/test_reload.py::test_a_duplicate_made_undone_and_made_again_by_reloads_is_noted_each_time",
        ),
    ),
    # Conditional GET (`_not_modified` with the If-None-Match and If-Modified-Since parsers it
    # calls, and `_feed_response` that answers 304) and paging (`page` read by `_page`, keyed by
    # `_feed_key`).
    "web": Scope(
        (
            "web.x__not_modified",
            "web.x__feed_response",
            "headers.x_etag_matches",
            "headers.x_http_date",
            "headers.x__moment",
            "web.x__page",
            "web.x__feed_key",
        ),
        (
            "tests/test_web_caching.py",
            "tests/test_headers.py",
            "tests/test_web.py",
            "tests/test_story_feeds.py",
            "tests/test_hostile_requests.py",
            "-m",
            "not live",
        ),
    ),
    # Incremental publishing (issue 11). The render cache that carries renders across versions
    # and the fragment cache (all of cache.py).
    "cache": Scope(("cache.*",), ("tests/test_cache.py", "tests/test_web_caching.py")),
    # Trap 10: the characters XML forbids dropped from every string a feed writes.
    "text": Scope(
        ("fields.x_clean_text",),
        (
            "tests/test_records.py::test_clean_text_drops_only_what_xml_forbids",
            "tests/test_records.py::test_control_characters_are_removed",
            "tests/test_render.py::test_trap10_forbidden_characters_never_fail_a_feed",
        ),
    ),
    # A reload replacing the served version, and the preparer that keeps the unchanged renders
    # valid for it before it is served.
    "versions": Scope(
        (
            "versions.xǁVersionsǁ__init__",
            "versions.xǁVersionsǁreload",
            "versions.xǁVersionsǁ_loaded",
            "web.x__keep_unchanged_renders",
        ),
        (
            "tests/test_versions.py",
            "tests/test_websub.py::test_a_reload_notifies_exactly_the_first_pages_whose_bytes_changed",
            # The property over random changes (a minute a mutant) is left to `make test`.
            "--deselect",
            "tests/test_versions.py::test_after_any_changes_every_url_serves_what_a_fresh_start_serves",
        ),
    ),
    # Documents put together from a head, entry fragments and a tail (Format.assemble, the cuts
    # of each format), and the HTML pages' shared articles. (Not `render._xml_parts`: it runs
    # at import, before mutmut plants a mutant.)
    "render": Scope(
        (
            "render.xǁFormatǁassemble",
            "render.x__cut_xml",
            "render.x__json_parts",
            "render.x__unique",
            "pages.x__articles",
            "pages.x_time_element",
            "pages.x__time",
            "pages.x__text",
            "pages.x__entries",
            "pages.x__coverage_items",
        ),
        (
            "tests/test_render.py",
            "tests/test_properties.py::test_pages_put_together_from_entry_fragments_equal_one_shot_renders",
            "tests/test_pages.py",
            "tests/test_story_pages.py",
        ),
    ),
    # An entry's parts as a first render makes them: Media RSS, Atom enclosure links, the other
    # coverage from the packed related articles, value objects made through their slots.
    "entries": Scope(
        (
            "render.x__media",
            "render.x__sized",
            "render.xǁ_EntryExtrasǁextend_atom",
            "render.xǁ_EntryExtrasǁextend_rss",
            "render.xǁ_EntryExtrasǁ_extend",
            "render.x__atom_elements",
            "render.x__rss_elements",
            "render.x__atom_markup",
            "render.x__rss_markup",
            "render.x__media_markup",
            "render.x__atom_parts",
            "render.x__rss_parts",
            "render.x__plain",
            "render.x__references",
            "render.x__size",
            "render.x__attribute",
            "render.x__element_text",
            "render.x__checked",
            "render.x__with_markup",
            "render.x__new_entry",
            "render.x__rfc2822",
            "render.x__lxml_checked",
            "render.x__as_lxml_checks",
            "feeds.x_entry_for",
            "feeds.x__escape",
            "records.x_related_fields",
            "values.x_maker",
        ),
        ("tests/test_render.py", "tests/test_feeds.py", "tests/test_records.py"),
    ),
    # What a build's page is made from, to keep its file without rendering it.
    "fingerprints": Scope(
        (
            "feeds.xǁFingerprintsǁ*",
            "feeds.x_record_values",
            "feeds.x__image_values",
            "build.xǁFeedKeysǁ*",
            "build.x__feed_key",
        ),
        (
            "tests/test_fingerprints.py",
            "tests/test_build.py::test_a_record_digest_covers_every_field",
            "tests/test_build.py::test_a_story_digest_is_its_records_digests",
            "tests/test_build.py::test_page_fingerprints_are_the_same_in_every_process",
            "tests/test_build.py::test_a_rebuild_with_nothing_changed_renders_nothing",
            "tests/test_build.py::test_a_rebuild_writes_only_the_files_whose_bytes_change",
            "tests/test_build.py::test_a_rebuild_drops_the_files_of_urls_that_are_gone",
            "tests/test_build.py::test_pages_follow_the_counts_of_the_feeds_they_list",
            "tests/test_build.py::test_a_rebuild_works_out_the_fingerprints_of_the_changed_feeds_alone",
            "tests/test_build.py::test_a_feeds_key_names_its_own_values_and_the_records_its_group_holds",
        ),
    ),
    # Stories (stories.py, comparison.py, headlines.py): comparison keys, record keys, the
    # grouping from scratch and updated by a version's changes, same_event and the headline
    # words, story ids, StoryIndex.
    "stories": Scope(
        ("stories.*", "comparison.*", "headlines.*"),
        (
            "tests/test_stories.py",
            "tests/test_comparison.py",
            "tests/test_headlines.py",
            "tests/test_story_feeds.py",
            "tests/test_story_pages.py",
            # Symmetry over random text (8 s a mutant, and no mutant of the words breaks it).
            "--deselect",
            "tests/test_headlines.py::test_same_event_is_symmetric",
        ),
    ),
    # The headline words common around a day (headlines.WordCounts), counted from scratch and
    # followed in place by a version's changes, and `same_event`'s rules: the part of the stories
    # scope that changed last.
    "words": Scope(
        (
            "headlines.xǁWordCountsǁ*",
            "headlines.x_same_event",
            "headlines.x__bump",
            "headlines.x__texts_agree",
            "headlines.x__texts_make_up",
            "headlines.x__text_words",
            "headlines.x__names_agree",
            "headlines.x__written_names",
            "headlines.x__one_article",
            "headlines.x__particulars_differ",
            "headlines.x__own_name",
            "headlines.x__distinctive",
            "headlines.x__amount_word",
            "headlines.x__headline_words",
            "headlines.x__headline_kind",
            "headlines.x__particulars",
        ),
        (
            "tests/test_headlines.py",
            "tests/test_stories.py",
            "--deselect",
            "tests/test_headlines.py::test_same_event_is_symmetric",
        ),
    ),
    # A load's readers (forked when there are enough files) and their end with the loader.
    "readers": Scope(
        ("repository.x_read_file_states", "processes.x_end_with_parent"),
        ("tests/test_repository.py", "tests/test_parsecache.py", "tests/test_records.py"),
    ),
    # A rebuild's pages rendered again, told from their old files (by the manifest's sizes
    # first) and given the old file's time when their bytes are the same.
    "carryover": Scope(
        ("build.x__same_bytes", "build.x__stamp", "build.x__previous_files"),
        (
            "tests/test_build.py::test_a_page_is_told_from_its_old_file_by_both_its_bytes_and_its_gz",
            "tests/test_build.py::test_a_page_written_again_is_a_second_later_than_the_file_it_replaces",
            "tests/test_build.py::test_a_rebuild_reads_no_old_file_of_another_size",
            "tests/test_build.py::test_a_rebuild_with_nothing_changed_renders_nothing",
            "tests/test_build.py::test_a_rebuild_writes_only_the_files_whose_bytes_change",
            "tests/test_build.py::test_a_rebuild_drops_the_files_of_urls_that_are_gone",
        ),
    ),
    # The stories grouping kept from one build to the next (storystate.py): written as plain
    # values, taken up only for the records and settings it was written for.
    "storystate": Scope(
        ("storystate.*", "stories.x_resume", "stories.x_grouping_of"),
        (
            "tests/test_storystate.py",
            "tests/test_build.py::test_feedsvc_build_writes_the_parse_cache_once_the_site_is_in_place",
        ),
    ),
    # The records' digests kept from one build to the next (digeststate.py), and taken up only
    # for the records read from the parse cache they were written with.
    "digeststate": Scope(
        ("digeststate.*",),
        (
            "tests/test_digeststate.py",
            "tests/test_build.py::test_a_record_changed_since_the_kept_digests_is_rendered_again",
            "tests/test_build.py::test_a_merged_record_takes_up_no_kept_digest",
        ),
    ),
}

# mutmut's exit codes (mutmut.stats.status_by_exit_code): a mutant is caught when the tests fail
# or run out of time.
CAUGHT = {1: "killed", 3: "killed", -24: "timeout", 24: "timeout", 152: "timeout", 36: "timeout"}
SURVIVED = 0


def prepare(name: str, scope: Scope) -> Path:
    """The scope's folder, its links and its pyproject.toml; results of an earlier run removed
    (mutmut keeps them, and they would outlive a change of the tests)."""
    folder = WORK / name
    subprocess.run(["rm", "-rf", str(folder / "mutants")], check=True)
    folder.mkdir(parents=True, exist_ok=True)
    for link in ("feedsvc", "tests", "seeds", "bench"):  # tests/test_build.py uses bench/synth
        if not (folder / link).is_symlink():
            (folder / link).symlink_to(ROOT / link)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    settings = tomllib.loads(text)["tool"]["mutmut"]
    settings["only_mutate"] = [f"feedsvc/{module}.py" for module in scope.modules()]
    settings["also_copy"] = [*settings.get("also_copy", []), "bench/"]
    settings["pytest_add_cli_args_test_selection"] = list(scope.tests)
    table = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    before, _, _ = text.partition("\n[tool.mutmut]\n")
    (folder / "pyproject.toml").write_text(f"{before}\n[tool.mutmut]\n{table}", encoding="utf-8")
    return folder


def run(folder: Path, scope: Scope, workers: int) -> None:
    command = [sys.executable, "-m", "mutmut", "run", *scope.patterns()]
    environment = {**os.environ, "HYPOTHESIS_PROFILE": "mutate"}  # see conftest.py
    command += ["--max-children", str(workers)]
    subprocess.run(command, cwd=folder, check=True, env=environment)


def results(folder: Path, scope: Scope) -> dict[str, int | None]:
    """Exit code by mutant name, for the scope's mutants only."""
    codes: dict[str, int | None] = {}
    for module in scope.modules():
        meta = folder / "mutants" / "feedsvc" / f"{module}.py.meta"
        codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    patterns = scope.patterns()
    return {
        name: code
        for name, code in codes.items()
        if any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
    }


def report(name: str, folder: Path, codes: dict[str, int | None], show: bool) -> tuple[int, int]:
    """Print the scope's kill rate and survivors; (caught, total)."""
    caught = sum(code in CAUGHT for code in codes.values())
    survivors = sorted(mutant for mutant, code in codes.items() if code == SURVIVED)
    other = Counter(code for code in codes.values() if code not in CAUGHT and code != SURVIVED)
    rate = 100 * caught / len(codes) if codes else 0.0
    print(f"\n== {name}: {caught}/{len(codes)} caught ({rate:.1f}%), {len(survivors)} survived")
    if other:
        print(f"   not decided (exit code: count): {dict(other)}")
    for mutant in survivors:
        print(f"   survived: {mutant}")
        if show:
            command = [sys.executable, "-m", "mutmut", "show", mutant]
            subprocess.run(command, cwd=folder, check=False)
    return caught, len(codes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scopes", nargs="*", help=f"some of {', '.join(SCOPES)} (default: all)")
    parser.add_argument("--workers", type=int, default=1, help="mutants tested at once")
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    parser.add_argument("--report-only", action="store_true", help="the last run's results")
    options = parser.parse_args()
    unknown = set(options.scopes) - set(SCOPES)
    if unknown:
        parser.error(f"no scope called {', '.join(sorted(unknown))}")
    totals = [0, 0]
    for name in options.scopes or SCOPES:
        scope = SCOPES[name]
        folder = WORK / name
        if not options.report_only:
            folder = prepare(name, scope)
            run(folder, scope, options.workers)
        caught, total = report(name, folder, results(folder, scope), options.show)
        totals[0] += caught
        totals[1] += total
    if totals[1]:
        print(f"\n== all: {totals[0]}/{totals[1]} caught ({100 * totals[0] / totals[1]:.1f}%)")


if __name__ == "__main__":
    main()
