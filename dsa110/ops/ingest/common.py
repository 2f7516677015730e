"""Shared vocabulary of the ingest package: limits, errors, input and result types."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dsa110 import errors
from dsa110.errors import InputError

Publish = Callable[[str, dict[str, Any]], Awaitable[None]]


MAX_ROWS_PER_INGEST = 200_000
CHUNK = 500  # bound parameters per IN (...) list; SQLite's limit is far above it
REFERENCE_RADIUS_DEG = 1.5  # legacy fov_radius_deg (legacy-pipeline-facts section 3.3)
MAX_REFERENCES = 30
MIN_REFERENCE_EPOCHS = 10
MIN_REFERENCE_SNR = 30.0
GROUP_ORDER = 6  # targets in one ~0.9 deg HEALPix cell share one reference set
ESCALATION_FACTOR = 1.5

TRANSITIONS: Mapping[str, frozenset[str]] = {
    "active": frozenset({"investigated", "false_positive", "dismissed"}),
    "investigated": frozenset({"resolved", "false_positive", "dismissed"}),
    "resolved": frozenset(),
    "false_positive": frozenset(),
    "dismissed": frozenset(),
}


class IngestError(InputError):
    """Measurements refused as a whole (nothing was written); the message says why."""


class NotFoundError(errors.NotFoundError):
    """A referenced image, source or candidate does not exist."""


class CandidateStatusError(InputError):
    """A status change the lifecycle does not allow."""


class CandidateChangedError(errors.ConflictError):
    """A status change that lost a race: allowed from the status the candidate had when the
    request was judged, but another writer changed it before this one could (``CONFLICT``,
    as for jobs and data products: reload and decide again, the request itself was fine)."""


@dataclass(frozen=True)
class MeasurementIn:
    """One measurement of one source on the image being ingested."""

    source_pk: int
    peak_flux_jy: float
    peak_flux_err_jy: float
    mjd: float | None = None  # default: the image's mid_mjd
    ra_deg: float | None = None  # default: the source's position
    dec_deg: float | None = None
    int_flux_jy: float | None = None
    int_flux_err_jy: float | None = None
    local_rms_jy: float | None = None
    snr: float | None = None
    forced: bool = True


@dataclass(frozen=True)
class DetectionResult:
    n_sources: int
    new_candidate_pks: tuple[int, ...] = ()
    escalated_candidate_pks: tuple[int, ...] = ()  # changed phase: confirmed or rejected
    updated_candidate_pks: tuple[int, ...] = ()
    alert_pks: tuple[int, ...] = ()


@dataclass(frozen=True)
class IngestResult:
    image_pk: int
    n_measurements: int
    source_pks: tuple[int, ...]
    detection: DetectionResult | None = None
    """Always None since detection moved into the ``ese-detect`` job (kept for callers)."""
    detection_job_id: int | None = None
    """The ``ese-detect`` job the touched sources were queued on (ingest with ``detect``)."""


@dataclass(frozen=True)
class NormalisedLightCurve:
    """One source's points in time order, raw and normalised (lightcurve section 3.3)."""

    source_pk: int
    measurement_pks: tuple[int, ...]
    image_pks: tuple[int, ...]
    mjd: tuple[float, ...]
    flux_jy: tuple[float, ...]
    flux_err_jy: tuple[float, ...]
    norm_flux_jy: tuple[float, ...]
    norm_flux_err_jy: tuple[float, ...]
    corrected: tuple[bool, ...]
    n_references: int = 0
    reference_pks: tuple[int, ...] = field(default_factory=tuple)


def _chunks(values: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
