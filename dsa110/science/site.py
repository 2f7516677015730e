"""The DSA-110 site and dish: where it is, its sidereal time, its primary beam.

The array is at OVRO (lat 37.2314 deg, lon -118.2817 deg, alt 1222 m) and its dishes are
4.7 m across; catalog and calibrator work uses 1.4 GHz (the legacy pipeline's constants).
"""

from __future__ import annotations

import math

import erfa
import numpy as np
from astropy.time import Time
from numpy.typing import ArrayLike, NDArray
from scipy.special import j1

OVRO_LAT_DEG = 37.2314
OVRO_LON_DEG = -118.2817
OVRO_ALT_M = 1222.0
FREQ_HZ = 1.4e9
DISH_DIAMETER_M = 4.7
SPEED_OF_LIGHT_M_S = 299_792_458.0


def airy_primary_beam(
    sep_deg: ArrayLike, freq_hz: float = FREQ_HZ, diameter_m: float = DISH_DIAMETER_M
) -> NDArray[np.float64]:
    """Power response of a uniformly illuminated dish, 1 on axis.

    ``P(theta) = (2 J1(x) / x)^2`` with ``x = pi D sin(theta) / lambda`` (the Airy
    pattern). For 4.7 m at 1.4 GHz: FWHM = 1.029 lambda/D = 2.69 deg, first null at
    1.22 lambda/D = 3.19 deg. (The legacy ``airy_primary_beam_response`` wrote
    ``(2 (sin x - x cos x) / x^2)^2``, which is 0 on axis; not copied.)
    """
    wavelength = SPEED_OF_LIGHT_M_S / freq_hz
    x = math.pi * diameter_m * np.sin(np.radians(np.asarray(sep_deg, dtype=float))) / wavelength
    with np.errstate(invalid="ignore", divide="ignore"):
        response = np.where(np.abs(x) < 1e-8, 1.0, (2.0 * j1(x) / np.where(x == 0, 1.0, x)) ** 2)
    out: NDArray[np.float64] = np.asarray(response, dtype=np.float64)
    return out


def local_sidereal_deg(mjd: ArrayLike) -> NDArray[np.float64]:
    """Apparent local sidereal time at OVRO in degrees, vectorised.

    ``LST = GAST(UT1, TT) + east longitude`` with GAST from the IAU 2006/2000A model
    (``erfa.gst06a``), the computation behind astropy's ``Time.sidereal_time("apparent")``,
    on astropy's UT1/TT scales. Two deliberate differences: UT1 is taken as UTC
    (|UT1 - UTC| < 0.9 s, under 0.2 pixels), so results are identical on every machine and
    never reach for IERS downloads; and astropy's polar-motion term (~1e-5 arcsec here),
    whose IERS-table parsing alone costs ~4 s, is left out.
    """
    values = np.asarray(mjd, dtype=np.float64)
    times = Time(values, format="mjd", scale="utc")
    times.delta_ut1_utc = np.zeros_like(values)
    ut1, tt = times.ut1, times.tt
    gast = np.degrees(erfa.gst06a(ut1.jd1, ut1.jd2, tt.jd1, tt.jd2))
    return np.asarray(np.mod(gast + OVRO_LON_DEG, 360.0), dtype=np.float64)
