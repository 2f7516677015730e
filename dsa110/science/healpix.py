"""HEALPix sky indexing for cone searches that are index range scans.

Every sky position is stored with its NESTED HEALPix index at a fine order
(``INDEX_ORDER`` = 16, nside 65536, pixels ~3.2 arcsec). In the NESTED scheme a pixel
``p`` at a coarser order ``k`` contains exactly the fine pixels
``[p * 4**(K-k), (p+1) * 4**(K-k))`` (Gorski et al. 2005, ApJ 622, 759, §4), so a cone
becomes a short list of integer ranges: a B-tree range scan on SQLite and PostgreSQL
alike, followed by an exact great-circle separation cut.
"""

from __future__ import annotations

import math

import numpy as np
from astropy import units as u
from astropy_healpix import HEALPix
from numpy.typing import ArrayLike, NDArray

INDEX_ORDER = 16
_INDEX_NSIDE = 2**INDEX_ORDER
_INDEX_GRID = HEALPix(nside=_INDEX_NSIDE, order="nested")


def healpix_index(ra_deg: ArrayLike, dec_deg: ArrayLike) -> NDArray[np.int64]:
    """NESTED index at ``INDEX_ORDER`` for each (RA, Dec) in degrees."""
    ra = np.asarray(ra_deg, dtype=float)
    dec = np.asarray(dec_deg, dtype=float)
    return np.asarray(_INDEX_GRID.lonlat_to_healpix(ra * u.deg, dec * u.deg), dtype=np.int64)


def _coarse_order_for(radius_deg: float) -> int:
    """Choose the coarse order whose pixels are about a quarter of the cone radius.

    Too coarse and the ranges sweep in many rows outside the cone; too fine and the
    statement grows to hundreds of ranges. Pixel size at order k is ~58.6 deg / 2**k.
    """
    if radius_deg <= 0:
        return INDEX_ORDER
    order = math.floor(math.log2(58.6 / max(radius_deg / 4.0, 1e-9)))
    return max(0, min(INDEX_ORDER, order))


def cone_ranges(ra_deg: float, dec_deg: float, radius_deg: float) -> list[tuple[int, int]]:
    """Half-open ranges ``[lo, hi)`` of fine indices covering the cone, merged and sorted.

    The covering is conservative (every pixel that touches the cone), so the exact
    separation cut afterwards never loses a source.
    """
    order = _coarse_order_for(radius_deg)
    grid = HEALPix(nside=2**order, order="nested")
    pixels = np.sort(
        np.asarray(
            grid.cone_search_lonlat(ra_deg * u.deg, dec_deg * u.deg, radius=radius_deg * u.deg),
            dtype=np.int64,
        )
    )
    shift = 2 * (INDEX_ORDER - order)
    ranges: list[tuple[int, int]] = []
    for p in pixels.tolist():
        lo, hi = p << shift, (p + 1) << shift
        if ranges and ranges[-1][1] == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


def angular_separation_deg(
    ra1_deg: ArrayLike, dec1_deg: ArrayLike, ra2_deg: ArrayLike, dec2_deg: ArrayLike
) -> NDArray[np.float64]:
    """Great-circle separation by the Vincenty formula (stable at all separations)."""
    ra1, dec1, ra2, dec2 = (
        np.radians(np.asarray(x, dtype=float)) for x in (ra1_deg, dec1_deg, ra2_deg, dec2_deg)
    )
    dra = ra2 - ra1
    num = np.hypot(
        np.cos(dec2) * np.sin(dra), np.cos(dec1) * np.sin(dec2) - np.sin(dec1) * np.cos(dec2) * np.cos(dra)
    )
    den = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(dra)
    return np.asarray(np.degrees(np.arctan2(num, den)), dtype=np.float64)
