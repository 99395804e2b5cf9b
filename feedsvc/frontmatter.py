"""The front matter of a record file read as plain values, bounded against hostile input.

This is the only module that imports PyYAML (one adapter per dependency). It finds the YAML
between a record's `---` lines, refuses what would crash or hang the parser (nesting deeper than
`MAX_NESTING`, recursive aliases, tags that construct objects) and builds str, list, dict, bool
and None straight from the C parser's events. It does not know what a record's fields mean:
`fields` converts these values into a `records.Record`. It also reads the one YAML form the
converters still need, timestamps (`yaml_timestamp`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import MarkedYAMLError
from yaml.events import (
    AliasEvent,
    Event,
    MappingEndEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from feedsvc.errors import RecordError

_FRONT_MATTER = re.compile(
    r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*\r?$", re.DOTALL | re.MULTILINE
)
# libyaml composes nested collections by C recursion: some 50,000 levels crash the process (a
# 100 KB file of `[`). Records need four levels; deeper front matter is refused unread.
MAX_NESTING = 200
_DEEP_BLOCK = re.compile(rf"^[ \t?:-]{{{MAX_NESTING},}}", re.MULTILINE)
_FLOW_BRACKETS = re.compile(r"[\[\]{}]")

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
# The tags a safe loader knows (`!!int`, `!!timestamp`...): an explicit one gives its plain value.
# "!" is the non-specific tag (`! 12`): text.
_STANDARD_TAGS = frozenset(tag for tag in SafeConstructor.yaml_constructors if tag) | {"!"}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})
_FALSE = frozenset({"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"})

if yaml.__with_libyaml__:
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]

else:  # pragma: no cover - PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, text: str) -> None:
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)

        def dispose(self) -> None:
            pass


def load_front_matter(text: str) -> Any:
    """The plain values (`load_yaml`) of a record file's front matter, or of the whole text when
    it has none. A byte order mark is ignored.

    :raises RecordError: (naming no field) the front matter is never closed, nests more than
        `MAX_NESTING` levels deep, is not YAML, or holds a value no Python type can hold; the
        message says which, with the file's own line for a YAML error.
    """
    source, lines_before = front_matter(text.removeprefix("\ufeff"))
    if nests_too_deeply(source):
        raise RecordError("", f"is not valid YAML: nested more than {MAX_NESTING} levels deep")
    try:
        return load_yaml(source)
    except yaml.YAMLError as exc:
        raise RecordError("", _yaml_message(exc, lines_before)) from None
    except RecursionError:
        raise RecordError("", "is not valid YAML: nested too deeply") from None
    except ValueError as exc:  # a value no Python type can hold
        raise RecordError("", f"is not a usable record: {exc}") from None


def front_matter(text: str) -> tuple[str, int]:
    """The YAML of a record (between the opening and closing `---` lines, else the whole file)
    and the number of file lines before it, so YAML errors can name the file's own line.

    :raises RecordError: the file opens front matter and never closes it.
    """
    if not text.startswith("---"):
        return text, 0
    match = _FRONT_MATTER.match(text)
    if match:
        return match.group(1), 1
    if re.match(r"\A---[ \t]*\r?$", text, re.MULTILINE):
        raise RecordError("", "front matter opens with '---' but has no closing '---' line")
    return text, 0


def nests_too_deeply(source: str) -> bool:
    """Whether YAML text may nest deeper than MAX_NESTING, judged without parsing it: block
    nesting needs a column of indentation or indicator per level, flow nesting a bracket."""
    if _DEEP_BLOCK.search(source):
        return True
    if source.count("[") + source.count("{") <= MAX_NESTING:
        return False
    depth = 0
    for bracket in _FLOW_BRACKETS.finditer(source):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > MAX_NESTING:
            return True
    return False


def _yaml_message(exc: yaml.YAMLError, lines_before: int) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        line = exc.problem_mark.line + 1 + lines_before  # marks count from 0
        return f"is not valid YAML: {exc.problem} (line {line})"
    if isinstance(exc, yaml.reader.ReaderError):  # its str() spans two lines
        return f"is not valid YAML: {exc.reason} (character {exc.position + 1})"
    return "is not valid YAML: " + " ".join(str(exc).split())


def load_yaml(text: str) -> Any:
    """The one YAML document in `text` as plain values: str, list, dict, bool and None only.

    Values are built straight from the parser's events. PyYAML's loaders first build a node per
    value, then type every scalar with regexes (dates, ints, floats) that feedsvc converts again
    anyway: three times the work. Only unquoted nulls and yes/no words are typed here (a quoted
    "no" stays text); numbers and dates stay text for the `fields.FIELDS` converters. Explicit
    standard tags (`!!int 5`) give their plain value; any other (`!!python/object`, `!custom`) is
    refused, so no YAML can construct an object.

    :raises yaml.YAMLError: not YAML, more than one document, or a tag it refuses.
    :raises RecursionError: nested deeper than Python's recursion limit.
    """
    parser = _Parser(text)
    try:
        get: Callable[[], Any] = parser.get_event
        get()  # stream start
        if isinstance(get(), StreamEndEvent):  # else: document start
            return None
        value = _value(get, get(), {})
        get()  # document end
        event = get()
        if not isinstance(event, StreamEndEvent):
            raise _error(ComposerError, "found a second document; a record is one", event)
        return value
    finally:
        parser.dispose()


def _error(kind: type[MarkedYAMLError], problem: str, event: Event) -> MarkedYAMLError:
    mark: Any = event.start_mark  # the C parser's own Mark class, which the stubs do not name
    return kind(None, None, problem, mark)


def _scalar(event: ScalarEvent) -> Any:
    tag = event.tag
    if tag is not None:
        _check_tag(event)
        if tag == _NULL_TAG:
            return None
        if tag != _BOOL_TAG or (event.value not in _TRUE and event.value not in _FALSE):
            return event.value
    elif not event.implicit[0]:  # quoted
        return event.value
    value = event.value
    if value in _NULLS:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return value


def _check_tag(event: NodeEvent) -> None:
    tag = event.tag  # type: ignore[attr-defined]
    if tag is not None and tag not in _STANDARD_TAGS:
        message = f"could not determine a constructor for the tag {tag!r}"
        raise _error(ConstructorError, message, event)


def _value(get: Callable[[], Event], event: Event, anchors: dict[str, Any]) -> Any:
    """The value that starts with `event`, reading the events of its items from `get`."""
    kind = type(event)
    value: Any
    if kind is ScalarEvent:
        value = _scalar(event)  # type: ignore[arg-type]
    elif kind is AliasEvent:
        anchor = event.anchor  # type: ignore[attr-defined]
        if anchor not in anchors:  # also an alias inside its own anchor: a recursive value
            raise _error(ComposerError, f"found undefined alias {anchor!r}", event)
        return anchors[anchor]
    elif kind is SequenceStartEvent:
        _check_tag(event)  # type: ignore[arg-type]
        value = []
        item = get()
        while not isinstance(item, SequenceEndEvent):
            value.append(_value(get, item, anchors))
            item = get()
    else:
        _check_tag(event)  # type: ignore[arg-type]
        value = {}
        key = get()
        while not isinstance(key, MappingEndEvent):
            name = _value(get, key, anchors)
            if isinstance(name, list | dict):
                raise _error(ConstructorError, "found a mapping key that is a list or mapping", key)
            value[name] = _value(get, get(), anchors)
            key = get()
    anchor = event.anchor  # type: ignore[attr-defined]
    if anchor is not None:
        anchors[anchor] = value
    return value


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_TIMESTAMPS = SafeConstructor()


def yaml_timestamp(text: str) -> datetime | None:
    """The moment `text` names in YAML's timestamp form (`2001-12-14 21:59:43.10 -5`, a form ISO
    8601 lacks); None when `text` is not in that form.

    :raises ValueError: it is in that form but names no moment (the pattern admits 2023-02-30
        and 25:00, which datetime refuses).
    """
    if not SafeConstructor.timestamp_regexp.match(text):
        return None
    try:
        moment = _TIMESTAMPS.construct_yaml_timestamp(ScalarNode(_TIMESTAMP_TAG, text))
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a moment") from None
    return moment if isinstance(moment, datetime) else datetime(*moment.timetuple()[:3])
