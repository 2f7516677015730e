"""FITS header values and CASA table cells as JSON: plain numbers, strings and lists.

Arrays larger than ``max_items`` are summarised (shape and type, plus min/max for numbers)
instead of copied: a table cell or header can be large, a response should not be.
Non-finite floats become None (JSON has no NaN); complex numbers become ``[re, im]``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MAX_ITEMS = 64
MAX_TEXT = 2000


def jsonable(value: Any, max_items: int = MAX_ITEMS) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, complex | np.complexfloating):
        return [jsonable(value.real), jsonable(value.imag)]
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8", "replace")[:MAX_TEXT]
    if isinstance(value, str):
        return value[:MAX_TEXT]
    if isinstance(value, dict):
        return {str(k)[:200]: jsonable(v, max_items) for k, v in list(value.items())[:max_items]}
    if isinstance(value, np.ndarray | list | tuple):
        array = np.asarray(value)
        if array.size <= max_items and array.dtype != object:
            return (
                [jsonable(v, max_items) for v in array.ravel().tolist()]
                if array.ndim <= 1
                else [jsonable(v, max_items) for v in array.tolist()]
            )
        if array.dtype == object:
            return [jsonable(v, max_items) for v in list(value)[:max_items]]
        return summary(array)
    return str(value)[:MAX_TEXT]


def summary(array: np.ndarray[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"shape": list(array.shape), "dtype": str(array.dtype)}
    if array.size and np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array):
        finite = array[np.isfinite(array)] if np.issubdtype(array.dtype, np.floating) else array
        if finite.size:
            out["min"], out["max"] = jsonable(finite.min()), jsonable(finite.max())
    return out
