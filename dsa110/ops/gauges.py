"""The pipeline's state as numbers, read from the database when ``/metrics`` is scraped.

Jobs run in worker processes (not necessarily a server), so job metrics are read from
the ``jobs`` table rather than counted in memory: queue depth by type and state, and the
run time (``finished_at - started_at``) of every finished job as cumulative histogram
buckets computed by the database. Whatever adds job kinds or states, these follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.functions import seconds_between
from dsa110.db.tables import groups, images, jobs

JOB_BUCKETS: tuple[float, ...] = (
    1.0,
    10.0,
    30.0,
    60.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    4 * 3600.0,
    24 * 3600.0,
)


@dataclass(frozen=True)
class JobDurations:
    job_type: str
    count: int
    total_s: float
    cumulative: tuple[int, ...]
    """Jobs that took at most each of ``JOB_BUCKETS`` seconds."""


@dataclass
class PipelineGauges:
    jobs: dict[tuple[str, str], int] = field(default_factory=dict)
    """(type, state) -> how many jobs."""
    durations: list[JobDurations] = field(default_factory=list)
    groups: dict[str, int] = field(default_factory=dict)
    measurement_rows: int = 0


async def read_gauges(engine: AsyncEngine, buckets: Sequence[float] = JOB_BUCKETS) -> PipelineGauges:
    out = PipelineGauges()
    j = jobs.c
    took = seconds_between(j.started_at, j.finished_at)
    async with engine.connect() as conn:
        for job_type, state, n in (
            await conn.execute(select(j.type, j.state, func.count()).group_by(j.type, j.state))
        ).all():
            out.jobs[(str(job_type), str(state))] = int(n)
        columns = [func.sum(case((took <= le, 1), else_=0)) for le in buckets]
        finished = (
            select(j.type, func.count(), func.coalesce(func.sum(took), 0.0), *columns)
            .where(j.started_at.is_not(None), j.finished_at.is_not(None))
            .group_by(j.type)
        )
        for row in (await conn.execute(finished)).all():
            out.durations.append(
                JobDurations(str(row[0]), int(row[1]), float(row[2]), tuple(int(v or 0) for v in row[3:]))
            )
        for state, n in (
            await conn.execute(select(groups.c.state, func.count()).group_by(groups.c.state))
        ).all():
            out.groups[str(state)] = int(n)
        out.measurement_rows = int(
            (await conn.execute(select(func.coalesce(func.sum(images.c.n_measurements), 0)))).scalar() or 0
        )
    return out
