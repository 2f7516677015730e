"""Every filter error names fields the client can actually send.

Filters validate their own values (``dsa110.db.filters``) and name the offending field in
the message and in ``extensions.field``. The names are derived from the dataclass fields,
so they are the GraphQL input fields; these tests hold every filter to that, for every
kind of bad value: not finite, low above high, too many list members, a naive time, an
empty or overlong text.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from datetime import datetime
from typing import Any

import pytest
from graphql import GraphQLInputObjectType
from strawberry.types.base import get_object_definition

from dsa110.db import file_filters, filters
from dsa110.errors import InputError
from dsa110.settings import Settings
from schema.schema import build_schema

FILTERS = sorted(
    (
        cls
        for module in (filters, file_filters)
        for cls in vars(module).values()
        if dataclasses.is_dataclass(cls) and hasattr(cls, "conditions") and cls is not filters.ConeFilter
    ),
    key=lambda cls: cls.__name__,
)


@pytest.fixture(scope="module")
def input_fields() -> dict[type, set[str]]:
    """Filter class -> the names of its GraphQL input fields, as the served schema has them."""
    type_map = build_schema(Settings())._schema.type_map
    found = {}
    for cls in [*FILTERS, filters.ConeFilter]:
        gql = type_map[get_object_definition(cls, strict=True).name]
        assert isinstance(gql, GraphQLInputObjectType)
        found[cls] = set(gql.fields)
    return found


def _bad_values(kind: Any) -> list[Any]:
    """Values of a field's type that a filter must refuse (if it checks that kind at all)."""
    base = {a for a in typing.get_args(kind) if a is not type(None)} or {kind}
    (inner,) = base
    if inner is float:
        return [math.nan, math.inf, -math.inf]
    if inner is datetime:
        return [datetime(2025, 1, 1)]  # no timezone
    if inner is str:
        return ["", "x" * 100_000]
    if typing.get_origin(inner) is list:
        (member,) = typing.get_args(inner)
        sample = next(iter(member)) if isinstance(member, type) and hasattr(member, "__members__") else 1
        return [[sample] * (filters.MAX_LIST_FILTER + 1)]
    return []


def _named(error: InputError) -> set[str]:
    return {*re.findall(r"`(\w+)`", error.message), error.details["field"]}


@pytest.mark.parametrize("cls", FILTERS, ids=lambda cls: cls.__name__)
def test_each_refused_value_names_the_field_it_came_from(
    cls: Any, input_fields: dict[type, set[str]]
) -> None:
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name == "cone":
            for cone_field in ("ra_deg", "dec_deg", "radius_arcsec"):
                cone = filters.ConeFilter(**{cone_field: math.nan})
                with pytest.raises(InputError) as caught:
                    cls(cone=cone).conditions()
                assert _named(caught.value) <= input_fields[filters.ConeFilter], caught.value.message
            continue
        for bad in _bad_values(hints[f.name]):
            try:
                cls(**{f.name: bad}).conditions()
            except InputError as error:
                assert _named(error) <= input_fields[cls], (cls.__name__, f.name, error.message)
                assert error.details["field"] == filters.input_name(f.name), error.message
            else:
                # Only floats must always be checked: SQL comparisons with NaN are silently empty.
                assert hints[f.name] not in (float | None, float), (cls.__name__, f.name)


@pytest.mark.parametrize("cls", FILTERS, ids=lambda cls: cls.__name__)
def test_low_above_high_names_both_bounds(cls: Any, input_fields: dict[type, set[str]]) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    for low in sorted(n for n in names if "_min" in n):
        high = low.replace("_min", "_max")
        if high not in names or (cls is filters.MosaicFilter and low == "mjd_min"):
            continue  # mosaics: an overlap with a window, so the window's ends may cross
        with pytest.raises(InputError) as caught:
            cls(**{low: 2.0, high: 1.0}).conditions()
        expected = f"`{filters.input_name(low)}` is greater than `{filters.input_name(high)}`"
        assert caught.value.message == expected
        assert _named(caught.value) <= input_fields[cls]


def test_the_names_users_were_told_about_exist() -> None:
    with pytest.raises(InputError, match=r"^`raMinDeg` is greater than `raMaxDeg`$"):
        filters.SourceFilter(ra_min_deg=10.0, ra_max_deg=5.0).conditions()
    with pytest.raises(InputError, match=r"^`fluxMinJy` must be a finite number$"):
        filters.SourceFilter(flux_min_jy=math.nan).conditions()
