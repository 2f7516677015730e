"""Small conversions the section modules share when reshaping graph answers."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dsa110.times import mjd_to_datetime


def lower(value: str | None) -> str | None:
    """Graph enum value -> legacy lower-case name (``IN_PROGRESS`` -> ``in_progress``)."""
    return value.lower() if value is not None else None


def iso_from_mjd(mjd: float | None) -> str | None:
    if mjd is None:
        return None
    return mjd_to_datetime(mjd).isoformat().replace("+00:00", "Z")


def epoch_seconds(value: Any) -> float | None:
    """An ISO 8601 time -> Unix seconds, where the legacy pages expect a number.

    The operations and pipeline pages render ``format(new Date(t * 1000), ...)``: an ISO
    string there is an invalid date, and date-fns throws on it (the page fails to render).
    A number is taken as Unix seconds already; anything unreadable is ``None``.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def epoch_fields(**times: Any) -> dict[str, Any]:
    """Each ISO time as Unix seconds under its own name and, unchanged, under ``<name>_iso``.

    For rows the legacy server returned straight from SQLite (``REAL`` epochs), which its
    pages format as ``new Date(t * 1000)``: the data browser and detail pages, the region
    list. An ISO string there renders as "Invalid Date" (or as 1970).
    """
    shaped: dict[str, Any] = {}
    for name, value in times.items():
        shaped[name] = epoch_seconds(value)
        shaped[f"{name}_iso"] = value
    return shaped


def mjy(jy: float | None) -> float | None:
    return jy * 1000.0 if jy is not None else None


def after_offset(offset: int) -> str | None:
    """The Relay ``after`` cursor that starts a page at row ``offset``.

    The graph's cursors are arrayconnection-style (base64 of ``offset:N``, see
    ``loaders/pagination.py``); legacy paths page by offset, so we name the row before.
    """
    if offset <= 0:
        return None
    return base64.urlsafe_b64encode(f"offset:{offset - 1}".encode()).decode()


def page_window(page: int, page_size: int) -> dict[str, Any]:
    return {"first": page_size, "after": after_offset((page - 1) * page_size)}


def compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Drop ``None`` entries: GraphQL filter inputs where the request gave no value."""
    return {k: v for k, v in values.items() if v is not None}
