"""Reference catalogs (NVSS, FIRST, VLASS, ...): cone search, cross-match, overlay, ingest.

Cone search is the indexed pattern of ``dsa110.db.sky`` (HEALPix range scan, then the exact
great-circle cut in SQL), so it is a B-tree range scan on SQLite and PostgreSQL alike;
``bench/cone.py`` measures it against a full scan. Cross-matching works in batches: the
cone ranges of a block of sources (sorted by HEALPix index, so neighbours share ranges)
fetch every candidate in one statement, and separations are computed in numpy.

Ingest reads a real catalog table (FITS, CSV or VOTable, through ``astropy.table``),
recognises the usual NVSS (VizieR VIII/65), FIRST (VIII/92) and VLASS (CIRADA component
table) column names, converts fluxes to Jy with the table's units (mJy when a known survey
column has none), and replaces that catalog's rows in one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle
from astropy.table import Table
from numpy.typing import NDArray
from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.db.filters import ConeFilter
from dsa110.db.migrate import upgrade
from dsa110.db.writes import write_transaction
from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage
from dsa110.science.healpix import angular_separation_deg, cone_ranges, healpix_index
from dsa110.settings import Settings

DEFAULT_MATCH_RADIUS_ARCSEC = 7.5  # the legacy master-catalog match radius (facts §1.4)
MAX_CONE_ROWS = 100_000
_CROSS_MATCH_BLOCK = 64  # sources per candidate statement
_MAX_RANGES_PER_STATEMENT = 300  # SQLite parses an OR chain recursively (expression depth 1000)
_INSERT_CHUNK = 5_000
MAX_NAME_LENGTH = 64

DbHandle = AsyncEngine | AsyncConnection


@asynccontextmanager
async def _connection(db: DbHandle) -> AsyncIterator[AsyncConnection]:
    if isinstance(db, AsyncEngine):
        async with db.connect() as conn:
            yield conn
    else:
        yield db


@dataclass(frozen=True)
class CatalogEntry:
    """A catalog row; ``separation_arcsec`` is from the query centre (cone) or source (match)."""

    id: int
    catalog: str
    name: str
    ra_deg: float
    dec_deg: float
    flux_jy: float | None
    flux_err_jy: float | None
    major_arcsec: float | None
    minor_arcsec: float | None
    pa_deg: float | None
    separation_arcsec: float


_ENTRY_NAMES = ("id", "catalog", "name", "ra_deg", "dec_deg", "flux_jy", "flux_err_jy", "major_arcsec")
_ENTRY_COLUMNS = [t.catalog_sources.c[name] for name in (*_ENTRY_NAMES, "minor_arcsec", "pa_deg")]


def _entry(row: Any, separation_arcsec: float) -> CatalogEntry:
    return CatalogEntry(
        **{c.name: row._mapping[c.name] for c in _ENTRY_COLUMNS}, separation_arcsec=separation_arcsec
    )


# --- cone search --------------------------------------------------------------------


async def cone_search(
    db: DbHandle,
    ra_deg: float,
    dec_deg: float,
    radius_deg: float,
    *,
    catalog: str | None = None,
    min_flux_jy: float | None = None,
    limit: int = 10_000,
) -> list[CatalogEntry]:
    """Catalog rows within ``radius_deg`` of (RA, Dec), nearest first.

    Bad centre or radius -> ``InputError`` (``BAD_USER_INPUT``) from the shared cone filter.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_CONE_ROWS:
        raise ScienceInputError("BAD_SIZE", f"limit must be an integer in [1, {MAX_CONE_ROWS}]")
    ra_deg = ra_deg % 360.0 if math.isfinite(ra_deg) else ra_deg
    cs = t.catalog_sources.c
    where = ConeFilter(ra_deg=ra_deg, dec_deg=dec_deg, radius_arcsec=radius_deg * 3600.0).condition(
        t.catalog_sources
    )
    conditions = [where]
    if catalog is not None:
        conditions.append(cs.catalog == catalog)
    if min_flux_jy is not None:
        conditions.append(cs.flux_jy >= min_flux_jy)
    separation = (func.dsa_sep_deg(cs.ra_deg, cs.dec_deg, ra_deg, dec_deg) * 3600.0).label(
        "separation_arcsec"
    )
    query = select(*_ENTRY_COLUMNS, separation).where(*conditions).order_by(separation, cs.id).limit(limit)
    async with _connection(db) as conn:
        rows = (await conn.execute(query)).all()
    return [_entry(row, float(row.separation_arcsec)) for row in rows]


