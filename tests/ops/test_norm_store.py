"""Stored light-curve normalisation equals the computation, and goes stale when the data move on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.norm_tables import bump_epoch, image_norm_factors, norm_cells
from dsa110.db.tables import measurements, sources
from dsa110.ops import norm_store
from dsa110.ops.ingest import MeasurementIn, NormalisedLightCurve, ingest_image_measurements
from dsa110.ops.ingest.lightcurves import cell_of, computed_light_curves, normalised_light_curves
from dsa110.science.lightcurve import Correction
from tests.ops.test_ingest import _add_images, _add_sources, _field_light_curves


def assert_same(stored: dict[int, NormalisedLightCurve], computed: dict[int, NormalisedLightCurve]) -> None:
    assert stored.keys() == computed.keys()
    for pk, want in computed.items():
        got = stored[pk]
        assert got.measurement_pks == want.measurement_pks and got.image_pks == want.image_pks
        assert got.reference_pks == want.reference_pks and got.n_references == want.n_references
        assert got.corrected == want.corrected
        for name in ("mjd", "flux_jy", "flux_err_jy", "norm_flux_jy", "norm_flux_err_jy"):
            np.testing.assert_allclose(
                getattr(got, name), getattr(want, name), rtol=1e-9, atol=0, err_msg=name
            )


async def _field(engine: AsyncEngine, n_images: int) -> tuple[list[int], list[int], np.ndarray, np.ndarray]:
    """14 sources in one sky cell (12 steady references), ``n_images`` of their 160 epochs ingested."""
    mjds = 60000.0 + np.arange(0, 240, 1.5)
    flux, err = _field_light_curves(11, mjds)
    pks = await _add_sources(engine, [(150.0 + 0.05 * i, 40.0 + 0.03 * i) for i in range(flux.shape[0])])
    imgs = await _add_images(engine, mjds.tolist())
    for j in range(n_images):
        await _ingest(engine, pks, imgs, flux, err, j)
    return pks, imgs, flux, err


async def _ingest(engine: AsyncEngine, pks: list[int], imgs: list[int], flux: Any, err: Any, j: int) -> None:
    rows = [
        MeasurementIn(source_pk=pk, peak_flux_jy=float(flux[i, j]), peak_flux_err_jy=float(err[i, j]))
        for i, pk in enumerate(pks)
    ]
    await ingest_image_measurements(engine, imgs[j], rows, detect=False)


async def _factors(engine: AsyncEngine) -> dict[int, float]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(image_norm_factors.c.image_pk, image_norm_factors.c.factor))).all()
    return {int(pk): float(f) for pk, f in rows}


async def test_stored_factors_equal_the_computation_and_follow_a_new_image(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pks, imgs, flux, err = await _field(engine, 40)
    first = await normalised_light_curves(engine, pks)
    assert_same(first, await computed_light_curves(engine, pks))
    assert all(first[pks[12]].corrected) and first[pks[12]].n_references >= 3
    stored = await _factors(engine)
    assert sorted(stored) == imgs[:40]

    # Fresh: a second read joins the stored factors and computes nothing.
    async def no_compute(*_: Any) -> Any:
        raise AssertionError("a fresh cell was recomputed")

    with monkeypatch.context() as patch:
        patch.setattr(norm_store, "cell_normalisation", no_compute)
        again = await normalised_light_curves(engine, [pks[12], pks[3]])
    assert_same(again, {pk: first[pk] for pk in (pks[12], pks[3])})

    # A new image moves every reference's baseline: earlier images' factors change too,
    # the stored ones are stale, and the read recomputes them.
    await _ingest(engine, pks, imgs, flux, err, 40)
    after = await normalised_light_curves(engine, pks)
    assert_same(after, await computed_light_curves(engine, pks))
    refreshed = await _factors(engine)
    assert sorted(refreshed) == imgs[:41]
    assert any(refreshed[pk] != stored[pk] for pk in imgs[:40])


async def test_an_in_place_change_is_seen_through_the_epoch(engine: AsyncEngine) -> None:
    pks, imgs, _, _ = await _field(engine, 12)
    await normalised_light_curves(engine, pks)
    async with engine.begin() as conn:  # what the legacy importer's upsert does, with its hook
        await conn.execute(
            update(measurements)
            .where(measurements.c.source_pk == pks[0], measurements.c.image_pk == imgs[5])
            .values(peak_flux_jy=measurements.c.peak_flux_jy * 1.5)
        )
        await bump_epoch(conn)
    assert_same(await normalised_light_curves(engine, pks), await computed_light_curves(engine, pks))


async def test_concurrent_stores_of_a_cell_leave_one_whole_computation(engine: AsyncEngine) -> None:
    pks, imgs, _, _ = await _field(engine, 10)
    async with engine.connect() as conn:
        healpix = (await conn.execute(select(sources.c.healpix).where(sources.c.id.in_(pks)))).scalars().all()
    cells = {cell_of(int(hp)) for hp in healpix}  # the field spans a cell boundary
    cell = min(cells)

    def factors(scale: float) -> dict[int, Correction]:
        return {
            pk: Correction(factor=scale + i * 1e-3, sigma=0.01, n_references=5) for i, pk in enumerate(imgs)
        }

    # Ten writers at once, each with a different data state: the newest one wins whole.
    states = [(100 + k, 0) for k in range(10)]
    done = await asyncio.gather(
        *(norm_store.store_cell(engine, cell, s, [1, 2, 3], factors(1.0 + k)) for k, s in enumerate(states))
    )
    assert any(done)
    async with engine.connect() as conn:
        row = (await conn.execute(select(norm_cells).where(norm_cells.c.cell == cell))).mappings().one()
        n_rows = (
            await conn.execute(select(func.count()).where(image_norm_factors.c.cell == cell))
        ).scalar_one()
    stored = await _factors(engine)
    assert n_rows == len(imgs) == len(stored)
    winner = row["watermark"] - 100
    assert json.loads(row["reference_pks"]) == [1, 2, 3]
    assert stored == {pk: c.factor for pk, c in factors(1.0 + winner).items()}
    # An older computation never replaces a newer one.
    assert not await norm_store.store_cell(engine, cell, (50, 0), [9], factors(7.0))
    assert await _factors(engine) == stored

    # Concurrent readers of a stale cell all answer the computation, and one copy is stored.
    async with engine.begin() as conn:
        await bump_epoch(conn)
    curves = await asyncio.gather(*(normalised_light_curves(engine, pks) for _ in range(5)))
    computed = await computed_light_curves(engine, pks)
    for result in curves:
        assert_same(result, computed)
    async with engine.connect() as conn:
        n_cells = (await conn.execute(select(func.count()).select_from(norm_cells))).scalar_one()
    assert n_cells == len(cells)
    assert_same(await normalised_light_curves(engine, pks), computed)


async def test_unknown_and_unmeasured_sources(engine: AsyncEngine) -> None:
    (lonely,) = await _add_sources(engine, [(10.0, -30.0)])
    curves = await normalised_light_curves(engine, [lonely, lonely + 1000])
    assert list(curves) == [lonely]
    assert curves[lonely].mjd == () and curves[lonely].n_references == 0
    assert_same(
        await normalised_light_curves(engine, [lonely]), await computed_light_curves(engine, [lonely])
    )


async def test_ingest_and_the_legacy_metrics_recompute_make_stored_cells_stale(engine: AsyncEngine) -> None:
    # On PostgreSQL concurrent ingests may commit ids out of order: the epoch, bumped in the
    # ingest's own transaction, is what makes the stored cells stale, not the largest id alone.
    pks, imgs, flux, err = await _field(engine, 3)
    async with engine.connect() as conn:
        before = await norm_store.data_state(conn)
    await _ingest(engine, pks, imgs, flux, err, 3)
    async with engine.connect() as conn:
        after = await norm_store.data_state(conn)
    assert after[1] == before[1] + 1 and after[0] > before[0]
