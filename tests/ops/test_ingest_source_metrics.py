"""Max S/N and new source through the ingest path: out-of-order ingest, back-fill, recompute."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import sources
from dsa110.ops.ingest import ingest_image_measurements, ingest_images_measurements, recompute_source_metrics
from dsa110.science.variability import source_row, sums_from_arrays
from tests.ops.test_ingest import _add_images, _add_sources

MJDS = [60000.0, 60001.0, 60002.0, 60003.0, 60004.0, 60005.0]
# Source A: S/N 2, 3.75, 1, then 10, 4, 11: first detected at MJD 60003 (F_d = 0.020);
# the earlier errors are 0.001, 0.0008, 0.001, the smallest 0.0008, so
# new_high_sigma = 0.020 / 0.0008 = 25 > 5: new. The later non-detection's error 0.0004
# must not count (it would give 50). max S/N = 0.022 / 0.002 = 11.
NEW_FLUX = [0.002, 0.003, 0.001, 0.020, 0.0016, 0.022]
NEW_ERR = [0.001, 0.0008, 0.001, 0.002, 0.0004, 0.002]
# Source B: S/N 20 at every epoch: detected at its first epoch, so not new; max S/N 20.
STEADY_FLUX = [0.1] * 6
STEADY_ERR = [0.005] * 6
NEW_COLUMNS = (
    "max_snr",
    "first_detection_mjd",
    "first_detection_flux_jy",
    "pre_detection_min_err_jy",
    "new_high_sigma",
    "new_source",
)


def _rows(i: int, new_pk: int, steady_pk: int) -> list[dict[str, Any]]:
    return [
        {"source_pk": new_pk, "peak_flux_jy": NEW_FLUX[i], "peak_flux_err_jy": NEW_ERR[i]},
        {"source_pk": steady_pk, "peak_flux_jy": STEADY_FLUX[i], "peak_flux_err_jy": STEADY_ERR[i]},
    ]


async def _stored(engine: AsyncEngine, pk: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        row = (await conn.execute(select(sources).where(sources.c.id == pk))).mappings().one()
    return {name: row[name] for name in NEW_COLUMNS}


async def test_out_of_order_ingest_with_a_back_filled_first_detection(engine: AsyncEngine) -> None:
    new_pk, steady_pk = await _add_sources(engine, [(150.0, 40.0), (150.1, 40.0)])
    images = await _add_images(engine, MJDS)
    # Epoch 60005 (a detection) first, then three non-detections in one transaction, all
    # before it: the running minimum error is 0.0004 (MJD 60004). Then 60003, a detection
    # between stored epochs: the one case that reads the stored minimum before it (0.001,
    # not 0.0004), and 60001 in the same transaction.
    await ingest_image_measurements(engine, images[5], _rows(5, new_pk, steady_pk), detect=False)
    await ingest_images_measurements(
        engine, [(images[i], _rows(i, new_pk, steady_pk)) for i in (4, 0, 2)], detect=False
    )
    await ingest_images_measurements(
        engine, [(images[i], _rows(i, new_pk, steady_pk)) for i in (3, 1)], detect=False
    )
    new = await _stored(engine, new_pk)
    assert new == {
        "max_snr": pytest.approx(11.0),
        "first_detection_mjd": 60003.0,
        "first_detection_flux_jy": 0.020,
        "pre_detection_min_err_jy": 0.0008,
        "new_high_sigma": pytest.approx(25.0),
        "new_source": True,
    }
    steady = await _stored(engine, steady_pk)
    assert steady["max_snr"] == pytest.approx(20.0)
    assert (steady["first_detection_mjd"], steady["new_high_sigma"], steady["new_source"]) == (
        60000.0,
        None,
        False,
    )
    # The batch definition and a recompute from the stored measurements agree exactly.
    batch = source_row(sums_from_arrays(NEW_FLUX, NEW_ERR, MJDS))
    assert new == {name: batch[name] for name in NEW_COLUMNS}
    assert await recompute_source_metrics(engine, [new_pk, steady_pk]) == 2
    assert await _stored(engine, new_pk) == new
    assert await _stored(engine, steady_pk) == steady


async def test_a_source_without_measurements_is_not_new(engine: AsyncEngine) -> None:
    (pk,) = await _add_sources(engine, [(10.0, 40.0)])
    assert await _stored(engine, pk) == {name: None for name in NEW_COLUMNS} | {"new_source": False}
    assert await recompute_source_metrics(engine, [pk]) == 1
    assert (await _stored(engine, pk))["new_source"] is False
