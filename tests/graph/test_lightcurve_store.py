"""On the demo, light curves read through the stored normalisation equal the computation."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import sources
from dsa110.ops.ingest.lightcurves import computed_light_curves, normalised_light_curves
from tests.ops.test_norm_store import assert_same


async def test_every_demo_light_curve_equals_the_computation(demo_engine: AsyncEngine) -> None:
    async with demo_engine.connect() as conn:
        pks = list((await conn.execute(select(sources.c.id).order_by(sources.c.id))).scalars())
    computed = await computed_light_curves(demo_engine, pks)
    assert_same(await normalised_light_curves(demo_engine, pks), computed)  # computed and stored
    assert_same(await normalised_light_curves(demo_engine, pks), computed)  # read from the store
