"""Which sources land on which tile, and the per-tile observing conditions.

A tile centred on (LST, Dec) covers +-2.26 deg at its corners; candidates are found by
binary search in the RA-sorted catalog (with wrap-around at 0/360 deg) and placed on the
tile through its WCS. A source is *rendered* if its beam stamp touches the tile and
*measured* if it lies in the measured region (:func:`dsa110.demo.instrument.measurable`).
Per-tile conditions: calibration gain ``g ~ N(1, 3 %)`` shared by every source of the
tile, thermal noise ``1 mJy x lognormal(0, 8 %)`` (1 % of tiles hit by RFI at 2-4x),
and a restoring beam that wanders by ~1 % in size and 2 deg in angle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from dsa110.demo.catalog import Catalog
from dsa110.demo.images import tile_wcs
from dsa110.demo.instrument import (
    BEAM_MAJOR_ARCSEC,
    BEAM_MINOR_ARCSEC,
    BEAM_PA_DEG,
    STRIP_DEC_DEG,
    STRIP_HALF_WIDTH_DEG,
    THERMAL_NOISE_JY,
    TILE_NPIX,
    measurable,
)
from dsa110.demo.variability import CALIBRATION_SCATTER

# Candidates within this distance on the sky of the tile centre (corner 2.26 deg plus a
# beam stamp), converted to an RA half-width at the strip's far edge.
CANDIDATE_RADIUS_DEG = 2.45
STAMP_MARGIN_PIX = 6


@dataclass(frozen=True)
class TilePlan:
    """Per-image conditions, and source pairs in CSR form: the sources of image ``i`` are
    ``pair_src[offsets[i]:offsets[i + 1]]``."""

    group_index: NDArray[np.intp]
    gain: NDArray[np.float64]
    noise_jy: NDArray[np.float64]
    beam_major_arcsec: NDArray[np.float64]
    beam_minor_arcsec: NDArray[np.float64]
    beam_pa_deg: NDArray[np.float64]
    offsets: NDArray[np.intp]
    pair_src: NDArray[np.intp]
    pair_measure: NDArray[np.bool_]

    @property
    def n_images(self) -> int:
        return int(self.group_index.shape[0])

    @property
    def pair_image(self) -> NDArray[np.intp]:
        return np.repeat(np.arange(self.n_images), np.diff(self.offsets))


def plan_tiles(
    rng: np.random.Generator,
    catalog: Catalog,
    centre_ra_deg: NDArray[np.float64],
    group_index: NDArray[np.intp],
    measured_only: bool = False,
) -> TilePlan:
    n = int(group_index.shape[0])
    f64 = np.float64
    gain = np.asarray(rng.normal(1.0, CALIBRATION_SCATTER, (n,)), dtype=f64)
    noise = THERMAL_NOISE_JY * np.asarray(rng.lognormal(0.0, 0.08, (n,)), dtype=f64)
    rfi = np.asarray(rng.random((n,)) < 0.01, dtype=bool)
    noise[rfi] *= rng.uniform(2.0, 4.0, (int(rfi.sum()),))
    bmaj = BEAM_MAJOR_ARCSEC * (1.0 + 0.01 * np.asarray(rng.standard_normal((n,)), dtype=f64))
    bmin = BEAM_MINOR_ARCSEC * (1.0 + 0.01 * np.asarray(rng.standard_normal((n,)), dtype=f64))
    bpa = BEAM_PA_DEG + 2.0 * np.asarray(rng.standard_normal((n,)), dtype=f64)

    ra_sorted = catalog.ra_deg
    half_ra = CANDIDATE_RADIUS_DEG / math.cos(math.radians(STRIP_DEC_DEG + STRIP_HALF_WIDTH_DEG))
    wcs = tile_wcs(0.0, STRIP_DEC_DEG)
    offsets = np.zeros(n + 1, dtype=np.intp)
    src_parts: list[NDArray[np.intp]] = []
    measure_parts: list[NDArray[np.bool_]] = []
    lo_pix, hi_pix = -STAMP_MARGIN_PIX, TILE_NPIX - 1 + STAMP_MARGIN_PIX
    for i, g in enumerate(group_index.tolist()):
        ra0 = float(centre_ra_deg[g])
        candidates = _ra_window(ra_sorted, ra0, half_ra)
        wcs.wcs.crval = [ra0, STRIP_DEC_DEG]
        x, y = wcs.wcs_world2pix(catalog.ra_deg[candidates], catalog.dec_deg[candidates], 0)
        measure = measurable(x, y)
        keep = measure if measured_only else (x >= lo_pix) & (x <= hi_pix) & (y >= lo_pix) & (y <= hi_pix)
        src_parts.append(candidates[keep])
        measure_parts.append(measure[keep])
        offsets[i + 1] = offsets[i] + int(keep.sum())
    return TilePlan(
        group_index=group_index,
        gain=gain,
        noise_jy=noise,
        beam_major_arcsec=bmaj,
        beam_minor_arcsec=bmin,
        beam_pa_deg=bpa,
        offsets=offsets,
        pair_src=np.concatenate(src_parts) if src_parts else np.zeros(0, np.intp),
        pair_measure=np.concatenate(measure_parts) if measure_parts else np.zeros(0, bool),
    )


def _ra_window(ra_sorted: NDArray[np.float64], ra0: float, half: float) -> NDArray[np.intp]:
    """Indices of sources with RA within ``half`` deg of ``ra0`` (wrapping at 360)."""
    lo, hi = (ra0 - half) % 360.0, (ra0 + half) % 360.0
    a, b = np.searchsorted(ra_sorted, [lo, hi])
    if lo <= hi:
        return np.arange(a, b, dtype=np.intp)
    return np.concatenate([np.arange(a, ra_sorted.shape[0], dtype=np.intp), np.arange(0, b, dtype=np.intp)])
