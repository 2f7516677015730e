"""The pipeline as the dashboard's pipeline pages see it: stages, their order, their record.

A *stage* is a job kind of the pipeline (``dsa110.db.enums.JobType`` less the diagnostic
kinds), and an *execution* is a job. ``STAGE_EDGES`` is the order data flows through the
stages (legacy-pipeline-facts §2.3: the legacy static DAG ran conversion -> calibration ->
imaging -> ... -> photometry; here the stages are our job kinds): UVH5 is converted to a
Measurement Set, calibration tables are solved on it and applied, the calibrated MS is
imaged, sources are measured on the image (forced photometry) and the light curves searched
for ESEs; images are combined into mosaics, and images and mosaics are published. The
``workflow`` kind runs convert -> calibrate -> image in one job.

Stage metrics are aggregates over the ``jobs`` table by kind: counts by state, success
rate (done / (done + failed)), run time (``finished_at - started_at``) mean, min and max over
every finished job (computed by the database), and the median over the newest
``MEDIAN_SAMPLE`` finished jobs of the kind (a bounded read).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.enums import JobState, JobType
from dsa110.db.functions import seconds_between
from dsa110.db.tables import jobs

DIAGNOSTIC: Final = frozenset({JobType.NOOP, JobType.SLEEP, JobType.FAIL})
MAINTENANCE: Final = frozenset({JobType.DB_MAINTAIN})  # upkeep of the database, not a data stage
STAGES: Final[tuple[JobType, ...]] = tuple(k for k in JobType if k not in DIAGNOSTIC | MAINTENANCE)
STAGE_LABELS: Final[dict[JobType, str]] = {
    JobType.CONVERT: "Convert UVH5 to MS",
    JobType.CALIBRATE: "Solve calibration",
    JobType.APPLY: "Apply calibration",
    JobType.IMAGE: "Image",
    JobType.PHOTOMETRY: "Forced photometry",
    JobType.ESE_DETECT: "ESE detection",
    JobType.MOSAIC: "Mosaic",
    JobType.PUBLISH: "Publish products",
    JobType.WORKFLOW: "Workflow (convert, calibrate, image)",
}
STAGE_EDGES: Final[tuple[tuple[JobType, JobType, str], ...]] = (
    (JobType.CONVERT, JobType.CALIBRATE, "data"),
    (JobType.CALIBRATE, JobType.APPLY, "data"),
    (JobType.APPLY, JobType.IMAGE, "data"),
    (JobType.IMAGE, JobType.PHOTOMETRY, "data"),
    (JobType.PHOTOMETRY, JobType.ESE_DETECT, "data"),
    (JobType.IMAGE, JobType.MOSAIC, "data"),
    (JobType.IMAGE, JobType.PUBLISH, "data"),
    (JobType.MOSAIC, JobType.PUBLISH, "data"),
    (JobType.WORKFLOW, JobType.CONVERT, "contains"),
    (JobType.WORKFLOW, JobType.CALIBRATE, "contains"),
    (JobType.WORKFLOW, JobType.IMAGE, "contains"),
)
MEDIAN_SAMPLE: Final = 1000


@dataclass
class StageMetrics:
    stage: str
    by_state: dict[str, int] = field(default_factory=lambda: {str(s): 0 for s in JobState})
    finished: int = 0
    mean_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    median_s: float | None = None
    last_run_at: datetime | None = None

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def success_rate(self) -> float | None:
        """done / (done + failed); None before any job of the kind ended either way."""
        done, failed = self.by_state[str(JobState.DONE)], self.by_state[str(JobState.FAILED)]
        return done / (done + failed) if done + failed else None


async def stage_metrics(
    engine: AsyncEngine, *, since: datetime | None = None, stages: tuple[str, ...] | None = None
) -> list[StageMetrics]:
    """One entry per pipeline stage (and any other kind with jobs), in pipeline order."""
    j = jobs.c
    took = seconds_between(j.started_at, j.finished_at)
    window = [j.created_at >= since] if since is not None else []
    out: dict[str, StageMetrics] = {str(s): StageMetrics(str(s)) for s in STAGES}
    async with engine.connect() as conn:
        counted = select(j.type, j.state, func.count(), func.max(j.created_at)).where(*window)
        for kind, state, n, last in (await conn.execute(counted.group_by(j.type, j.state))).all():
            entry = out.setdefault(str(kind), StageMetrics(str(kind)))
            entry.by_state[str(state)] = entry.by_state.get(str(state), 0) + int(n)
            if last is not None and (entry.last_run_at is None or last > entry.last_run_at):
                entry.last_run_at = last
        ended = [j.started_at.is_not(None), j.finished_at.is_not(None), *window]
        timed = select(j.type, func.count(), func.avg(took), func.min(took), func.max(took)).where(*ended)
        for kind, n, mean, low, high in (await conn.execute(timed.group_by(j.type))).all():
            entry = out.setdefault(str(kind), StageMetrics(str(kind)))
            entry.finished = int(n)
            entry.mean_s, entry.min_s, entry.max_s = _f(mean), _f(low), _f(high)
        for entry in out.values():
            if entry.finished:
                recent = (
                    select(took)
                    .where(j.type == entry.stage, *ended)
                    .order_by(j.finished_at.desc())
                    .limit(MEDIAN_SAMPLE)
                )
                values = [float(v) for v in (await conn.execute(recent)).scalars() if v is not None]
                entry.median_s = statistics.median(values) if values else None
    chosen = [m for m in out.values() if stages is None or m.stage in stages]
    return chosen


def _f(value: Any) -> float | None:
    return None if value is None else float(value)