async def catalog_overlay(
    db: DbHandle,
    image: SkyImage,
    *,
    catalog: str | None = None,
    min_flux_jy: float | None = None,
    limit: int = 10_000,
) -> list[tuple[CatalogEntry, float, float]]:
    """Catalog rows falling on ``image`` with their pixel (x, y), brightest first.

    The search cone is centred on the image centre with the radius reaching its farthest
    corner, then rows are kept when their pixel position lies on the image.
    """
    ny, nx = image.shape
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    ra, dec = image.pixel_to_world([cx, -0.5, nx - 0.5, -0.5, nx - 0.5], [cy, -0.5, -0.5, ny - 0.5, ny - 0.5])
    radius = float(np.nanmax(angular_separation_deg(ra[0], dec[0], ra[1:], dec[1:])))
    entries = await cone_search(
        db, float(ra[0]), float(dec[0]), radius, catalog=catalog, min_flux_jy=min_flux_jy, limit=MAX_CONE_ROWS
    )
    if not entries:
        return []
    x, y = image.world_to_pixel([e.ra_deg for e in entries], [e.dec_deg for e in entries])
    on = np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    kept = [(e, float(px), float(py)) for e, px, py, ok in zip(entries, x, y, on, strict=True) if ok]
    kept.sort(key=lambda item: -(item[0].flux_jy or 0.0))
    return kept[:limit]


# --- cross-match --------------------------------------------------------------------


@dataclass(frozen=True)
class CrossMatch:
    source_pk: int
    catalog_pk: int
    separation_arcsec: float


def _ranges_condition(column: Any, ranges: Iterable[tuple[int, int]]) -> ColumnElement[bool]:
    return or_(*(and_(column >= lo, column < hi) for lo, hi in ranges))


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


async def cross_match_sources(
    engine: AsyncEngine,
    *,
    radius_arcsec: float = DEFAULT_MATCH_RADIUS_ARCSEC,
    catalog: str | None = None,
    source_pks: Sequence[int] | None = None,
) -> list[CrossMatch]:
    """Match sources to catalog entries within ``radius_arcsec`` and store them in ``cross_matches``.

    Every entry within the radius is kept (more than one means confusion); earlier matches
    of the same sources (to ``catalog`` when given) are replaced, so re-running is safe.
    """
    if not math.isfinite(radius_arcsec) or not 0.0 < radius_arcsec <= 3600.0:
        raise ScienceInputError("BAD_SIZE", "radius_arcsec must be in (0, 3600]")
    radius_deg = radius_arcsec / 3600.0
    s, cs, xm = t.sources.c, t.catalog_sources.c, t.cross_matches
    query = select(s.id, s.ra_deg, s.dec_deg, s.healpix).order_by(s.healpix)
    if source_pks is not None:
        query = query.where(s.id.in_(list(source_pks)))
    matches: list[CrossMatch] = []
    async with write_transaction(engine) as conn:
        sources = (await conn.execute(query)).all()
        for start in range(0, len(sources), _CROSS_MATCH_BLOCK):
            block = sources[start : start + _CROSS_MATCH_BLOCK]
            pks = [row.id for row in block]
            stale = delete(xm).where(xm.c.source_pk.in_(pks))
            if catalog is not None:
                stale = stale.where(xm.c.catalog_pk.in_(select(cs.id).where(cs.catalog == catalog)))
            await conn.execute(stale)
            ranges = _merge([r for row in block for r in cone_ranges(row.ra_deg, row.dec_deg, radius_deg)])
            candidates: list[Any] = []
            for i in range(0, len(ranges), _MAX_RANGES_PER_STATEMENT):
                cond = [_ranges_condition(cs.healpix, ranges[i : i + _MAX_RANGES_PER_STATEMENT])]
                if catalog is not None:
                    cond.append(cs.catalog == catalog)
                candidates += (await conn.execute(select(cs.id, cs.ra_deg, cs.dec_deg).where(*cond))).all()
            if not candidates:
                continue
            src_ra = np.array([row.ra_deg for row in block])[:, None]
            src_dec = np.array([row.dec_deg for row in block])[:, None]
            sep = angular_separation_deg(
                src_ra,
                src_dec,
                np.array([c.ra_deg for c in candidates]),
                np.array([c.dec_deg for c in candidates]),
            )
            for i, j in zip(*np.nonzero(sep <= radius_deg), strict=True):
                matches.append(CrossMatch(int(pks[i]), int(candidates[j].id), float(sep[i, j] * 3600.0)))
        for i in range(0, len(matches), _INSERT_CHUNK):
            chunk = matches[i : i + _INSERT_CHUNK]
            await conn.execute(
                insert(xm),
                [{"source_pk": m.source_pk, "catalog_pk": m.catalog_pk,
                  "separation_arcsec": m.separation_arcsec} for m in chunk],
            )  # fmt: skip
    return matches


