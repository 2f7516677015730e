"""Reference sets for differential photometry do not depend on insertion or request order."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import sources
from dsa110.ops.ingest import MAX_REFERENCES, normalised_light_curves
from dsa110.science.healpix import healpix_index


async def _source(engine: AsyncEngine, name: str, ra: float, dec: float, mean: float, n: int) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(sources)
            .values(
                source_id=name, ra_deg=ra, dec_deg=dec, healpix=int(healpix_index(ra, dec)), n_epochs=n,
                mean_flux_jy=mean, sum_w=n * 1e4, sum_wf=0.0, sum_wf2=0.0, sum_f=0.0, sum_f2=0.0,
            )
            .returning(sources.c.id)
        )  # fmt: skip
        return int(result.scalar_one())


async def test_tied_references_are_chosen_by_name_and_do_not_depend_on_the_request(
    engine: AsyncEngine,
) -> None:
    # 35 references of exactly the same SNR (mean 1 Jy, error 0.01 Jy: SNR 100), inserted in
    # reverse name order: the SQL order ties, so only the tiebreak by name decides the 30.
    names = [f"REF {i:02d}" for i in range(MAX_REFERENCES + 5)]
    by_name = {}
    for i, name in reversed(list(enumerate(names))):
        by_name[await _source(engine, name, 150.0 + 0.01 * i, 40.0, 1.0, 20)] = name
    near = await _source(engine, "TARGET A", 150.1, 40.05, 0.01, 0)
    other = await _source(engine, "TARGET B", 150.3, 40.2, 0.01, 0)
    alone = (await normalised_light_curves(engine, [near]))[near]
    together = await normalised_light_curves(engine, [other, near])
    assert [by_name[pk] for pk in alone.reference_pks] == names[:MAX_REFERENCES]
    # The same cell, asked about with another source: the same set (the cell's, not the request's).
    assert together[near].reference_pks == alone.reference_pks
