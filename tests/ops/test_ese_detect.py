"""The ``ese-detect`` job's pass over the database: incremental, isolated per source, phases."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import alerts, ese_candidates, ese_source_state
from dsa110.errors import InputError
from dsa110.events.channels import ESE_CANDIDATE, EseCandidatePayload
from dsa110.ops.ese_detect import ESE_DETECT, enqueue_detection, run_detection
from dsa110.science.ese import DETECTOR_VERSION
from dsa110.science.ese_far import QUIET_RED_RMS, false_alarm_probability, live_false_alarm_probability
from tests.ops.ese_curves import (
    FWHM_PER_SIGMA,
    add_epochs,
    dip_curve,
    ingress_curve,
    ingress_model,
    seed_curves,
)


async def test_a_dip_is_found_and_a_broken_source_does_not_abort_the_run(engine: AsyncEngine) -> None:
    rng = np.random.default_rng(3)
    t = 60000.0 + np.arange(200) * 1.0
    e = np.full(t.size, 0.02)
    dip = (
        1
        - 0.4 * np.exp(-0.5 * ((t - 60100) * FWHM_PER_SIGMA / 30.0) ** 2)
        + 0.02 * rng.standard_normal(t.size)
    )
    steady = 1 + 0.02 * rng.standard_normal(t.size)
    bad_e = e.copy()
    bad_e[50] = 0.0  # a zero error: the detector refuses the curve; the run goes on
    pks = await seed_curves(engine, [(dip, e), (steady, bad_e), (steady, e)], t)
    run = await run_detection(engine, pks)
    assert run.n_sources == 3 and run.n_tested == 3
    assert set(run.failures) == {pks[1]}
    async with engine.connect() as conn:
        cands = (await conn.execute(select(ese_candidates))).mappings().all()
        states = {r["source_pk"]: r for r in (await conn.execute(select(ese_source_state))).mappings()}
        n_alerts = len((await conn.execute(select(alerts.c.id))).all())
    assert [c["source_pk"] for c in cands] == [pks[0]]
    assert cands[0]["phase"] == "confirmed" and cands[0]["kind"] == "dip"
    assert 0 < cands[0]["false_alarm_probability"] < 0.01
    # The job looks many times a year: its candidates carry the live calibration, here the
    # quiet stratum's (white noise: the dip's fit leaves no red noise, ese_far.live_key).
    # The row records the red-noise rms that chose the stratum, so a reader can see why.
    red_rms = cands[0]["red_rms"]
    assert red_rms is not None and 0.0 <= red_rms < QUIET_RED_RMS
    live = live_false_alarm_probability(cands[0]["score"], "dip", red_rms)
    assert cands[0]["false_alarm_probability"] == pytest.approx(live)
    assert live == pytest.approx(live_false_alarm_probability(cands[0]["score"], "dip", 0.0))
    assert n_alerts == 1
    assert states[pks[1]]["last_error"] and "error" in states[pks[1]]["last_error"].lower()
    assert states[pks[0]]["n"] == 200 and states[pks[0]]["last_measurement_pk"] > 0
    # Nothing new: the second pass folds no points and tests nobody (the running state decides).
    again = await run_detection(engine, pks)
    assert again.n_tested == 0 and again.alert_pks == []


async def test_a_fruitless_alarm_is_watched_across_passes(engine: AsyncEngine) -> None:
    """A CUSUM alarm whose test finds nothing (a 4-epoch drop, too short for a lens) makes
    the source due every 12 d for 60 d (ese_tracker.WATCH_DAYS): the watch is stored with
    the running state, so the next pass, 12 d of unremarkable points later (no alarm, no
    refresh, no 1.5x growth), tests the source again; a source with no alarm is not watched."""
    from dsa110.science.ese_tracker import MAX_BACKOFF_DAYS, WATCH_DAYS

    rng = np.random.default_rng(5)
    t = 60000.0 + np.arange(60) * 1.0
    e = np.full(t.size, 0.02)
    blip = 1 + 0.02 * rng.standard_normal(t.size)
    blip[46:50] = 0.5
    steady = 1 + 0.02 * rng.standard_normal(t.size)
    pks = await seed_curves(engine, [(blip, e), (steady, e)], t)
    first = await run_detection(engine, pks)
    assert first.n_tested == 2  # both new: tested once they have MIN_POINTS
    async with engine.connect() as conn:
        watch = dict(
            (
                await conn.execute(select(ese_source_state.c.source_pk, ese_source_state.c.watch_until_mjd))
            ).all()
        )
        assert (await conn.execute(select(ese_candidates.c.id))).first() is None
    assert watch == {pks[0]: pytest.approx(t[-1] + WATCH_DAYS), pks[1]: None}

    later = t[-1] + np.arange(1, int(MAX_BACKOFF_DAYS) + 1) * 1.0
    await add_epochs(engine, pks, [(1 + 0.02 * rng.standard_normal(later.size), e[: later.size])] * 2, later)
    second = await run_detection(engine, pks)
    assert second.n_tested == 1  # the watched source only


async def test_the_persistence_look_a_find_asks_for_is_stored_and_kept_across_passes(
    engine: AsyncEngine,
) -> None:
    """A pass whose search finds something stores the look PERSIST_DAYS transits later
    (``ese_source_state.recheck_mjd``, ese-drw-3.9; its due time since 3.12); one that finds
    nothing stores none. A later pass honours a stored look with nothing else due (no alarm,
    no candidate, no refresh, no 1.5x growth) and clears it when that look finds nothing."""
    from dsa110.science.ese_tracker import PERSIST_DAYS, transits

    t, ingress, e = ingress_curve()
    rng = np.random.default_rng(7)
    steady = 1 + 0.02 * rng.standard_normal(t.size)
    pks = await seed_curves(engine, [(ingress, e), (steady, e)], t)
    first = await run_detection(engine, pks)
    assert first.n_tested == 2

    async def rechecks() -> dict[int, float | None]:
        async with engine.connect() as conn:
            rows = await conn.execute(select(ese_source_state.c.source_pk, ese_source_state.c.recheck_mjd))
            return dict(rows.all())

    assert await rechecks() == {pks[0]: pytest.approx(t[-1] + transits(PERSIST_DAYS)), pks[1]: None}
    # The steady source as if its last look had found something: due by that alone.
    async with engine.begin() as conn:
        await conn.execute(
            ese_source_state.update()
            .where(ese_source_state.c.source_pk == pks[1])
            .values(recheck_mjd=t[-1] + PERSIST_DAYS)
        )
    later = t[-1] + np.arange(1, int(PERSIST_DAYS) + 1) * 1.0
    await add_epochs(engine, [pks[1]], [(1 + 0.02 * rng.standard_normal(later.size), e[: later.size])], later)
    second = await run_detection(engine, [pks[1]])
    assert second.n_tested == 1
    assert (await rechecks())[pks[1]] is None


async def test_the_persistence_look_reuses_the_last_passs_search_and_survives_a_bad_memo(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass stores what its full test found with its curve's fingerprint
    (``ese_source_state.last_look``, ``ese_tracker.LookMemo``). The persistence look 5
    transits later searches the curve as it was then: that is the stored curve, so the pass
    runs ``detect_all`` once (its own full test), not twice; and a stored memo the job
    cannot read costs only the saving: the same candidates as with a good one."""
    from dsa110.science import ese_tracker
    from dsa110.science.ese_edge import detect_all
    from dsa110.science.ese_tracker import LookMemo, transits

    t, ingress, e = ingress_curve()
    later = t[-1] + np.arange(1, 6) * 1.0
    after = ingress_model(later)
    pks = await seed_curves(engine, [(ingress, e), (ingress, e)], t)  # the same curve twice
    await run_detection(engine, pks)
    async with engine.connect() as conn:
        stored = (
            await conn.execute(select(ese_source_state).order_by(ese_source_state.c.source_pk))
        ).mappings()
        stored_rows = stored.all()
    for row in stored_rows:
        memo = LookMemo.from_json(row["last_look"])
        assert memo is not None and memo.found  # the ingress, found at the first look
        assert row["recheck_mjd"] == pytest.approx(t[-1] + transits(5.0))
    async with engine.begin() as conn:  # the second source's memo unreadable
        await conn.execute(
            ese_source_state.update()
            .where(ese_source_state.c.source_pk == pks[1])
            .values(last_look="{not json")
        )
    # A pass between the two looks tests nobody and keeps both memos as they are.
    kept = {r["source_pk"]: r["last_look"] for r in stored_rows}
    kept[pks[1]] = "{not json"
    await add_epochs(engine, pks, [(after[:2], e[:2])] * 2, later[:2])
    assert (await run_detection(engine, pks)).n_tested == 0
    async with engine.connect() as conn:
        rows_now = (
            await conn.execute(select(ese_source_state.c.source_pk, ese_source_state.c.last_look))
        ).all()
    assert dict(rows_now) == kept
    await add_epochs(engine, pks, [(after[2:], e[2 : later.size])] * 2, later[2:])
    sizes: list[int] = []

    def counted(*args: Any, **kwargs: Any) -> Any:
        sizes.append(len(args[0]))
        return detect_all(*args, **kwargs)

    monkeypatch.setattr(ese_tracker, "detect_all", counted)
    second = await run_detection(engine, pks)
    assert second.n_tested == 2
    # Two full tests on 75 points; one search of the 70-point earlier curve: the second
    # source's, whose memo could not be read.
    assert sorted(sizes) == [70, 75, 75]
    async with engine.connect() as conn:
        rows = (await conn.execute(select(ese_candidates).order_by(ese_candidates.c.id))).mappings().all()
        memos = (await conn.execute(select(ese_source_state.c.last_look))).scalars().all()
    assert all(LookMemo.from_json(m) is not None for m in memos)  # rewritten by this look
    outcomes = {
        pk: [
            (r["phase"], r["kind"], r["score"], r["false_alarm_probability"])
            for r in rows
            if r["source_pk"] == pk
        ]
        for pk in pks
    }
    assert outcomes[pks[0]] and outcomes[pks[0]] == outcomes[pks[1]]


