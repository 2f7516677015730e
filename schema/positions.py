"""Small value types for positions and per-image statistics shown on detail pages."""

from __future__ import annotations

import strawberry

from dsa110.science import coordinates


@strawberry.type(description="A sky position in the forms astronomers read.")
class SkyPositionForms:
    ra_hms: str = strawberry.field(description="Right ascension `HH:MM:SS.ss`.")
    dec_dms: str = strawberry.field(description="Declination `±DD:MM:SS.s`.")
    l_deg: float = strawberry.field(description="Galactic longitude, degrees in [0, 360).")
    b_deg: float = strawberry.field(description="Galactic latitude, degrees.")


def position_forms(ra_deg: float, dec_deg: float) -> SkyPositionForms:
    l_deg, b_deg = coordinates.galactic(ra_deg, dec_deg)
    return SkyPositionForms(
        ra_hms=coordinates.ra_hms(ra_deg), dec_dms=coordinates.dec_dms(dec_deg), l_deg=l_deg, b_deg=b_deg
    )


@strawberry.type(description="The spread of local noise measured around the sources of one image.")
class LocalRmsRange:
    min_jy: float = strawberry.field(description="Lowest local RMS of a measurement, Jy/beam.")
    max_jy: float = strawberry.field(description="Highest local RMS of a measurement, Jy/beam.")
    n_measurements: int = strawberry.field(description="Measurements with a local RMS.")
