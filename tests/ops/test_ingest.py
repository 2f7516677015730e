"""The ingest path on real SQLite and PostgreSQL: running metrics, ESE candidates, lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import alerts, ese_candidates, ese_status_changes, images, jobs, measurements, sources
from dsa110.events.channels import JOB_STATE
from dsa110.ops.ese_detect import run_detection
from dsa110.ops.ingest import (
    CandidateStatusError,
    IngestError,
    MeasurementIn,
    NotFoundError,
    detect_ese,
    ingest_image_measurements,
    normalised_light_curves,
    recompute_source_metrics,
    set_candidate_status,
)
from dsa110.science.healpix import healpix_index
from dsa110.science.variability import batch_metrics


async def _add_sources(engine: AsyncEngine, positions: list[tuple[float, float]]) -> list[int]:
    async with engine.begin() as conn:
        pks = []
        for i, (ra, dec) in enumerate(positions):
            result = await conn.execute(
                insert(sources)
                .values(
                    source_id=f"TEST J{i:06d}",
                    ra_deg=ra,
                    dec_deg=dec,
                    healpix=int(healpix_index(ra, dec)),
                    n_epochs=0,
                    sum_w=0.0,
                    sum_wf=0.0,
                    sum_wf2=0.0,
                    sum_f=0.0,
                    sum_f2=0.0,
                )
                .returning(sources.c.id)
            )
            pks.append(int(result.scalar_one()))
    return pks


async def _add_images(engine: AsyncEngine, mjds: list[float]) -> list[int]:
    async with engine.begin() as conn:
        pks = []
        for i, mjd in enumerate(mjds):
            result = await conn.execute(
                insert(images)
                .values(
                    path=f"/data/images/img{i:05d}.fits",
                    type="image",
                    created_at=datetime.now(UTC),
                    mid_mjd=mjd,
                )
                .returning(images.c.id)
            )
            pks.append(int(result.scalar_one()))
    return pks


class Recorder:
    """A real async publish callable that keeps what it was given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, channel: str, payload: dict[str, Any]) -> None:
        self.events.append((channel, payload))


async def test_ingest_updates_running_metrics_that_match_a_recompute(engine: AsyncEngine) -> None:
    (src,) = await _add_sources(engine, [(150.0, 40.0)])
    mjds = [60000.0, 60001.0, 60003.0, 60020.0, 60021.5]
    fluxes = [1.0, 1.2, 0.9, 2.0, 1.1]
    errs = [0.01, 0.02, 0.01, 0.05, 0.01]
    imgs = await _add_images(engine, mjds)
    bus = Recorder()
    # Ingest out of time order: the pair window makes the maxima order-independent.
    for i in [3, 0, 4, 1, 2]:
        result = await ingest_image_measurements(
            engine,
            imgs[i],
            [{"source_pk": src, "peak_flux_jy": fluxes[i], "peak_flux_err_jy": errs[i]}],
            publish=bus,
            detect=False,
        )
        assert result.n_measurements == 1 and result.source_pks == (src,)
    expected = batch_metrics(fluxes, errs, mjds)
    async with engine.connect() as conn:
        row = (await conn.execute(select(sources).where(sources.c.id == src))).mappings().one()
        n_img = (
            await conn.execute(select(images.c.n_measurements).where(images.c.id == imgs[0]))
        ).scalar_one()
    assert n_img == 1
    assert row["n_epochs"] == 5
    for name in ("mean_flux_jy", "v", "eta", "chi2_nu", "sigma_deviation", "vs_abs_max", "m_abs_max"):
        assert row[name] == pytest.approx(getattr(expected, name), rel=1e-9), name
    assert row["m_abs_max"] > 0
    assert (row["first_mjd"], row["last_mjd"]) == (60000.0, 60021.5)
    assert [c for c, _ in bus.events] == ["measurements.added"] * 5
    assert bus.events[0][1]["image_pk"] == imgs[3]

    assert await recompute_source_metrics(engine, [src]) == 1
    async with engine.connect() as conn:
        again = (await conn.execute(select(sources).where(sources.c.id == src))).mappings().one()
    for name in ("eta", "v", "sigma_deviation", "m_abs_max", "sum_wf2"):
        assert again[name] == pytest.approx(row[name], rel=1e-9)


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"source_pk": 1, "peak_flux_jy": float("nan"), "peak_flux_err_jy": 0.1}], "finite"),
        ([{"source_pk": 1, "peak_flux_jy": 1.0, "peak_flux_err_jy": 0.0}], "> 0"),
        # Finite but beyond any sky: the source's running sums would overflow for good.
        ([{"source_pk": 1, "peak_flux_jy": 1e308, "peak_flux_err_jy": 1.0}], "peak_flux_jy must be within"),
        ([{"source_pk": 1, "peak_flux_jy": 1.0, "peak_flux_err_jy": 1e-308}], "at least"),
        ([{"source_pk": 1, "peak_flux_jy": 1.0, "peak_flux_err_jy": 1e9}], "peak_flux_err_jy must be within"),
        (
            [{"source_pk": 1, "peak_flux_jy": 1.0, "peak_flux_err_jy": 0.1, "int_flux_jy": -1e12}],
            "int_flux_jy",
        ),
        ([{"source_pk": 1, "peak_flux_jy": "1.0", "peak_flux_err_jy": 0.1}], "number"),
        ([{"source_pk": True, "peak_flux_jy": 1.0, "peak_flux_err_jy": 0.1}], "positive integer"),
        ([{"source_pk": 1, "peak_flux_jy": 1.0}], "required"),
        ([{"source_pk": 1, "peak_flux_jy": 1.0, "peak_flux_err_jy": 0.1, "evil": "x"}], "unknown fields"),
        ([{"source_pk": 1, "peak_flux_jy": 1.0, "peak_flux_err_jy": 0.1, "dec_deg": 91.0}], "dec_deg"),
        ([{"source_pk": 1, "peak_flux_jy": 1.0, "peak_flux_err_jy": 0.1}] * 2, "twice"),
        (["not a row"], "mapping"),
        ("not a list", "list"),
        ([{"source_pk": 999, "peak_flux_jy": 1.0, "peak_flux_err_jy": 0.1}], "unknown source_pk"),
    ],
)
async def test_bad_rows_are_refused_whole_and_nothing_is_written(
    engine: AsyncEngine, rows: Any, message: str
) -> None:
    (src,) = await _add_sources(engine, [(10.0, -30.0)])
    (img,) = await _add_images(engine, [60000.0])
    good = {"source_pk": src, "peak_flux_jy": 1.0, "peak_flux_err_jy": 0.1}
    # Each bad row rides behind a good one: the good one must not be written either.
    batch = [good, *rows] if isinstance(rows, list) and all(isinstance(r, dict) for r in rows) else rows
    with pytest.raises(IngestError, match=message):
        await ingest_image_measurements(engine, img, batch, detect=False)
    assert await _count(engine, measurements) == 0
    async with engine.connect() as conn:
        assert (await conn.execute(select(sources.c.n_epochs).where(sources.c.id == src))).scalar_one() == 0


