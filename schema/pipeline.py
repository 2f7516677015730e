"""The pipeline pages in the graph: stage metrics and order, the recent-events log, the pointing
monitor, the observing timeline.

Stages are the pipeline's job kinds and executions are jobs (``dsa110.ops.pipeline``; the
jobs themselves are the ``jobs`` root). The events log is the bus's recent events
(``dsa110.events.log``); the pointing monitor is the pointing record's freshness
(``dsa110.ops.pointing``); the observing timeline is computed by the database
(``resolvers.timeline``).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import strawberry
from strawberry.scalars import JSON

from dsa110.db.enums import JobType
from dsa110.events import log as event_log
from dsa110.ops import pipeline, pointing
from resolvers import timeline
from resolvers.errors import BadUserInput
from schema.base import GraphInfo

MAX_SINCE_MINUTES: Final = 60 * 24 * 366


@strawberry.type(description="A stage of the pipeline (a job kind) and the record of its jobs.")
class PipelineStage:
    name: str = strawberry.field(description="The job kind (`convert`, `calibrate`, ...).")
    label: str
    total: int
    pending: int
    running: int
    done: int
    failed: int
    cancelled: int
    success_rate: float | None = strawberry.field(description="done / (done + failed); null before either.")
    finished: int = strawberry.field(description="Jobs with a start and an end (timed).")
    mean_duration_s: float | None
    median_duration_s: float | None = strawberry.field(description="Over the newest 1,000 finished jobs.")
    min_duration_s: float | None
    max_duration_s: float | None
    last_run_at: datetime | None = strawberry.field(description="When its newest job was queued.")


def _stage(m: pipeline.StageMetrics) -> PipelineStage:
    by = m.by_state
    labels = {str(k): v for k, v in pipeline.STAGE_LABELS.items()}
    return PipelineStage(
        name=m.stage,
        label=labels.get(m.stage, m.stage),
        total=m.total,
        pending=by.get("pending", 0),
        running=by.get("running", 0),
        done=by.get("done", 0),
        failed=by.get("failed", 0),
        cancelled=by.get("cancelled", 0),
        success_rate=m.success_rate,
        finished=m.finished,
        mean_duration_s=m.mean_s,
        median_duration_s=m.median_s,
        min_duration_s=m.min_s,
        max_duration_s=m.max_s,
        last_run_at=m.last_run_at,
    )


@strawberry.type
class PipelineNode:
    id: str
    label: str
    type: str = strawberry.field(description="`stage` or `workflow`.")


@strawberry.type
class PipelineEdge:
    source: str = strawberry.field(name="from")
    target: str = strawberry.field(name="to")
    type: str = strawberry.field(description="`data` (output feeds input) or `contains` (a workflow's step).")


@strawberry.type(description="The order data flows through the pipeline's stages.")
class PipelineGraph:
    nodes: list[PipelineNode]
    edges: list[PipelineEdge]


@strawberry.type(description="One event of the bus, as the recent-events log kept it.")
class LoggedEvent:
    event_id: int
    channel: str
    origin: str = strawberry.field(description="The publishing process (`host:pid:token`).")
    published_at: datetime
    payload: JSON


@strawberry.type
class EventChannel:
    channel: str
    description: str
    count: int = strawberry.field(description="Events logged in the window.")
    last_at: datetime | None


@strawberry.type(description="The recent-events log: counts by channel in a window.")
class EventLogStats:
    since: datetime | None
    total: int
    channels: list[EventChannel]
    retained_max: int = strawberry.field(description="Rows the log keeps (the newest).")
    oldest_at: datetime | None = strawberry.field(description="The oldest event still logged.")


@strawberry.type(description="Where the telescope last pointed and whether that record is fresh.")
class PointingMonitorStatus:
    checked_at: datetime
    last_pointing_at: datetime | None
    last_pointing_mjd: float | None
    last_ra_deg: float | None
    last_dec_deg: float | None
    age_seconds: float | None
    stale: bool
    stale_after_seconds: float
    groups_received_24h: int
    groups_completed_24h: int
    groups_failed_24h: int
    last_received_at: datetime | None
    last_completed_at: datetime | None
    last_failed_at: datetime | None
    last_error: str | None
    issues: list[str]


@strawberry.type(
    description="A stretch of observing: consecutive groups (by group id) whose epochs are no "
    "more than the gap threshold apart."
)
class ObservingSegment:
    first_group_id: str = strawberry.field(description="Its first group, by group id.")
    start_mjd: float = strawberry.field(description="Mid-epoch of its first group, MJD.")
    end_mjd: float = strawberry.field(description="Mid-epoch of its last group, MJD.")
    group_count: int
    subband_file_count: int = strawberry.field(description="Subband files received for its groups.")


@strawberry.type(description="Observation groups split into segments at the gaps between them.")
class ObservationTimeline:
    gap_threshold_hours: float
    segments: list[ObservingSegment] = strawberry.field(description="In group id order.")
    group_count: int = strawberry.field(description="Groups covered (at most `maxGroups`).")
    subband_file_count: int
    truncated: bool = strawberry.field(
        description="More groups exist than `maxGroups`: the latest are left out."
    )


def _since(minutes: float | None) -> datetime | None:
    if minutes is None:
        return None
    if not 0 < minutes <= MAX_SINCE_MINUTES:
        raise BadUserInput(f"sinceMinutes must be in (0, {MAX_SINCE_MINUTES}]", field="sinceMinutes")
    return datetime.now(UTC) - timedelta(minutes=minutes)


@strawberry.type
class PipelineQuery:
    @strawberry.field(description="Each pipeline stage (job kind) with counts by state and run times.")
    async def pipeline_stages(
        self, info: GraphInfo, since: datetime | None = None, names: list[str] | None = None
    ) -> list[PipelineStage]:
        if names is not None and len(names) > 32:
            raise BadUserInput("at most 32 stage names", field="names")
        found = await pipeline.stage_metrics(
            info.context.engine, since=since, stages=tuple(n[:16] for n in names) if names else None
        )
        return [_stage(m) for m in found]

    @strawberry.field(description="The stages and the order data flows through them.")
    def pipeline_graph(self) -> PipelineGraph:
        labels = pipeline.STAGE_LABELS
        return PipelineGraph(
            nodes=[
                PipelineNode(
                    id=str(s), label=labels[s], type="workflow" if s is JobType.WORKFLOW else "stage"
                )
                for s in pipeline.STAGES
            ],
            edges=[
                PipelineEdge(source=str(a), target=str(b), type=kind) for a, b, kind in pipeline.STAGE_EDGES
            ],
        )

    @strawberry.field(description="Recent events of the bus, newest first (at most 1,000).")
    async def recent_events(
        self,
        info: GraphInfo,
        channels: list[str] | None = None,
        since_minutes: float | None = None,
        limit: int = 100,
    ) -> list[LoggedEvent]:
        if not 1 <= limit <= event_log.MAX_QUERY:
            raise BadUserInput(f"limit must be between 1 and {event_log.MAX_QUERY}", field="limit")
        if channels is not None and (len(channels) > 32 or any(len(c) > 48 for c in channels)):
            raise BadUserInput("at most 32 channel names of 48 characters", field="channels")
        found = await event_log.recent(
            info.context.engine, channels=channels, since=_since(since_minutes), limit=limit
        )
        return [_event(e) for e in found]

    @strawberry.field(description="The recent-events log by channel, in a window (default: all it keeps).")
    async def event_log_stats(self, info: GraphInfo, since_minutes: float | None = None) -> EventLogStats:
        since = _since(since_minutes)
        engine = info.context.engine
        counted = await event_log.counts(engine, since)
        return EventLogStats(
            since=since,
            total=sum(c.count for c in counted),
            channels=[
                EventChannel(
                    channel=c.channel,
                    description=event_log.CHANNEL_DESCRIPTIONS.get(c.channel, ""),
                    count=c.count,
                    last_at=c.last_at,
                )
                for c in counted
            ],
            retained_max=event_log.DEFAULT_CAP,
            oldest_at=await event_log.oldest(engine),
        )

    @strawberry.field(
        description="Observing segments: groups in group id order, split wherever an epoch is more "
        "than `gapThresholdHours` after the previous one. Computed by the database; covers the "
        f"first `maxGroups` groups (at most {timeline.MAX_GROUPS:,})."
    )
    async def observation_timeline(
        self, info: GraphInfo, gap_threshold_hours: float = 1.0, max_groups: int = timeline.MAX_GROUPS
    ) -> ObservationTimeline:
        hours = gap_threshold_hours
        if not (math.isfinite(hours) and 0.0 <= hours <= timeline.MAX_GAP_HOURS):
            raise BadUserInput(
                f"gapThresholdHours must be in [0, {timeline.MAX_GAP_HOURS:g}]", field="gapThresholdHours"
            )
        if not 1 <= max_groups <= timeline.MAX_GROUPS:
            raise BadUserInput(f"maxGroups must be in [1, {timeline.MAX_GROUPS}]", field="maxGroups")
        found = await timeline.observation_timeline(info.context.engine, hours, max_groups)
        return ObservationTimeline(
            gap_threshold_hours=hours,
            segments=[
                ObservingSegment(
                    first_group_id=s.first_group_id,
                    start_mjd=s.start_mjd,
                    end_mjd=s.end_mjd,
                    group_count=s.group_count,
                    subband_file_count=s.subband_file_count,
                )
                for s in found.segments
            ],
            group_count=found.group_count,
            subband_file_count=found.subband_file_count,
            truncated=found.truncated,
        )

    @strawberry.field(
        description="Where the telescope last pointed, how old that is, and the last day's groups."
    )
    async def pointing_monitor(
        self, info: GraphInfo, stale_after_seconds: float = 900.0
    ) -> PointingMonitorStatus:
        if not 0 < stale_after_seconds <= 30 * 86400:
            raise BadUserInput("staleAfterSeconds must be in (0, 2592000]", field="staleAfterSeconds")
        m = await pointing.pointing_monitor(info.context.engine, stale_after_seconds)
        return PointingMonitorStatus(
            checked_at=m.checked_at,
            last_pointing_at=m.last_at,
            last_pointing_mjd=m.last_mjd,
            last_ra_deg=m.last_ra_deg,
            last_dec_deg=m.last_dec_deg,
            age_seconds=m.age_s,
            stale=m.stale,
            stale_after_seconds=m.stale_after_s,
            groups_received_24h=m.groups_received,
            groups_completed_24h=m.groups_completed,
            groups_failed_24h=m.groups_failed,
            last_received_at=m.last_received_at,
            last_completed_at=m.last_completed_at,
            last_failed_at=m.last_failed_at,
            last_error=m.last_error,
            issues=list(m.issues),
        )


def _event(e: event_log.LoggedEvent) -> LoggedEvent:
    payload: Any = e.payload
    return LoggedEvent(
        event_id=e.id, channel=e.channel, origin=e.origin, published_at=e.published_at, payload=payload
    )