async def test_a_pass_that_sees_an_ingress_coming_in_looks_again_within_days(engine: AsyncEngine) -> None:
    """ese-drw-3.12: a source whose last points dropped (too few past half depth for the
    one-sided test: ``ese_tracker.ingress_pending``) stores a look PENDING_DAYS transits
    later; a flat one stores none."""
    from dsa110.science.ese_tracker import PENDING_DAYS, transits

    t = 60000.0 + np.arange(120) * 1.0
    e = np.full(t.size, 0.01)
    flat = 1.0 + 0.01 * np.cos(np.arange(t.size) * 2.1)
    dropped = flat.copy()
    dropped[-2:] = 0.6
    pks = await seed_curves(engine, [(dropped, e), (flat, e)], t)
    run = await run_detection(engine, pks)
    assert run.n_tested == 2 and run.alert_pks == []
    async with engine.connect() as conn:
        rows = await conn.execute(select(ese_source_state.c.source_pk, ese_source_state.c.recheck_mjd))
        rechecks = dict(rows.all())
    assert rechecks == {pks[0]: pytest.approx(t[-1] + transits(PENDING_DAYS)), pks[1]: None}


async def test_an_ingress_refused_as_a_fade_after_a_pending_look_is_looked_at_once_more(
    engine: AsyncEngine,
) -> None:
    """ese-drw-3.15: the pending look the job stored (``recheck_mjd``, read back from the
    database) finds the ingress no longer short of core but refused as a fade; the pass
    stores one more look PERSIST_DAYS transits later (``ese_tracker.tested``), not none."""
    from dsa110.science.ese_tracker import PENDING_DAYS, PERSIST_DAYS, transits

    t = 60000.0 + np.arange(129) * 1.0
    e = np.full(t.size, 0.01)
    flat = 1.0 + 0.01 * np.cos(np.arange(t.size) * 2.1)
    falling = flat.copy()
    falling[120:] = 0.4 + 0.6 * np.exp(-(np.arange(9) + 1) / 4.0)  # an exponential fall
    first = 127  # 7 points of it: too little past half depth, pending
    pks = await seed_curves(engine, [(falling[:first], e[:first]), (flat[:first], e[:first])], t[:first])
    await run_detection(engine, pks)

    async def rechecks() -> dict[int, float | None]:
        async with engine.connect() as conn:
            rows = await conn.execute(select(ese_source_state.c.source_pk, ese_source_state.c.recheck_mjd))
            return dict(rows.all())

    assert await rechecks() == {pks[0]: pytest.approx(t[first - 1] + transits(PENDING_DAYS)), pks[1]: None}
    # Two more days of the fall: refused as a fade (nothing found, nothing pending).
    await add_epochs(engine, [pks[0]], [(falling[first:], e[first:])], t[first:])
    second = await run_detection(engine, [pks[0]])
    assert second.n_tested == 1 and second.alert_pks == []
    assert (await rechecks())[pks[0]] == pytest.approx(t[-1] + transits(PERSIST_DAYS))


