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

from dsa110.db.tables import images
from dsa110.ops.ingest.bulk_sql import bulk_insert, bulk_update_sources, fetch_rows, id_list, partners_query
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
SOURCE_COLUMNS = tuple(source_row(RunningSums()))
"""The ``sources`` columns every ingested measurement rewrites."""


def _floats(values: Sequence[Any]) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)  # None -> NaN


def _given_or(default: np.ndarray, given: list[float | None]) -> list[float]:
    """Each row's given value, or the source's where none was given."""
    values = _floats(given)
    return list(np.where(np.isnan(values), default, values).tolist())


def _nullable(values: np.ndarray) -> list[float | None]:
    out = values.astype(object)
    out[np.isnan(values)] = None
    return list(out.tolist())


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
    stored: list[Sequence[Any]] = []
    lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    for chunk in _chunks(pks, BULK_CHUNK):
        in_ids, params = id_list(conn, chunk)
        sql = f"SELECT {', '.join(_READ)} FROM sources WHERE id {in_ids} ORDER BY id{lock}"
        stored.extend(await fetch_rows(conn, sql, params))
    if len(stored) != len(pks):
        found = {row[0] for row in stored}
        missing = [pk for pk in pks if pk not in found]
        raise IngestError(f"unknown source_pk {missing[:10]}{' ...' if len(missing) > 10 else ''}")
    table = np.array(stored, dtype=np.float64).reshape(len(pks), len(_READ))  # NULL -> NaN
    col = {name: table[:, j] for j, name in enumerate(_READ)}
    state = variability_arrays.state_from_columns(col)
    pk_arr = np.asarray(pks, dtype=np.int64)
    by_pk = sorted(parsed, key=lambda r: r.source_pk)  # row i is pks[i]
    mid_mjd = float(image["mid_mjd"])
    f = _floats([r.peak_flux_jy for r in by_pk])
    s = _floats([r.peak_flux_err_jy for r in by_pk])
    t = _floats([mid_mjd if r.mjd is None else r.mjd for r in by_pk])
    # Pair partners (+-PAIR_WINDOW_DAYS) stored before this image: one range scan per chunk.
    lo, hi = float(t.min()) - PAIR_WINDOW_DAYS, float(t.max()) + PAIR_WINDOW_DAYS
    partner_rows: list[Sequence[Any]] = []
    for chunk in _chunks(pks, BULK_CHUNK):
        partner_rows.extend(await fetch_rows(conn, *partners_query(conn, chunk, lo, hi)))
    partners = np.array(partner_rows, dtype=np.float64).reshape(len(partner_rows), 4)
    nb_row = np.searchsorted(pk_arr, partners[:, 0].astype(np.int64))
    nb_t, nb_f, nb_s = partners[:, 1], partners[:, 2], partners[:, 3]
    pair_vs, pair_m = variability_arrays.best_new_pairs(
        np.arange(len(pks)), f, s, t, nb_row, nb_f, nb_s, nb_t
    )
    # First-detection state; only a detection back-filled between stored epochs reads the DB.
    fd = {name: col[name] for name in _FIRST}
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
        await bulk_insert(
            conn,
            "measurements",
            _MEASUREMENT_COLUMNS,
            [
                pks,
                [image_pk] * len(pks),
                t.tolist(),
                _given_or(col["ra_deg"], [r.ra_deg for r in by_pk]),
                _given_or(col["dec_deg"], [r.dec_deg for r in by_pk]),
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
    for name in SOURCE_COLUMNS:
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
    await bulk_update_sources(conn, pks, data)
    await conn.execute(
        update(images)
        .where(images.c.id == image_pk)
        .values(n_measurements=func.coalesce(images.c.n_measurements, 0) + len(parsed))
    )
    return pks
