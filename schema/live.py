"""Live graph: pipeline status and system metrics (Query), and the subscriptions.

Every subscription here is driven by bus events (``resolvers.live.event_batches``), never
by polling, and is phase-aware, so the transports share one producer among identical
subscriptions (each is declared with ``schema.live_fields.shared_subscription``). Each
tick runs with fresh DataLoaders.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from datetime import datetime
from typing import Any, Final

import strawberry

from dsa110.auth.identity import Role
from dsa110.db.enums import JobState as DomainJobState
from dsa110.db.tables import sources
from dsa110.events import (
    ESE_CANDIDATE,
    GROUP_STATE,
    JOB_LOG,
    JOB_STATE,
    MEASUREMENTS_ADDED,
    METRICS_SAMPLE,
    Event,
)
from dsa110.ops.jobs import JOB_TRANSITIONS
from dsa110.ops.metrics import (
    DEFAULT_HISTORY_LIMIT,
    SystemMetricsSample,
    fresh_sample,
    latest_metrics,
    metrics_history,
    metrics_hosts,
)
from dsa110.ops.streaming import conversion
from loaders.entities import GROUP, IMAGE, JOB, MEASUREMENT
from resolvers import links, lists, status
from resolvers.errors import BadUserInput, NotFound
from resolvers.live import LivePhase, event_batches, live_phase, mark_complete
from schema.base import GraphInfo, Loaded, row_factory
from schema.ese import EseCandidate
from schema.inputs import ConeFilter, JobState
from schema.job_types import Job
from schema.live_fields import shared_subscription
from schema.permissions import requires
from schema.types import Group, Image, Measurement

STATUS_COALESCE_S: Final = 0.25
"""A burst of group changes recomputes the status at most once per this window."""
MAX_HOST_CHARS: Final = 255
MAX_SAMPLE_AGE_S: Final = 86_400.0
MAX_HISTORY: Final = 8640
MAX_WATCHED_IDS: Final = 1000
MAX_LOG_SNAPSHOT_LINES: Final = 10_000
MAX_LOG_BATCH_LINES: Final = 5_000
MAX_WATCH_RESULTS: Final = 5_000


# -- types ------------------------------------------------------------------------------


@strawberry.type(description="How many observation groups are in each queue state.")
class QueueCounts:
    total: int
    collecting: int
    pending: int
    in_progress: int
    completed: int
    failed: int


@strawberry.type(description="Calibration tables registered under one set name.")
class CalibrationSet:
    set_name: str
    tables: list[str] = strawberry.field(description="Table paths in application order.")
    active: int = strawberry.field(description="Tables with status `active`.")
    total: int
    created_at: datetime | None


@strawberry.type(description="The pipeline at a glance: the queue, recent groups and calibration sets.")
class PipelineStatus:
    data: strawberry.Private[status.PipelineStatusData]

    @strawberry.field
    def queue(self) -> QueueCounts:
        q = self.data.queue
        return QueueCounts(
            total=q.total,
            collecting=q.collecting,
            pending=q.pending,
            in_progress=q.in_progress,
            completed=q.completed,
            failed=q.failed,
        )

    @strawberry.field(description="The newest 20 groups, newest first.")
    def recent_groups(self, info: GraphInfo) -> list[Group]:
        # The status read has the groups' rows and subband counts already: they become the
        # groups (``Group.presentSubbands`` reads the count it carries), so no statement runs
        # again for them.
        wrap = info.context.loaders.wrap(GROUP)
        return [wrap({**g.row, "subbands_present": g.subbands_present}) for g in self.data.recent_groups]

    @strawberry.field
    def calibration_sets(self) -> list[CalibrationSet]:
        return [
            CalibrationSet(
                set_name=s.set_name,
                tables=list(s.tables),
                active=s.active,
                total=s.total,
                created_at=s.created_at,
            )
            for s in self.data.calibration_sets
        ]

    @strawberry.field(description="Recent groups with a calibrator in the beam.")
    def matched_recent(self) -> int:
        return self.data.matched_recent


@strawberry.type(description="Usage of one mounted filesystem.")
class DiskUsage:
    mount: str
    total_bytes: float = strawberry.field(description="Bytes (a Float: sizes exceed 32-bit Int).")
    used_bytes: float
    free_bytes: float
    percent: float


@strawberry.type(description="One sample of the server host (psutil).")
class SystemMetrics:
    sampled_at: datetime
    cpu_percent: float = strawberry.field(description="System-wide CPU busy %, over the sampling interval.")
    memory_total_bytes: float
    memory_used_bytes: float
    memory_percent: float
    disks: list[DiskUsage]
    load_1: float | None = strawberry.field(description="1-minute load average (null where the OS has none).")
    load_5: float | None
    load_15: float | None
    host: str = strawberry.field(
        description="The machine sampled (empty for samples stored before hosts were)."
    )


def metrics_type(sample: SystemMetricsSample) -> SystemMetrics:
    return SystemMetrics(
        sampled_at=sample.sampled_at,
        cpu_percent=sample.cpu_percent,
        memory_total_bytes=float(sample.memory_total_bytes),
        memory_used_bytes=float(sample.memory_used_bytes),
        memory_percent=sample.memory_percent,
        disks=[
            DiskUsage(
                mount=d.mount, total_bytes=d.total, used_bytes=d.used, free_bytes=d.free, percent=d.percent
            )
            for d in sample.disks
        ],
        load_1=sample.load_1,
        load_5=sample.load_5,
        load_15=sample.load_15,
        host=sample.host,
    )


@strawberry.type(description="An ESE candidate appeared or changed.")
class EseCandidateEvent:
    kind: str = strawberry.field(
        description="What happened: `new` (detected, or imported), `confirmed` or `rejected` (the "
        "detector moved it to that phase), `updated` (re-imported) or `status_changed` (reviewed)."
    )
    candidate_id: int
    source_id: str = strawberry.field(description="Catalog name of the source.")
    ra_deg: float
    dec_deg: float
    status: str
    score: float
    significance: float = strawberry.field(description="Dip depth over its uncertainty (sigma).")
    start_mjd: float
    end_mjd: float
    baseline_flux_jy: float
    min_flux_jy: float
    current_flux_jy: float | None = strawberry.field(
        description="The source's latest measured peak flux, Jy."
    )
    flagged_at: datetime
    updated_at: datetime
    candidate: EseCandidate = strawberry.field(
        description="The candidate as it is now, all of it: its `phase`, `kind` (what the detector "
        "saw, not what happened: that is the event's `kind`), `falseAlarmProbability`, "
        "`redNoiseRms`, source and review history."
    )


_candidate_node = row_factory(EseCandidate)


def _candidate_of(row: Mapping[str, Any]) -> EseCandidate:
    """The graph's candidate from a row of ``status.ese_candidate_rows`` (its ``id`` as the
    node's ``pk``, as the loaders name it): the event's row, no second read."""
    return _candidate_node({**{k: v for k, v in row.items() if k != "id"}, "pk": int(row["id"])})


@strawberry.type(description="A line of a job's log, with its id (increasing) to skip repeats.")
class JobLogEntry:
    line_id: int
    logged_at: datetime
    line: str


@strawberry.type(description="Lines added to a job's log: the log so far first, then each new batch.")
class JobLogBatch:
    job_id: int
    lines: list[JobLogEntry]
    state: JobState | None = strawberry.field(description="The job's state when the batch was read.")
    finished: bool = strawberry.field(description="The job is in a final state; no more lines will follow.")


@strawberry.type(description="New measurements of watched sources on one image.")
class MeasurementsAdded:
    image_pk: strawberry.Private[int]
    measurements: list[Measurement]

    @strawberry.field
    def image(self, info: GraphInfo) -> Loaded[Image]:
        return links.one(info.context, IMAGE, self.image_pk)


@strawberry.input(description="A watchlist: sources by name, or a cone (either matches).")
class WatchFilter:
    source_ids: list[str] | None = strawberry.field(default=None, description="Catalog names (at most 1000).")
    cone: ConeFilter | None = None


# -- Query part -------------------------------------------------------------------------


@strawberry.type
class LiveQuery:
    @strawberry.field(description="Queue counts, recent groups and calibration sets (also a subscription).")
    async def pipeline_status(self, info: GraphInfo) -> PipelineStatus:
        return PipelineStatus(data=await status.pipeline_status(info.context.engine))

    @strawberry.field(
        description="The newest system-metrics sample, of `host` or of any host (null before the first "
        "one). With `maxAgeSeconds`, a stored sample older than that is replaced by one taken now on "
        "this server's host (not stored: a read does not write)."
    )
    async def system_metrics(
        self, info: GraphInfo, host: str | None = None, max_age_seconds: float | None = None
    ) -> SystemMetrics | None:
        sample = await latest_metrics(info.context.engine, _host(host))
        if max_age_seconds is not None and host is None:
            sample = await fresh_sample(sample, _max_age(max_age_seconds))
        return None if sample is None else metrics_type(sample)

    @strawberry.field(
        description="The newest `limit` samples (1-8640), of `host` or of any host, oldest first."
    )
    async def system_metrics_history(
        self, info: GraphInfo, limit: int = DEFAULT_HISTORY_LIMIT, host: str | None = None
    ) -> list[SystemMetrics]:
        if not 1 <= limit <= MAX_HISTORY:
            raise BadUserInput(f"limit must be between 1 and {MAX_HISTORY}", field="limit")
        return [metrics_type(s) for s in await metrics_history(info.context.engine, limit, _host(host))]

    @strawberry.field(description="The hosts that have stored system-metrics samples.")
    async def system_metrics_hosts(self, info: GraphInfo) -> list[str]:
        return await metrics_hosts(info.context.engine)


def _max_age(seconds: float) -> float:
    if not 0 < seconds <= MAX_SAMPLE_AGE_S:
        raise BadUserInput(
            f"maxAgeSeconds must be above 0 and at most {MAX_SAMPLE_AGE_S:g}", field="maxAgeSeconds"
        )
    return seconds


def _host(host: str | None) -> str | None:
    if host is not None and len(host) > MAX_HOST_CHARS:
        raise BadUserInput(f"host is at most {MAX_HOST_CHARS} characters", field="host")
    return host


# -- Mutation part ----------------------------------------------------------------------


@strawberry.type
class LiveMutation:
    @strawberry.mutation(
        description="Send a completed or failed group back to the queue (legacy `POST /reprocess/{id}`; "
        "operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def reprocess_group(self, info: GraphInfo, group_id: str) -> Group:
        """The group goes back to pending with its convert job queued, the newest of its ``jobs``
        (``dsa110.ops.streaming.conversion.reprocess``: a group already pending with its job, or
        with a convert job open, is a CONFLICT naming the job)."""
        ctx = info.context
        bus = ctx.bus
        row, _job = await conversion.reprocess(
            ctx.engine,
            ctx.settings,
            group_id,
            by=ctx.identity.name[:255],
            publish=bus.publish if bus is not None else None,
        )
        return await lists.by_natural_key(ctx, GROUP, row["id"], "id")


# -- Subscription part ------------------------------------------------------------------


def _int(value: object) -> int | None:
    """An id read from an event payload (events cross processes: checked, not trusted)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _job_id(event: Event) -> int | None:
    """The job of a ``job.state`` or ``job.log`` event (both payloads carry ``job_id``)."""
    if event.channel == JOB_LOG:
        return _int(JOB_LOG.payload(event).get("job_id"))
    return _int(JOB_STATE.payload(event).get("job_id"))