async def test_enqueue_coalesces_into_the_pending_job(engine: AsyncEngine) -> None:
    first = await enqueue_detection(engine, [3, 1])
    second = await enqueue_detection(engine, [2, 3])
    assert first == second
    from dsa110.db.tables import jobs

    async with engine.connect() as conn:
        params = (await conn.execute(select(jobs.c.params).where(jobs.c.id == first))).scalar_one()
    assert params["source_pks"] == [1, 2, 3]


async def test_concurrent_ingests_add_to_one_pending_job(engine: AsyncEngine) -> None:
    """Six ingests at once, each on its own connection: one pending job holding every
    source (without the enqueuers' lock, PostgreSQL queued several)."""
    from dsa110.db.engine import create_engine
    from dsa110.db.tables import jobs
    from tests.ops.queue_helpers import url_of

    engines = [create_engine(url_of(engine)) for _ in range(6)]
    try:
        ids = await asyncio.gather(*(enqueue_detection(e, [i + 1, 10]) for i, e in enumerate(engines)))
    finally:
        for e in engines:
            await e.dispose()
    assert len(set(ids)) == 1
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(jobs.c.state, jobs.c.params).where(jobs.c.type == "ese-detect"))
        ).all()
    assert [(state, params["source_pks"]) for state, params in rows] == [("pending", [1, 2, 3, 4, 5, 6, 10])]


