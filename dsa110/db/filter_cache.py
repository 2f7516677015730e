"""A filter's SQL conditions built once per distinct filter value.

Building a filter's conditions coerces every value into SQLAlchemy bind parameters (60-80 us
for ``statuses: [ACTIVE]``), and a statement made of new conditions is keyed again by
SQLAlchemy's compiled cache on every execution (~25 us a statement). The same value always
builds the same conditions (``conditions()`` reads nothing but the filter), so they are kept
by the filter's value, and the statements made of them can be kept by the same key
(``loaders.registry``). Bounded, least recently used out: values come from clients.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, Final, Protocol

from sqlalchemy import ColumnElement

SIZE: Final = 512


class Filter(Protocol):
    def conditions(self) -> list[ColumnElement[bool]]: ...


_KEPT: OrderedDict[Hashable, list[ColumnElement[bool]]] = OrderedDict()


def filter_key(value: Any) -> Hashable | None:
    """A hashable key equal for equal filter values (lists as tuples, nested filters by their
    own key); None for a value that is not a dataclass or holds something unhashable."""
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return None
    parts: list[Any] = [type(value)]
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if isinstance(item, list | tuple):
            item = tuple(item)
        elif dataclasses.is_dataclass(item):
            item = filter_key(item)
            if item is None:
                return None
        parts.append(item)
    key = tuple(parts)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def conditions_of(value: Filter | None) -> tuple[list[ColumnElement[bool]], Hashable | None]:
    """``value.conditions()`` and the key they are kept by (None: not kept, built each time).

    A value whose conditions raise (``InputError``) raises every time; nothing is kept for it.
    """
    if value is None:
        return [], None
    key = filter_key(value)
    if key is None:
        return value.conditions(), None
    kept = _KEPT.get(key)
    if kept is not None:
        _KEPT.move_to_end(key)
        return kept, key
    conditions = value.conditions()
    _KEPT[key] = conditions
    if len(_KEPT) > SIZE:
        _KEPT.popitem(last=False)
    return conditions, key
