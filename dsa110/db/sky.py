"""The one place where cone searches meet SQL dialects.

A cone is a HEALPix range scan (``healpix`` column, see ``dsa110.science.healpix``) plus
an exact cut by ``dsa_sep_deg(ra1, dec1, ra2, dec2)``: a Python function registered on
every SQLite connection, and a SQL function created by migration 0002 on PostgreSQL.
Both evaluate the haversine formula, so the two backends select the same rows.
"""

from __future__ import annotations

import math

from sqlalchemy import ColumnElement, and_, func, or_
from sqlalchemy.sql.elements import ColumnClause

SEPARATION_FUNCTION = "dsa_sep_deg"

POSTGRES_SEPARATION_SQL = f"""
CREATE OR REPLACE FUNCTION {SEPARATION_FUNCTION}(ra1 float8, dec1 float8, ra2 float8, dec2 float8)
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT degrees(2 * asin(least(1.0, sqrt(
    sin(radians(dec2 - dec1) / 2) ^ 2
    + cos(radians(dec1)) * cos(radians(dec2)) * sin(radians(ra2 - ra1) / 2) ^ 2))))
$$
"""


def separation_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Haversine great-circle separation in degrees (Sinnott 1984, Sky & Telescope 68, 159)."""
    d1, d2 = math.radians(dec1), math.radians(dec2)
    h = (
        math.sin((d2 - d1) / 2) ** 2
        + math.cos(d1) * math.cos(d2) * math.sin(math.radians(ra2 - ra1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def cone_condition(
    healpix: ColumnClause[int] | ColumnElement[int],
    ra: ColumnElement[float],
    dec: ColumnElement[float],
    ra_deg: float,
    dec_deg: float,
    radius_deg: float,
) -> ColumnElement[bool]:
    """WHERE clause selecting rows within ``radius_deg`` of (``ra_deg``, ``dec_deg``)."""
    # Imported here, not at the top: dsa110.db.engine imports this module for separation_deg
    # in every process, and the streaming service's process builds no cone; importing
    # dsa110.science.healpix (astropy.units, astropy_healpix) cost it 1.5 s of CPU at start,
    # inside the operator's bounded wait for it.
    from dsa110.science.healpix import cone_ranges

    ranges = or_(*(and_(healpix >= lo, healpix < hi) for lo, hi in cone_ranges(ra_deg, dec_deg, radius_deg)))
    exact = func.dsa_sep_deg(ra, dec, ra_deg, dec_deg) <= radius_deg
    return and_(ranges, exact)
