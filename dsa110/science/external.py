"""SIMBAD, NED and Gaia cone searches through astroquery, with a hard timeout and a cache.

Astronomers often use the dashboard on an observatory network with no internet, so an
external lookup must fail fast and clearly: each query runs in a small dedicated thread
pool under ``asyncio.wait_for`` (astroquery's own timeouts do not cover every stage, e.g.
TAP capability fetches), and any failure or timeout is an ``ExternalServiceUnavailable``
(code ``UNAVAILABLE``). A timed-out thread cannot be killed; the pool is bounded, so stuck
lookups can never pile up more than ``_WORKERS`` threads, later ones then time out too.

Results are cached in ``external_catalog_cache`` keyed by service and the position and
radius rounded to 1e-4 deg (0.36 arcsec) and 0.01 arcsec. A fresh entry (younger than
``max_age``) is served without a query; when the service is unavailable a stale entry is
served, marked ``stale``, rather than nothing. Separations are recomputed from the
caller's exact position, so rounding in the key never shows.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar, get_args

import numpy as np
from astropy import units as u
from astropy.coordinates import Angle, SkyCoord
from astropy.table import Table
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.db.writes import write_transaction
from dsa110.ops.breakers import EXTERNAL, BreakerOpen
from dsa110.ops.caches import Counter
from dsa110.science.errors import ExternalServiceUnavailable, ScienceInputError
from dsa110.science.fitsio import check_sky_position
from dsa110.science.healpix import angular_separation_deg

log = logging.getLogger(__name__)

Service = Literal["simbad", "ned", "gaia"]
SERVICES: tuple[str, ...] = get_args(Service)
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 60.0
IMPORT_TIMEOUT_S = 30.0  # first use imports astroquery (seconds of CPU; Gaia also phones home)
MAX_RADIUS_ARCSEC = 600.0
ROW_LIMIT = 500
CACHE_MAX_AGE = timedelta(days=30)
CACHE_COUNTER = Counter()
"""Lookups answered from ``external_catalog_cache`` (fresh) or not, in this process."""
_WORKERS = 4
_POOL = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="external-catalog")
_GAIA_COLUMNS = ("source_id", "designation", "ra", "dec", "phot_g_mean_mag", "parallax", "pmra", "pmdec")

T = TypeVar("T")


@dataclass(frozen=True)
class ExternalObject:
    name: str
    ra_deg: float
    dec_deg: float
    separation_arcsec: float
    object_type: str | None
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-safe service-specific columns


@dataclass(frozen=True)
class ExternalResult:
    service: str
    objects: list[ExternalObject]
    fetched_at: datetime
    cached: bool
    stale: bool = False


def cache_key(ra_deg: float, dec_deg: float, radius_arcsec: float) -> str:
    return f"{ra_deg % 360.0:.4f},{dec_deg:+.4f},{radius_arcsec:.2f}"


async def run_blocking_with_timeout(service: str, func: Callable[[], T], timeout_s: float) -> T:
    """Run ``func`` in the external-query pool; any failure or overrun is ``UNAVAILABLE``."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(_POOL, func), timeout_s)
    except TimeoutError as exc:
        raise ExternalServiceUnavailable(service, f"{service} did not answer within {timeout_s:g} s") from exc
    except ExternalServiceUnavailable:
        raise
    except Exception as exc:  # network, HTTP, TAP and parse errors all mean "not available now"
        log.warning("%s query failed: %s", service, exc, exc_info=log.isEnabledFor(logging.DEBUG))
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ExternalServiceUnavailable(service, f"{service} is unreachable: {reason}") from exc


def _validate(service: str, ra_deg: float, dec_deg: float, radius_arcsec: float, timeout_s: float) -> None:
    if service not in SERVICES:
        raise ScienceInputError("BAD_SERVICE", f"unknown service {service!r}; use one of {list(SERVICES)}")
    check_sky_position(ra_deg, dec_deg)
    if not math.isfinite(radius_arcsec) or not 0.0 < radius_arcsec <= MAX_RADIUS_ARCSEC:
        raise ScienceInputError("BAD_SIZE", f"radius_arcsec must be in (0, {MAX_RADIUS_ARCSEC:g}]")
    if not math.isfinite(timeout_s) or not 0.0 < timeout_s <= MAX_TIMEOUT_S:
        raise ScienceInputError("BAD_SIZE", f"timeout_s must be in (0, {MAX_TIMEOUT_S:g}]")


