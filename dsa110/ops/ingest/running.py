"""Running variability sums of sources: the bulk update, the prior-min read, and the batch rebuild."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.tables import measurements, sources
from dsa110.db.writes import write_transaction
from dsa110.ops.ingest.common import _chunks
from dsa110.science.variability import (
    RunningSums,
    source_row,
    sums_from_arrays,
)

_SOURCE_UPDATE = (
    update(sources)
    .where(sources.c.id == bindparam("b_id"))
    .values({name: bindparam(f"b_{name}") for name in source_row(RunningSums())})
)


async def _write_sources(conn: AsyncConnection, states: Mapping[int, RunningSums]) -> None:
    if not states:
        return
    params = []
    for pk, state in states.items():
        values = {f"b_{k}": v for k, v in source_row(state).items()}
        values["b_id"] = pk
        params.append(values)
    await conn.execute(_SOURCE_UPDATE, params)


async def _prior_min_errors(conn: AsyncConnection, wanted: Sequence[tuple[int, float]]) -> dict[int, float]:
    """min(peak_flux_err_jy) of each source's stored measurements before the given epoch.

    Only a detection back-filled before a source's first detection needs this
    (``dsa110.science.newsource``); rows of one image share an epoch, so this is usually
    one index range read per chunk of such sources, and none at all for time-ordered ingest.
    """
    by_epoch: dict[float, list[int]] = defaultdict(list)
    for pk, mjd in wanted:
        by_epoch[mjd].append(pk)
    out: dict[int, float] = {}
    for mjd, pks in by_epoch.items():
        for chunk in _chunks(sorted(pks)):
            result = await conn.execute(
                select(measurements.c.source_pk, func.min(measurements.c.peak_flux_err_jy))
                .where(measurements.c.source_pk.in_(chunk), measurements.c.mjd < mjd)
                .group_by(measurements.c.source_pk)
            )
            out.update({int(pk): float(err) for pk, err in result.all()})
    return out


async def recompute_source_metrics(engine: AsyncEngine, source_pks: Sequence[int] | None = None) -> int:
    """Rebuild running sums and metrics from the stored measurements (the batch path)."""
    async with write_transaction(engine) as conn:
        if source_pks is None:
            source_pks = (await conn.execute(select(sources.c.id).order_by(sources.c.id))).scalars().all()
        count = 0
        for chunk in _chunks(sorted(source_pks)):
            await conn.execute(select(sources.c.id).where(sources.c.id.in_(chunk)).with_for_update())
            series: dict[int, list[tuple[float, float, float]]] = {pk: [] for pk in chunk}
            result = await conn.execute(
                select(
                    measurements.c.source_pk,
                    measurements.c.peak_flux_jy,
                    measurements.c.peak_flux_err_jy,
                    measurements.c.mjd,
                ).where(measurements.c.source_pk.in_(chunk))
            )
            for spk, flux, err, mjd in result.all():
                series[spk].append((flux, err, mjd))
            states = {}
            for pk, points in series.items():
                arr = np.asarray(points, dtype=np.float64).reshape(-1, 3)
                states[pk] = sums_from_arrays(arr[:, 0], arr[:, 1], arr[:, 2])
            await _write_sources(conn, states)
            count += len(states)
    return count
