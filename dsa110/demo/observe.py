"""The observing schedule: 5-minute groups of 16 subbands in a fixed-Dec drift scan.

A group is named by its start time (``YYYY-MM-DDTHH:MM:SS`` UTC, legacy-pipeline-facts
§1.1); its pointing is the meridian at its mid time, so the RA is the apparent local
sidereal time at OVRO and the Dec is the strip's (§3.11). States follow the ingest state
machine: the past is ``completed`` except a few ``failed`` groups with an error text;
the newest groups are still ``in_progress``, ``pending`` (all 16 subbands present) and
``collecting`` (fewer than 16). A group "has a calibrator" when a calibrator lies within
``CALIBRATOR_RADIUS_DEG`` of its pointing; ``calibrators`` lists them with the legacy
fields ``{name, ra_deg, dec_deg, sep_deg, weighted_flux}`` (flux x primary beam).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from dsa110.demo.catalog import Catalog
from dsa110.demo.instrument import (
    GROUP_MINUTES,
    GROUPS_PER_DAY,
    N_SUBBANDS,
    STRIP_DEC_DEG,
    airy_primary_beam,
)
from dsa110.science.healpix import angular_separation_deg
from dsa110.science.site import local_sidereal_deg

CALIBRATOR_RADIUS_DEG = 1.0
MJD_UNIX_EPOCH = 40587.0
FAILURE_RATE = 0.003
ERROR_TEXTS = (
    "orchestrator exit=1",
    "RuntimeError: tclean returned no image (model diverged)",
    "TimeoutError: casacore table lock on the MS not released after 300 s",
    "ValueError: no active calibration tables cover MJD {mjd:.5f}",
    "OSError: [Errno 28] No space left on device: '/stage/dsa110-contimg/ms'",
)


@dataclass(frozen=True)
class Schedule:
    """One entry per group, oldest first."""

    group_ids: list[str]
    start: list[datetime]
    start_mjd: NDArray[np.float64]
    mid_mjd: NDArray[np.float64]
    pointing_ra_deg: NDArray[np.float64]
    dec_deg: float
    states: list[str]
    errors: list[str | None]
    n_subbands: NDArray[np.int64]
    retry_count: NDArray[np.int64]
    received_at: list[datetime]
    updated_at: list[datetime]
    calibrators: list[list[dict[str, Any]]]

    def __len__(self) -> int:
        return len(self.group_ids)


def to_mjd(moments: list[datetime]) -> NDArray[np.float64]:
    return np.asarray([m.timestamp() / 86400.0 + MJD_UNIX_EPOCH for m in moments], dtype=np.float64)


def from_mjd(mjd: float) -> datetime:
    return datetime.fromtimestamp((mjd - MJD_UNIX_EPOCH) * 86400.0, tz=UTC)


def make_schedule(rng: np.random.Generator, end: datetime, days: float, catalog: Catalog) -> Schedule:
    """Groups every 5 minutes for ``days`` days, the last one starting 5 minutes before ``end``."""
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    step = timedelta(minutes=GROUP_MINUTES)
    end = end.astimezone(UTC).replace(microsecond=0)
    end -= timedelta(seconds=end.second, minutes=end.minute % GROUP_MINUTES)
    n = max(8, round(days * GROUPS_PER_DAY))
    start = [end - (n - i) * step for i in range(n)]
    start_mjd = to_mjd(start)
    mid_mjd = start_mjd + GROUP_MINUTES / 2.0 / 1440.0
    ra = local_sidereal_deg(mid_mjd)

    states = ["completed"] * n
    states[-1] = "collecting"
    states[-3] = states[-2] = "pending"
    states[-4] = "in_progress"
    n_failed = max(2, round(FAILURE_RATE * n))
    failed = rng.choice(n - 4, size=n_failed, replace=False)
    errors: list[str | None] = [None] * n
    for i in failed.tolist():
        states[i] = "failed"
        errors[i] = str(rng.choice(ERROR_TEXTS)).format(mjd=mid_mjd[i])

    n_subbands = np.full(n, N_SUBBANDS, dtype=np.int64)
    n_subbands[-1] = int(rng.integers(3, N_SUBBANDS))
    retry = np.where(rng.random(n) < 0.01, 1, 0).astype(np.int64)
    retry[failed] = rng.integers(0, 3, failed.size)

    arrival = rng.uniform(5.0, 40.0, n)
    processing = rng.uniform(150.0, 260.0, n)
    received = [s + step + timedelta(seconds=float(a)) for s, a in zip(start, arrival, strict=True)]
    updated = []
    for i, state in enumerate(states):
        if state in ("completed", "failed"):
            updated.append(
                received[i] + timedelta(seconds=float(processing[i] * (0.5 if state == "failed" else 1)))
            )
        elif state == "in_progress":
            updated.append(received[i] + timedelta(seconds=30))
        else:
            updated.append(received[i])
    # The group still collecting started receiving subbands when its 5 minutes ended
    # and is not finished: its timestamps are at "now" (end).
    received[-1] = updated[-1] = end - timedelta(seconds=float(rng.uniform(1.0, 20.0)))

    return Schedule(
        group_ids=[s.strftime("%Y-%m-%dT%H:%M:%S") for s in start],
        start=start,
        start_mjd=start_mjd,
        mid_mjd=mid_mjd,
        pointing_ra_deg=ra,
        dec_deg=STRIP_DEC_DEG,
        states=states,
        errors=errors,
        n_subbands=n_subbands,
        retry_count=retry,
        received_at=received,
        updated_at=updated,
        calibrators=_calibrator_matches(ra, catalog),
    )


def _calibrator_matches(ra: NDArray[np.float64], catalog: Catalog) -> list[list[dict[str, Any]]]:
    matches: list[list[dict[str, Any]]] = [[] for _ in range(ra.shape[0])]
    for c in catalog.calibrators.tolist():
        sep = angular_separation_deg(ra, STRIP_DEC_DEG, catalog.ra_deg[c], catalog.dec_deg[c])
        near = np.flatnonzero(sep <= CALIBRATOR_RADIUS_DEG)
        weights = airy_primary_beam(sep[near])
        for i, s, w in zip(near.tolist(), sep[near].tolist(), weights.tolist(), strict=True):
            matches[i].append(
                {
                    "name": catalog.names[c],
                    "ra_deg": round(float(catalog.ra_deg[c]), 6),
                    "dec_deg": round(float(catalog.dec_deg[c]), 6),
                    "sep_deg": round(s, 4),
                    "weighted_flux": round(float(catalog.flux_jy[c]) * w, 4),
                }
            )
    for entry in matches:
        entry.sort(key=lambda m: m["sep_deg"])
    return matches


__all__ = ["Schedule", "from_mjd", "local_sidereal_deg", "make_schedule", "to_mjd"]
