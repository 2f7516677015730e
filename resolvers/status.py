"""Reads behind the live surfaces: queue counts, recent groups, calibration sets, ESE
candidates, new log lines, watched measurements.

Plain reads (a handful of statements each), shared by the GraphQL ``pipelineStatus``
query and the subscriptions and by the legacy ``/api/ws/status`` channel, so every
surface reports the same numbers. Shapes follow the legacy models (legacy-pipeline-facts §2.2:
``PipelineStatus{queue, recent_groups, calibration_sets, matched_recent}``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, bindparam, desc, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.engine import read_connection
from dsa110.db.enums import GroupState
from dsa110.db.tables import (
    cal_tables,
    ese_candidates,
    groups,
    job_logs,
    measurements,
    sources,
    subband_files,
)
from loaders.pages import entity_columns

_GROUP_COLUMNS: Final = tuple(c.name for c in groups.c)
RECENT_GROUPS: Final = 20
"""Groups in ``recent_groups`` (the legacy default)."""
LEGACY_ESE_MIN_SIGMA: Final = 5.0
LEGACY_ESE_LIMIT: Final = 50


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """How many groups are in each queue state (``total`` counts all of them)."""

    total: int = 0
    collecting: int = 0
    pending: int = 0
    in_progress: int = 0
    completed: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class RecentGroup:
    pk: int
    group_id: str
    state: str
    received_at: datetime
    updated_at: datetime
    subbands_present: int
    expected_subbands: int
    has_calibrator: bool | None
    retry_count: int
    row: dict[str, Any]
    """The group's whole row (``id`` as ``pk``), as the graph's group loader reads it."""
    calibrators: Any = None


@dataclass(frozen=True, slots=True)
class CalibrationSet:
    """Tables registered under one set name; ``active`` counts those with status ``active``."""

    set_name: str
    tables: tuple[str, ...]
    active: int
    total: int
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class PipelineStatusData:
    queue: QueueCounts
    recent_groups: tuple[RecentGroup, ...] = field(default=())
    calibration_sets: tuple[CalibrationSet, ...] = field(default=())
    matched_recent: int = 0
    """Recent groups with a calibrator in the beam."""


async def queue_counts(engine: AsyncEngine) -> QueueCounts:
    async with read_connection(engine) as conn:
        return await _queue_counts(conn)


# Built once: a statement object reused is neither rebuilt nor re-keyed for the compiled cache.
_QUEUE_COUNTS = select(groups.c.state, func.count()).group_by(groups.c.state)
_RECENT_GROUPS = (
    select(
        groups,
        select(func.count())
        .select_from(subband_files)
        .where(subband_files.c.group_pk == groups.c.id)
        .scalar_subquery()
        .label("subbands_present"),
    )
    .order_by(desc(groups.c.group_id))
    .limit(bindparam("limit"))
)
_CALIBRATION_TABLES = select(
    cal_tables.c.set_name, cal_tables.c.path, cal_tables.c.status, cal_tables.c.created_at
).order_by(cal_tables.c.set_name, cal_tables.c.order_index, cal_tables.c.id)


async def _queue_counts(conn: AsyncConnection) -> QueueCounts:
    rows = (await conn.execute(_QUEUE_COUNTS)).all()
    counts = {str(state): int(n) for state, n in rows}
    known = {state.value: counts.get(state.value, 0) for state in GroupState}
    return QueueCounts(total=sum(counts.values()), **known)


async def recent_groups(engine: AsyncEngine, limit: int = RECENT_GROUPS) -> list[RecentGroup]:
    """The newest ``limit`` groups (by group id, i.e. observation time) with subband counts."""
    async with read_connection(engine) as conn:
        return await _recent_groups(conn, limit)


async def _recent_groups(conn: AsyncConnection, limit: int) -> list[RecentGroup]:
    rows = (await conn.execute(_RECENT_GROUPS, {"limit": limit})).mappings().all()
    return [
        RecentGroup(
            pk=r["id"],
            group_id=r["group_id"],
            state=r["state"],
            received_at=r["received_at"],
            updated_at=r["updated_at"],
            subbands_present=int(r["subbands_present"] or 0),
            expected_subbands=r["expected_subbands"],
            has_calibrator=r["has_calibrator"],
            retry_count=r["retry_count"] or 0,
            calibrators=r["calibrators"],
            row={("pk" if k == "id" else k): r[k] for k in _GROUP_COLUMNS},
        )
        for r in rows
    ]


async def calibration_sets(engine: AsyncEngine) -> list[CalibrationSet]:
    """Every calibration set, newest first, with its table paths in application order."""
    async with read_connection(engine) as conn:
        return await _calibration_sets(conn)


async def _calibration_sets(conn: AsyncConnection) -> list[CalibrationSet]:
    rows = (await conn.execute(_CALIBRATION_TABLES)).all()
    sets: dict[str, list[Any]] = {}
    for row in rows:
        sets.setdefault(row.set_name, []).append(row)
    built = [
        CalibrationSet(
            set_name=name,
            tables=tuple(r.path for r in members),
            active=sum(1 for r in members if r.status == "active"),
            total=len(members),
            created_at=max((r.created_at for r in members if r.created_at is not None), default=None),
        )
        for name, members in sets.items()
    ]
    built.sort(key=lambda s: (s.created_at is not None, s.created_at, s.set_name), reverse=True)
    return built


async def pipeline_status(engine: AsyncEngine, recent: int = RECENT_GROUPS) -> PipelineStatusData:
    # One connection for the three reads: a checkout (and its reset) costs about what a
    # small statement does.
    async with read_connection(engine) as conn:
        queue = await _queue_counts(conn)
        latest = await _recent_groups(conn, recent)
        sets = await _calibration_sets(conn)
    return PipelineStatusData(
        queue=queue,
        recent_groups=tuple(latest),
        calibration_sets=tuple(sets),
        matched_recent=sum(1 for g in latest if g.has_calibrator),
    )


async def ese_candidate_rows(
    engine: AsyncEngine,
    *,
    min_sigma: float = LEGACY_ESE_MIN_SIGMA,
    limit: int = LEGACY_ESE_LIMIT,
    candidate_pks: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Candidates at or above ``min_sigma`` (most significant first) joined with their source.

    Each row has the candidate's columns plus ``source_id``, ``ra_deg``, ``dec_deg`` and
    ``current_flux_jy`` (the source's most recent measured peak flux, Jy/beam).
    """
    latest_flux = (
        select(measurements.c.peak_flux_jy)
        .where(measurements.c.source_pk == ese_candidates.c.source_pk)
        .order_by(desc(measurements.c.mjd))
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            ese_candidates,
            sources.c.source_id,
            sources.c.ra_deg,
            sources.c.dec_deg,
            latest_flux.label("current_flux_jy"),
        )
        .join(sources, sources.c.id == ese_candidates.c.source_pk)
        .where(ese_candidates.c.significance >= min_sigma)
        .order_by(desc(ese_candidates.c.significance), ese_candidates.c.id)
        .limit(limit)
    )
    if candidate_pks is not None:
        stmt = stmt.where(ese_candidates.c.id.in_(candidate_pks))
    async with read_connection(engine) as conn:
        return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


