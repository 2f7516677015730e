"""Per-image aggregates, batched: one GROUP BY per request level."""

from __future__ import annotations

from sqlalchemy import func, select

from dsa110.db.tables import measurements
from loaders.registry import fetch_rows
from resolvers.context import GraphContext

RmsRange = tuple[float, float, int]


async def local_rms_range(ctx: GraphContext, image_pk: int) -> RmsRange | None:
    """(min, max, count) of the local RMS of the image's measurements; None if none has one."""
    engine = ctx.engine  # not ctx: the context holds the loader holding ``batch`` (a cycle)

    async def batch(image_pks: list[int]) -> list[RmsRange | None]:
        col = measurements.c.local_rms_jy
        stmt = (
            select(
                measurements.c.image_pk,
                func.min(col).label("lo"),
                func.max(col).label("hi"),
                func.count(col).label("n"),
            )
            .where(measurements.c.image_pk.in_(image_pks), col.is_not(None))
            .group_by(measurements.c.image_pk)
        )
        rows = await fetch_rows(engine, stmt)
        found = {row["image_pk"]: (float(row["lo"]), float(row["hi"]), int(row["n"])) for row in rows}
        return [found.get(pk) for pk in image_pks]

    result: RmsRange | None = await ctx.loaders.custom("image.local_rms_range", batch).load(image_pk)
    return result
