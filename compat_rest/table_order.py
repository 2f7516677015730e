"""Sort and search for the legacy dashboard's paged detail tables.

The Image and Source detail pages list an image's measurements and a source's detections
in the dashboard's ``GenericTable`` (dsa110-contimg ``frontend/src/components/GenericTable.tsx``):
it pages with ``page``/``page_size``, sends the search box as ``search`` and a column
header's sort as ``ordering=<field>`` or ``ordering=-<field>`` (descending), the field being
the REST answer's own key (``flux_peak``, ``snr``, ``name``...). Both were dropped, so a
click on a column header or a search left the rows as they were.

A sort on a column the graph can order by (``GRAPH_ORDERS``: fluxes, errors, SNR, epoch,
position), and on the image's table an ASCII search (its only text is the source's name), are
the graph's: the route asks the connection for that order and filter and reads one page,
however long the table. Any other search, or a sort on a field the graph does not order by
(the source's name, compactness), reads the whole list (at most ``SCAN_ROWS`` rows, in graph
pages), shapes every row, sorts and filters the shaped rows here, and cuts the page. Both
ways give the same rows: missing values last, ties in the table's own order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from compat_rest.convert import page_window
from compat_rest.errors import ApiError, validation_error
from compat_rest.graph import GraphCall
from compat_rest.paging import collect
from compat_rest.params import Args, Param, Str

SCAN_ROWS: Final = 20_000
"""Rows read to sort or search one table (an image's measurements; a source's epochs)."""

ORDERING_RE: Final = re.compile(r"^-?[A-Za-z_][A-Za-z0-9_]{0,63}$")

PARAMS: Final[tuple[Param, ...]] = (
    Str("ordering", max_length=65, description="Sort by a field of the rows, `-field` for descending"),
    Str("search", max_length=200, description="Keep rows whose text fields contain this (any case)"),
)


GRAPH_ORDERS: Final = {
    # a row's key -> the MeasurementOrderField that orders the same way (mJy and Jy alike)
    "flux_peak": "PEAK_FLUX",
    "flux_peak_jy": "PEAK_FLUX",
    "flux_peak_err": "PEAK_FLUX_ERR",
    "flux_peak_err_jy": "PEAK_FLUX_ERR",
    "flux_int": "INT_FLUX",
    "flux_int_jy": "INT_FLUX",
    "flux_int_err": "INT_FLUX_ERR",
    "flux_int_err_jy": "INT_FLUX_ERR",
    "local_rms_jy": "LOCAL_RMS",
    "snr": "SNR",
    "mjd": "MJD",
    "measured_at": "MJD",
    "ra": "RA",
    "ra_deg": "RA",
    "dec": "DEC",
    "dec_deg": "DEC",
}


def orders_for(*row_keys: str) -> dict[str, str]:
    """The graph orders of a table whose rows have ``row_keys`` (a key it lacks is not
    sorted by: the order stays as it was, as ``arrange`` leaves it)."""
    return {key: field for key, field in GRAPH_ORDERS.items() if key in row_keys}


@dataclass(frozen=True)
class DetailTable:
    """One paged detail table: the ``measurements`` of the node ``parent`` (``image`` or
    ``source``) that ``document`` reads, each shaped by ``row``, and what of its sort and
    search the graph does itself."""

    document: str
    parent: str
    variables: Callable[[Args], dict[str, Any]]
    """The document's variables naming the parent, from the route's arguments."""
    row: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    """The table row of one measurement node (the parent node first)."""
    orders: dict[str, str]
    """Row key -> the ``MeasurementOrderField`` that orders the rows the same way."""
    search_filter: str | None = None
    """The ``MeasurementFilter`` field that keeps exactly the rows the search keeps, for a
    search folded to ASCII (the table's only text is the source's name): ``sourceIdContains``."""

    async def fetch(self, call: GraphCall, args: Args) -> Any:
        """The graph's answer for one table page: the graph's own page (searched and in the
        order asked when the graph can do it), or every row, which ``shape`` arranges."""
        variables = {**self.variables(args), **graph_variables(args, self)}
        if not arranged_here(args, self):
            return await call(self.document, {**variables, **page_window(args["page"], args["page_size"])})
        return await collect(
            call,
            self.document,
            {**variables, "after": None},
            lambda data: data[self.parent]["measurements"] if data[self.parent] else None,
            max_rows=SCAN_ROWS,
            check_first=_within_scan,
        )

    def shape(self, data: dict[str, Any], args: Args) -> dict[str, Any]:
        """The page the request asked for, with the total it counts."""
        node = data[self.parent]
        connection = node["measurements"]
        items = [self.row(node, m) for m in connection["nodes"]]
        total = connection["totalCount"]
        if arranged_here(args, self):
            arranged = arrange(items, args)
            start = (args["page"] - 1) * args["page_size"]
            items, total = arranged[start : start + args["page_size"]], len(arranged)
        return {"items": items, "total": total, "page": args["page"], "page_size": args["page_size"]}


def _search(args: Args) -> str:
    return (args.get("search") or "").strip().casefold()


def _graph_search(args: Args, side: DetailTable) -> str | None:
    # The search folded to ASCII only ("ß" folds to "ss"): the catalog names are ASCII, and
    # on ASCII casefold() and the database's lower() agree.
    search = _search(args)
    return search if search and search.isascii() and side.search_filter else None


def arranged_here(args: Args, side: DetailTable) -> bool:
    """Whether the rows are arranged here: a search or an order the graph cannot give
    (else the graph's page is used, filtered and in the order asked)."""
    order = _ordering(args)
    if order is not None and order[0] not in side.orders:
        return True
    return bool(_search(args)) and _graph_search(args, side) is None


def graph_variables(args: Args, side: DetailTable) -> dict[str, Any]:
    """The connection's ``orderBy``, ``direction`` and ``filter`` for the request (none of
    them when the rows are arranged here)."""
    order = _ordering(args)  # refuses a malformed ordering
    if arranged_here(args, side):
        return {"orderBy": None, "direction": "ASC", "filter": None}
    search = _graph_search(args, side)
    return {
        "orderBy": side.orders[order[0]] if order is not None else None,
        "direction": "DESC" if order is not None and order[1] else "ASC",
        "filter": {side.search_filter: search} if search is not None and side.search_filter else None,
    }


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
    search = _search(args)
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
