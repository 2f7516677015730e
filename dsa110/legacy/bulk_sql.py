"""The SQL of the photometry bulk path: which legacy rows need no Python, and their copy.

A photometry row is *clean* when converting it in Python would be a pure column copy
(:class:`dsa110.legacy.photometry._Parser`): its ``source_id`` is text (1-64 characters)
naming a source we have; its ``image_path`` is text, absolute and without surrounding
whitespace (what ``resolve_path`` returns unchanged), and an image we have; ``ra_deg``,
``dec_deg``, ``peak_jyb``, ``peak_err_jyb`` and ``measured_at`` are finite numbers
(``typeof`` integer or real: text, even numeric text, is left to Python) with
``0 < ra_deg < 360`` (so ``ra % 360`` is ``ra``), ``|dec_deg| <= 90``,
``peak_err_jyb > 0`` and ``0 < measured_at < 4102444800``; ``mjd`` and ``snr`` are NULL
or finite numbers. For those rows SQL computes what Python would: ``mjd`` else the
image's ``mid_mjd``, ``snr`` else ``peak / error`` (in floating point, NULL when not
finite). Every other row of the range goes through the row path.

SQLite reads ``1e999`` as +infinity, so ``abs(x) < 1e999`` is "finite" (NaN is stored as
NULL by SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from dsa110.legacy.attach import SCHEMA
from dsa110.legacy.files import quote_ident

REQUIRED: Final = ("image_path", "source_id", "ra_deg", "dec_deg", "peak_jyb", "peak_err_jyb", "measured_at")
_WHITESPACE: Final = "".join(c for c in map(chr, range(0x110000)) if c.isspace())
"""What Python's ``str.strip()`` removes (``resolve_path`` strips paths)."""


@dataclass(frozen=True)
class Statements:
    keys: str  # (rowid, source_pk, image_pk) of the clean rows, in rowid order
    rowids: str  # every rowid of the range (the bounds)
    others: str  # the rows of a JSON array of rowids, ``rowid AS _rowid, *`` (one parameter)
    insert: str  # the clean rows' upsert into measurements
    insert_except: str  # the same, less the rowids of a JSON array (third parameter)
    # each takes the range's bounds (after_rowid, last_rowid)


def _finite(x: str) -> str:
    return f"(typeof({x}) = 'integer' OR (typeof({x}) = 'real' AND abs({x}) < 1e999))"


def statements(columns: Sequence[str], on_conflict: str) -> Statements:
    return _statements(tuple(columns), on_conflict)


@lru_cache(maxsize=8)
def _statements(columns: tuple[str, ...], on_conflict: str) -> Statements:
    def col(name: str) -> str:
        return f"p.{quote_ident(name)}" if name in columns else "NULL"

    mjd, snr = col("mjd"), col("snr")
    ws = _WHITESPACE.replace("'", "''")
    checks = [
        "p.rowid > ? AND p.rowid <= ?",
        "typeof(p.image_path) = 'text'",
        "substr(p.image_path, 1, 1) = '/'",
        f"trim(p.image_path, '{ws}') = p.image_path",
        "typeof(p.source_id) = 'text'",
        "length(p.source_id) BETWEEN 1 AND 64",
        _finite("p.ra_deg"),
        "p.ra_deg > 0 AND p.ra_deg < 360",
        _finite("p.dec_deg"),
        "p.dec_deg BETWEEN -90 AND 90",
        _finite("p.peak_jyb"),
        _finite("p.peak_err_jyb"),
        "p.peak_err_jyb > 0",
        _finite("p.measured_at"),
        "p.measured_at > 0 AND p.measured_at < 4102444800",
        f"({mjd} IS NULL OR {_finite(mjd)})",
        f"({snr} IS NULL OR {_finite(snr)})",
    ]
    clean = (
        f"FROM {SCHEMA}.photometry AS p "
        "JOIN main.images AS i ON i.path = p.image_path "
        "JOIN main.sources AS s ON s.source_id = p.source_id "
        f"WHERE {' AND '.join(checks)}"
    )
    ratio = "CAST(p.peak_jyb AS REAL) / p.peak_err_jyb"
    values = (
        f"s.id, i.id, COALESCE({mjd}, i.mid_mjd), p.ra_deg, p.dec_deg, p.peak_jyb, p.peak_err_jyb, "
        f"CASE WHEN {snr} IS NOT NULL THEN {snr} WHEN abs({ratio}) < 1e999 THEN {ratio} END, 1"
    )
    insert = (
        "INSERT INTO main.measurements (source_pk, image_pk, mjd, ra_deg, dec_deg, peak_flux_jy, "
        f"peak_flux_err_jy, snr, forced) SELECT {values} {clean}"
    )
    return Statements(
        keys=f"SELECT p.rowid, s.id, i.id {clean} ORDER BY p.rowid",
        rowids=f"SELECT rowid FROM {SCHEMA}.photometry WHERE rowid > ? AND rowid <= ?",
        others=(
            f"SELECT rowid AS _rowid, * FROM {SCHEMA}.photometry "
            "WHERE rowid IN (SELECT value FROM json_each(?)) ORDER BY rowid"
        ),
        insert=f"{insert} ORDER BY p.rowid {on_conflict}",
        insert_except=(
            f"{insert} AND p.rowid NOT IN (SELECT value FROM json_each(?)) ORDER BY p.rowid {on_conflict}"
        ),
    )