async def test_unknown_image_duplicate_measurement_and_oversized_batch(engine: AsyncEngine) -> None:
    (src,) = await _add_sources(engine, [(10.0, -30.0)])
    (img,) = await _add_images(engine, [60000.0])
    row = MeasurementIn(source_pk=src, peak_flux_jy=1.0, peak_flux_err_jy=0.1)
    with pytest.raises(NotFoundError):
        await ingest_image_measurements(engine, img + 100, [row], detect=False)
    await ingest_image_measurements(engine, img, [row], detect=False)
    with pytest.raises(IngestError, match="already have a measurement"):
        await ingest_image_measurements(engine, img, [row], detect=False)
    with pytest.raises(IngestError, match="at most"):
        await ingest_image_measurements(engine, img, [row] * 200_001, detect=False)
    assert await _count(engine, measurements) == 1
    empty = await ingest_image_measurements(engine, img, [], detect=False)
    assert empty.n_measurements == 0


def _field_light_curves(seed: int, mjds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """12 steady references, one steady target, one 30% ESE (FWHM 40 d at day 120)."""
    rng = np.random.default_rng(seed)
    gains = 1 + 0.03 * rng.standard_normal(mjds.size)
    base = np.array([0.5 + 0.05 * i for i in range(12)] + [0.2, 0.2])
    shape = np.ones((base.size, mjds.size))
    shape[13] = 1 - 0.3 * np.exp(-0.5 * ((mjds - mjds[0] - 120) * 2.3548 / 40.0) ** 2)
    err = np.repeat((base / 100.0)[:, None], mjds.size, axis=1)
    flux = base[:, None] * shape * gains * (1 + 0.005 * rng.standard_normal(shape.shape))
    return flux + err * rng.standard_normal(shape.shape), err


async def _ingest_field(engine: AsyncEngine, publish: Recorder | None = None) -> tuple[list[int], list[int]]:
    mjds = 60000.0 + np.arange(0, 240, 1.5)
    flux, err = _field_light_curves(7, mjds)
    pks = await _add_sources(engine, [(150.0 + 0.05 * i, 40.0 + 0.03 * i) for i in range(flux.shape[0])])
    imgs = await _add_images(engine, mjds.tolist())
    for j, img in enumerate(imgs):
        rows = [
            MeasurementIn(source_pk=pk, peak_flux_jy=float(flux[i, j]), peak_flux_err_jy=float(err[i, j]))
            for i, pk in enumerate(pks)
        ]
        last = j == len(imgs) - 1
        result = await ingest_image_measurements(
            engine, img, rows, detect=last, publish=publish if last else None
        )
    # Ingest queues detection (the ``ese-detect`` job); the test runs the job's pass inline.
    assert result.detection is None and result.detection_job_id is not None
    async with engine.connect() as conn:
        job = (await conn.execute(select(jobs).where(jobs.c.id == result.detection_job_id))).mappings().one()
    assert job["type"] == "ese-detect" and job["state"] == "pending" and job["params"]["source_pks"] == pks
    await run_detection(engine, job["params"]["source_pks"], publish=publish)
    return pks, imgs


async def test_an_ese_becomes_one_candidate_with_an_alert(engine: AsyncEngine) -> None:
    bus = Recorder()
    pks, _ = await _ingest_field(engine, bus)
    async with engine.connect() as conn:
        cands = (await conn.execute(select(ese_candidates))).mappings().all()
        alert_rows = (await conn.execute(select(alerts))).mappings().all()
    assert [c["source_pk"] for c in cands] == [pks[13]]
    cand = cands[0]
    assert cand["status"] == "active"
    assert cand["depth"] == pytest.approx(0.3, abs=0.08)
    assert cand["start_mjd"] < 60120 < cand["end_mjd"]
    assert cand["baseline_flux_jy"] == pytest.approx(0.2, rel=0.1)
    assert cand["min_flux_jy"] < cand["baseline_flux_jy"]
    assert cand["detector_version"].startswith("ese-")
    assert cand["score"] >= 1 and cand["significance"] > 0
    assert [(a["candidate_pk"], a["alert_type"], a["resolved_at"]) for a in alert_rows] == [
        (cand["id"], "ese_candidate", None)
    ]
    channels = [c for c, _ in bus.events]
    assert channels == ["measurements.added", JOB_STATE, "ese.candidate"]
    assert bus.events[2][1]["candidate_pk"] == cand["id"] and bus.events[2][1]["event"] == "new"
    assert cand["phase"] == "confirmed" and cand["kind"] == "dip"

    # On demand again: the same event updates the candidate, no new candidate or alert.
    again = await detect_ese(engine)
    assert again.new_candidate_pks == () and again.updated_candidate_pks == (cand["id"],)
    assert await _count(engine, alerts) == 1

    # The normalised light curve removes the shared gain: the steady target is flat.
    curves = await normalised_light_curves(engine, [pks[12]])
    lc = curves[pks[12]]
    raw = np.asarray(lc.flux_jy)
    norm = np.asarray(lc.norm_flux_jy)
    assert all(lc.corrected) and lc.n_references >= 3
    assert np.std(norm) / np.mean(norm) < 0.5 * np.std(raw) / np.mean(raw)


async def test_candidate_lifecycle(engine: AsyncEngine) -> None:
    pks, _ = await _ingest_field(engine)
    async with engine.connect() as conn:
        cand_pk = (await conn.execute(select(ese_candidates.c.id))).scalar_one()
    bus = Recorder()
    with pytest.raises(CandidateStatusError, match="from active to resolved"):
        await set_candidate_status(engine, cand_pk, "resolved", "alice")
    with pytest.raises(CandidateStatusError, match="unknown status"):
        await set_candidate_status(engine, cand_pk, "gone", "alice")
    with pytest.raises(CandidateStatusError, match="changed_by"):
        await set_candidate_status(engine, cand_pk, "investigated", "  ")
    with pytest.raises(NotFoundError):
        await set_candidate_status(engine, cand_pk + 1000, "investigated", "alice")
    row = await set_candidate_status(engine, cand_pk, "investigated", "alice", "looks U-shaped", publish=bus)
    assert (
        row["status"] == "investigated" and row["changed_by"] == "alice" and row["notes"] == "looks U-shaped"
    )
    row = await set_candidate_status(engine, cand_pk, "dismissed", "bob", "gravitational lens?")
    with pytest.raises(CandidateStatusError, match="final state"):
        await set_candidate_status(engine, cand_pk, "active", "bob")
    async with engine.connect() as conn:
        changes = (
            await conn.execute(
                select(
                    ese_status_changes.c.from_status,
                    ese_status_changes.c.to_status,
                    ese_status_changes.c.changed_by,
                ).order_by(ese_status_changes.c.id)
            )
        ).all()
        resolved = (await conn.execute(select(alerts.c.resolved_at))).scalars().all()
    assert [tuple(c) for c in changes] == [
        ("active", "investigated", "alice"),
        ("investigated", "dismissed", "bob"),
    ]
    assert all(r is not None and r.tzinfo is not None for r in resolved)
    assert bus.events == [
        (
            "ese.candidate",
            {
                "event": "status_changed",
                "candidate_pk": cand_pk,
                "source_pk": pks[13],
                "from_status": "active",
                "status": "investigated",
                "changed_by": "alice",
            },
        )
    ]
    # A dismissed event stays dismissed when detection runs again.
    result = await detect_ese(engine, [pks[13]])
    assert result.new_candidate_pks == () and await _count(engine, ese_candidates) == 1
    assert result.n_sources == 1


async def test_a_large_ingest_leaves_the_sources_all_visible_on_postgresql(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """After a bulk ingest (``ANALYZE_AFTER_ROWS``) and the ``db-maintain`` job it queued,
    every page of ``sources`` is all-visible again, so filtered counts stay index-only scans:
    the ingest rewrote every measured source, and PostgreSQL fell back to a sequential scan
    until a vacuum (issue 11). The vacuum runs in the job, not while the ingest caller waits."""
    from dsa110.ops.ingest.transaction import ANALYZE_AFTER_ROWS
    from dsa110.ops.maintenance import KIND
    from tests.ops.queue_helpers import in_process_worker, job_row
    from tests.waiting import eventually

    if engine.dialect.name != "postgresql":
        pytest.skip("the visibility map is PostgreSQL's")
    n = ANALYZE_AFTER_ROWS
    async with engine.begin() as conn:
        await conn.execute(
            insert(sources),
            [
                {"source_id": f"VM J{i:06d}", "ra_deg": 1.0, "dec_deg": 2.0, "healpix": i, "n_epochs": 0}
                for i in range(n)
            ],
        )
        source_pks = list((await conn.execute(select(sources.c.id).order_by(sources.c.id))).scalars())
    (image_pk,) = await _add_images(engine, [60000.0])
    rows = [MeasurementIn(source_pk=pk, peak_flux_jy=0.05, peak_flux_err_jy=0.002) for pk in source_pks]
    await ingest_image_measurements(engine, image_pk, rows, detect=False)
    async with engine.connect() as conn:
        queued = (
            await conn.execute(select(jobs.c.id, jobs.c.state, jobs.c.params).where(jobs.c.type == KIND))
        ).all()
    assert [state for _, state, _ in queued] == ["pending"]
    # and the stored light-curve normalisation the detection after each ingest rewrites
    assert queued[0][2] == {"tables": ["image_norm_factors", "measurements", "norm_cells", "sources"]}
    async with in_process_worker(engine, tmp_path):

        async def finished() -> bool:
            return (await job_row(engine, queued[0][0]))["state"] in ("done", "failed")

        await eventually(finished, timeout_s=120.0)
    assert (await job_row(engine, queued[0][0]))["state"] == "done"
    async with engine.connect() as conn:
        pages, visible = (
            await conn.exec_driver_sql(
                "SELECT relpages, relallvisible FROM pg_class WHERE relname = 'sources'"
            )
        ).one()
    assert pages > 0 and visible == pages


async def test_a_failed_statistics_refresh_leaves_a_committed_ingest_answered(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planner statistics are refreshed after the commit, the event and the detection job:
    when that refresh fails (a lock held past its wait), the ingest still answers, its rows
    stay, and subscribers and the ESE job still hear of it, so no client retries a committed
    ingest and no image is left undetected."""
    from sqlalchemy.exc import OperationalError

    from dsa110.ops.ingest import transaction

    async def locked(*_: Any, **__: Any) -> None:
        raise OperationalError("ANALYZE sources", {}, Exception("database is locked"))

    monkeypatch.setattr(transaction, "analyze", locked)
    monkeypatch.setattr(transaction, "enqueue_maintenance", locked)  # PostgreSQL queues the VACUUM
    monkeypatch.setattr(transaction, "ANALYZE_AFTER_ROWS", 1)
    (src,) = await _add_sources(engine, [(150.0, 40.0)])
    (img,) = await _add_images(engine, [60000.0])
    bus = Recorder()
    result = await ingest_image_measurements(
        engine, img, [{"source_pk": src, "peak_flux_jy": 1.0, "peak_flux_err_jy": 0.01}], publish=bus
    )
    assert result.source_pks == (src,) and result.detection_job_id is not None
    assert await _count(engine, measurements) == 1
    assert [channel for channel, _ in bus.events].count("measurements.added") == 1
