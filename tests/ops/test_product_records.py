"""A job's output registered as a data product: one product per staged file."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import data_products
from dsa110.db.writes import write_transaction
from dsa110.ops.stages import records


async def _register(engine: AsyncEngine, data_id: str, path: str, kind: str = "mosaic") -> int:
    async with write_transaction(engine) as conn:
        return await records.product(conn, data_id, kind, path, {"n_images": 3})


async def test_a_staged_file_registered_again_under_another_id_is_the_same_product(
    engine: AsyncEngine,
) -> None:
    # The demo (and the legacy importer) name a mosaic's product the legacy way; the mosaic
    # stage, run again over the same file, names it by the mosaic: one product, refreshed.
    legacy = await _register(engine, "mosaic_2026-12-05T23:00:00_1796512598", "/d/mosaics/m.fits")
    again = await _register(engine, "mosaic_2026-12-05_23-00", "/d/mosaics/m.fits")
    assert again == legacy
    other_kind = await _register(engine, "m.fits-image", "/d/mosaics/m.fits", kind="image")
    other_file = await _register(engine, "mosaic_2026-12-05_22-00", "/d/mosaics/n.fits")
    assert len({legacy, other_kind, other_file}) == 3
    async with engine.connect() as conn:
        rows = (await conn.execute(select(data_products.c.data_id))).scalars().all()
    assert sorted(rows) == [
        "m.fits-image",
        "mosaic_2026-12-05T23:00:00_1796512598",
        "mosaic_2026-12-05_22-00",
    ]


async def test_a_published_products_file_staged_again_is_a_new_product(engine: AsyncEngine) -> None:
    first = await _register(engine, "mosaic_a", "/d/mosaics/p.fits")
    async with write_transaction(engine) as conn:
        await conn.execute(
            update(data_products).where(data_products.c.id == first).values(status="published")
        )
    assert await _register(engine, "mosaic_b", "/d/mosaics/p.fits") != first
