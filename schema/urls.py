"""URLs the graph hands out for other tools: table exports and plots.

A URL carries the query it stands for (a filter as the graph's own JSON input), so it
can be pasted into TOPCAT, a notebook or a browser and gives what the graph would.
URLs are relative to the server, like ``Image.fitsUrl``.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any
from urllib.parse import quote, urlencode

import strawberry
from strawberry.utils.str_converters import to_camel_case

from schema.scalars import serialize_datetime


@strawberry.enum(description="A table format other tools read (astropy, TOPCAT, pandas, DS9...).")
class TableFormat(Enum):
    VOTABLE = "votable"
    CSV = "csv"
    ECSV = "ecsv"
    FITS = "fits"


@strawberry.enum(description="An image format for plots.")
class PlotFormat(Enum):
    PNG = "png"
    SVG = "svg"


def graph_input(value: Any) -> Any:
    """A strawberry input (a dataclass) back into the graph's JSON spelling: camelCase, enum
    names, ``DateTime`` as its ISO string (``json.dumps`` cannot write a datetime)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for field in dataclasses.fields(value):
            item = getattr(value, field.name)
            if item is not None:
                out[to_camel_case(field.name)] = graph_input(item)
        return out
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, datetime):
        return serialize_datetime(value)
    if isinstance(value, list | tuple):
        return [graph_input(v) for v in value]
    return value


def _with_query(path: str, query: dict[str, Any]) -> str:
    given = {k: v for k, v in query.items() if v is not None}
    return f"{path}?{urlencode(given)}" if given else path


def listing_export_url(
    kind: str, fmt: TableFormat, filter: Any, order_by: Enum | None, direction: Enum | None
) -> str:
    """``/exports/<kind>.<fmt>?filter=...&orderBy=...&direction=...`` (every matching row)."""
    filter_json = (
        json.dumps(graph_input(filter), separators=(",", ":"), sort_keys=True) if filter is not None else None
    )
    return _with_query(
        f"/exports/{kind}.{fmt.value}",
        {
            "filter": filter_json,
            "orderBy": order_by.name if order_by is not None else None,
            "direction": direction.name if direction is not None else None,
        },
    )


def source_path(source_id: str) -> str:
    return quote(source_id, safe="")


def light_curve_export_url(source_id: str, fmt: TableFormat) -> str:
    return f"/exports/sources/{source_path(source_id)}/lightcurve.{fmt.value}"


def measurements_export_url(image_id: int, fmt: TableFormat) -> str:
    return f"/exports/images/{image_id}/measurements.{fmt.value}"


def light_curve_plot_url(source_id: str, fmt: PlotFormat, normalised: bool) -> str:
    return _with_query(
        f"/plots/sources/{source_path(source_id)}/lightcurve.{fmt.value}",
        {"normalised": "true" if normalised else "false"},
    )


def sky_map_url(fmt: PlotFormat) -> str:
    return f"/plots/skymap.{fmt.value}"
