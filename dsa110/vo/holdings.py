"""Which external catalogs the database holds (for the cone-search services and their capabilities)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import catalog_sources


@dataclass(frozen=True)
class HeldCatalog:
    name: str
    n_entries: int
    ra_deg: float
    """A position inside the catalog's coverage (the mean of its entries), for test queries."""
    dec_deg: float


async def held_catalogs(engine: AsyncEngine) -> list[HeldCatalog]:
    c = catalog_sources.c
    statement = (
        select(c.catalog, func.count(), func.avg(c.ra_deg), func.avg(c.dec_deg))
        .group_by(c.catalog)
        .order_by(c.catalog)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return [HeldCatalog(str(name), int(n), float(ra), float(dec)) for name, n, ra, dec in rows]
