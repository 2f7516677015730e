"""ESE candidates end to end through the graph: ingest, detect, review, alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.science.healpix import healpix_index
from dsa110.settings import Settings
from tests.graph.conftest import Graph

START_MJD = 60400.0
DIP_CENTRE_DAY, DIP_SIGMA_DAYS, DIP_DEPTH = 120.0, 12.0, 0.4
N_IMAGES, N_STEADY = 120, 20


async def _sky(engine: AsyncEngine) -> list[str]:
    """120 images over 240 days and 21 sources near (180, +42); the first has an ESE."""
    rng = np.random.default_rng(7)
    ra = np.concatenate([[180.0], 180.0 + rng.uniform(-1, 1, N_STEADY)])
    dec = np.concatenate([[42.0], 42.0 + rng.uniform(-1, 1, N_STEADY)])
    names = [f"NVSS J{i:06d}.0+420000" for i in range(len(ra))]
    now = datetime(2025, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(t.sources),
            [
                {
                    "source_id": n,
                    "ra_deg": r,
                    "dec_deg": d,
                    "healpix": int(healpix_index(r, d)),
                    "catalog_flux_jy": 1.0,
                }
                for n, r, d in zip(names, ra, dec, strict=True)
            ],
        )
        await conn.execute(
            insert(t.images),
            [
                {
                    "path": f"/nowhere/{i}.fits",
                    "type": "5min",
                    "created_at": now + timedelta(days=2 * i),
                    "mid_mjd": START_MJD + 2 * i,
                    "center_ra_deg": 180.0,
                    "center_dec_deg": 42.0,
                }
                for i in range(N_IMAGES)
            ],
        )
    return names


def _fluxes(rng: np.random.Generator, day: float, n: int) -> np.ndarray:
    base = np.linspace(0.4, 2.0, n)
    calibration = 1 + rng.normal(0, 0.03)  # shared by every source of the image
    flux = base * calibration * (1 + rng.normal(0, 0.01, n))
    flux[0] *= 1 - DIP_DEPTH * np.exp(-0.5 * ((day - DIP_CENTRE_DAY) / DIP_SIGMA_DAYS) ** 2)
    return flux


@pytest.fixture
async def ese_graph(engine: AsyncEngine, tmp_path: Path) -> Graph:
    return Graph(engine, Settings(data_dir=tmp_path, database_url=str(engine.url)))


INGEST = """mutation($i: Int!, $m: [MeasurementInput!]!) {
  ingestMeasurements(imageId: $i, measurements: $m, detect: false) { nMeasurements nSources } }"""


async def test_injected_dip_becomes_a_reviewed_candidate(engine: AsyncEngine, ese_graph: Graph) -> None:
    names = await _sky(engine)
    rng = np.random.default_rng(11)
    for i in range(N_IMAGES):
        flux = _fluxes(rng, 2.0 * i, len(names))
        rows = [
            {"sourceId": n, "peakFluxJy": float(f), "peakFluxErrJy": float(0.01 * f)}
            for n, f in zip(names, flux, strict=True)
        ]
        done = await ese_graph.data(INGEST, i=i + 1, m=rows)
        assert done["ingestMeasurements"] == {"nMeasurements": len(names), "nSources": len(names)}

    detected = await ese_graph.data("mutation { detectEse { newCandidates alerts } }")
    assert detected["detectEse"]["newCandidates"] == 1
    listed = await ese_graph.data(
        """{ eseCandidates(filter: {statuses: [ACTIVE]}) { totalCount nodes { candidateId status depth startMjd endMjd
             source { sourceId nEpochs } alerts { alertType severity } } } }"""
    )
    assert listed["eseCandidates"]["totalCount"] == 1
    candidate = listed["eseCandidates"]["nodes"][0]
    assert candidate["source"] == {"sourceId": names[0], "nEpochs": N_IMAGES}
    assert candidate["startMjd"] < START_MJD + DIP_CENTRE_DAY < candidate["endMjd"]
    assert candidate["depth"] == pytest.approx(DIP_DEPTH, abs=0.1)
    assert candidate["alerts"] and candidate["alerts"][0]["alertType"].startswith("ese")

    # ese-drw-3.0's phase, kind and calibrated false-alarm probability; a threshold sweep.
    swept = """query($f: Float!) { eseCandidates(filter: {maxFalseAlarm: $f, phases: [CONFIRMED], kinds: [DIP]}) {
      totalCount nodes { phase kind falseAlarmProbability redNoiseRms } } }"""
    hit = (await ese_graph.data(swept, f=0.01))["eseCandidates"]
    assert (
        hit["totalCount"] == 1
        and hit["nodes"][0]["phase"] == "CONFIRMED"
        and hit["nodes"][0]["kind"] == "DIP"
    )
    fap = hit["nodes"][0]["falseAlarmProbability"]
    assert 0 < fap <= 0.01
    assert hit["nodes"][0]["redNoiseRms"] >= 0.0  # the detection pass stored its fitted red noise
    assert (await ese_graph.data(swept, f=fap * 0.5))["eseCandidates"]["totalCount"] == 0
    bad = await ese_graph.run(swept, f=float("inf"))
    assert bad.errors

    review = """mutation($c: Int!, $s: EseCandidateStatus!) {
      setEseCandidateStatus(candidateId: $c, status: $s, notes: "checked") {
        status statusHistory { fromStatus toStatus changedBy changedAt } } }"""
    cid = candidate["candidateId"]
    await ese_graph.data(review, c=cid, s="INVESTIGATED")
    resolved = await ese_graph.data(review, c=cid, s="RESOLVED")
    history = resolved["setEseCandidateStatus"]["statusHistory"]
    assert [(h["fromStatus"], h["toStatus"]) for h in history] == [
        ("ACTIVE", "INVESTIGATED"),
        ("INVESTIGATED", "RESOLVED"),
    ]
    assert all(h["changedBy"] == "key:test-admin" and h["changedAt"].endswith("Z") for h in history)
    reopened = await ese_graph.run(review, c=cid, s="ACTIVE")
    assert reopened.errors[0].extensions["code"] == "BAD_USER_INPUT"
    alerts = await ese_graph.data(
        "{ alerts(filter: {unresolved: false}) { totalCount nodes { resolvedAt candidate { candidateId } } } }"
    )
    assert alerts["alerts"]["totalCount"] >= 1
    assert all(a["resolvedAt"] for a in alerts["alerts"]["nodes"])


@pytest.mark.parametrize(
    ("image_id", "rows", "code"),
    [
        (1, [{"sourceId": "NVSS J999999.9+999999", "peakFluxJy": 1.0, "peakFluxErrJy": 0.1}], "NOT_FOUND"),
        (999, [{"sourceId": "NVSS J000000.0+420000", "peakFluxJy": 1.0, "peakFluxErrJy": 0.1}], "NOT_FOUND"),
        (
            1,
            [{"sourceId": "NVSS J000000.0+420000", "peakFluxJy": 1.0, "peakFluxErrJy": -0.1}],
            "BAD_USER_INPUT",
        ),
        (
            1,
            [{"sourceId": "NVSS J000000.0+420000", "peakFluxJy": 1.0, "peakFluxErrJy": 0.1, "decDeg": 123.0}],
            "BAD_USER_INPUT",
        ),
    ],
)
async def test_bad_ingest_is_refused_whole(
    engine: AsyncEngine, ese_graph: Graph, image_id: int, rows: list[dict[str, object]], code: str
) -> None:
    await _sky(engine)
    good = {"sourceId": "NVSS J000001.0+420000", "peakFluxJy": 1.0, "peakFluxErrJy": 0.1}
    result = await ese_graph.run(INGEST, i=image_id, m=[good, *rows])
    assert result.errors and result.errors[0].extensions["code"] == code
    counted = await ese_graph.data('{ source(sourceId: "NVSS J000001.0+420000") { nEpochs } }')
    assert counted["source"]["nEpochs"] == 0, "nothing may be written when any row is refused"


async def test_red_noise_rms_is_the_stored_value_and_null_for_an_older_candidate(
    engine: AsyncEngine, ese_graph: Graph
) -> None:
    """``redNoiseRms`` says which false-alarm stratum rated a candidate: two candidates of
    one score differ in probability by it. A candidate stored before it was recorded
    (``red_rms`` NULL, migration 0020) answers null, not an error or a made-up 0."""
    now = datetime(2025, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        (source_pk,) = (
            await conn.execute(
                insert(t.sources)
                .values(source_id="NVSS J000001.0+420000", ra_deg=180.0, dec_deg=42.0,
                        healpix=int(healpix_index(180.0, 42.0)))
                .returning(t.sources.c.id)
            )
        ).one()  # fmt: skip
        common = {
            "source_pk": source_pk, "status": "active", "score": 1.2, "significance": 6.0, "depth": 0.3,
            "baseline_flux_jy": 1.0, "min_flux_jy": 0.7, "flagged_at": now, "updated_at": now,
            "phase": "confirmed", "kind": "dip",
        }  # fmt: skip
        ids = []
        for start, version, extra in (
            (60010.0, "ese-drw-3.5", {"false_alarm_probability": 0.002}),  # before red_rms: no value
            (60100.0, "ese-drw-3.6", {"false_alarm_probability": 0.004, "red_rms": 0.034}),
            (60200.0, "ese-drw-3.6", {"false_alarm_probability": 0.0004, "red_rms": 0.004}),
        ):
            row = {
                **common,
                "start_mjd": start,
                "end_mjd": start + 30.0,
                "detector_version": version,
                **extra,
            }
            result = await conn.execute(
                insert(t.ese_candidates).values(**row).returning(t.ese_candidates.c.id)
            )
            ids.append(int(result.scalar_one()))

    listed = await ese_graph.data(
        "{ eseCandidates(orderBy: FLAGGED_AT) { nodes { candidateId falseAlarmProbability redNoiseRms } } }"
    )
    got = {
        n["candidateId"]: (n["falseAlarmProbability"], n["redNoiseRms"])
        for n in listed["eseCandidates"]["nodes"]
    }
    assert got == {ids[0]: (0.002, None), ids[1]: (0.004, 0.034), ids[2]: (0.0004, 0.004)}
    # The same through the one-candidate root and through the source's list.
    one = await ese_graph.data("query($c: Int!) { eseCandidate(candidateId: $c) { redNoiseRms } }", c=ids[1])
    assert one == {"eseCandidate": {"redNoiseRms": 0.034}}
    old = await ese_graph.data("query($c: Int!) { eseCandidate(candidateId: $c) { redNoiseRms } }", c=ids[0])
    assert old == {"eseCandidate": {"redNoiseRms": None}}
    nested = await ese_graph.data(
        "query($s: String!) { source(sourceId: $s) { eseCandidates { candidateId redNoiseRms } } }",
        s="NVSS J000001.0+420000",
    )
    assert {c["candidateId"]: c["redNoiseRms"] for c in nested["source"]["eseCandidates"]} == {
        ids[0]: None,
        ids[1]: 0.034,
        ids[2]: 0.004,
    }
