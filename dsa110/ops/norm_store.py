"""Light-curve normalisation stored per sky cell, recomputed only when its data moved on.

The corrections of ``dsa110.ops.ingest.lightcurves`` are a property of a coarse sky cell
(its reference set) and of every measurement of those references (each baseline is a
median over all epochs), so a new image changes earlier images' factors in the cell. They
are stored per cell (``dsa110.db.norm_tables``) with the state of the data they came from:

* the largest measurement id then (``watermark``): every writer appends measurements with
  new ids (ingest, the legacy importer, the demo), so a cell is fresh only while
  ``max(measurements.id)`` is still its watermark;
* the ``norm_state`` epoch, bumped in their own transaction by the writers that could
  otherwise go unseen (``dsa110.db.norm_tables.bump_epoch``): ingest, because on PostgreSQL
  concurrent ingests may commit their ids out of order (a smaller id committed after the
  watermark was read); the legacy importer, which updates measurements in place and
  recomputes source metrics later. A bump makes every cell stale.

A read of a fresh cell is one statement: the cell row, the sources' measurements and their
images' factors, joined by primary keys (one snapshot, so a concurrent recompute is seen
whole or not at all). A stale or missing cell is computed exactly as before and stored
(best effort: a reader never waits for a writer longer than ``STORE_WAIT_S``), so the
``ese-detect`` job that follows every ingest refreshes the cells it reads, and any other
cell is refreshed by its first read. Stored values equal the computation (same floats).

Concurrent stores of one cell: the cell row is upserted first, which takes its lock on
PostgreSQL (SQLite serialises writers), and only if the stored state is not newer; the
winner replaces all the cell's factors in the same transaction. No duplicate or torn rows.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.engine import read_connection
from dsa110.db.norm_tables import image_norm_factors, norm_cells, norm_state
from dsa110.db.tables import measurements, sources
from dsa110.db.writes import is_busy, lock_budget_s
from dsa110.ops.ingest.common import NormalisedLightCurve, _chunks
from dsa110.ops.ingest.lightcurves import cell_normalisation, cell_of, light_curve_from_points
from dsa110.science.lightcurve import Correction

log = logging.getLogger("dsa110.norm")

STORE_WAIT_S: Final = 0.05
"""Longest a reader waits for the write lock to store a cell it computed (else it skips storing)."""
FACTOR_ROWS_PER_INSERT: Final = 500

DataState = tuple[int, int]
"""(largest measurement id, norm_state epoch): what a cell's stored factors were computed from."""
Point = tuple[int, int, float, float, float]  # measurement pk, image pk, mjd, flux, error


async def data_state(conn: AsyncConnection) -> DataState:
    """The current (watermark, epoch); O(1) on both backends (the primary key's last entry)."""
    newest = select(func.max(measurements.c.id)).scalar_subquery()
    epoch = select(norm_state.c.epoch).where(norm_state.c.id == 1).scalar_subquery()
    row = (await conn.execute(select(newest, epoch))).one()
    return int(row[0] or 0), int(row[1] or 0)


async def stored_light_curves(
    engine: AsyncEngine, source_pks: Sequence[int]
) -> dict[int, NormalisedLightCurve]:
    """Raw and normalised light curves keyed by source pk (unknown pks absent), from the
    stored factors where fresh; equal to ``computed_light_curves`` (same floats)."""
    out: dict[int, NormalisedLightCurve] = {}
    stale: list[tuple[int, list[int]]] = []
    # Autocommit on PostgreSQL: a READ COMMITTED transaction gave these statements no common
    # snapshot anyway (each takes its own), only a BEGIN and a ROLLBACK round trip: 2 of 6
    # per light curve (bench/scale.py lightcurve_graph). Freshness is the stamp comparison.
    async with read_connection(engine) as conn:
        state = await data_state(conn)
        cells: dict[int, list[int]] = defaultdict(list)
        for chunk in _chunks(sorted(set(source_pks))):
            rows = await conn.execute(select(sources.c.id, sources.c.healpix).where(sources.c.id.in_(chunk)))
            for pk, hp in rows.all():
                cells[cell_of(int(hp))].append(int(pk))
        for cell in sorted(cells):
            members = sorted(cells[cell])
            for part in _chunks(members):
                curves = await _read_fresh(conn, cell, list(part), state)
                if curves is None:
                    stale.append((cell, members))
                    break
                out.update(curves)
    for cell, members in stale:
        out.update(await _compute_and_store(engine, cell, members))
    return out