# --- ingest -------------------------------------------------------------------------

# target column -> [(candidate column name, unit assumed when the column has none)]
# NVSS (VizieR VIII/65/nvss): NVSS, RAJ2000, DEJ2000, S1.4 [mJy], e_S1.4, MajAxis, MinAxis, PA
# FIRST (VizieR VIII/92/first14): FIRST, RAJ2000, DEJ2000, Fint [mJy], Maj, Min, PA
# VLASS (CIRADA components): Component_name, RA, DEC, Total_flux [mJy], E_Total_flux, DC_Maj, DC_Min, DC_PA
COLUMN_CANDIDATES: dict[str, list[tuple[str, str | None]]] = {
    "name": [(n, None) for n in ("name", "component_name", "source_name", "nvss", "first", "vlass", "id")],
    "ra_deg": [(n, "deg") for n in ("ra_deg", "raj2000", "_raj2000", "radeg", "ra", "ra_icrs", "ra_j2000")],
    "dec_deg": [
        (n, "deg") for n in ("dec_deg", "dej2000", "_dej2000", "dedeg", "dec", "de_icrs", "dec_j2000")
    ],
    "flux_jy": [
        ("flux_jy", "Jy"),
        ("flux_mjy", "mJy"),
        ("s1.4", "mJy"),
        ("s1_4", "mJy"),
        ("total_flux", "mJy"),
        ("fint", "mJy"),
        ("flux", None),
        ("peak_flux", "mJy"),
        ("fpeak", "mJy"),
    ],
    "flux_err_jy": [
        ("flux_err_jy", "Jy"),
        ("flux_err_mjy", "mJy"),
        ("e_s1.4", "mJy"),
        ("e_s1_4", "mJy"),
        ("e_total_flux", "mJy"),
        ("e_fint", "mJy"),
        ("flux_err", None),
    ],
    "major_arcsec": [(n, "arcsec") for n in ("major_arcsec", "majaxis", "dc_maj", "maj", "deconv_maj")],
    "minor_arcsec": [(n, "arcsec") for n in ("minor_arcsec", "minaxis", "dc_min", "min", "deconv_min")],
    "pa_deg": [(n, "deg") for n in ("pa_deg", "dc_pa", "pa")],
}
_TARGET_UNITS = {"flux_jy": u.Jy, "flux_err_jy": u.Jy, "major_arcsec": u.arcsec, "minor_arcsec": u.arcsec}
_FORMATS = {".fits": "fits", ".fit": "fits", ".fits.gz": "fits", ".csv": "ascii.csv", ".vot": "votable"}
_FORMATS |= {".xml": "votable", ".votable": "votable", ".ecsv": "ascii.ecsv", ".tsv": "ascii.tab"}


