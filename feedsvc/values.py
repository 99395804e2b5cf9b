"""Helpers for feedsvc's immutable value classes.

Frozen slotted dataclasses pickle through Python-level `__getstate__`/`__setstate__`, which made
moving parsed records between processes (parallel loading) and through the parse cache cost as
much as parsing. Pickling them as their constructor and field values is two to three times
faster both ways.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from operator import attrgetter
from typing import Any, TypeVar

T = TypeVar("T")


def pickled_by_fields(cls: type[T]) -> type[T]:
    """Class decorator: pickle instances as `cls(*field values)`."""
    values = attrgetter(*(field.name for field in fields(cls)))  # type: ignore[arg-type]
    single = len(fields(cls)) == 1  # type: ignore[arg-type]

    def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
        found = values(self)
        return cls, (found,) if single else found

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of value objects are made (a
    collection's records, its indexes): each of its passes walks every object made so far, and
    they cost more than making them. Only around code that makes no reference cycles: garbage
    in cycles would stay until the collector runs again."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def maker(cls: type[T]) -> Callable[..., T]:
    """A function making `cls(*values)` (a frozen slotted dataclass, every field given in order)
    through its slots' descriptors: the same object for about half the cost of calling `cls`,
    whose generated `__init__` sets each field through `object.__setattr__` (for the value
    objects a first render makes by the hundred)."""
    names = [field.name for field in fields(cls)]  # type: ignore[arg-type]
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    _set_{name}(made, {name})\n" for name in names)
    source = f"def make({', '.join(names)}):\n    made = _new(_cls)\n{body}    return made\n"
    exec(source, namespace)  # as `dataclasses` makes `__init__`
    made: Callable[..., T] = namespace["make"]
    return made
