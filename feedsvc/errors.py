"""Every exception feedsvc raises on purpose, in one tree.

    FeedsvcError            anything feedsvc itself refuses
    ├── ConfigError         a setting has a value that cannot be used
    │   └── FolderError     the seeds folder is missing or cannot be listed
    ├── PageNotFound        a feed page past the last one was asked for
    ├── QueryError          a search cannot be read or answered (the reason is for the reader)
    ├── ServeError          the server cannot start where it was asked to listen
    └── RecordError         one record file cannot be published (carries its Problem)
        └── UrlError        a URL cannot be made safe and absolute

Problems with records are usually collected as values (`Problem`) rather than raised, so that a
check can report all of them; the exceptions exist for the places where one value is all there is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from feedsvc.values import pickled_by_fields

Severity = Literal["error", "warning"]


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one record: which file, which field, and what a person should know."""

    path: str
    field: str
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.path}: {self.field}" if self.field else self.path
        return f"{where}: {self.message}"


class FeedsvcError(Exception):
    """Base class of every error feedsvc raises on purpose."""


class ConfigError(FeedsvcError):
    """A setting has a value feedsvc cannot use."""


class FolderError(ConfigError):
    """The seeds folder is missing, is not a folder, or cannot be listed: refused at start, as
    loading it would publish an empty site."""


class RecordError(FeedsvcError):
    """One record cannot be published; the rest of the collection is unaffected."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class UrlError(RecordError):
    """A URL cannot be made into a safe, absolute http(s) URL."""

    def __init__(self, message: str, *, relative: bool = False) -> None:
        super().__init__("", message)
        self.relative = relative


class ServeError(FeedsvcError):
    """The server cannot listen where it was asked to (the port is taken, the host unknown)."""


class PageNotFound(FeedsvcError):
    """A page past the end of a feed was asked for."""


class QueryError(FeedsvcError):
    """A search query cannot be read (too long, an unbalanced quote...) or would cost too much
    to answer; the message is one line for the reader."""