def _entries(rows: list[dict[str, Any]]) -> list[JobLogEntry]:
    return [JobLogEntry(line_id=int(r["pk"]), logged_at=r["logged_at"], line=r["line"]) for r in rows]


@strawberry.type
class LiveSubscription:
    @shared_subscription(
        description="The pipeline status now, then again whenever a group changes (coalesced)."
    )
    async def pipeline_status(self, info: GraphInfo) -> AsyncGenerator[PipelineStatus, None]:
        ctx = info.context
        async for _ in event_batches(ctx, (GROUP_STATE,), coalesce_s=STATUS_COALESCE_S):
            yield PipelineStatus(data=await status.pipeline_status(ctx.engine))

    @shared_subscription(
        description="The latest system-metrics sample, then each new one (of `host`, or of any host)."
    )
    async def system_metrics(
        self, info: GraphInfo, host: str | None = None
    ) -> AsyncGenerator[SystemMetrics, None]:
        ctx = info.context
        wanted = _host(host)

        def of_host(event: Event) -> bool:
            return wanted is None or METRICS_SAMPLE.payload(event).get("host") == wanted

        async for _ in event_batches(ctx, (METRICS_SAMPLE,), accept=of_host):
            sample = await latest_metrics(ctx.engine, wanted)
            if sample is not None:
                yield metrics_type(sample)

    @shared_subscription(description="Each ESE candidate that appears or changes, at or above `minSigma`.")
    async def ese_candidates(
        self, info: GraphInfo, min_sigma: float = status.LEGACY_ESE_MIN_SIGMA
    ) -> AsyncGenerator[EseCandidateEvent, None]:
        if not -1e6 < min_sigma < 1e6:  # also rejects NaN
            raise BadUserInput("minSigma must be a finite number", field="minSigma")
        ctx = info.context
        async for batch in event_batches(ctx, (ESE_CANDIDATE,), snapshot=False):
            kinds = {
                pk: str(payload.get("event", "updated"))
                for e in batch
                if (pk := _int((payload := ESE_CANDIDATE.payload(e)).get("candidate_pk")))
            }
            if not kinds:
                continue
            rows = await status.ese_candidate_rows(
                ctx.engine, min_sigma=min_sigma, limit=len(kinds), candidate_pks=list(kinds)
            )
            for row in sorted(rows, key=lambda r: int(r["id"])):
                yield EseCandidateEvent(
                    kind=kinds[int(row["id"])],
                    candidate_id=int(row["id"]),
                    source_id=row["source_id"],
                    ra_deg=row["ra_deg"],
                    dec_deg=row["dec_deg"],
                    status=row["status"],
                    score=row["score"],
                    significance=row["significance"],
                    start_mjd=row["start_mjd"],
                    end_mjd=row["end_mjd"],
                    baseline_flux_jy=row["baseline_flux_jy"],
                    min_flux_jy=row["min_flux_jy"],
                    current_flux_jy=row["current_flux_jy"],
                    flagged_at=row["flagged_at"],
                    updated_at=row["updated_at"],
                    candidate=_candidate_of(row),
                )

    @shared_subscription(description="Job state changes: one job (its current state first) or all jobs.")
    async def job_updates(self, info: GraphInfo, job_id: int | None = None) -> AsyncGenerator[Job, None]:
        ctx = info.context

        def mine(event: Event) -> bool:
            return job_id is None or _job_id(event) == job_id

        async for batch in event_batches(ctx, (JOB_STATE,), snapshot=job_id is not None, accept=mine):
            wanted = (
                [job_id]
                if job_id is not None
                else list(dict.fromkeys(pk for e in batch if (pk := _job_id(e)) is not None))
            )
            loader = ctx.loaders.by_key(JOB)
            for job in await loader.load_many(wanted):
                if job is not None:
                    yield job
                elif not batch:
                    raise NotFound(f"no job {job_id}", key=str(job_id))

    @shared_subscription(
        description="A job's log so far, then each batch of new lines; ends when the job does."
    )
    async def job_logs(self, info: GraphInfo, job_id: int) -> AsyncGenerator[JobLogBatch, None]:
        ctx = info.context
        last_id: int | None = None

        def mine(event: Event) -> bool:
            return _job_id(event) == job_id

        async for batch in event_batches(ctx, (JOB_LOG, JOB_STATE), accept=mine):
            job = await ctx.loaders.by_key(JOB).load(job_id)
            if job is None:
                raise NotFound(f"no job {job_id}", key=str(job_id))
            if not batch:  # the snapshot: the log so far (its newest lines when very long)
                rows = await status.log_lines_after(ctx.engine, job_id, None, limit=MAX_LOG_SNAPSHOT_LINES)
            else:
                if last_id is None:
                    # A producer that joined mid-stream starts from the events' own ids.
                    firsts = [
                        f
                        for e in batch
                        if e.channel == JOB_LOG
                        and (f := _int(JOB_LOG.payload(e).get("first_line_id"))) is not None
                    ]
                    last_id = min(firsts) - 1 if firsts else None
                rows = (
                    []
                    if last_id is None
                    else await status.log_lines_after(ctx.engine, job_id, last_id, limit=MAX_LOG_BATCH_LINES)
                )
            if rows:
                last_id = int(rows[-1]["pk"])
            finished = not JOB_TRANSITIONS[DomainJobState(job.state)]
            if rows or finished or not batch:
                yield JobLogBatch(job_id=job_id, lines=_entries(rows), state=job.state, finished=finished)
            if finished:
                if live_phase(ctx) is not LivePhase.EVENTS:
                    mark_complete(ctx)
                return

    @shared_subscription(description="Observation groups as they change state (optionally only some ids).")
    async def group_updates(
        self, info: GraphInfo, group_ids: list[str] | None = None
    ) -> AsyncGenerator[Group, None]:
        if group_ids is not None and len(group_ids) > MAX_WATCHED_IDS:
            raise BadUserInput(f"groupIds accepts at most {MAX_WATCHED_IDS} ids", field="groupIds")
        wanted_ids = set(group_ids) if group_ids is not None else None
        ctx = info.context

        def mine(event: Event) -> bool:
            return wanted_ids is None or GROUP_STATE.payload(event).get("group_id") in wanted_ids

        async for batch in event_batches(ctx, (GROUP_STATE,), snapshot=False, accept=mine):
            changed = [_int(GROUP_STATE.payload(e).get("group_pk")) for e in batch]
            pks = list(dict.fromkeys(pk for pk in changed if pk is not None))
            for group in await ctx.loaders.by_key(GROUP).load_many(pks):
                if group is not None:
                    yield group

    @shared_subscription(description="New measurements of watched sources (by name or in a cone), per image.")
    async def measurements_added(
        self, info: GraphInfo, filter: WatchFilter
    ) -> AsyncGenerator[MeasurementsAdded, None]:
        ids = filter.source_ids
        if ids is not None and len(ids) > MAX_WATCHED_IDS:
            raise BadUserInput(f"sourceIds accepts at most {MAX_WATCHED_IDS} names", field="sourceIds")
        if not ids and filter.cone is None:
            raise BadUserInput("give sourceIds or a cone to watch", field="filter")
        cone = filter.cone.condition(sources) if filter.cone is not None else None  # validates the cone
        ctx = info.context
        async for batch in event_batches(ctx, (MEASUREMENTS_ADDED,), snapshot=False):
            for image_pk in dict.fromkeys(
                pk for e in batch if (pk := _int(MEASUREMENTS_ADDED.payload(e).get("image_pk"))) is not None
            ):
                rows = await status.watched_measurements(
                    ctx.engine, image_pk, ids, cone, limit=MAX_WATCH_RESULTS
                )
                if rows:
                    wrap = ctx.loaders.wrap(MEASUREMENT)
                    yield MeasurementsAdded(image_pk=image_pk, measurements=[wrap(r) for r in rows])


__all__ = ["LiveMutation", "LiveQuery", "LiveSubscription"]
