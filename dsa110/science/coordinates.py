"""Sky positions in the forms astronomers read: Galactic (l, b) and sexagesimal strings.

Galactic coordinates are astropy's ICRS -> Galactic transformation (the IAU 1958 system
as realised by astropy's ``Galactic`` frame, Liu, Zhang & Zhu 2011 A&A 526, A16 discuss the
frame tie). Sexagesimal strings are hours:minutes:seconds for right ascension (2 decimals
of a second, 0.15" at the equator) and signed degrees:arcminutes:arcseconds for
declination (1 decimal, 0.1"), the precision an NVSS-based catalog position carries.
"""

from __future__ import annotations

import math

from astropy import units as u
from astropy.coordinates import SkyCoord


def galactic(ra_deg: float, dec_deg: float) -> tuple[float, float]:
    """(l, b) in degrees of an ICRS position; l in [0, 360)."""
    position = SkyCoord(ra=ra_deg * u.deg, dec=dec_deg * u.deg, frame="icrs").galactic
    return float(position.l.wrap_at(360 * u.deg).deg), float(position.b.deg)


def ra_hms(ra_deg: float) -> str:
    """``HH:MM:SS.ss`` of a right ascension in degrees (rounded, never ``60.00`` seconds)."""
    centiseconds = round((ra_deg % 360.0) / 15.0 * 3600.0 * 100.0) % (24 * 3600 * 100)
    hours, rest = divmod(centiseconds, 3600 * 100)
    minutes, rest = divmod(rest, 60 * 100)
    return f"{hours:02d}:{minutes:02d}:{rest // 100:02d}.{rest % 100:02d}"


def dec_dms(dec_deg: float) -> str:
    """``±DD:MM:SS.s`` of a declination in degrees (rounded, never ``60.0`` arcseconds)."""
    if not -90.0 <= dec_deg <= 90.0 or math.isnan(dec_deg):
        raise ValueError(f"declination {dec_deg} is outside [-90, 90]")
    sign = "-" if dec_deg < 0 else "+"
    tenths = round(abs(dec_deg) * 3600.0 * 10.0)
    degrees, rest = divmod(tenths, 3600 * 10)
    minutes, rest = divmod(rest, 60 * 10)
    return f"{sign}{degrees:02d}:{minutes:02d}:{rest // 10:02d}.{rest % 10}"
