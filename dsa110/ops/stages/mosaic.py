"""``mosaic``: co-add the images of a time range into one FITS mosaic, registered.

The images whose mid time is in [start, end) and whose file is on disk (at most
``max_images``, oldest first) are co-added with primary-beam weighting
(``dsa110.ops.stages.coadd``, each weighted by P^2 / sigma^2 with sigma its recorded noise)
onto a SIN grid covering them all. The file ``<data>/mosaics/<name>.fits`` is written under
a ``.partial`` name first; then the ``mosaics`` row (keyed by name), its ``mosaic_images``
and a ``mosaic`` product derived from the images' products are recorded. The default name
is legacy's ``mosaic_<first group_id>_<unix time>`` (legacy-pipeline-facts §4.7 naming in
the demo's operations module).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.ops.stages.common import StageContext, StageError, staged_output


async def _images(engine: AsyncEngine, start: float, end: float, limit: int) -> list[dict[str, Any]]:
    from dsa110.db.tables import images

    async with engine.connect() as conn:
        rows = await conn.execute(
            select(images.c.id, images.c.path, images.c.noise_jy, images.c.mid_mjd, images.c.group_pk)
            .where(images.c.mid_mjd >= start, images.c.mid_mjd < end)
            .order_by(images.c.mid_mjd)
            .limit(limit)
        )
        return [dict(r) for r in rows.mappings().all()]


async def _record(
    engine: AsyncEngine,
    job_id: int | None,
    name: str,
    path: str,
    facts: dict[str, Any],
    members: list[dict[str, Any]],
) -> int:
    from dsa110.db.tables import data_products, mosaic_images, mosaics
    from dsa110.db.writes import write_transaction
    from dsa110.ops.stages import records

    async with write_transaction(engine) as conn:
        existing = (await conn.execute(select(mosaics.c.id).where(mosaics.c.name == name))).scalar()
        values = {"path": path, "status": "completed", "created_at": datetime.now(UTC), **facts}
        if existing is None:
            pk = int(
                (
                    await conn.execute(mosaics.insert().values(name=name, **values).returning(mosaics.c.id))
                ).scalar_one()
            )
        else:
            pk = int(existing)
            await conn.execute(update(mosaics).where(mosaics.c.id == pk).values(**values))
            await conn.execute(mosaic_images.delete().where(mosaic_images.c.mosaic_pk == pk))
        await conn.execute(mosaic_images.insert(), [{"mosaic_pk": pk, "image_pk": m["id"]} for m in members])
        product = await records.product(conn, name, "mosaic", path, {"n_images": len(members)}, mosaic_pk=pk)
        await records.job_product(conn, job_id, product, "output")
        parents = await conn.execute(
            select(data_products.c.id).where(data_products.c.image_pk.in_([m["id"] for m in members]))
        )
        for parent in parents.scalars():
            await records.link(conn, int(parent), product, "derived_from")
            await records.job_product(conn, job_id, int(parent), "input")
    return pk


def run(ctx: StageContext, params: dict[str, Any]) -> dict[str, Any]:
    from dsa110.ops.stages.coadd import coadd, read_tile, to_fits

    start, end = float(params["start_mjd"]), float(params["end_mjd"])
    rows = ctx.db(lambda e: _images(e, start, end, int(params["max_images"]))) or []
    members = [r for r in rows if Path(str(r["path"])).is_file()]
    if not members:
        raise StageError(f"no image files between MJD {start:.5f} and {end:.5f}")
    ctx.progress(0.1, f"co-adding {len(members)} of {len(rows)} images")
    tiles = [read_tile(str(m["path"]), m.get("noise_jy")) for m in members]
    mosaic = coadd(tiles, params.get("cell_arcsec"))
    stamp = int(datetime.now(UTC).timestamp())
    name = params.get("name") or f"mosaic_{Path(str(members[0]['path'])).name.split('.')[0]}_{stamp}"
    target = ctx.data_dir / "mosaics" / f"{name}.fits"
    with staged_output(target) as partial:
        to_fits(mosaic).writeto(partial)
    ctx.progress(0.8, f"wrote {target.name} ({mosaic.data.shape[1]}x{mosaic.data.shape[0]})")
    ny, nx = mosaic.data.shape
    centre = mosaic.wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
    facts = {
        "start_mjd": start,
        "end_mjd": end,
        "noise_jy": mosaic.noise_jy if math.isfinite(mosaic.noise_jy) else None,
        "center_ra_deg": float(centre[0]) % 360.0,
        "center_dec_deg": float(centre[1]),
        "n_images": len(members),
    }
    pk = ctx.db(lambda e: _record(e, ctx.job_id, name, str(target), facts, members))
    ctx.progress(1.0, "mosaic written")
    return {"name": name, "path": str(target), "mosaic_pk": pk, "shape": [ny, nx], **facts}