async def query_external(
    engine: AsyncEngine,
    service: str,
    ra_deg: float,
    dec_deg: float,
    radius_arcsec: float,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_age: timedelta = CACHE_MAX_AGE,
) -> ExternalResult:
    """Objects from ``service`` within ``radius_arcsec`` of (RA, Dec), nearest first.

    Raises ``ScienceInputError`` for bad arguments and ``ExternalServiceUnavailable`` when
    the service cannot be reached and nothing is cached.
    """
    _validate(service, ra_deg, dec_deg, radius_arcsec, timeout_s)
    key = cache_key(ra_deg, dec_deg, radius_arcsec)
    cached = await _read_cache(engine, service, key)
    now = datetime.now(UTC)
    if cached is not None and now - cached[0] <= max_age:
        CACHE_COUNTER.hit()
        return _result(service, cached[1], ra_deg, dec_deg, cached[0], cached=True)
    CACHE_COUNTER.miss()
    breaker = EXTERNAL[service]
    try:
        try:
            breaker.before_call()  # after failures in a row, refuse at once instead of timing out
        except BreakerOpen as refused:
            raise ExternalServiceUnavailable(service, refused.message) from None
        else:
            try:
                await run_blocking_with_timeout(service, lambda: _import_client(service), IMPORT_TIMEOUT_S)
                objects = await run_blocking_with_timeout(
                    service, lambda: _fetch(service, ra_deg, dec_deg, radius_arcsec, timeout_s), timeout_s
                )
            except ExternalServiceUnavailable as error:
                breaker.failure(error)
                raise
            breaker.success()
    except ExternalServiceUnavailable:
        if cached is not None:
            return _result(service, cached[1], ra_deg, dec_deg, cached[0], cached=True, stale=True)
        raise
    payload = [asdict(o) for o in objects]
    await _write_cache(engine, service, key, now, payload)
    return _result(service, payload, ra_deg, dec_deg, now, cached=False)


def _result(
    service: str,
    payload: list[dict[str, Any]],
    ra_deg: float,
    dec_deg: float,
    fetched_at: datetime,
    *,
    cached: bool,
    stale: bool = False,
) -> ExternalResult:
    objects = [
        ExternalObject(
            name=str(o["name"]),
            ra_deg=float(o["ra_deg"]),
            dec_deg=float(o["dec_deg"]),
            separation_arcsec=float(angular_separation_deg(ra_deg, dec_deg, o["ra_deg"], o["dec_deg"]))
            * 3600.0,
            object_type=o.get("object_type"),
            extra=dict(o.get("extra") or {}),
        )
        for o in payload
    ]
    objects.sort(key=lambda o: o.separation_arcsec)
    return ExternalResult(service, objects, fetched_at, cached=cached, stale=stale)


async def _read_cache(
    engine: AsyncEngine, service: str, key: str
) -> tuple[datetime, list[dict[str, Any]]] | None:
    c = t.external_catalog_cache.c
    async with engine.connect() as conn:
        row = (
            await conn.execute(select(c.fetched_at, c.result).where(c.service == service, c.query_key == key))
        ).first()
    if row is None:
        return None
    result = row.result
    objects = result.get("objects") if isinstance(result, dict) else None
    if not isinstance(objects, list) or not all(isinstance(o, dict) and "ra_deg" in o for o in objects):
        return None  # an unreadable entry is a miss; the next query overwrites it
    return row.fetched_at, objects


async def _write_cache(
    engine: AsyncEngine, service: str, key: str, fetched_at: datetime, objects: list[dict[str, Any]]
) -> None:
    table = t.external_catalog_cache
    try:
        async with write_transaction(engine) as conn:
            await conn.execute(delete(table).where(table.c.service == service, table.c.query_key == key))
            await conn.execute(
                insert(table).values(
                    service=service, query_key=key, fetched_at=fetched_at, result={"objects": objects}
                )
            )
    except IntegrityError:  # a concurrent identical query stored it first: same answer
        pass