def read_catalog_table(path: str | Path, table_format: str | None = None) -> Table:
    """Read a catalog file with astropy; ``BAD_TABLE`` when it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ScienceInputError("FILE_NOT_FOUND", f"catalog file not found: {path}")
    if table_format is None:
        name = path.name.lower()
        table_format = next((f for ext, f in _FORMATS.items() if name.endswith(ext)), None)
    try:
        return Table.read(path, format=table_format)
    except Exception as exc:  # astropy readers raise many types for malformed files
        raise ScienceInputError("BAD_TABLE", f"cannot read {path.name} as a table: {exc}") from exc


def _find_column(table: Table, target: str, explicit: dict[str, str]) -> tuple[str | None, str | None]:
    if target in explicit:
        if explicit[target] not in table.colnames:
            raise ScienceInputError(
                "BAD_TABLE", f"column {explicit[target]!r} (for {target}) is not in the table"
            )
        default = next((unit for _, unit in COLUMN_CANDIDATES[target] if unit), None)
        return explicit[target], default
    by_lower = {name.lower(): name for name in table.colnames}
    for candidate, unit in COLUMN_CANDIDATES[target]:
        if candidate in by_lower:
            return by_lower[candidate], unit
    return None, None


def _float_column(table: Table, column: str, default_unit: str | None, target: str) -> NDArray[np.float64]:
    """Column values in the target unit; NaN where masked or empty."""
    col = table[column]
    unit = col.unit if col.unit is not None else (u.Unit(default_unit) if default_unit else None)
    try:
        raw = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
    except (TypeError, ValueError) as exc:
        raise ScienceInputError("BAD_TABLE", f"column {column!r} is not numeric") from exc
    if target not in _TARGET_UNITS:
        return np.asarray(raw, dtype=np.float64)
    if unit is None:
        raise ScienceInputError(
            "BAD_TABLE",
            f"column {column!r} has no unit; give one with --flux-unit or name the column *_jy/*_mjy",
        )
    unit = u.Unit(str(unit).replace("/beam", "").replace("/ beam", "")) if "beam" in str(unit) else unit
    try:
        return np.asarray((raw * unit).to_value(_TARGET_UNITS[target]), dtype=np.float64)
    except u.UnitConversionError as exc:
        raise ScienceInputError("BAD_TABLE", f"column {column!r}: {exc}") from exc


def _angles(table: Table, column: str, is_ra: bool) -> NDArray[np.float64]:
    """Degrees from a numeric column (deg unless a unit says otherwise) or sexagesimal strings."""
    col = table[column]
    if col.dtype.kind in "USO":
        try:
            return np.asarray(Angle(list(col), unit=u.hourangle if is_ra else u.deg).deg, dtype=np.float64)
        except Exception as exc:
            raise ScienceInputError("BAD_TABLE", f"cannot parse angles in column {column!r}: {exc}") from exc
    raw = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
    unit = col.unit or u.deg
    try:
        return np.asarray((raw * u.Unit(unit)).to_value(u.deg), dtype=np.float64)
    except u.UnitConversionError as exc:
        raise ScienceInputError("BAD_TABLE", f"column {column!r}: {exc}") from exc


def iau_name(prefix: str, ra_deg: float, dec_deg: float) -> str:
    """``PREFIX Jhhmmss.s+ddmmss``, truncated (not rounded) as IAU designations are."""
    ra_s = ra_deg / 15.0 * 3600.0
    hh, rem = divmod(math.floor(ra_s * 10) / 10, 3600)
    mm, ss = divmod(rem, 60)
    sign = "+" if dec_deg >= 0 else "-"
    dec_s = math.floor(abs(dec_deg) * 3600.0)
    dd, rem2 = divmod(dec_s, 3600)
    dm, ds = divmod(rem2, 60)
    return f"{prefix} J{int(hh):02d}{int(mm):02d}{ss:04.1f}{sign}{int(dd):02d}{int(dm):02d}{int(ds):02d}"


def catalog_rows(
    table: Table, catalog: str, *, columns: dict[str, str] | None = None, flux_unit: str | None = None
) -> list[dict[str, Any]]:
    """Rows for ``catalog_sources`` from an astropy table (validated; see module docstring)."""
    if not catalog or len(catalog) > 16 or not catalog.replace("_", "").replace("-", "").isalnum():
        raise ScienceInputError("BAD_TABLE", "catalog label must be 1-16 letters, digits, '-' or '_'")
    explicit = dict(columns or {})
    if unknown := set(explicit) - set(COLUMN_CANDIDATES):
        raise ScienceInputError("BAD_TABLE", f"unknown target columns {sorted(unknown)}")
    n = len(table)
    if n == 0:
        raise ScienceInputError("BAD_TABLE", "the table has no rows")
    ra_col, _ = _find_column(table, "ra_deg", explicit)
    dec_col, _ = _find_column(table, "dec_deg", explicit)
    if ra_col is None or dec_col is None:
        raise ScienceInputError("BAD_TABLE", f"no RA/Dec columns found among {table.colnames[:30]}")
    ra = _angles(table, ra_col, is_ra=True)
    dec = _angles(table, dec_col, is_ra=False)
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90.0))
    if bad.any():
        raise ScienceInputError("BAD_TABLE", f"row {int(np.argmax(bad))}: invalid or missing RA/Dec")
    ra = np.mod(ra, 360.0)

    values: dict[str, NDArray[np.float64]] = {}
    for target in ("flux_jy", "flux_err_jy", "major_arcsec", "minor_arcsec", "pa_deg"):
        column, unit = _find_column(table, target, explicit)
        if column is None:
            continue
        if target in ("flux_jy", "flux_err_jy") and flux_unit and table[column].unit is None:
            unit = flux_unit
        values[target] = _float_column(table, column, unit, target)

    name_col, _ = _find_column(table, "name", explicit)
    if name_col is not None:
        names = [str(v).strip() for v in np.ma.filled(np.ma.asarray(table[name_col]).astype(str), "")]
    else:
        names = [""] * n
    prefix = catalog.upper()
    names = [nm if nm else iau_name(prefix, r, d) for nm, r, d in zip(names, ra, dec, strict=True)]
    if too_long := next((nm for nm in names if len(nm) > MAX_NAME_LENGTH), None):
        raise ScienceInputError(
            "BAD_TABLE", f"source name longer than {MAX_NAME_LENGTH} characters: {too_long[:80]!r}"
        )
    if len(set(names)) != n:
        seen: set[str] = set()
        dup = next(nm for nm in names if nm in seen or seen.add(nm))  # type: ignore[func-returns-value]
        raise ScienceInputError("BAD_TABLE", f"duplicate source name {dup!r}")

    pixels = healpix_index(ra, dec)
    rows = []
    for i in range(n):
        row: dict[str, Any] = {
            "catalog": catalog,
            "name": names[i],
            "ra_deg": float(ra[i]),
            "dec_deg": float(dec[i]),
            "healpix": int(pixels[i]),
        }
        for target in ("flux_jy", "flux_err_jy", "major_arcsec", "minor_arcsec", "pa_deg"):
            value = values[target][i] if target in values else math.nan
            row[target] = float(value) if math.isfinite(value) else None
        rows.append(row)
    return rows


async def insert_catalog_rows(
    engine: AsyncEngine, catalog: str, rows: list[dict[str, Any]], *, replace: bool
) -> int:
    """Write rows in chunks in one transaction; ``replace`` drops the catalog's old rows first."""
    try:
        async with write_transaction(engine) as conn:
            if replace:
                await conn.execute(delete(t.catalog_sources).where(t.catalog_sources.c.catalog == catalog))
            for i in range(0, len(rows), _INSERT_CHUNK):
                await conn.execute(insert(t.catalog_sources), rows[i : i + _INSERT_CHUNK])
    except IntegrityError as exc:  # appending names the catalog already holds
        raise ScienceInputError(
            "BAD_TABLE", f"catalog {catalog!r} already holds some of these names"
        ) from exc
    return len(rows)


