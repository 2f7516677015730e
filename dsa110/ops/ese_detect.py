"""ESE detection off the request path: the ``ese-detect`` job kind and what it runs.

Ingest commits measurements and calls :func:`enqueue_detection` with the touched sources:
it adds them to the one *pending* ``ese-detect`` job if there is one (coalescing: a burst
of images becomes one job over the union of their sources), or queues a new one. A worker
(``serve``'s job pool or ``dsa110-graph worker``) runs ``python -m dsa110.ops.ese_detect``,
which calls :func:`run_detection`:

1. per source, fold the measurements stored since its watermark into the running
   statistic (``dsa110.science.ese_tracker``; O(1) per measurement, raw peak flux: the
   CUSUM is unit-free and per-image calibration scatter only widens its s);
2. the sources ``due`` a full test get one: their normalised light curves (ingest's
   differential photometry) through ``dsa110.science.ese_edge.detect_all``; a source whose
   curve the detector refuses (non-finite values, zero errors) or that raises is recorded
   in ``ese_source_state.last_error`` and the run goes on;
3. the detections move the source's candidates through their phases
   (``ese_tracker.transition``): new candidates, ``ongoing`` -> ``confirmed`` |
   ``rejected``; each creation and phase change writes an ``alerts`` row and publishes an
   ``ese.candidate`` event after the commit. A candidate a person closed is left alone.

The job's detections and refits count only when the same event was there on the curve as
it was ``ese_tracker.PERSIST_DAYS`` earlier, scored by the lesser of the two looks
(``ese_tracker.persisted``, ese-drw-3.5: a one-look spike of a noise dip's score makes no
candidate), and a candidate loses its support only when both looks say so (ese-drw-3.6).
That earlier curve's search is the last look's when that look saw exactly it: each live
look stores its curve's fingerprint and detections in ``ese_source_state.last_look``
(``ese_tracker.LookMemo``, revision 0027), read back by the next; one the job cannot read
only costs the saving.
The job's candidates carry the *live* false-alarm probability
(``dsa110.science.ese_far.live_false_alarm_probability``, calibrated on steady
source-years replayed through the tracker with ``ese_tracker.LIVE_PARAMS``, the parameters
it runs with): it looks at a source many times a year, and the one-look probability the
detector attaches would understate its false alarms 2-9 fold. A ``force`` pass (on
demand, ``dsa110.ops.ingest.detect_ese``) is one look at the whole curve and keeps the
detector's one-look probability.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, cast

import numpy as np
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.enums import OPEN_ESE_CANDIDATE_STATUSES as OPEN_STATUSES
from dsa110.db.enums import AlertType
from dsa110.db.tables import alerts, ese_candidates, ese_source_state, measurements, sources
from dsa110.db.writes import write_transaction
from dsa110.events.channels import ESE_CANDIDATE, EseCandidateColumns, EseCandidatePayload
from dsa110.ops.ese_relay import Keeper
from dsa110.ops.queue import kinds
from dsa110.ops.queue.coalesce import add_to_pending
from dsa110.science.ese import DEFAULT_PARAMS, EseDetection, EseParams
from dsa110.science.ese_tracker import (
    LIVE_PARAMS,
    Candidate,
    FullTest,
    LookMemo,
    RunningState,
    due,
    follows,
    full_test,
    look,
    tested,
)
from dsa110.science.ese_tracker import update as fold

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]

KIND: Final = "ese-detect"
MAX_SOURCES_PER_JOB: Final = 20_000
CHUNK: Final = 500


@dataclass
class DetectionRun:
    """What one pass did: candidates created, moved to a new phase, refined; alerts; failures."""

    n_sources: int = 0
    n_tested: int = 0
    alert_pks: list[int] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)
    new_candidate_pks: list[int] = field(default_factory=list)
    changed_candidate_pks: list[int] = field(default_factory=list)
    updated_candidate_pks: list[int] = field(default_factory=list)


def _validate(params: Mapping[str, Any]) -> dict[str, Any]:
    """``source_pks`` and/or ``all``; the legacy REST forms (``POST /api/batch/ese-detect``:
    ``source_id``, a catalog name, or no source at all = every source; ``min_sigma``, recorded
    and not used: the detector's thresholds are its own) are accepted too."""
    kinds.only(params, {"source_pks", "all", "source_id", "min_sigma"})
    everything = kinds.flag(params, "all", False)
    pks = params.get("source_pks", [])
    if not isinstance(pks, list) or len(pks) > MAX_SOURCES_PER_JOB:
        raise kinds.bad(f"`source_pks` must be a list of at most {MAX_SOURCES_PER_JOB} ids", "source_pks")
    if any(isinstance(p, bool) or not isinstance(p, int) or p <= 0 for p in pks):
        raise kinds.bad("`source_pks` must hold positive integers", "source_pks")
    name = params.get("source_id")
    if name is not None and (not isinstance(name, str) or not name.strip() or len(name) > 128):
        raise kinds.bad("`source_id` must be a catalog name (1-128 characters)", "source_id")
    min_sigma = params.get("min_sigma")
    if min_sigma is not None and (
        isinstance(min_sigma, bool) or not isinstance(min_sigma, int | float) or not math.isfinite(min_sigma)
    ):
        raise kinds.bad("`min_sigma` must be a finite number", "min_sigma")
    out: dict[str, Any] = {"source_pks": sorted(set(pks)), "all": everything or (not pks and name is None)}
    if name is not None:
        out["source_id"] = name.strip()
    if min_sigma is not None:
        out["min_sigma"] = float(min_sigma)
    return out


ESE_DETECT = kinds.register(
    kinds.JobKind(
        KIND,
        _validate,
        lambda _job_id, p: [sys.executable, "-m", "dsa110.ops.ese_detect", json.dumps(p)],
        max_attempts=3,
        cancel_grace_s=5.0,
        description="ESE detection for sources ingest touched (incremental; alerts on phase changes).",
    )
)


async def enqueue_detection(
    engine: AsyncEngine, source_pks: Sequence[int], *, publish: Publish | None = None
) -> int | None:
    """Add ``source_pks`` to the pending ``ese-detect`` job, or queue one; returns its id.

    Coalescing (``dsa110.ops.queue.coalesce``): while a job is pending, every ingest adds
    its sources to it; past ``MAX_SOURCES_PER_JOB`` the job becomes a pass over every
    source. The queueing publishes the job's ``pending`` state (``publish``), which wakes
    ``serve``'s job pool at once.
    """
    wanted = sorted({int(p) for p in source_pks})
    if not wanted:
        return None

    def merge(pending: Mapping[str, Any]) -> dict[str, Any]:
        merged = sorted(set(pending.get("source_pks", [])) | set(wanted))
        if pending.get("all") or len(merged) > MAX_SOURCES_PER_JOB:
            return {"source_pks": [], "all": True}
        legacy = {k: pending[k] for k in ("source_id", "min_sigma") if k in pending}
        return {"source_pks": merged, "all": False, **legacy}

    params = merge({})
    return await add_to_pending(engine, KIND, params, merge, created_by="ingest", publish=publish)


def _state_of(rows: Sequence[Mapping[str, Any]], pks: Sequence[int]) -> RunningState:
    state = RunningState.empty(len(pks))
    by_pk = {r["source_pk"]: r for r in rows}
    for i, pk in enumerate(pks):
        r = by_pk.get(pk)
        if r is not None:
            state.n[i], state.mean[i], state.var[i], state.cusum[i] = r["n"], r["mean"], r["var"], r["cusum"]
            state.last_test_mjd[i] = r["last_test_mjd"] if r["last_test_mjd"] is not None else -np.inf
            state.last_test_n[i], state.backoff[i] = r["last_test_n"], r["backoff_days"]
            if r["watch_until_mjd"] is not None:
                state.watch_until[i] = r["watch_until_mjd"]
            if r["recheck_mjd"] is not None:
                state.recheck_at[i] = r["recheck_mjd"]
    return state


def _candidate_values(d: EseDetection, phase: str) -> EseCandidateColumns:
    """The ``ese_candidates`` columns of a detection in ``phase``: the one mapping every
    insert and update of a candidate (the job's and a forced pass's) goes through.
    ``red_rms`` (the live false-alarm stratum) is NULL when not known: a row from before
    revision 0020 carried through :func:`_row_detection` keeps its NULL, and the event
    published with the row carries None, never NaN (the bus refuses NaN: JSON has none)."""
    return {
        "score": d.score,
        "significance": d.significance,
        "start_mjd": d.start_mjd,
        "end_mjd": d.end_mjd,
        "depth": d.depth,
        "baseline_flux_jy": d.baseline_flux_jy,
        "min_flux_jy": d.min_flux_jy,
        "detector_version": d.detector_version,
        "phase": phase,
        "kind": d.kind,
        "false_alarm_probability": d.false_alarm_probability,
        "red_rms": d.red_rms if math.isfinite(d.red_rms) else None,
    }


def _severity(d: EseDetection, phase: str) -> str:
    if phase == "rejected":
        return "info"
    fap = d.false_alarm_probability if d.false_alarm_probability is not None else 1.0
    return "critical" if fap <= 1e-4 else "warning" if fap <= 2e-3 else "info"


def _row_detection(row: Mapping[str, Any]) -> EseDetection:
    """A stored candidate as the tracker's detection. Its ``red_rms`` is the stored one
    (NaN for NULL, which ``_candidate_values`` writes back as NULL): a candidate whose phase
    changes without a new fit keeps the stratum it was rated in."""
    red_rms = row["red_rms"]
    return EseDetection(
        score=row["score"],
        significance=row["significance"],
        start_mjd=row["start_mjd"],
        end_mjd=row["end_mjd"],
        center_mjd=0.5 * (row["start_mjd"] + row["end_mjd"]),
        fwhm_days=row["end_mjd"] - row["start_mjd"],
        depth=row["depth"],
        baseline_flux_jy=row["baseline_flux_jy"],
        min_flux_jy=row["min_flux_jy"],
        white_sigma=0.0,
        red_sigma=0.0,
        red_rms=float(red_rms) if red_rms is not None else math.nan,
        kind=row["kind"] or "dip",
        false_alarm_probability=row["false_alarm_probability"],
        detector_version=row["detector_version"],
    )


async def run_detection(
    engine: AsyncEngine,
    source_pks: Sequence[int] | None = None,
    *,
    publish: Publish | None = None,
    params: EseParams | None = None,
    force: bool = False,
) -> DetectionRun:
    """One detection pass over ``source_pks`` (None: every source with enough epochs).

    Incremental (the job): only the sources the running statistic says are ``due`` get the
    full test, with ``LIVE_PARAMS`` and live false-alarm probabilities. ``force`` (on
    demand, the demo, the bench's "full detector afterwards"): every source gets it, with
    ``DEFAULT_PARAMS`` and the one-look probabilities (module docstring). Either way the
    outcome moves candidates through their phases.
    """
    from dsa110.ops.ingest import normalised_light_curves

    if params is None:
        params = DEFAULT_PARAMS if force else LIVE_PARAMS

    if source_pks is None:
        async with engine.connect() as conn:
            query = select(sources.c.id).where(sources.c.n_epochs >= params.min_points).order_by(sources.c.id)
            targets = list((await conn.execute(query)).scalars())
    else:
        targets = sorted(set(source_pks))
    run = DetectionRun(n_sources=len(targets))
    for start in range(0, len(targets), CHUNK):
        chunk = list(targets[start : start + CHUNK])
        await _run_chunk(engine, chunk, run, publish, params, normalised_light_curves, force)
    return run


async def _run_chunk(
    engine: AsyncEngine,
    pks: list[int],
    run: DetectionRun,
    publish: Publish | None,
    params: EseParams,
    curves_of: Any,
    force: bool,
) -> None:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(ese_source_state).where(ese_source_state.c.source_pk.in_(pks)))
        ).mappings()
        stored = [dict(r) for r in rows]
        marks = {r["source_pk"]: r["last_measurement_pk"] for r in stored}
        new = (
            await conn.execute(
                select(
                    measurements.c.source_pk,
                    measurements.c.id,
                    measurements.c.mjd,
                    measurements.c.peak_flux_jy,
                )
                .where(measurements.c.source_pk.in_(pks))
                .where(measurements.c.id > min(marks.get(pk, 0) for pk in pks))
                .order_by(measurements.c.mjd, measurements.c.id)
            )
        ).all()
        open_rows = (
            await conn.execute(
                select(ese_candidates).where(
                    ese_candidates.c.source_pk.in_(pks), ese_candidates.c.detector_version != "legacy"
                )
            )
        ).mappings()
        existing: dict[int, list[dict[str, Any]]] = {}
        for r in open_rows:
            existing.setdefault(r["source_pk"], []).append(dict(r))
    index = {pk: i for i, pk in enumerate(pks)}
    state = _state_of(stored, pks)
    memo_texts = {r["source_pk"]: r["last_look"] for r in stored}
    watermark = dict(marks)
    latest = dict.fromkeys(pks, -np.inf)
    for spk, mpk, mjd, flux in new:
        if mpk <= marks.get(spk, 0):
            continue
        if np.isfinite(flux):
            fold(state, np.array([index[spk]]), np.array([float(flux)]))
        watermark[spk] = max(watermark.get(spk, 0), mpk)
        latest[spk] = max(latest[spk], mjd)
    now_mjd = max(latest.values(), default=-np.inf)
    followed = np.array(
        [
            any(
                follows(c["phase"], c["end_mjd"], c["end_mjd"] - c["start_mjd"], now_mjd)
                for c in existing.get(pk, [])
                if c["status"] in OPEN_STATUSES
            )
            for pk in pks
        ],
        dtype=bool,
    )
    idx = np.arange(len(pks))
    if force:
        wanted = list(pks)
    elif np.isfinite(now_mjd):
        wanted = [pks[i] for i in idx[due(state, idx, float(now_mjd), followed)]]
    else:
        wanted = []
    curves = await curves_of(engine, wanted) if wanted else {}
    changes: list[tuple[int, Candidate, dict[str, Any] | None, str | None, str]] = []
    errors: dict[int, str] = {}
    looked: dict[int, str | None] = {}  # this run's live looks: the next look's memo (JSON)
    for pk in wanted:
        lc = curves.get(pk)
        if lc is None or len(lc.mjd) < params.min_points:
            continue
        run.n_tested += 1
        try:
            test = full_test(lc.mjd, lc.norm_flux_jy, lc.norm_flux_err_jy, params)
        except Exception as exc:  # isolate the source, record why, go on
            errors[pk] = f"{type(exc).__name__}: {exc}"[:500]
            test = FullTest([], False)
        found = test.found
        if not force:  # a forced pass's parameters are not the live looks': keep theirs
            looked[pk] = None if test.memo is None else test.memo.to_json()
        tested(
            state, index[pk], float(max(lc.mjd)), bool(found), test.ingress_pending, test.ingress_unsettled
        )
        mine = [r for r in existing.get(pk, []) if r["status"] in OPEN_STATUSES]
        closed = [r for r in existing.get(pk, []) if r["status"] not in OPEN_STATUSES]
        found = [
            d
            for d in found
            if not any(r["start_mjd"] <= d.end_mjd and r["end_mjd"] >= d.start_mjd for r in closed)
        ]
        cands = [Candidate(_row_detection(r), r["phase"] or "confirmed", 0.0) for r in mine]
        by_cand = {id(c): r for c, r in zip(cands, mine, strict=True)}
        originals = {id(c): c.detection for c in cands}
        # The job's many looks are persisted and rated by the live null (module docstring); a
        # forced pass is one look.
        changed = look(
            cands,
            found,
            lc.mjd,
            lc.norm_flux_jy,
            lc.norm_flux_err_jy,
            float(max(lc.mjd)),
            params,
            live=not force,
            previous=LookMemo.from_json(memo_texts.get(pk)),
        )
        changes += [(pk, cand, by_cand.get(id(cand)), old, phase) for cand, old, phase in changed]
        touched = {id(cand) for cand, _, _ in changed}
        for cand in cands:  # refined fits of candidates whose phase did not change: no alert
            if id(cand) in by_cand and id(cand) not in touched and cand.detection is not originals[id(cand)]:
                changes.append((pk, cand, by_cand[id(cand)], cand.phase, cand.phase))
    run.failures.update(errors)
    events, refined = await _write(engine, pks, state, watermark, errors, changes, looked)
    run.alert_pks += [e["alert_pk"] for e in events if e.get("alert_pk")]
    run.new_candidate_pks += [e["candidate_pk"] for e in events if e["event"] == "new"]
    run.changed_candidate_pks += [e["candidate_pk"] for e in events if e["event"] != "new"]
    run.updated_candidate_pks += refined
    if publish is not None:
        for payload in events:
            await ESE_CANDIDATE.publish(publish, payload)


