"""The bulk ingest path stores what the one-measurement-at-a-time fold stores, bit for bit.

The reference is :func:`dsa110.science.variability.add_measurement` applied per source in
ingest order (its pair neighbours and prior minimum error taken from the points folded
before), then :func:`dsa110.science.variability.source_row`. The scenario mixes what the
bulk path treats specially: images out of time order (pairs inside and outside the 10 d
window), detections and non-detections (first-detection state, a back-filled first
detection between stored epochs), negative fluxes (no V, pairs with F_a + F_b <= 0), and
several images in one call. A failure in the last image of a call leaves nothing behind.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import images, measurements, sources
from dsa110.ops.ingest import IngestError, MeasurementIn, ingest_images_measurements, sqlite_indexes
from dsa110.science.variability import PAIR_WINDOW_DAYS, RunningSums, add_measurement, source_row
from tests.ops.test_ingest import _add_images, _add_sources

N_SOURCES = 40
# Out of time order on purpose; 60003.5 lands between stored epochs (back-filled detections).
MJDS = [60010.0, 60000.0, 60030.0, 60012.5, 60001.0, 60003.5, 60045.0, 60020.0]


def _scenario() -> dict[int, list[tuple[int, float, float]]]:
    """Per image index: (source index, flux, err); each source on a random subset of images."""
    rng = np.random.default_rng(2024)
    out: dict[int, list[tuple[int, float, float]]] = {}
    for j in range(len(MJDS)):
        rows = []
        for i in range(N_SOURCES):
            if rng.random() < 0.2:
                continue  # not on this image
            err = float(rng.uniform(0.001, 0.004))
            kind = i % 4
            if kind == 0:  # steady and bright: detected every time
                flux = float(0.1 + 0.01 * rng.standard_normal())
            elif kind == 1:  # faint, detected only on the back-filled epoch and late
                flux = float(0.03 if MJDS[j] in (60003.5, 60045.0) else 0.002 * rng.standard_normal())
            elif kind == 2:  # noise around zero: negative fluxes, no V
                flux = float(0.001 * rng.standard_normal())
            else:  # a flare
                flux = float(0.05 if j in (2, 3) else 0.01 + 0.001 * rng.standard_normal())
            rows.append((i, flux, err))
        out[j] = rows
    return out


def _reference(
    scenario: dict[int, list[tuple[int, float, float]]], order: list[int]
) -> dict[int, dict[str, Any]]:
    states = {i: RunningSums() for i in range(N_SOURCES)}
    points: dict[int, list[tuple[float, float, float]]] = {i: [] for i in range(N_SOURCES)}
    for j in order:
        t = MJDS[j]
        for i, f, s in scenario[j]:
            stored = points[i]
            neighbours = [(pf, ps) for pt, pf, ps in stored if abs(pt - t) <= PAIR_WINDOW_DAYS]
            before = [ps for pt, _, ps in stored if pt < t]
            states[i] = add_measurement(
                states[i], f, s, t, neighbours, prior_min_err_jy=min(before) if before else None
            )
            stored.append((t, f, s))
    return {i: source_row(state) for i, state in states.items()}


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


async def _analyzed(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE sources")


async def _index_definitions(engine: AsyncEngine) -> list[tuple[str, ...]]:
    """SQLite: the indexes of ``sources`` and their planner statistics (empty on PostgreSQL)."""
    async with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            return []
        rows = await conn.exec_driver_sql(
            "SELECT m.name, m.sql, coalesce(s.stat, '') FROM sqlite_master AS m "
            "LEFT JOIN sqlite_stat1 AS s ON s.idx = m.name "
            "WHERE m.type = 'index' AND m.tbl_name = 'sources' ORDER BY m.name"
        )
        return [tuple(str(v) for v in row) for row in map(tuple, rows)]


@pytest.fixture(params=["maintained", "rebuilt"])
def index_strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with SQLite's index rebuild for big batches forced on every call, or never used."""
    if request.param == "rebuilt":
        monkeypatch.setattr(sqlite_indexes, "MIN_REBUILD_ROWS", 1)
        monkeypatch.setattr(sqlite_indexes, "REBUILD_FRACTION", 0.0)
    else:
        monkeypatch.setattr(sqlite_indexes, "MIN_REBUILD_ROWS", 10**9)
    return str(request.param)


