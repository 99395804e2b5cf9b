"""What `feedsvc check` and `feedsvc stats` report about a collection, as plain JSON-ready data.

The command line prints these as text or as JSON; keeping the shapes here means both outputs say
the same thing and a script can rely on the JSON.
"""

from __future__ import annotations

from typing import Any

from feedsvc.errors import Problem
from feedsvc.repository import Collection, Group, LoadStats


def problem_data(problem: Problem) -> dict[str, str]:
    return {
        "file": problem.path,
        "field": problem.field,
        "message": problem.message,
        "severity": problem.severity,
    }


def rejected_files(collection: Collection) -> int:
    return len({problem.path for problem in collection.rejections})


def check_report(folder: str, collection: Collection, stats: LoadStats) -> dict[str, Any]:
    """Every problem of every record file, and the counts a summary line needs."""
    return {
        "folder": folder,
        "files": stats.files,
        "records": len(collection.records),
        "rejected_files": rejected_files(collection),
        "ok": not collection.rejections,
        "rejections": [problem_data(problem) for problem in collection.rejections],
        "warnings": [problem_data(problem) for problem in collection.warnings],
        "skipped": [problem_data(problem) for problem in collection.skipped],
    }


def check_summary(report: dict[str, Any]) -> str:
    rejected = report["rejected_files"]
    verdict = "all usable" if report["ok"] else f"{rejected} rejected"
    skipped = f", {len(report['skipped'])} links skipped" if report["skipped"] else ""
    return (
        f"{report['files']} files checked in {report['folder']}: {verdict}; "
        f"{report['records']} entries published, {len(report['warnings'])} warnings{skipped}"
    )


def _group_data(group: Group) -> dict[str, Any]:
    return {
        "slug": group.slug,
        "name": group.name,
        "entries": len(group.records),
        "newest": group.updated.isoformat(),
    }


def stats_report(collection: Collection) -> dict[str, Any]:
    """Topics and providers with their entry counts and newest dates, most entries first."""

    def ranked(groups: list[Group]) -> list[dict[str, Any]]:
        ordered = sorted(groups, key=lambda group: (-len(group.records), group.slug))
        return [_group_data(group) for group in ordered]

    newest = collection.updated
    return {
        "entries": len(collection.records),
        "newest": newest.isoformat() if newest else None,
        "topics": ranked(list(collection.topics.values())),
        "providers": ranked(list(collection.providers.values())),
    }