async def _write(
    engine: AsyncEngine,
    pks: list[int],
    state: RunningState,
    watermark: Mapping[int, int],
    errors: Mapping[int, str],
    changes: list[tuple[int, Candidate, dict[str, Any] | None, str | None, str]],
    looked: Mapping[int, str | None],
) -> tuple[list[EseCandidatePayload], list[int]]:
    now = datetime.now(UTC)
    events: list[EseCandidatePayload] = []
    refined: list[int] = []
    async with write_transaction(engine) as conn:
        names = dict(
            (await conn.execute(select(sources.c.id, sources.c.source_id).where(sources.c.id.in_(pks)))).all()
        )
        for i, pk in enumerate(pks):
            values: dict[str, Any] = {
                "n": int(state.n[i]),
                "mean": float(state.mean[i]),
                "var": float(state.var[i]),
                "cusum": float(state.cusum[i]),
                "last_measurement_pk": int(watermark.get(pk, 0)),
                "last_test_mjd": float(state.last_test_mjd[i])
                if np.isfinite(state.last_test_mjd[i])
                else None,
                "last_test_n": int(state.last_test_n[i]),
                "backoff_days": float(state.backoff[i]),
                "watch_until_mjd": float(state.watch_until[i]) if np.isfinite(state.watch_until[i]) else None,
                "recheck_mjd": float(state.recheck_at[i]) if np.isfinite(state.recheck_at[i]) else None,
                "updated_at": now,
            }
            if pk in looked:  # untested sources keep their last look's memo
                values["last_look"] = looked[pk]
            if pk in errors:
                values.update(last_error=errors[pk], error_at=now)
            done = await conn.execute(
                update(ese_source_state).where(ese_source_state.c.source_pk == pk).values(**values)
            )
            if done.rowcount == 0:
                await conn.execute(insert(ese_source_state).values(source_pk=pk, **values))
        for pk, cand, row, old, new_phase in changes:
            columns = _candidate_values(cand.detection, new_phase)
            if row is None:
                result = await conn.execute(
                    insert(ese_candidates)
                    .values(source_pk=pk, status="active", flagged_at=now, updated_at=now, **columns)
                    .returning(ese_candidates.c.id)
                )
                cand_pk = int(result.scalar_one())
            else:
                cand_pk = int(row["id"])
                await conn.execute(
                    update(ese_candidates)
                    .where(ese_candidates.c.id == cand_pk)
                    .values(**columns, updated_at=now)
                )
                if old == new_phase:
                    refined.append(cand_pk)
                    continue
            kind = AlertType.for_candidate(None if row is None else new_phase)
            d = cand.detection
            fap = d.false_alarm_probability
            message = (
                f"ESE candidate {new_phase}: {names.get(pk, pk)} dipped {d.depth:.0%} below "
                f"{d.baseline_flux_jy * 1e3:.1f} mJy over MJD {d.start_mjd:.1f}-{d.end_mjd:.1f}"
                + (f" (false-alarm probability {fap:.2g} per source-year)" if fap is not None else "")
            )
            alert_pk = int(
                (
                    await conn.execute(
                        insert(alerts)
                        .values(
                            source_pk=pk,
                            candidate_pk=cand_pk,
                            alert_type=kind,
                            severity=_severity(d, new_phase),
                            message=message,
                            triggered_at=now,
                        )
                        .returning(alerts.c.id)
                    )
                ).scalar_one()
            )
            event: EseCandidatePayload = {
                "event": "new" if row is None else new_phase,
                "candidate_pk": cand_pk,
                "alert_pk": alert_pk,
                "source_pk": pk,
                "source_id": names.get(pk),
                "status": "active" if row is None else row["status"],
                "from_phase": old,
            }
            # Both parts are checked (this literal, _candidate_values' return type), and the
            # columns' type is a base of the payload's: the merge is one too.
            events.append(cast(EseCandidatePayload, {**event, **columns}))
    return events, refined


