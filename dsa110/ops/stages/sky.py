"""Sky geometry shared by the simulator and the stages (light: numpy and erfa only).

* **Phase centre.** A DSA-110 group is a drift scan at a fixed declination; the converter
  phases it to the meridian at the group's mid time (legacy-pipeline-facts §8: "each field
  phased to its own meridian RA"; one field per group here). The RA is the apparent local
  sidereal time at OVRO, ``dsa110.science.site.local_sidereal_deg``, used as the RA of the
  catalog frame, as the demo's schedule does for its tile centres (so images, tiles and the
  demo catalog agree; the ~0.35 deg of precession since J2000 is not modelled).
* **Direction cosines** of a source at (RA, Dec) about a phase centre (RA0, Dec0), the
  SIN projection (Thompson, Moran & Swenson 2017, eq. 3.10 and A4.1)::

      l = cos(Dec) sin(RA - RA0)
      m = sin(Dec) cos(Dec0) - cos(Dec) sin(Dec0) cos(RA - RA0)
      n = sin(Dec) sin(Dec0) + cos(Dec) cos(Dec0) cos(RA - RA0)

  and the inverse, for placing a source at given (l, m)::

      Dec = asin(m cos(Dec0) + n sin(Dec0)),  RA = RA0 + atan2(l, n cos(Dec0) - m sin(Dec0))
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsa110.science.site import local_sidereal_deg


def phase_centre(mid_mjd: float, dec_deg: float) -> tuple[float, float]:
    """(RA, Dec) in degrees of the meridian at ``mid_mjd`` at declination ``dec_deg``."""
    return float(local_sidereal_deg(np.array([mid_mjd]))[0]), float(dec_deg)


def direction_cosines(
    ra_deg: ArrayLike, dec_deg: ArrayLike, ra0_deg: float, dec0_deg: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    ra = np.radians(np.asarray(ra_deg, dtype=np.float64))
    dec = np.radians(np.asarray(dec_deg, dtype=np.float64))
    ra0, dec0 = math.radians(ra0_deg), math.radians(dec0_deg)
    dra = ra - ra0
    l_ = np.cos(dec) * np.sin(dra)
    m_ = np.sin(dec) * math.cos(dec0) - np.cos(dec) * math.sin(dec0) * np.cos(dra)
    n_ = np.sin(dec) * math.sin(dec0) + np.cos(dec) * math.cos(dec0) * np.cos(dra)
    return l_, m_, n_


def offset_position(l_: float, m_: float, ra0_deg: float, dec0_deg: float) -> tuple[float, float]:
    """(RA, Dec) in degrees of the direction with cosines (l, m) about (RA0, Dec0)."""
    n_ = math.sqrt(max(0.0, 1.0 - l_ * l_ - m_ * m_))
    dec0 = math.radians(dec0_deg)
    dec = math.asin(m_ * math.cos(dec0) + n_ * math.sin(dec0))
    ra = math.radians(ra0_deg) + math.atan2(l_, n_ * math.cos(dec0) - m_ * math.sin(dec0))
    return math.degrees(ra) % 360.0, math.degrees(dec)


def offline_time() -> None:
    """Let astropy time conversions (UT1 for pyuvdata's phasing) run without downloads.

    Without network, astropy refuses times past its bundled IERS table's predictions; the
    pipeline must still convert today's data. UT1 - UTC stays under 0.9 s, a fraction of an
    arcsecond of phasing error for DSA-110's baselines at the pipeline's cells, so the last
    tabulated value is used (with astropy's warning) instead of failing.
    """
    from astropy.utils import iers

    iers.conf.auto_download = False
    iers.conf.auto_max_age = None
    iers.conf.iers_degraded_accuracy = "warn"
