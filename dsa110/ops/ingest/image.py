"""One image's measurements written inside the caller's transaction (insert plus running sums).

Bulk throughout: the touched sources and their stored pair partners are read in a few
large ``IN`` chunks, the running sums are folded for all sources at once
(:mod:`dsa110.science.variability_arrays`), and the measurements and source rows are
written by one statement each (SQLite: one prepared ``executemany``; PostgreSQL: one
``INSERT ... SELECT FROM unnest(...)`` and one ``UPDATE ... FROM unnest(...)``). Nothing
here commits: the caller's ``write_transaction`` makes the whole batch all-or-nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dsa110.db.tables import images, measurements, sources
from dsa110.ops.ingest.common import IngestError, MeasurementIn, NotFoundError, _chunks
from dsa110.ops.ingest.running import _prior_min_errors
from dsa110.science import variability_arrays
from dsa110.science.variability import PAIR_WINDOW_DAYS, RunningSums, source_row

BULK_CHUNK = 5000  # ids per IN (...) list on the bulk path (SQLite allows 32766, asyncpg 32767)
_FIRST = ("first_detection_mjd", "first_detection_flux_jy", "pre_detection_min_err_jy")
_READ = ("id", "ra_deg", "dec_deg", *variability_arrays.STATE_COLUMNS, *_FIRST)
_MEASUREMENT_COLUMNS = (
    "source_pk",
    "image_pk",
    "mjd",
    "ra_deg",
    "dec_deg",
    "peak_flux_jy",
    "peak_flux_err_jy",
    "int_flux_jy",
    "int_flux_err_jy",
    "local_rms_jy",
    "snr",
    "forced",
)
_SOURCE_COLUMNS = tuple(source_row(RunningSums()))
_PG_TYPES = {"source_pk": "integer", "image_pk": "integer", "forced": "boolean", "n_epochs": "integer"}
_PG_TYPES["new_source"] = "boolean"


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)  # None -> NaN


def _nullable(values: np.ndarray) -> list[float | None]:
    out = values.astype(object)
    out[np.isnan(values)] = None
    return list(out.tolist())


async def _bulk_write(
    conn: AsyncConnection, sql_table: str, columns: Sequence[str], data: list[list[Any]]
) -> None:
    """INSERT ``data`` (one list per column) into ``sql_table`` with one statement."""
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(
            f"${i + 1}::{_PG_TYPES.get(c, 'double precision')}[]" for i, c in enumerate(columns)
        )
        await conn.exec_driver_sql(
            f"INSERT INTO {sql_table} ({names}) SELECT * FROM unnest({arrays})", tuple(data)
        )
    else:
        marks = ", ".join("?" for _ in columns)
        await conn.exec_driver_sql(
            f"INSERT INTO {sql_table} ({names}) VALUES ({marks})", list(zip(*data, strict=True))
        )


async def _bulk_update_sources(conn: AsyncConnection, ids: list[int], data: dict[str, list[Any]]) -> None:
    columns = list(data)
    if conn.dialect.name == "postgresql":
        arrays = ", ".join(
            f"${i + 2}::{_PG_TYPES.get(c, 'double precision')}[]" for i, c in enumerate(columns)
        )
        sets = ", ".join(f"{c} = u.{c}" for c in columns)
        await conn.exec_driver_sql(
            f"UPDATE sources SET {sets} FROM unnest($1::integer[], {arrays}) AS u(id, {', '.join(columns)}) "
            "WHERE sources.id = u.id",
            (ids, *(data[c] for c in columns)),
        )
    else:
        sets = ", ".join(f"{c} = ?" for c in columns)
        await conn.exec_driver_sql(
            f"UPDATE sources SET {sets} WHERE id = ?",
            list(zip(*(data[c] for c in columns), ids, strict=True)),
        )


async def _ingest_one_image(
    conn: AsyncConnection, image_pk: int, parsed: Sequence[MeasurementIn]
) -> list[int]:
    """Write one image's validated measurements inside the caller's transaction.

    Returns the touched source pks (sorted). Raises before anything of this image is
    written when the image or a source is unknown; the caller's transaction rolls back.
    """
    image = (
        (await conn.execute(select(images.c.id, images.c.mid_mjd).where(images.c.id == image_pk)))
        .mappings()
        .first()
    )
    if image is None:
        raise NotFoundError(f"image {image_pk} does not exist")
    if not parsed:
        return []
    pks = sorted(r.source_pk for r in parsed)
    read = [sources.c[name] for name in _READ]
    stored: list[Any] = []
    for chunk in _chunks(pks, BULK_CHUNK):
        result = await conn.execute(
            select(*read).where(sources.c.id.in_(chunk)).order_by(sources.c.id).with_for_update()
        )
        stored.extend(result.all())
    if len(stored) != len(pks):
        found = {row[0] for row in stored}
        missing = [pk for pk in pks if pk not in found]
        raise IngestError(f"unknown source_pk {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    col = dict(zip(_READ, zip(*stored, strict=True), strict=True))
    state = variability_arrays.state_from_columns(col)
    pk_arr = np.asarray(pks, dtype=np.int64)
    by_pk = sorted(parsed, key=lambda r: r.source_pk)  # row i is pks[i]
    mid_mjd = float(image["mid_mjd"])
    f = _floats([r.peak_flux_jy for r in by_pk])
    s = _floats([r.peak_flux_err_jy for r in by_pk])
    t = _floats([mid_mjd if r.mjd is None else r.mjd for r in by_pk])
    # Pair partners (+-PAIR_WINDOW_DAYS) stored before this image: one range scan per chunk.
    lo, hi = float(t.min()) - PAIR_WINDOW_DAYS, float(t.max()) + PAIR_WINDOW_DAYS
    partner_rows: list[Any] = []
    for chunk in _chunks(pks, BULK_CHUNK):
        result = await conn.execute(
            select(
                measurements.c.source_pk,
                measurements.c.mjd,
                measurements.c.peak_flux_jy,
                measurements.c.peak_flux_err_jy,
            ).where(measurements.c.source_pk.in_(chunk), measurements.c.mjd.between(lo, hi))
        )
        partner_rows.extend(result.all())
    if partner_rows:
        nb_src, nb_t, nb_f, nb_s = (np.asarray(c) for c in zip(*partner_rows, strict=True))
        nb_row = np.searchsorted(pk_arr, nb_src.astype(np.int64))
    else:
        nb_row, nb_t, nb_f, nb_s = np.empty(0, np.int64), np.empty(0), np.empty(0), np.empty(0)
    pair_vs, pair_m = variability_arrays.best_new_pairs(
        np.arange(len(pks)), f, s, t, nb_row, nb_f.astype(float), nb_s.astype(float), nb_t.astype(float)
    )
    # First-detection state; only a detection back-filled between stored epochs reads the DB.
    fd = {name: _floats(col[name]) for name in _FIRST}
    stored_first, stored_last = state["first_mjd"], state["last_mjd"]
    needs = variability_arrays.first_detection_needs_prior(fd[_FIRST[0]], f, s, t, stored_first, stored_last)
    prior_read = np.full(len(pks), np.nan)
    if needs.any():
        idx = np.nonzero(needs)[0].tolist()
        prior = await _prior_min_errors(conn, [(pks[i], float(t[i])) for i in idx])
        prior_read[idx] = [prior.get(pks[i], np.nan) for i in idx]
    first_mjd, first_flux, first_prior = variability_arrays.fold_first_detections(
        fd[_FIRST[0]], fd[_FIRST[1]], fd[_FIRST[2]], f, s, t, stored_first, stored_last, prior_read
    )
    new_state = variability_arrays.add_measurements(state, f, s, t, pair_vs, pair_m)
    first_cols = dict(zip(_FIRST, (first_mjd, first_flux, first_prior), strict=True))
    derived = variability_arrays.metrics(
        new_state, first_cols["first_detection_flux_jy"], first_cols["pre_detection_min_err_jy"]
    )
    try:
        await _bulk_write(
            conn,
            "measurements",
            _MEASUREMENT_COLUMNS,
            [
                pks,
                [image_pk] * len(pks),
                t.tolist(),
                [col["ra_deg"][i] if r.ra_deg is None else r.ra_deg for i, r in enumerate(by_pk)],
                [col["dec_deg"][i] if r.dec_deg is None else r.dec_deg for i, r in enumerate(by_pk)],
                f.tolist(),
                s.tolist(),
                [r.int_flux_jy for r in by_pk],
                [r.int_flux_err_jy for r in by_pk],
                [r.local_rms_jy for r in by_pk],
                [r.snr for r in by_pk],
                [r.forced for r in by_pk],
            ],
        )
    except IntegrityError:
        # The (source_pk, image_pk) unique constraint: checked by the database, not a query.
        raise IngestError(f"some of these sources already have a measurement on image {image_pk}") from None
    columns = {**new_state, **first_cols, **derived}
    data: dict[str, list[Any]] = {}
    for name in _SOURCE_COLUMNS:
        values = columns[name]
        if name == "n_epochs":
            data[name] = values.astype(np.int64).tolist()
        elif name == "new_source":
            data[name] = values.tolist()
        elif name in ("min_flux_jy", "max_flux_jy", "first_mjd", "last_mjd", "max_snr") or name in (
            *_FIRST,
            "v",
            "new_high_sigma",
        ):
            data[name] = _nullable(values)
        else:
            data[name] = values.tolist()
    await _bulk_update_sources(conn, pks, data)
    await conn.execute(
        update(images)
        .where(images.c.id == image_pk)
        .values(n_measurements=func.coalesce(images.c.n_measurements, 0) + len(parsed))
    )
    return pks