@pytest.mark.parametrize(
    "params",
    [
        {"source_pks": [0]},
        {"source_pks": "x"},
        {"all": 1},
        {"nope": 1},
        {"source_id": ""},
        {"min_sigma": "x"},
    ],
)
def test_job_parameters_are_checked(params: dict) -> None:
    with pytest.raises(InputError):
        ESE_DETECT.validate(params)


def test_the_legacy_rest_forms_are_accepted() -> None:
    # POST /api/batch/ese-detect: one item for all sources ({}), or one per catalog name.
    assert ESE_DETECT.validate({}) == {"source_pks": [], "all": True}
    assert ESE_DETECT.validate({"source_id": " J1 ", "min_sigma": 5}) == {
        "source_pks": [],
        "all": False,
        "source_id": "J1",
        "min_sigma": 5.0,
    }


async def test_the_job_process_entry_point_runs_a_pass(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dsa110.ops.ese_detect import _main
    from dsa110.ops.queue import kinds

    # serve's job pool loads the plugins: the ese-detect kind is among them.
    assert "dsa110.ops.ese_detect" in kinds.load_plugins([]) and "ese-detect" in kinds.names()
    t = 60000.0 + np.arange(30) * 1.0
    pks = await seed_curves(engine, [(np.ones(t.size), np.full(t.size, 0.01))], t)
    monkeypatch.setenv("DSA110_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("DSA110_EVENTS_URL", "memory://")
    assert await _main([json.dumps({"source_pks": pks})]) == 0
    out = capsys.readouterr().out
    assert '@@result {"n_sources": 1, "n_tested": 1, "n_alerts": 0' in out


async def test_a_forced_pass_keeps_the_one_look_probability(engine: AsyncEngine) -> None:
    # On demand (``force``: one look at the whole curve, as ``detect_ese``) the candidate
    # carries the detector's one-look calibration, not the job's live one.
    rng = np.random.default_rng(3)
    t = 60000.0 + np.arange(200) * 1.0
    dip = (
        1
        - 0.4 * np.exp(-0.5 * ((t - 60100) * FWHM_PER_SIGMA / 30.0) ** 2)
        + 0.02 * rng.standard_normal(t.size)
    )
    pks = await seed_curves(engine, [(dip, np.full(t.size, 0.02))], t)
    await run_detection(engine, pks, force=True)
    async with engine.connect() as conn:
        (cand,) = (await conn.execute(select(ese_candidates))).mappings().all()
    assert cand["false_alarm_probability"] == pytest.approx(false_alarm_probability(cand["score"], "dip"))
    assert cand["red_rms"] is not None and 0.0 <= cand["red_rms"] < QUIET_RED_RMS  # stored by this path too


async def test_a_phase_change_without_a_new_fit_keeps_the_stored_red_rms(engine: AsyncEngine) -> None:
    """An ``ongoing`` candidate long past its window is rejected with the fit it had: its
    ``red_rms`` stays what it was rated with, and a row from before revision 0020 keeps NULL
    (not a made-up 0, which would read as the quiet stratum)."""
    rng = np.random.default_rng(5)
    t = 60000.0 + np.arange(200) * 1.0
    e = np.full(t.size, 0.02)
    pks = await seed_curves(engine, [(1 + 0.02 * rng.standard_normal(t.size), e) for _ in range(2)], t)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        for pk, red_rms in zip(pks, (0.034, None), strict=True):
            await conn.execute(
                insert(ese_candidates).values(
                    source_pk=pk, status="active", score=1.2, significance=6.0, start_mjd=60010.0,
                    end_mjd=60020.0, depth=0.3, baseline_flux_jy=1.0, min_flux_jy=0.7,
                    detector_version=DETECTOR_VERSION, flagged_at=now, updated_at=now, phase="ongoing",
                    kind="ongoing", false_alarm_probability=0.002, red_rms=red_rms,
                )
            )  # fmt: skip
    published: list[tuple[str, dict[str, Any]]] = []
    run = await run_detection(engine, pks, force=True, publish=_recorder(published))
    assert run.new_candidate_pks == [] and len(run.changed_candidate_pks) == 2
    async with engine.connect() as conn:
        rows = (
            (await conn.execute(select(ese_candidates).order_by(ese_candidates.c.source_pk))).mappings().all()
        )
    assert [(r["phase"], r["red_rms"], r["false_alarm_probability"]) for r in rows] == [
        ("rejected", 0.034, 0.002),
        ("rejected", None, 0.002),
    ]
    # The events say so too: the NULL row's fit carries NaN (``_row_detection``) and its
    # event null, never NaN (the bus refuses a payload JSON cannot carry).
    events = sorted((p for _, p in published), key=lambda p: p["source_pk"])
    assert [(e["event"], e["from_phase"], e["phase"], e["kind"], e["red_rms"]) for e in events] == [
        ("rejected", "ongoing", "rejected", "ongoing", 0.034),
        ("rejected", "ongoing", "rejected", "ongoing", None),
    ]
    for _, payload in published:
        json.dumps(payload, allow_nan=False)


def _recorder(into: list[tuple[str, dict[str, Any]]]) -> Any:
    async def publish(channel: str, payload: dict[str, Any]) -> None:
        into.append((channel, payload))

    return publish


async def test_a_new_candidates_event_carries_what_a_subscriber_needs_and_nothing_untyped(
    engine: AsyncEngine,
) -> None:
    """The ``ese.candidate`` event of a detection names the candidate's phase, kind,
    false-alarm probability and red-noise rms as stored, and every key it carries is one
    ``EseCandidatePayload`` declares (what readers of the channel are typed against)."""
    t, flux, err = dip_curve()
    pks = await seed_curves(engine, [(flux, err)], t)
    published: list[tuple[str, dict[str, Any]]] = []
    await run_detection(engine, pks, publish=_recorder(published))
    async with engine.connect() as conn:
        (cand,) = (await conn.execute(select(ese_candidates))).mappings().all()
    ((channel, payload),) = published
    assert channel == ESE_CANDIDATE
    assert (
        payload["event"] == "new" and payload["candidate_pk"] == cand["id"] and payload["status"] == "active"
    )
    assert payload["from_phase"] is None
    for column in ("phase", "kind", "false_alarm_probability", "red_rms", "score", "depth"):
        assert payload[column] == cand[column], column
    assert (payload["phase"], payload["kind"]) == ("confirmed", "dip")
    assert 0.0 <= payload["red_rms"] < QUIET_RED_RMS and 0.0 < payload["false_alarm_probability"] < 0.01
    declared = EseCandidatePayload.__required_keys__ | EseCandidatePayload.__optional_keys__
    assert set(payload) <= declared, set(payload) - declared
    json.dumps(payload, allow_nan=False)


async def test_a_candidate_keeps_the_lowest_false_alarm_probability_it_carried(engine: AsyncEngine) -> None:
    """ese-drw-3.8 (``ese_tracker.carried``): a stored candidate the pass finds again takes
    the new look's fit and score and keeps the lower of its stored and its new live
    probability, so a candidate once rated at 1e-5 stays there when a later look scores it
    lower; one stored at 0.5 takes the new look's."""
    t, flux, err = dip_curve()
    pks = await seed_curves(engine, [(flux, err), (flux, err)], t)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        for pk, fap in zip(pks, (1e-5, 0.5), strict=True):
            await conn.execute(
                insert(ese_candidates).values(
                    source_pk=pk, status="active", score=9.0, significance=40.0, start_mjd=60085.0,
                    end_mjd=60115.0, depth=0.4, baseline_flux_jy=1.0, min_flux_jy=0.6,
                    detector_version=DETECTOR_VERSION, flagged_at=now, updated_at=now, phase="confirmed",
                    kind="dip", false_alarm_probability=fap, red_rms=0.0,
                )
            )  # fmt: skip
    run = await run_detection(engine, pks)
    assert run.n_tested == 2 and run.new_candidate_pks == []
    async with engine.connect() as conn:
        rows = (
            (await conn.execute(select(ese_candidates).order_by(ese_candidates.c.source_pk))).mappings().all()
        )
    assert [r["phase"] for r in rows] == ["confirmed", "confirmed"]
    assert all(r["score"] != 9.0 for r in rows)  # the new look's fit
    new_fap = live_false_alarm_probability(rows[1]["score"], "dip", rows[1]["red_rms"], rows[1]["depth"])
    assert 1e-5 < new_fap < 0.5
    assert [r["false_alarm_probability"] for r in rows] == [1e-5, pytest.approx(new_fap)]
