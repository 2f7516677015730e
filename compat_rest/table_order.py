"""Sort and search for the legacy dashboard's paged detail tables.

The Image and Source detail pages list an image's measurements and a source's detections
in the dashboard's ``GenericTable`` (dsa110-contimg ``frontend/src/components/GenericTable.tsx``):
it pages with ``page``/``page_size``, sends the search box as ``search`` and a column
header's sort as ``ordering=<field>`` or ``ordering=-<field>`` (descending), the field being
the REST answer's own key (``flux_peak``, ``snr``, ``name``...). Both were dropped, so a
click on a column header or a search left the rows as they were.

The graph's connections page by their own order (epoch, id), so when a table asks for an
order or a search the route reads the whole list (at most ``SCAN_ROWS`` rows, in graph
pages), shapes every row, sorts and filters the shaped rows here, and cuts the page.
"""

from __future__ import annotations

import re
from typing import Any, Final

from compat_rest.convert import page_window
from compat_rest.errors import ApiError, validation_error
from compat_rest.graph import GraphCall
from compat_rest.paging import Connection, collect
from compat_rest.params import Args, Param, Str

SCAN_ROWS: Final = 20_000
"""Rows read to sort or search one table (an image's measurements; a source's epochs)."""

ORDERING_RE: Final = re.compile(r"^-?[A-Za-z_][A-Za-z0-9_]{0,63}$")

PARAMS: Final[tuple[Param, ...]] = (
    Str("ordering", max_length=65, description="Sort by a field of the rows, `-field` for descending"),
    Str("search", max_length=200, description="Keep rows whose text fields contain this (any case)"),
)


def wanted(args: Args) -> bool:
    """Whether the request asks for an order or a search (else the graph's page is used)."""
    return bool(args.get("ordering") or args.get("search"))


def _ordering(args: Args) -> tuple[str, bool] | None:
    ordering = args.get("ordering")
    if not ordering:
        return None
    if not ORDERING_RE.match(ordering):
        raise validation_error("ordering must be a field name, or -name for descending", param="ordering")
    return ordering.lstrip("-"), ordering.startswith("-")


def _sort_key(value: Any) -> tuple[int, Any]:
    # Numbers before text; booleans as numbers; missing values are put last below.
    if isinstance(value, bool | int | float):
        return (0, float(value))
    return (1, str(value).casefold())


def arrange(rows: list[dict[str, Any]], args: Args) -> list[dict[str, Any]]:
    """``rows`` filtered by ``search`` and sorted by ``ordering``; missing values sort last.

    A field the rows do not have leaves the order as it was (the table may offer a column
    this server does not fill).
    """
    search = (args.get("search") or "").strip().casefold()
    if search:
        rows = [r for r in rows if any(isinstance(v, str) and search in v.casefold() for v in r.values())]
    order = _ordering(args)
    if order is not None:
        field, descending = order
        present = [r for r in rows if r.get(field) is not None]
        missing = [r for r in rows if r.get(field) is None]
        present.sort(key=lambda r: _sort_key(r[field]), reverse=descending)
        rows = present + missing
    return rows


async def fetch_page(
    call: GraphCall, document: str, variables: dict[str, Any], connection: Connection, args: Args
) -> Any:
    """The graph's answer for one table page: the graph's own page, or (when an order or a
    search is asked) every row, which ``cut`` then arranges and pages after shaping."""
    if not wanted(args):
        return await call(document, {**variables, **page_window(args["page"], args["page_size"])})
    _ordering(args)  # refuse a malformed ordering before reading anything
    return await collect(
        call, document, {**variables, "after": None}, connection, max_rows=SCAN_ROWS, check_first=_within_scan
    )


def _within_scan(found: dict[str, Any]) -> None:
    """Sort and search read the whole list: a longer one would be sorted in part, its first
    ``SCAN_ROWS`` rows standing for all of them, and counted short. Refused instead."""
    total = found.get("totalCount")
    if isinstance(total, int) and total > SCAN_ROWS:
        raise ApiError(
            422,
            "TABLE_TOO_LONG_TO_ARRANGE",
            f"ordering and search read at most {SCAN_ROWS} rows; this table has {total}: "
            "page it without them",
            {"rows": total, "max_rows": SCAN_ROWS},
        )


def cut(items: list[dict[str, Any]], total: int, args: Args) -> tuple[list[dict[str, Any]], int]:
    """The page of ``items`` the request asked for, and the total it counts."""
    if not wanted(args):
        return items, total
    arranged = arrange(items, args)
    start = (args["page"] - 1) * args["page_size"]
    return arranged[start : start + args["page_size"]], len(arranged)