async def log_lines_after(
    engine: AsyncEngine, job_pk: int, after_id: int | None, *, limit: int
) -> list[dict[str, Any]]:
    """Log lines of a job with id > ``after_id`` (all when None), oldest first, at most ``limit``.

    With ``after_id`` None the *newest* ``limit`` lines are returned (a long log's tail).
    """
    cols = entity_columns(job_logs)
    if after_id is None:
        stmt = select(*cols).where(job_logs.c.job_pk == job_pk).order_by(desc(job_logs.c.id)).limit(limit)
    else:
        stmt = (
            select(*cols)
            .where(job_logs.c.job_pk == job_pk, job_logs.c.id > after_id)
            .order_by(job_logs.c.id)
            .limit(limit)
        )
    async with read_connection(engine) as conn:
        rows = [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
    return sorted(rows, key=lambda r: int(r["pk"]))


async def watched_measurements(
    engine: AsyncEngine,
    image_pk: int,
    source_ids: list[str] | None,
    cone: ColumnElement[bool] | None,
    *,
    limit: int,
) -> list[dict[str, Any]]:
    """Measurements on ``image_pk`` of sources named in ``source_ids`` or inside ``cone``.

    ``cone`` is a condition on the ``sources`` table (``ConeFilter.condition(sources)``).
    """
    wanted: list[ColumnElement[bool]] = []
    if source_ids:
        wanted.append(sources.c.source_id.in_(source_ids))
    if cone is not None:
        wanted.append(cone)
    if not wanted:
        return []
    stmt = (
        select(*entity_columns(measurements))
        .join(sources, sources.c.id == measurements.c.source_pk)
        .where(measurements.c.image_pk == image_pk, or_(*wanted))
        .order_by(measurements.c.source_pk)
        .limit(limit)
    )
    async with read_connection(engine) as conn:
        return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]