# --- the blocking part, run in the pool ----------------------------------------------------


def _import_client(service: str) -> None:
    if service == "simbad":
        import astroquery.simbad
    elif service == "ned":
        import astroquery.ipac.ned
    else:
        import astroquery.gaia  # noqa: F401


def _fetch(
    service: str, ra_deg: float, dec_deg: float, radius_arcsec: float, timeout_s: float
) -> list[ExternalObject]:
    centre = SkyCoord(ra_deg * u.deg, dec_deg * u.deg)
    radius = radius_arcsec * u.arcsec
    table: Table | None
    if service == "simbad":
        from astroquery.simbad import SimbadClass

        simbad = SimbadClass(ROW_LIMIT=ROW_LIMIT, timeout=timeout_s)
        simbad.add_votable_fields("otype")
        table = simbad.query_region(centre, radius=radius)
    elif service == "ned":
        from astroquery.ipac.ned import NedClass

        ned = NedClass()
        ned.TIMEOUT = timeout_s
        table = ned.query_region(centre, radius=radius)
    else:
        from astroquery.gaia import Gaia

        Gaia.ROW_LIMIT = ROW_LIMIT
        table = Gaia.cone_search(centre, radius=radius, columns=_GAIA_COLUMNS).get_results()
    return normalise_table(service, table, ra_deg, dec_deg)


# Column names per service, first match wins (case-insensitive): SIMBAD's TAP interface
# (astroquery >= 0.4.8) and its older VOTable one, NED's object search, Gaia DR3.
_NAME_COLUMNS = ("main_id", "object name", "designation", "source_id")
_RA_COLUMNS = ("ra", "ra_d", "ra(deg)")
_DEC_COLUMNS = ("dec", "dec_d", "dec(deg)")
_TYPE_COLUMNS = ("otype", "type")


def _column(table: Table, candidates: tuple[str, ...]) -> str | None:
    by_lower = {name.lower(): name for name in table.colnames}
    return next((by_lower[c] for c in candidates if c in by_lower), None)


def _json_safe(value: Any) -> Any:
    if value is None or value is np.ma.masked:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _degrees(value: Any, is_ra: bool) -> float:
    if isinstance(value, str | bytes):
        text = value.decode() if isinstance(value, bytes) else value
        return float(Angle(text, unit=u.hourangle if is_ra else u.deg).deg)
    return float(value)


def normalise_table(service: str, table: Table | None, ra_deg: float, dec_deg: float) -> list[ExternalObject]:
    """Service rows as ``ExternalObject``s (rows without a usable position are dropped)."""
    if table is None or len(table) == 0:
        return []
    name_col = _column(table, _NAME_COLUMNS)
    ra_col, dec_col = _column(table, _RA_COLUMNS), _column(table, _DEC_COLUMNS)
    type_col = _column(table, _TYPE_COLUMNS)
    if ra_col is None or dec_col is None:
        raise ValueError(f"{service} answered without RA/Dec columns: {table.colnames[:20]}")
    used = {name_col, ra_col, dec_col, type_col}
    extra_cols = [c for c in table.colnames if c not in used][:40]
    objects = []
    for row in table:
        try:
            ra, dec = _degrees(row[ra_col], True), _degrees(row[dec_col], False)
        except (TypeError, ValueError):
            continue
        if not (math.isfinite(ra) and math.isfinite(dec)):
            continue
        name = _json_safe(row[name_col]) if name_col else None
        objects.append(
            ExternalObject(
                name=str(name) if name is not None else f"{ra:.5f}{dec:+.5f}",
                ra_deg=ra % 360.0,
                dec_deg=dec,
                separation_arcsec=float(angular_separation_deg(ra_deg, dec_deg, ra, dec)) * 3600.0,
                object_type=_json_safe(row[type_col]) if type_col else None,
                extra={c: _json_safe(row[c]) for c in extra_cols},
            )
        )
    objects.sort(key=lambda o: o.separation_arcsec)
    return objects
