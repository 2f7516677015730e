"""DSA-110 facts the demo is built from (legacy-pipeline-facts §8), and the tile geometry.

Instrument: the array at OVRO (lat 37.2314 deg, lon -118.2817 deg, alt 1222 m) observes
in drift scan at a fixed declination; 16 subband files make one 5-minute observation
group, one Measurement Set and one image. 4.7 m dishes, L band (1.4 GHz for catalog
work; 16 x 48 x 244.14 kHz = 187.5 MHz of bandwidth).

Quick-look tile (the demo's choice, to keep the default 60 days x 288 images on a laptop disk):
128 x 128 pixels of 90 arcsec, a 3.2 deg square, 2-D float32, one 2880-byte header
block, so 69,120 bytes a file and ~1.2 GB for 60 days. 90 arcsec cells cannot sample the
array's ~15 arcsec synthesised beam, so tiles are imaged as if with a Gaussian uv taper
to a ~4.5 x 3.6 arcmin beam (3 x 2.4 pixels FWHM): coarse, but a real restoring beam,
sampled as the imager would. Sources are measured only where the whole photometry
annulus fits on the tile (the central 100 x 100 pixels, 2.5 deg), and the catalog strip
is Dec 42 +/- 1.15 deg so every source crosses that region on every transit.

The site, the dish and its primary beam are in :mod:`dsa110.science.site` (re-exported here).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import EarthLocation
from numpy.typing import NDArray

from dsa110.science.site import (
    DISH_DIAMETER_M,
    FREQ_HZ,
    OVRO_ALT_M,
    OVRO_LAT_DEG,
    OVRO_LON_DEG,
    SPEED_OF_LIGHT_M_S,
    airy_primary_beam,
)

OVRO = EarthLocation(lon=OVRO_LON_DEG * u.deg, lat=OVRO_LAT_DEG * u.deg, height=OVRO_ALT_M * u.m)

N_SUBBANDS = 16
GROUP_MINUTES = 5
GROUPS_PER_DAY = 24 * 60 // GROUP_MINUTES
# One group is 24 fields of 12.88 s (legacy-pipeline-facts §8).
INTEGRATION_SEC = 24 * 12.884902
BANDWIDTH_MHZ = 16 * 48 * 0.244140625

STRIP_DEC_DEG = 42.0
STRIP_HALF_WIDTH_DEG = 1.15

TILE_NPIX = 128
TILE_CELL_ARCSEC = 90.0
TILE_CRPIX = TILE_NPIX // 2 + 1  # 1-based FITS reference pixel: 0-based pixel 64
BEAM_MAJOR_ARCSEC = 270.0
BEAM_MINOR_ARCSEC = 216.0
BEAM_PA_DEG = 8.0
THERMAL_NOISE_JY = 1.0e-3

# Forced photometry in the demo: a 3-pixel box (the beam is 3 pixels wide) and an
# annulus of 8-14 pixels (2.7-4.7 beams), which needs a 14-pixel margin at the edges.
PHOT_BOX_PIX = 3
PHOT_ANNULUS_PIX = (8.0, 14.0)
MEASURE_MARGIN_PIX = 14


def tile_pixel_separation_deg() -> NDArray[np.float64]:
    """Angular distance of every tile pixel from the tile centre (SIN projection).

    In SIN the intermediate coordinates (xi, eta) in radians satisfy sqrt(xi^2 + eta^2) =
    sin(separation) (Calabretta & Greisen 2002, A&A 395, 1077, eq. 54 with theta = 90 - sep).
    """
    offsets = (np.arange(TILE_NPIX) - (TILE_CRPIX - 1)) * math.radians(TILE_CELL_ARCSEC / 3600.0)
    xi, eta = np.meshgrid(offsets, offsets)
    sep: NDArray[np.float64] = np.degrees(np.arcsin(np.clip(np.hypot(xi, eta), 0.0, 1.0)))
    return sep


def measurable(x_pix: NDArray[Any], y_pix: NDArray[Any]) -> NDArray[np.bool_]:
    """True where a 0-based pixel position is inside the region the demo measures."""
    lo, hi = MEASURE_MARGIN_PIX, TILE_NPIX - 1 - MEASURE_MARGIN_PIX
    cx, cy = np.floor(x_pix + 0.5), np.floor(y_pix + 0.5)
    return np.asarray((cx >= lo) & (cx <= hi) & (cy >= lo) & (cy <= hi), dtype=bool)


__all__ = [
    "DISH_DIAMETER_M",
    "FREQ_HZ",
    "OVRO_ALT_M",
    "OVRO_LAT_DEG",
    "OVRO_LON_DEG",
    "SPEED_OF_LIGHT_M_S",
    "airy_primary_beam",
]
