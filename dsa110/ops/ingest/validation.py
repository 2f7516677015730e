"""Input validation: each measurement row is checked and coerced before anything is written."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from dsa110.ops.ingest.common import (
    MAX_ROWS_PER_INGEST,
    IngestError,
    MeasurementIn,
)

_FLOAT_FIELDS = ("mjd", "ra_deg", "dec_deg", "int_flux_jy", "int_flux_err_jy", "local_rms_jy", "snr")
_FLUX_FIELDS = ("int_flux_jy", "int_flux_err_jy", "local_rms_jy")

MAX_FLUX_JY = 1e7
"""Largest flux density or error a measurement may carry: above the quiet Sun at 1.4 GHz
(~1e6 Jy), the brightest thing a radio telescope sees, and small enough that the running
sums (``sum_wf2`` = sum f**2 / e**2) stay finite. A finite 1e308 Jy row was accepted and
made its source's mean 6e305 Jy and its variability metrics null for good."""
MIN_ERR_JY = 1e-9
"""Smallest flux error: a nanojansky, far below any image's noise (DSA-110's is ~0.1-1 mJy);
a 1e-308 Jy error made the row's weight 1/e**2 overflow to infinity."""


def _as_float(value: Any, name: str, index: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IngestError(f"row {index}: {name} must be a number, got {type(value).__name__}")
    out = float(value)
    if not math.isfinite(out):
        raise IngestError(f"row {index}: {name} must be finite")
    return out


def _coerce_row(raw: MeasurementIn | Mapping[str, Any], index: int) -> MeasurementIn:
    if isinstance(raw, MeasurementIn):
        if (
            type(raw.source_pk) is int
            and raw.source_pk > 0
            and type(raw.peak_flux_jy) is float
            and type(raw.peak_flux_err_jy) is float
            and abs(raw.peak_flux_jy) <= MAX_FLUX_JY  # False for NaN
            and MIN_ERR_JY <= raw.peak_flux_err_jy <= MAX_FLUX_JY
            # every optional float unset (_FLOAT_FIELDS), spelled out: no generator per row
            and raw.mjd is None
            and raw.ra_deg is None
            and raw.dec_deg is None
            and raw.int_flux_jy is None
            and raw.int_flux_err_jy is None
            and raw.local_rms_jy is None
            and raw.snr is None
            and type(raw.forced) is bool
        ):
            return raw  # the common pipeline case, already well-formed: skip the rebuild
        data: dict[str, Any] = {k: getattr(raw, k) for k in MeasurementIn.__dataclass_fields__}
    elif isinstance(raw, Mapping):
        unknown = set(raw) - set(MeasurementIn.__dataclass_fields__)
        if unknown:
            raise IngestError(f"row {index}: unknown fields {sorted(map(str, unknown))[:5]}")
        data = dict(raw)
    else:
        raise IngestError(f"row {index}: expected a mapping or MeasurementIn, got {type(raw).__name__}")
    for required in ("source_pk", "peak_flux_jy", "peak_flux_err_jy"):
        if data.get(required) is None:
            raise IngestError(f"row {index}: {required} is required")
    pk = data["source_pk"]
    if isinstance(pk, bool) or not isinstance(pk, int) or pk <= 0:
        raise IngestError(f"row {index}: source_pk must be a positive integer")
    data["peak_flux_jy"] = _as_float(data["peak_flux_jy"], "peak_flux_jy", index)
    data["peak_flux_err_jy"] = _as_float(data["peak_flux_err_jy"], "peak_flux_err_jy", index)
    if data["peak_flux_err_jy"] <= 0:
        raise IngestError(f"row {index}: peak_flux_err_jy must be > 0")
    if data["peak_flux_err_jy"] < MIN_ERR_JY:
        raise IngestError(f"row {index}: peak_flux_err_jy must be at least {MIN_ERR_JY:g} Jy")
    for name in _FLOAT_FIELDS:
        if data.get(name) is not None:
            data[name] = _as_float(data[name], name, index)
    for name in ("peak_flux_jy", "peak_flux_err_jy", *_FLUX_FIELDS):
        if data.get(name) is not None and abs(data[name]) > MAX_FLUX_JY:
            raise IngestError(f"row {index}: {name} must be within +-{MAX_FLUX_JY:g} Jy")
    if data.get("dec_deg") is not None and abs(data["dec_deg"]) > 90:
        raise IngestError(f"row {index}: dec_deg must be within [-90, 90]")
    if not isinstance(data.get("forced", True), bool):
        raise IngestError(f"row {index}: forced must be a boolean")
    return MeasurementIn(**data)


def _validate_rows(rows: Sequence[MeasurementIn | Mapping[str, Any]]) -> list[MeasurementIn]:
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence):
        raise IngestError("rows must be a list of measurements")
    if len(rows) > MAX_ROWS_PER_INGEST:
        raise IngestError(f"at most {MAX_ROWS_PER_INGEST} measurements per call, got {len(rows)}")
    parsed = [_coerce_row(raw, i) for i, raw in enumerate(rows)]
    seen: set[int] = set()
    for i, row in enumerate(parsed):
        if row.source_pk in seen:
            raise IngestError(f"row {i}: source_pk {row.source_pk} appears twice for this image")
        seen.add(row.source_pk)
    return parsed