async def _read_fresh(
    conn: AsyncConnection, cell: int, members: list[int], state: DataState
) -> dict[int, NormalisedLightCurve] | None:
    """The members' curves from the stored factors, or None when the cell is stale or missing."""
    m, f, c = measurements, image_norm_factors, norm_cells
    stmt = (
        select(
            c.c.watermark,
            c.c.epoch,
            c.c.reference_pks,
            m.c.source_pk,
            m.c.id,
            m.c.image_pk,
            m.c.mjd,
            m.c.peak_flux_jy,
            m.c.peak_flux_err_jy,
            f.c.factor,
            f.c.factor_err,
            f.c.n_ref,
        )
        .select_from(
            c.outerjoin(m, m.c.source_pk.in_(members)).outerjoin(
                f, and_(f.c.cell == c.c.cell, f.c.image_pk == m.c.image_pk)
            )
        )
        .where(c.c.cell == cell)
        .order_by(m.c.source_pk, m.c.mjd, m.c.id)
    )
    rows = (await conn.execute(stmt)).all()
    if not rows or (rows[0][0], rows[0][1]) != state:
        return None
    refs = tuple(int(pk) for pk in json.loads(rows[0][2]))
    points: dict[int, list[Point]] = {pk: [] for pk in members}
    corrections: dict[int, Correction] = {}
    for row in rows:
        if row[3] is None:
            continue  # the cell row alone: none of the members has a measurement
        points[row[3]].append((row[4], row[5], row[6], row[7], row[8]))
        if row[9] is not None:
            corrections[row[5]] = Correction(factor=row[9], sigma=row[10], n_references=row[11])
    return {pk: light_curve_from_points(pk, pts, corrections, refs) for pk, pts in points.items()}


async def _compute_and_store(
    engine: AsyncEngine, cell: int, members: list[int]
) -> dict[int, NormalisedLightCurve]:
    points: dict[int, list[Point]] = {pk: [] for pk in members}
    async with read_connection(engine) as conn:
        state = await data_state(conn)  # before the inputs: the stamp is never newer than them
        refs, corrections = await cell_normalisation(conn, cell)
        for part in _chunks(members):
            rows = await conn.execute(
                select(
                    measurements.c.source_pk,
                    measurements.c.id,
                    measurements.c.image_pk,
                    measurements.c.mjd,
                    measurements.c.peak_flux_jy,
                    measurements.c.peak_flux_err_jy,
                )
                .where(measurements.c.source_pk.in_(list(part)))
                .order_by(measurements.c.source_pk, measurements.c.mjd, measurements.c.id)
            )
            for spk, mpk, ipk, mjd, flux, err in rows.all():
                points[spk].append((mpk, ipk, mjd, flux, err))
    await store_cell(engine, cell, state, refs, corrections)
    return {pk: light_curve_from_points(pk, pts, corrections, tuple(refs)) for pk, pts in points.items()}


async def store_cell(
    engine: AsyncEngine,
    cell: int,
    state: DataState,
    refs: Sequence[int],
    corrections: Mapping[int, Correction],
) -> bool:
    """Store one cell's factors computed from ``state``; False when not stored (the lock was
    not free within ``STORE_WAIT_S``, or a newer computation is already stored)."""
    watermark, epoch = state
    factors = [
        {"cell": cell, "image_pk": pk, "factor": c.factor, "factor_err": c.sigma, "n_ref": c.n_references}
        for pk, c in sorted(corrections.items())
        if c.corrected
    ]
    try:
        async with _brief_write(engine) as conn:
            stmt = _upsert(conn, norm_cells).values(
                cell=cell,
                watermark=watermark,
                epoch=epoch,
                reference_pks=json.dumps([int(pk) for pk in refs]),
                computed_at=datetime.now(UTC),
            )
            newer_or_same = (norm_cells.c.epoch < stmt.excluded.epoch) | (
                (norm_cells.c.epoch == stmt.excluded.epoch)
                & (norm_cells.c.watermark <= stmt.excluded.watermark)
            )
            stmt = stmt.on_conflict_do_update(
                index_elements=[norm_cells.c.cell],
                set_={k: stmt.excluded[k] for k in ("watermark", "epoch", "reference_pks", "computed_at")},
                where=newer_or_same,
            ).returning(norm_cells.c.cell)
            if (await conn.execute(stmt)).first() is None:
                return False  # a newer computation is stored: keep it
            await conn.execute(delete(image_norm_factors).where(image_norm_factors.c.cell == cell))
            for start in range(0, len(factors), FACTOR_ROWS_PER_INSERT):
                await conn.execute(
                    insert(image_norm_factors), factors[start : start + FACTOR_ROWS_PER_INSERT]
                )
    except DBAPIError as error:
        if not is_busy(error):
            raise
        log.debug("normalisation of cell %d not stored: the database is busy", cell)
        return False
    return True


def _upsert(conn: AsyncConnection, table: Any) -> Any:
    return postgresql_insert(table) if conn.dialect.name == "postgresql" else sqlite_insert(table)


@asynccontextmanager
async def _brief_write(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A write transaction that waits at most ``STORE_WAIT_S`` for the write lock.

    SQLite's wait is the connection's busy timeout, lowered for this transaction and put
    back after (the connection is discarded if that fails); PostgreSQL's is ``lock_timeout``.
    """
    wait_ms = max(1, int(STORE_WAIT_S * 1000))
    async with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            async with conn.begin():
                await conn.exec_driver_sql(f"SET LOCAL lock_timeout = {wait_ms}")
                yield conn
            return
        usual_ms = max(1, round(lock_budget_s(engine) * 1000))
        await conn.exec_driver_sql(f"PRAGMA busy_timeout={wait_ms}")
        await conn.commit()
        try:
            async with conn.begin():
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        finally:
            try:
                await conn.exec_driver_sql(f"PRAGMA busy_timeout={usual_ms}")
                await conn.commit()
            except BaseException:
                await conn.invalidate()  # never hand a short busy timeout to the next writer
                raise


__all__ = ["data_state", "store_cell", "stored_light_curves"]