async def test_bulk_ingest_stores_the_sequential_fold_exactly(
    engine: AsyncEngine, index_strategy: str
) -> None:
    pks = await _add_sources(engine, [(150.0 + 0.01 * i, 40.0 + 0.01 * i) for i in range(N_SOURCES)])
    imgs = await _add_images(engine, MJDS)
    await _analyzed(engine)
    indexes_before = await _index_definitions(engine)
    scenario = _scenario()
    order = list(range(len(MJDS)))

    def batch(j: int) -> tuple[int, list[MeasurementIn]]:
        rows = [
            MeasurementIn(source_pk=pks[i], peak_flux_jy=f, peak_flux_err_jy=s) for i, f, s in scenario[j]
        ]
        return imgs[j], rows[::-1]  # any row order

    # Three calls, the middle one with several images in one transaction.
    await ingest_images_measurements(engine, [batch(j) for j in order[:2]], detect=False)
    await ingest_images_measurements(engine, [batch(j) for j in order[2:6]], detect=False)
    await ingest_images_measurements(engine, [batch(j) for j in order[6:]], detect=False)
    expected = _reference(scenario, order)
    async with engine.connect() as conn:
        stored = {
            row["id"]: row
            for row in (await conn.execute(select(sources).order_by(sources.c.id))).mappings().all()
        }
        counts = dict((await conn.execute(select(images.c.id, images.c.n_measurements))).all())
    mismatches = [
        (i, name, stored[pks[i]][name], value)
        for i, row in expected.items()
        for name, value in row.items()
        if not _same(stored[pks[i]][name], value)
    ]
    assert mismatches == []
    assert counts == {imgs[j]: len(scenario[j]) for j in order}
    assert await _index_definitions(engine) == indexes_before  # rebuilt as they were
    # The scenario reaches the special cases it is meant to.
    assert any(row["new_source"] for row in expected.values())
    assert any(row["v"] is None for row in expected.values())
    assert any(row["m_abs_max"] > 0 for row in expected.values())


async def test_a_failure_in_the_last_image_leaves_nothing_of_the_call(
    engine: AsyncEngine, index_strategy: str
) -> None:
    pks = await _add_sources(engine, [(20.0 + 0.01 * i, -10.0) for i in range(5)])
    imgs = await _add_images(engine, [60000.0, 60001.0, 60002.0])
    await _analyzed(engine)
    indexes_before = await _index_definitions(engine)
    good = [MeasurementIn(source_pk=pk, peak_flux_jy=0.1, peak_flux_err_jy=0.01) for pk in pks]
    await ingest_images_measurements(engine, [(imgs[0], good)], detect=False)
    # Image 2 is fine and written first; then image 1 again, already stored: the unique
    # constraint fires in the second image's INSERT, after image 2 was written in the call.
    with pytest.raises(IngestError, match="already have a measurement"):
        await ingest_images_measurements(engine, [(imgs[1], good), (imgs[0], good)], detect=False)
    # An unknown source in the last image, after a valid one.
    bad = [*good, MeasurementIn(source_pk=max(pks) + 1000, peak_flux_jy=0.1, peak_flux_err_jy=0.01)]
    with pytest.raises(IngestError, match="unknown source_pk"):
        await ingest_images_measurements(engine, [(imgs[1], good), (imgs[2], bad)], detect=False)
    async with engine.connect() as conn:
        n_rows = (await conn.execute(select(func.count()).select_from(measurements))).scalar_one()
        epochs = set((await conn.execute(select(sources.c.n_epochs))).scalars())
        counts = dict((await conn.execute(select(images.c.id, images.c.n_measurements))).all())
        sums = set((await conn.execute(select(sources.c.sum_f))).scalars())
    assert n_rows == len(pks)
    assert epochs == {1}
    assert sums == {0.1}
    assert counts == {imgs[0]: len(pks), imgs[1]: 0, imgs[2]: 0}
    assert await _index_definitions(engine) == indexes_before  # the rollback restored them
