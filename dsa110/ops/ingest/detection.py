"""ESE detection on demand: the full detector over the database (``dsa110.ops.ese_detect``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110 import telemetry
from dsa110.ops.ingest.common import DetectionResult, Publish
from dsa110.science.ese import DEFAULT_PARAMS, EseParams


def severity_of(score: float) -> str:
    """Alert severity from the detector's margin over its thresholds."""
    if score >= 3.0:
        return "critical"
    if score >= 1.5:
        return "warning"
    return "info"


@telemetry.observed(telemetry.DETECTION_LATENCY)
async def detect_ese(
    engine: AsyncEngine,
    source_pks: Sequence[int] | None = None,
    *,
    publish: Publish | None = None,
    params: EseParams = DEFAULT_PARAMS,
) -> DetectionResult:
    """Run the full ESE test now for ``source_pks`` (default: every source with enough epochs).

    The same pass as the ``ese-detect`` job (:func:`dsa110.ops.ese_detect.run_detection`)
    with ``force``: every source is tested, not only those its running statistic says are
    due. New candidates, candidates that changed phase (``ongoing`` -> ``confirmed`` |
    ``rejected``, ``confirmed`` -> ``rejected``; ``escalated_candidate_pks``, the GraphQL
    ``escalatedCandidates``) and refined candidates are reported; each creation and phase
    change writes an alert (``ese_candidate``, ``ese_confirmed``, ``ese_rejected``:
    ``dsa110.db.enums.AlertType``) and publishes an ``ese.candidate`` event after its commit.
    """
    from dsa110.ops.ese_detect import run_detection

    run = await run_detection(engine, source_pks, publish=publish, params=params, force=True)
    telemetry.DETECTION_SOURCES.inc(run.n_sources)
    return DetectionResult(
        n_sources=run.n_sources,
        new_candidate_pks=tuple(run.new_candidate_pks),
        escalated_candidate_pks=tuple(run.changed_candidate_pks),
        updated_candidate_pks=tuple(run.updated_candidate_pks),
        alert_pks=tuple(run.alert_pks),
    )