async def _main(argv: list[str]) -> int:
    from dsa110.db.engine import create_engine
    from dsa110.events.bus import DEFAULT_NAMESPACE
    from dsa110.events.factory import create_event_bus

    params = _validate(json.loads(argv[0]))
    engine = create_engine(os.environ["DSA110_DATABASE_URL"])
    # The ``ese.candidate`` events reach the server's subscribers through a shared bus
    # (Redis, PostgreSQL). With the in-process ``memory://`` bus this process cannot reach
    # them: the events go into the job's result instead, and the server's job pool, which
    # ran this job, republishes them on its own bus when the job is done
    # (``dsa110.ops.ese_relay``).
    url = os.environ.get("DSA110_EVENTS_URL", "memory://")
    namespace = os.environ.get("DSA110_EVENTS_NAMESPACE") or DEFAULT_NAMESPACE
    bus = None if url.startswith("memory") else create_event_bus(url, namespace=namespace)
    keeper = Keeper()
    try:
        if bus is not None:
            await bus.start()
        publish = bus.publish if bus is not None else keeper
        targets = None if params["all"] else list(params["source_pks"])
        if targets is not None and "source_id" in params:
            async with engine.connect() as conn:
                query = select(sources.c.id).where(sources.c.source_id == params["source_id"])
                targets += list((await conn.execute(query)).scalars())
        run = await run_detection(engine, targets, publish=publish)
    finally:
        if bus is not None:
            await bus.close()
        await engine.dispose()
    for pk, why in sorted(run.failures.items()):
        print(f"source {pk} not tested: {why}")
    result: dict[str, Any] = {
        "n_sources": run.n_sources,
        "n_tested": run.n_tested,
        "n_alerts": len(run.alert_pks),
        "n_new": len(run.new_candidate_pks),
        "n_phase_changes": len(run.changed_candidate_pks),
        "n_failed": len(run.failures),
    }
    if bus is None:
        result.update(keeper.result())
    print("@@result " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main(sys.argv[1:])))