async def ingest_catalog(
    engine: AsyncEngine,
    path: str | Path,
    catalog: str,
    *,
    table_format: str | None = None,
    columns: dict[str, str] | None = None,
    flux_unit: str | None = None,
    replace: bool = True,
) -> int:
    """Read ``path`` and store it as catalog ``catalog``; returns the number of rows."""
    table = await asyncio.to_thread(read_catalog_table, path, table_format)
    rows = await asyncio.to_thread(catalog_rows, table, catalog, columns=columns, flux_unit=flux_unit)
    return await insert_catalog_rows(engine, catalog, rows, replace=replace)


def ingest_catalog_main(argv: Sequence[str] | None = None) -> int:
    """``dsa110-graph catalog ingest FILE --catalog nvss [...]``: returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="dsa110-graph catalog ingest",
        description="Load a NVSS/FIRST/VLASS-like table (FITS, CSV or VOTable) into catalog_sources.",
    )
    parser.add_argument("path", help="catalog file (.fits, .csv, .vot/.xml, .ecsv)")
    parser.add_argument("--catalog", required=True, help="catalog label stored with each row, e.g. nvss")
    parser.add_argument(
        "--format", dest="table_format", help="astropy table format if the extension is unusual"
    )
    parser.add_argument(
        "--database-url", help="SQLAlchemy URL (default: DSA110_DATABASE_URL or the data dir)"
    )
    parser.add_argument("--flux-unit", help="unit of unit-less flux columns, e.g. mJy")
    parser.add_argument(
        "--column", action="append", default=[], metavar="TARGET=NAME",
        help=f"explicit column mapping; targets: {', '.join(COLUMN_CANDIDATES)}",
    )  # fmt: skip
    parser.add_argument("--append", action="store_true", help="add to the catalog instead of replacing it")
    args = parser.parse_args(argv)
    try:
        columns = dict(item.split("=", 1) for item in args.column)
    except ValueError:
        parser.error("--column takes TARGET=NAME")
    url = args.database_url or Settings.from_env().resolved_database_url

    async def run() -> int:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            return await ingest_catalog(
                engine,
                args.path,
                args.catalog,
                table_format=args.table_format,
                columns=columns,
                flux_unit=args.flux_unit,
                replace=not args.append,
            )
        finally:
            await engine.dispose()

    try:
        count = asyncio.run(run())
    except ScienceInputError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 2
    print(f"catalog ingest catalog={args.catalog} rows={count}")
    return 0
