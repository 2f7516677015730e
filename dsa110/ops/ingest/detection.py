"""ESE detection over the database and reconciliation with stored candidates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110 import telemetry
from dsa110.db.tables import alerts, ese_candidates, sources
from dsa110.db.writes import write_transaction
from dsa110.ops.ingest.common import (
    ESCALATION_FACTOR,
    OPEN_STATUSES,
    DetectionResult,
    Publish,
    _chunks,
)
from dsa110.ops.ingest.lightcurves import _grouped_light_curves
from dsa110.science.ese import DEFAULT_PARAMS, EseDetection, EseParams, detect_dip


def severity_of(score: float) -> str:
    """Alert severity from the detector's margin over its thresholds."""
    if score >= 3.0:
        return "critical"
    if score >= 1.5:
        return "warning"
    return "info"


_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


def _candidate_values(d: EseDetection) -> dict[str, Any]:
    return {
        "score": d.score,
        "significance": d.significance,
        "start_mjd": d.start_mjd,
        "end_mjd": d.end_mjd,
        "depth": d.depth,
        "baseline_flux_jy": d.baseline_flux_jy,
        "min_flux_jy": d.min_flux_jy,
        "detector_version": d.detector_version,
    }


def _alert_message(source_id: str, d: EseDetection, escalated: bool) -> str:
    what = "ESE candidate escalated" if escalated else "ESE candidate"
    return (
        f"{what}: {source_id} dipped {d.depth:.0%} below {d.baseline_flux_jy * 1e3:.1f} mJy "
        f"over MJD {d.start_mjd:.1f}-{d.end_mjd:.1f} ({d.significance:.1f} sigma, score {d.score:.2f})"
    )


async def _reconcile(
    conn: AsyncConnection,
    detections: Mapping[int, EseDetection],
    now: datetime,
) -> tuple[list[int], list[int], list[int], list[int], list[dict[str, Any]]]:
    new: list[int] = []
    escalated: list[int] = []
    updated: list[int] = []
    alert_pks: list[int] = []
    events: list[dict[str, Any]] = []
    pks = sorted(detections)
    names = dict(
        (
            await conn.execute(
                select(sources.c.id, sources.c.source_id).where(sources.c.id.in_(pks)).with_for_update()
            )
        ).all()
    )
    existing: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for row in (
        await conn.execute(
            # Candidates imported from the legacy pipeline (dsa110.legacy.candidates) are its
            # verdicts, not this detector's: they are neither updated nor escalated here.
            select(ese_candidates).where(
                ese_candidates.c.source_pk.in_(pks), ese_candidates.c.detector_version != "legacy"
            )
        )
    ).mappings():
        existing[row["source_pk"]].append(dict(row))
    for pk in pks:
        d = detections[pk]
        overlapping = [c for c in existing[pk] if c["start_mjd"] <= d.end_mjd and c["end_mjd"] >= d.start_mjd]
        if any(c["status"] not in OPEN_STATUSES for c in overlapping):
            continue  # a person closed this event; re-detection does not reopen it
        values = _candidate_values(d)
        if overlapping:
            cand = max(overlapping, key=lambda c: c["significance"])
            await conn.execute(
                update(ese_candidates)
                .where(ese_candidates.c.id == cand["id"])
                .values(**values, updated_at=now)
            )
            rises = _SEVERITY_RANK[severity_of(d.score)] > _SEVERITY_RANK[severity_of(cand["score"])]
            if d.significance >= ESCALATION_FACTOR * cand["significance"] or rises:
                escalated.append(cand["id"])
                cand_pk, kind = cand["id"], "ese_escalated"
            else:
                updated.append(cand["id"])
                continue
        else:
            result = await conn.execute(
                insert(ese_candidates)
                .values(source_pk=pk, status="active", flagged_at=now, updated_at=now, **values)
                .returning(ese_candidates.c.id)
            )
            cand_pk, kind = int(result.scalar_one()), "ese_candidate"
            new.append(cand_pk)
        result = await conn.execute(
            insert(alerts)
            .values(
                source_pk=pk,
                candidate_pk=cand_pk,
                alert_type=kind,
                severity=severity_of(d.score),
                message=_alert_message(names.get(pk, str(pk)), d, kind == "ese_escalated"),
                triggered_at=now,
            )
            .returning(alerts.c.id)
        )
        alert_pk = int(result.scalar_one())
        alert_pks.append(alert_pk)
        events.append(
            {
                "event": "escalated" if kind == "ese_escalated" else "new",
                "candidate_pk": cand_pk,
                "alert_pk": alert_pk,
                "source_pk": pk,
                "source_id": names.get(pk),
                "status": "active" if kind == "ese_candidate" else None,
                **values,
            }
        )
    return new, escalated, updated, alert_pks, events


@telemetry.observed(telemetry.DETECTION_LATENCY)
async def detect_ese(
    engine: AsyncEngine,
    source_pks: Sequence[int] | None = None,
    *,
    publish: Publish | None = None,
    params: EseParams = DEFAULT_PARAMS,
) -> DetectionResult:
    """Run ESE detection for ``source_pks`` (default: every source with enough epochs).

    Creates or updates ``ese_candidates`` and writes an alert for each new or escalated
    candidate; publishes one ``ese.candidate`` event per alert after each commit.
    """
    if source_pks is None:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(sources.c.id).where(sources.c.n_epochs >= params.min_points).order_by(sources.c.id)
            )
            targets = list(result.scalars().all())
    else:
        targets = sorted(set(source_pks))
    telemetry.DETECTION_SOURCES.inc(len(targets))
    totals: dict[str, list[int]] = {"new": [], "escalated": [], "updated": [], "alerts": []}
    for chunk in _chunks(targets):
        async with engine.connect() as conn:
            curves = await _grouped_light_curves(conn, chunk)
        detections: dict[int, EseDetection] = {}
        for lc in curves:
            if len(lc.mjd) >= params.min_points:
                found = detect_dip(lc.mjd, lc.norm_flux_jy, lc.norm_flux_err_jy, params)
                if found is not None:
                    detections[lc.source_pk] = found
        if not detections:
            continue
        now = datetime.now(UTC)
        async with write_transaction(engine) as conn:
            new, escalated, updated, alert_pks, events = await _reconcile(conn, detections, now)
        totals["new"] += new
        totals["escalated"] += escalated
        totals["updated"] += updated
        totals["alerts"] += alert_pks
        if publish is not None:
            for payload in events:
                await publish("ese.candidate", payload)
    return DetectionResult(
        n_sources=len(targets),
        new_candidate_pks=tuple(totals["new"]),
        escalated_candidate_pks=tuple(totals["escalated"]),
        updated_candidate_pks=tuple(totals["updated"]),
        alert_pks=tuple(totals["alerts"]),
    )
