"""Which calibrators a drift-scan observation saw, weighted by the primary beam.

The legacy ``/api/ms/{ms}/calibrator-matches`` rule, with its primary-beam defect fixed:

* the telescope points at the meridian: RA = apparent local sidereal time at OVRO at the
  observation's mid-time, Dec = the MS phase-centre declination;
* candidates are calibrators of the VLA list within ``radius_deg`` of that pointing
  (great-circle separation; the legacy code used the flat-sky
  ``sqrt((dRA cos Dec)^2 + dDec^2)`` inside a box, which differs by < 0.1 % at 1.5 deg);
* ``pb_response`` = the Airy power pattern of a 4.7 m dish at 1.4 GHz at that separation
  (:func:`dsa110.science.site.airy_primary_beam`), ``weighted_flux`` = response x 20 cm
  flux (Jy);
* quality: ``excellent`` if pb >= 0.8, ``good`` >= 0.5, ``marginal`` >= 0.3, else ``poor``;
  ``has_calibrator`` when the best match has pb > 0.3;
* ranked by weighted flux (descending), then separation; the first ``top_n`` are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dsa110.science.healpix import angular_separation_deg
from dsa110.science.site import airy_primary_beam

DEFAULT_RADIUS_DEG = 1.5
DEFAULT_TOP_N = 5
HAS_CALIBRATOR_MIN_PB = 0.3
QUALITY_BANDS = ((0.8, "excellent"), (0.5, "good"), (0.3, "marginal"))


@dataclass(frozen=True)
class Calibrator:
    name: str
    ra_deg: float
    dec_deg: float
    flux_jy: float | None


@dataclass(frozen=True)
class CalibratorMatch:
    name: str
    ra_deg: float
    dec_deg: float
    flux_jy: float | None
    sep_deg: float
    pb_response: float
    weighted_flux: float | None
    quality: str


def quality(pb_response: float) -> str:
    for threshold, label in QUALITY_BANDS:
        if pb_response >= threshold:
            return label
    return "poor"


def match_calibrators(
    pointing_ra_deg: float,
    pointing_dec_deg: float,
    candidates: Sequence[Calibrator],
    *,
    radius_deg: float = DEFAULT_RADIUS_DEG,
    top_n: int = DEFAULT_TOP_N,
) -> list[CalibratorMatch]:
    if not candidates:
        return []
    ra = np.array([c.ra_deg for c in candidates])
    dec = np.array([c.dec_deg for c in candidates])
    sep = np.asarray(angular_separation_deg(ra, dec, pointing_ra_deg, pointing_dec_deg), dtype=float)
    response = np.clip(airy_primary_beam(sep), 0.0, 1.0)
    matches = []
    for c, s, pb in zip(candidates, sep.tolist(), response.tolist(), strict=True):
        if s > radius_deg:
            continue
        matches.append(
            CalibratorMatch(
                name=c.name,
                ra_deg=c.ra_deg,
                dec_deg=c.dec_deg,
                flux_jy=c.flux_jy,
                sep_deg=s,
                pb_response=pb,
                weighted_flux=None if c.flux_jy is None else pb * c.flux_jy,
                quality=quality(pb),
            )
        )
    matches.sort(key=lambda m: (-(m.weighted_flux or 0.0), m.sep_deg))
    return matches[:top_n]


def has_calibrator(matches: Sequence[CalibratorMatch]) -> bool:
    return bool(matches) and matches[0].pb_response > HAS_CALIBRATOR_MIN_PB
