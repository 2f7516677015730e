"""IVOA Simple Cone Search 1.03: its parameters, its columns, its error document.

A query is ``?RA=&DEC=&SR=`` in decimal degrees (ICRS), ``VERB`` = 1 (fewest columns),
2 (default) or 3 (all), and DALI's ``MAXREC`` (most rows; one more than asked for means
the answer is cut, flagged by ``<INFO name="QUERY_STATUS" value="OVERFLOW"/>`` after the
table). Parameter names are case-insensitive (DALI). ``SR=0`` asks for the columns only,
which is how clients (pyvo's ``SCSService.columns``) learn a service's metadata.

The three columns SCS 1.03 requires carry its UCD1 names ``ID_MAIN``,
``POS_EQ_RA_MAIN`` and ``POS_EQ_DEC_MAIN`` (clients such as pyvo find the id and
position by them); the others carry UCD1+ words. A bad query is answered by a VOTable
holding ``<INFO name="Error" value="..."/>`` under the root (SCS 1.03) and the DALI
``QUERY_STATUS`` ``ERROR`` in the resource, with HTTP 200 as SCS 1.03 clients expect:
pyvo and TOPCAT read the message from that document, while an HTTP 400 reaches a pyvo
user as a bare "400 Client Error". A stable code rides in ``<INFO name="code">`` and in
the ``X-Error-Code`` header.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final
from xml.sax.saxutils import escape, quoteattr

from dsa110.exports.columns import SOURCES, ColumnSpec, TableSpec

SCS_MEDIA_TYPE: Final = "text/xml;content=x-votable"
MAX_SR_DEG: Final = 10.0
"""Widest cone served (the graph's cone filter limit): wider ones are scans, not searches."""
DEFAULT_MAXREC: Final = 10_000

SCS_UCDS: Final = {"source_id": "ID_MAIN", "ra_deg": "POS_EQ_RA_MAIN", "dec_deg": "POS_EQ_DEC_MAIN"}
DISTANCE = ColumnSpec("distance_deg", "float", "Distance from the cone's centre", "deg", "pos.angDistance")

_SOURCE_VERB2 = ("source_id", "ra_deg", "dec_deg", "catalog_flux_jy", "mean_flux_jy", "n_epochs", "v", "eta")


def _with_distance(spec: TableSpec) -> TableSpec:
    return replace(spec, columns=(*spec.columns, DISTANCE))


SOURCE_COLUMNS: Final[Mapping[int, TableSpec]] = {
    1: SOURCES.only(("source_id", "ra_deg", "dec_deg")).retag(SCS_UCDS),
    2: _with_distance(SOURCES.only(_SOURCE_VERB2).retag(SCS_UCDS)),
    3: _with_distance(SOURCES.retag(SCS_UCDS)),
}
"""The monitored sources' columns at each VERB level."""

CATALOG = TableSpec(
    "catalog",
    "Entries of an external radio catalog held by the DSA-110 pipeline",
    (
        ColumnSpec("name", "str", "Catalog name of the entry", ucd="ID_MAIN", width=64),
        ColumnSpec("ra_deg", "float", "Right ascension (ICRS)", "deg", "POS_EQ_RA_MAIN"),
        ColumnSpec("dec_deg", "float", "Declination (ICRS)", "deg", "POS_EQ_DEC_MAIN"),
        ColumnSpec("flux_jy", "float", "Flux density", "Jy", "phot.flux.density;em.radio"),
        ColumnSpec("flux_err_jy", "float", "Uncertainty of flux_jy", "Jy", "stat.error;phot.flux.density"),
        ColumnSpec("major_arcsec", "float", "Fitted major axis (FWHM)", "arcsec", "phys.angSize.smajAxis"),
        ColumnSpec("minor_arcsec", "float", "Fitted minor axis (FWHM)", "arcsec", "phys.angSize.sminAxis"),
        ColumnSpec("pa_deg", "float", "Position angle of the major axis", "deg", "pos.posAng"),
        DISTANCE,
    ),
)
CATALOG_COLUMNS: Final[Mapping[int, TableSpec]] = {
    1: CATALOG.only(("name", "ra_deg", "dec_deg")),
    2: CATALOG.only(("name", "ra_deg", "dec_deg", "flux_jy", "distance_deg")),
    3: CATALOG,
}


class ScsError(Exception):
    """A query SCS refuses; answered with the error VOTable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ConeQuery:
    ra_deg: float
    dec_deg: float
    sr_deg: float
    verb: int
    maxrec: int

    @property
    def metadata_only(self) -> bool:
        return self.sr_deg == 0.0 or self.maxrec == 0


def _number(params: Mapping[str, str], name: str) -> float:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        raise ScsError("MISSING_PARAMETER", f"{name} is required (decimal degrees)")
    if len(raw) > 64:
        raise ScsError("BAD_PARAMETER", f"{name} is too long")
    try:
        value = float(raw)
    except ValueError:
        raise ScsError(
            "BAD_PARAMETER", f"{name} must be a number in decimal degrees, got {raw[:32]!r}"
        ) from None
    if not math.isfinite(value):
        raise ScsError("BAD_PARAMETER", f"{name} must be finite")
    return value


def _integer(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    if len(text) > 12 or not (text.isascii() and text.lstrip("+-").isdigit()):
        raise ScsError("BAD_PARAMETER", f"{name} must be an integer")
    value = int(text)
    if not lo <= value <= hi:
        raise ScsError("BAD_PARAMETER", f"{name} must be in [{lo}, {hi}]")
    return value


def parse_query(raw: Mapping[str, str], max_records: int) -> ConeQuery:
    """The cone from the request's parameters (names case-insensitive); ``ScsError`` if bad."""
    params = {key.upper(): value for key, value in raw.items()}
    ra = _number(params, "RA")
    dec = _number(params, "DEC")
    sr = _number(params, "SR")
    if not 0.0 <= ra <= 360.0:
        raise ScsError("BAD_PARAMETER", "RA must be in [0, 360] degrees")
    if not -90.0 <= dec <= 90.0:
        raise ScsError("BAD_PARAMETER", "DEC must be in [-90, 90] degrees")
    if not 0.0 <= sr <= MAX_SR_DEG:
        raise ScsError("BAD_PARAMETER", f"SR must be in [0, {MAX_SR_DEG:g}] degrees")
    verb = _integer(params, "VERB", 2, 1, 3)
    maxrec = _integer(params, "MAXREC", min(DEFAULT_MAXREC, max_records), 0, max_records)
    return ConeQuery(ra % 360.0, dec, sr, verb, maxrec)


def error_votable(code: str, message: str) -> bytes:
    """The SCS 1.03 error document (with DALI's QUERY_STATUS too)."""
    value, text = quoteattr(message), escape(message)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        f' <INFO name="Error" value={value}/>\n'
        ' <RESOURCE type="results">\n'
        f'  <INFO name="QUERY_STATUS" value="ERROR">{text}</INFO>\n'
        f'  <INFO name="code" value={quoteattr(code)}/>\n'
        " </RESOURCE>\n"
        "</VOTABLE>\n"
    ).encode()
