"""ESE candidates and alerts in the graph: the candidate type, its list and filter, ingest and detection.

Split from ``schema.science`` (which composes these into its roots: ``ScienceQuery``
inherits :class:`EseQuery`, ``ScienceMutation`` :class:`EseMutation`, so the fields keep
their order in the schema).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry

from dsa110.auth.identity import Role
from dsa110.db.enums import OrderDirection
from dsa110.db.filters import AlertFilter, AlertOrderField, EseCandidateFilter, EseCandidateOrderField
from dsa110.ops import ingest
from dsa110.science.errors import ScienceInputError
from loaders.entities import (
    ALERT,
    ALERT_CANDIDATE,
    ALERT_SOURCE,
    CANDIDATE,
    CANDIDATE_ALERTS,
    CANDIDATE_SOURCE,
    CANDIDATE_STATUS_CHANGES,
    SOURCE,
)
from resolvers import links, lists
from resolvers.errors import NotFound
from schema import urls
from schema.base import GraphInfo, Loaded, Node
from schema.columns import reads
from schema.inputs import CandidateStatus, EseKind, EsePhase, _enum, _input
from schema.lists import list_root
from schema.permissions import requires

if TYPE_CHECKING:
    from schema.types import Source

SourceRef = Annotated["Source", strawberry.lazy("schema.types")]


_input(EseCandidateFilter, "EseCandidateFilter")
_input(AlertFilter, "AlertFilter")
_enum(EseCandidateOrderField, "EseCandidateOrderField", "Columns candidates can be sorted by.")
_enum(AlertOrderField, "AlertOrderField", "Columns alerts can be sorted by.")


def _publisher(info: GraphInfo) -> Any:
    bus = info.context.bus
    return bus.publish if bus is not None else None


# --- ESE candidates and alerts -------------------------------------------------------------


@strawberry.type(description="A recorded change of a candidate's review state.")
class EseStatusChange:
    from_status: CandidateStatus
    to_status: CandidateStatus
    changed_by: str
    changed_at: datetime
    notes: str | None


@strawberry.type(description="An extreme-scattering-event candidate found by the detector.")
class EseCandidate(Node):
    source_pk: strawberry.Private[int]
    status: CandidateStatus
    score: float = strawberry.field(description="Detector score (higher: more ESE-like).")
    significance: float = strawberry.field(description="Depth of the dip over its uncertainty (sigma).")
    start_mjd: float = strawberry.field(description="Start of the dip, MJD.")
    end_mjd: float = strawberry.field(description="End of the dip, MJD.")
    depth: float = strawberry.field(description="Fractional depth of the dip, 0-1.")
    baseline_flux_jy: float = strawberry.field(description="Robust out-of-dip baseline flux, Jy.")
    min_flux_jy: float = strawberry.field(description="Lowest flux in the dip, Jy.")
    detector_version: str
    phase: EsePhase | None = strawberry.field(
        description="ongoing (no recovery seen yet: follow up now), confirmed (recovery seen) or rejected "
        "(no lens-like recovery: red noise, a step or a fade); null before ese-drw-3.0 and for legacy rows."
    )
    kind: EseKind | None = strawberry.field(
        description="What the detector saw: dip (both sides), ongoing (cut by the end of the data), "
        "egress (cut by the start); null before ese-drw-3.0."
    )
    false_alarm_probability: float | None = strawberry.field(
        description="Calibrated false-alarm probability per steady source-year: the fraction of simulated "
        "steady source-years with a candidate at least this strong (dsa110.science.ese_far). Candidates "
        "of the incremental ese-detect job are rated by the live calibration (any of its many looks "
        "during the year, any kind); an on-demand full pass by the one-look one. A job candidate keeps "
        "the lowest probability it has carried (its most extreme look, as the calibration counts a "
        "steady source-year's most extreme look), and of the earlier candidates of its event that were "
        "rejected; its score, window and depth are the latest look's. Measured out of sample, the "
        "live rate is as stated at 0.005 and above, about 1.7 times it at 0.002 and twice at "
        "0.001 (dsa110.science.ese_far, 'Out of sample'). "
        "Filter with `maxFalseAlarm` to choose an operating point; null before ese-drw-3.0."
    )
    red_rms: float | None = strawberry.field(
        name="redNoiseRms",
        description="Red-noise rms of the light curve as a fraction of the baseline flux: the "
        "damped-random-walk rms that best explains the curve with the dip modelled. For a two-sided "
        "dip (kind `dip`) it sets, with the dip's depth, the false-alarm stratum the live "
        "calibration rates it in: quiet below 0.01 (1 %), strong from 0.045; between them deep "
        "when the depth is at least 15 times this rms, else red. The null's false alarms are "
        "red-noise wanders of the red stratum, so at one score its probability is the largest. "
        "Ongoing and egress candidates have one table each. "
        "Null for candidates stored before it was recorded.",
    )
    flagged_at: datetime
    updated_at: datetime
    changed_by: str | None
    notes: str | None

    @strawberry.field(description="Integer key of the candidate.", metadata=reads("pk"))
    def candidate_id(self) -> int:
        return self.pk

    @strawberry.field(description="Duration of the dip in days.", metadata=reads("start_mjd", "end_mjd"))
    def duration_days(self) -> float:
        return self.end_mjd - self.start_mjd

    @strawberry.field(metadata=reads("source_pk"))
    def source(self, info: GraphInfo) -> Loaded[SourceRef]:
        # A candidate always has its source (NOT NULL foreign key).
        return cast("Loaded[SourceRef]", links.follow(info.context, self, CANDIDATE_SOURCE))

    @strawberry.field(description="Review history, oldest first.")
    async def status_history(self, info: GraphInfo) -> list[EseStatusChange]:
        return await links.all_of(info.context, CANDIDATE_STATUS_CHANGES, self.pk)

    @strawberry.field(description="A plot of the source's light curve with this candidate's window shaded.")
    async def light_curve_plot_url(
        self, info: GraphInfo, format: urls.PlotFormat = urls.PlotFormat.PNG, normalised: bool = True
    ) -> str:
        source = await links.one(info.context, SOURCE, self.source_pk)
        return urls.light_curve_plot_url(source.source_id, format, normalised)

    @strawberry.field(description="Alerts this candidate raised.")
    async def alerts(self, info: GraphInfo) -> list[Alert]:
        return await links.all_of(info.context, CANDIDATE_ALERTS, self.pk)


@strawberry.type(
    description="An alert: a new ESE candidate (`ese_candidate`), one confirmed (`ese_confirmed`) or "
    "rejected (`ese_rejected`), or another notable event."
)
class Alert(Node):
    source_pk: strawberry.Private[int | None]
    candidate_pk: strawberry.Private[int | None]
    alert_type: str
    severity: str = strawberry.field(description="info, warning or critical.")
    message: str
    triggered_at: datetime
    resolved_at: datetime | None

    @strawberry.field(description="Integer key of the alert.", metadata=reads("pk"))
    def alert_id(self) -> int:
        return self.pk

    @strawberry.field(metadata=reads("source_pk"))
    def source(self, info: GraphInfo) -> Loaded[SourceRef | None]:
        return links.follow(info.context, self, ALERT_SOURCE)

    @strawberry.field(metadata=reads("candidate_pk"))
    def candidate(self, info: GraphInfo) -> Loaded[EseCandidate | None]:
        return links.follow(info.context, self, ALERT_CANDIDATE)


@strawberry.type
class EseQuery:
    @strawberry.field(description="An ESE candidate by its integer id.")
    async def ese_candidate(self, info: GraphInfo, candidate_id: int) -> EseCandidate:
        return await lists.by_natural_key(info.context, CANDIDATE, candidate_id)

    ese_candidates = list_root(
        CANDIDATE,
        EseCandidate,
        EseCandidateFilter,
        EseCandidateOrderField,
        EseCandidateOrderField.SCORE,
        OrderDirection.DESC,
        "ESE candidates, strongest first.",
        links={"source": CANDIDATE_SOURCE},
    )
    alerts = list_root(
        ALERT,
        Alert,
        AlertFilter,
        AlertOrderField,
        AlertOrderField.TRIGGERED_AT,
        OrderDirection.DESC,
        "Alerts, newest first.",
        links={"source": ALERT_SOURCE, "candidate": ALERT_CANDIDATE},
    )


@strawberry.input(description="One measurement of a source on the image being ingested.")
class MeasurementInput:
    source_id: str = strawberry.field(description="Catalog name of the source.")
    peak_flux_jy: float
    peak_flux_err_jy: float
    mjd: float | None = None
    ra_deg: float | None = None
    dec_deg: float | None = None
    int_flux_jy: float | None = None
    int_flux_err_jy: float | None = None
    local_rms_jy: float | None = None
    snr: float | None = None
    forced: bool = True


@strawberry.type(description="What an ingest or a detection run wrote.")
class IngestResult:
    n_measurements: int
    n_sources: int
    new_candidates: int = strawberry.field(
        description="Candidates created (0 for an ingest: see detectionJobId)."
    )
    escalated_candidates: int = strawberry.field(
        description="Candidates that changed phase (ongoing -> confirmed | rejected, confirmed -> rejected)."
    )
    alerts: int
    detection_job_id: int | None = strawberry.field(
        default=None,
        description="The ese-detect job an ingest queued its sources on (detection runs there, off the "
        "request path); null for detectEse, which runs at once.",
    )


MAX_INGEST_ROWS = 100_000


@strawberry.type
class EseMutation:
    @strawberry.mutation(
        description="Add measurements for an image; updates metrics and queues ESE detection (job "
        "ese-detect; `detectionJobId`) (admin).",
        extensions=[requires(Role.ADMIN)],
    )
    async def ingest_measurements(
        self, info: GraphInfo, image_id: int, measurements: list[MeasurementInput], detect: bool = True
    ) -> IngestResult:
        ctx = info.context
        if len(measurements) > MAX_INGEST_ROWS:
            raise ScienceInputError("BAD_SIZE", f"at most {MAX_INGEST_ROWS} measurements per call")
        names = list({m.source_id for m in measurements})
        found = await ctx.loaders.by_key(SOURCE, "source_id").load_many(names)
        pks = {name: row.pk for name, row in zip(names, found, strict=True) if row is not None}
        missing = [n for n in names if n not in pks]
        if missing:
            raise NotFound(f"unknown sources: {', '.join(missing[:5])}", count=len(missing))
        rows = [{**vars(m), "source_pk": pks[m.source_id]} for m in measurements]
        for row in rows:
            row.pop("source_id")
        result = await ingest.ingest_image_measurements(
            ctx.engine, image_id, rows, publish=_publisher(info), detect=detect
        )
        return IngestResult(
            n_measurements=result.n_measurements,
            n_sources=len(result.source_pks),
            new_candidates=0,
            escalated_candidates=0,
            alerts=0,
            detection_job_id=result.detection_job_id,
        )

    @strawberry.mutation(
        description="Run the full ESE test now (all sources, or the named ones; operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def detect_ese(self, info: GraphInfo, source_ids: list[str] | None = None) -> IngestResult:
        ctx = info.context
        pks = None
        if source_ids is not None:
            found = await ctx.loaders.by_key(SOURCE, "source_id").load_many(source_ids)
            pks = [row.pk for row in found if row is not None]
        result = await ingest.detect_ese(ctx.engine, pks, publish=_publisher(info))
        return IngestResult(
            n_measurements=0,
            n_sources=result.n_sources,
            new_candidates=len(result.new_candidate_pks),
            escalated_candidates=len(result.escalated_candidate_pks),
            alerts=len(result.alert_pks),
        )

    @strawberry.mutation(
        description="Move a candidate along active -> investigated -> resolved | false_positive | dismissed "
        "(operator). `changedBy` is recorded as the caller's identity. A change the lifecycle refuses "
        "is `BAD_USER_INPUT`; one that another writer beat to the candidate is `CONFLICT` (reload it).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def set_ese_candidate_status(
        self, info: GraphInfo, candidate_id: int, status: CandidateStatus, notes: str | None = None
    ) -> EseCandidate:
        ctx = info.context
        await ingest.set_candidate_status(
            ctx.engine, candidate_id, status.value, ctx.identity.author, notes, publish=_publisher(info)
        )
        return await lists.by_natural_key(ctx, CANDIDATE, candidate_id)
