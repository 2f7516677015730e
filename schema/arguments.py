"""Field arguments converted to Python values by a function planned once per field.

strawberry converts a resolver's arguments on every call by walking their annotations
(``convert_argument``: resolving each input field's type, testing it against every kind
of type), which cost more than the rest of an empty list's request (issue 11). The
conversion depends only on the argument types, so it is planned here once per field:
leaves (scalars, enums) pass through, lists are copied (graphql-core hands the same
default list to every request), input objects are built from their converted fields,
exactly as ``strawberry.types.arguments.convert_argument`` does. A type it does not plan
for (``Maybe``, ``GlobalID``, inputs with their own ``from_input``) gives None: the field
keeps strawberry's own resolution.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.relay.types import GlobalID
from strawberry.types.arguments import _is_leaf_type, _is_optional_leaf_type
from strawberry.types.base import StrawberryList, StrawberryMaybe, StrawberryOptional, has_object_definition
from strawberry.types.enum import has_enum_definition
from strawberry.types.lazy_type import LazyType
from strawberry.types.unset import UNSET

Convert = Callable[[Any], Any]
ArgumentsConverter = Callable[[dict[str, Any]], dict[str, Any]]


class _Unplanned(Exception):
    """A type this module leaves to strawberry."""


def plan_arguments(field: Any, scalar_registry: Mapping[Any, Any], config: Any) -> ArgumentsConverter | None:
    """A function of graphql-core's argument dict (GraphQL names) to the resolver's keyword
    arguments (Python names), or None when strawberry must convert them itself."""
    try:
        planned = [
            (
                config.name_converter.from_argument(arg),
                arg.python_name,
                _plan(arg.type, scalar_registry, config, 0),
            )
            for arg in field.arguments
        ]
    except _Unplanned:
        return None

    def convert(values: dict[str, Any]) -> dict[str, Any]:
        return {python: conv(values[name]) for name, python, conv in planned if name in values}

    return convert


def _identity(value: Any) -> Any:
    return value


def _plan(type_: Any, registry: Mapping[Any, Any], config: Any, depth: int) -> Convert:
    if depth > 32:
        raise _Unplanned
    if isinstance(type_, StrawberryMaybe) or type_ is GlobalID:
        raise _Unplanned
    if isinstance(type_, StrawberryOptional):
        inner = _plan(type_.of_type, registry, config, depth + 1)
        return lambda v: v if v is None or v is UNSET else inner(v)
    if isinstance(type_, StrawberryList):
        item = type_.of_type
        if _is_leaf_type(item, registry, skip_classes=(GlobalID,)) or _is_optional_leaf_type(
            item, registry, skip_classes=(GlobalID,)
        ):
            return lambda v: v if v is None or v is UNSET else list(v)
        each = _plan(item, registry, config, depth + 1)
        return lambda v: v if v is None or v is UNSET else [each(x) for x in v]
    if _is_leaf_type(type_, registry):
        return _identity
    if isinstance(type_, LazyType):
        return _plan(type_.resolve_type(), registry, config, depth + 1)
    if has_enum_definition(type_):
        return _identity
    if has_object_definition(type_):
        return _plan_input(type_, registry, config, depth)
    raise _Unplanned


def _plan_input(cls: Any, registry: Mapping[Any, Any], config: Any, depth: int) -> Convert:
    definition = cls.__strawberry_definition__
    if definition.from_input is not None:
        raise _Unplanned
    # As strawberry: an input's fields without a default are None unless given.
    implicit = (
        {
            f.python_name: None
            for f in definition.fields
            if f.default_value is MISSING and f.default_factory is MISSING
        }
        if definition.is_input
        else {}
    )
    fields = [
        (
            config.name_converter.from_field(f),
            f.python_name,
            _plan(f.resolve_type(type_definition=definition), registry, config, depth + 1),
        )
        for f in definition.fields
    ]

    def build(value: Any) -> Any:
        if value is None or value is UNSET:
            return value
        kwargs = dict(implicit)
        for name, python, conv in fields:
            if name in value:
                kwargs[python] = conv(value[name])
        return cls(**kwargs)

    return build
