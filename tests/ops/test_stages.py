"""The pipeline stages on tiny simulated data: one workflow end to end (reused), cancel, Dask.

CASA runs here, so the set is kept small (see ``stage_data``): one workflow job whose
outputs every assertion reads, one cancelled CASA job, the workflow itself on a Dask LocalCluster.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

import dsa110.ops.stages  # noqa: F401  (registers the pipeline kinds)
from dsa110.db.engine import create_engine
from dsa110.db.tables import (
    cal_tables,
    data_lineage,
    data_products,
    images,
    measurement_sets,
    measurements,
    sources,
)
from dsa110.ops.queue import store
from dsa110.ops.stages.tiny import INJECTED_JY, TinyData, make_tiny_data
from dsa110.science.healpix import healpix_index
from tests.databases import scratch_database
from tests.ops.queue_helpers import in_process_worker, job_row, log_lines
from tests.waiting import eventually

pytestmark = pytest.mark.skipif(
    __import__("importlib").util.find_spec("casatasks") is None, reason="CASA is not installed"
)
CASA_JOB_S = 600.0


@dataclass
class Ran:
    engine: AsyncEngine
    root: Path
    data: TinyData
    job: dict[str, Any]
    source_pk: int


def _is_file(path: str) -> bool:
    return Path(path).is_file()


def _is_dir(path: str) -> bool:
    return Path(path).is_dir()


async def _state(engine: AsyncEngine, job_id: int, *states: str) -> bool:
    return (await job_row(engine, job_id))["state"] in states


@contextlib.contextmanager
def _local_cluster() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    try:
        yield str(cluster.scheduler_address)
    finally:
        cluster.close()


@pytest.fixture(scope="module")
async def ran(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ran]:
    root = tmp_path_factory.mktemp("stages")
    data = make_tiny_data(root / "incoming")
    async with scratch_database("sqlite", root) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                pk = (
                    await conn.execute(
                        sources.insert()
                        .values(
                            source_id="INJECTED",
                            ra_deg=data.source_ra_deg,
                            dec_deg=data.source_dec_deg,
                            healpix=int(healpix_index(data.source_ra_deg, data.source_dec_deg)),
                            catalog_flux_jy=INJECTED_JY,
                        )
                        .returning(sources.c.id)
                    )
                ).scalar_one()
            job = await store.submit(engine, "workflow", data.workflow_params())
            # The workflow runs on the Dask executor (a LocalCluster), as on a cluster; the
            # image test below runs a stage on the local executor.
            from dsa110.ops.queue.dask_executor import DaskExecutor

            with _local_cluster() as scheduler:
                async with in_process_worker(engine, root, DaskExecutor(scheduler), slots=1, lease_s=60.0):
                    await eventually(lambda: _state(engine, job["id"], "done", "failed"), CASA_JOB_S)
            yield Ran(engine, root, data, await job_row(engine, job["id"]), int(pk))
        finally:
            await engine.dispose()


async def test_the_workflow_recovers_the_injected_flux_and_records_every_step(ran: Ran) -> None:
    job = ran.job
    assert job["state"] == "done", (job["error"], (await log_lines(ran.engine, job["id"]))[-30:])
    assert job["executor"] == "dask"
    steps = {s["name"]: s for s in job["result"]["steps"]}
    assert list(steps) == ["convert", "convert-calibrator", "calibrate", "apply", "image", "photometry"]
    assert all(s["state"] == "done" and s["seconds"] > 0 for s in steps.values())
    assert job["progress"] == 1.0
    async with ran.engine.connect() as conn:
        measured = (
            (await conn.execute(select(measurements).where(measurements.c.source_pk == ran.source_pk)))
            .mappings()
            .one()
        )
        image = (await conn.execute(select(images))).mappings().one()
        mss = (
            (await conn.execute(select(measurement_sets).order_by(measurement_sets.c.path))).mappings().all()
        )
        tables = (await conn.execute(select(cal_tables).order_by(cal_tables.c.order_index))).mappings().all()
        source = (await conn.execute(select(sources).where(sources.c.id == ran.source_pk))).mappings().one()
    ratio = measured["peak_flux_jy"] / INJECTED_JY
    assert abs(ratio - 1) <= 0.05, ratio
    assert measured["snr"] > 50 and source["n_epochs"] == 1
    # The image: a real FITS file with its WCS, beam and noise.
    assert _is_file(image["path"]) and image["pbcor"] and image["n_measurements"] == 1
    assert 100 < image["beam_major_arcsec"] < 2000 and image["noise_jy"] > 0 and image["imsize_x"] == 64
    assert image["cellsize_arcsec"] == pytest.approx(60.0)
    assert [m["stage"] for m in mss] == ["converted", "imaged"]  # the calibrator MS, the target MS
    assert mss[1]["cal_applied"] and image["ms_pk"] == mss[1]["id"]
    assert [t["table_type"] for t in tables] == ["BP", "GP"] and all(t["status"] == "active" for t in tables)
    assert all(_is_dir(t["path"]) and t["source_ms_pk"] == mss[0]["id"] for t in tables)


async def test_the_workflow_registers_products_with_their_lineage(ran: Ran) -> None:
    async with ran.engine.connect() as conn:
        products = {r.id: r for r in (await conn.execute(select(data_products))).all()}
        edges = (await conn.execute(select(data_lineage))).all()
    by_id = {p.data_id: p for p in products.values()}
    types = sorted(p.data_type for p in products.values())
    assert types == ["calib_ms", "caltable", "caltable", "image", "ms", "ms", "raw", "raw"]
    pairs = {(products[e.parent_pk].data_type, products[e.child_pk].data_type, e.relationship) for e in edges}
    assert ("raw", "ms", "derived_from") in pairs and ("ms", "caltable", "derived_from") in pairs
    assert ("ms", "calib_ms", "derived_from") in pairs and (
        "caltable",
        "calib_ms",
        "calibrated_with",
    ) in pairs
    assert ("calib_ms", "image", "derived_from") in pairs and (
        "caltable",
        "image",
        "calibrated_with",
    ) in pairs
    assert all(p.status == "staging" for p in by_id.values())
    lines = await log_lines(ran.engine, ran.job["id"])
    assert any(line.startswith("[workflow] convert=done, convert-calibrator=running") for line in lines)
    assert any(line.startswith("[calibrate]") for line in lines)  # the steps' own (CASA) output


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for proc in psutil.process_iter(["pid"]):
        with contextlib.suppress(psutil.Error, OSError):
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc.pid)
    return alive


async def test_cancelling_a_running_casa_job_leaves_no_process_of_it(ran: Ran) -> None:
    ms = ran.data.target[0]  # any input; the MS made by the workflow is what is imaged
    ms_path = str(ran.root / "ms" / (Path(ms).name.split("_sb")[0] + ".ms"))
    job = await store.submit(
        ran.engine,
        "image",
        {"ms_path": ms_path, "imsize": 2048, "cell_arcsec": 5.0, "niter": 100000, "photometry": False},
    )
    async with in_process_worker(ran.engine, ran.root, slots=1, lease_s=60.0):

        async def in_tclean() -> bool:
            return any("tclean 2048x2048" in line for line in await log_lines(ran.engine, job["id"]))

        await eventually(in_tclean, CASA_JOB_S)
        running = await job_row(ran.engine, job["id"])
        pgid = int(running["process_group"])
        assert _group_alive(pgid)
        await store.request_cancel(ran.engine, job["id"], "key:ops")
        await eventually(lambda: not _group_alive(pgid), 5.0)
        await eventually(lambda: _state(ran.engine, job["id"], "cancelled"), 30)


async def test_a_casa_stage_runs_the_same_on_the_local_executor(ran: Ran) -> None:
    out = ran.root / "dask-images"
    ms_path = str(ran.root / "ms" / (Path(ran.data.target[0]).name.split("_sb")[0] + ".ms"))
    job = await store.submit(
        ran.engine,
        "image",
        {
            "ms_path": ms_path,
            "imsize": 64,
            "cell_arcsec": 60.0,
            "niter": 200,
            "photometry": False,
            "output_dir": str(out),
        },
    )
    async with in_process_worker(ran.engine, ran.root, slots=1, lease_s=60.0):
        await eventually(lambda: _state(ran.engine, job["id"], "done", "failed"), CASA_JOB_S)
    row = await job_row(ran.engine, job["id"])
    assert row["state"] == "done" and row["executor"] == "local", row["error"]
    assert Path(row["result"]["image_path"]).parent == out
    assert row["result"]["peak_jy"] == pytest.approx(INJECTED_JY, rel=0.05)
    assert np.isfinite(row["result"]["noise_jy"])


async def test_a_mosaic_job_co_adds_the_images_of_a_time_range(ran: Ran) -> None:
    from astropy.io import fits

    from dsa110.db.tables import mosaic_images, mosaics

    job = await store.submit(
        ran.engine, "mosaic", {"start_mjd": 60992.4, "end_mjd": 60992.6, "name": "mosaic_test"}
    )
    async with in_process_worker(ran.engine, ran.root, slots=1, lease_s=60.0):
        await eventually(lambda: _state(ran.engine, job["id"], "done", "failed"), CASA_JOB_S)
    row = await job_row(ran.engine, job["id"])
    assert row["state"] == "done", row["error"]
    async with ran.engine.connect() as conn:
        mosaic = (await conn.execute(select(mosaics))).mappings().one()
        members = (await conn.execute(select(mosaic_images))).all()
        product = (
            (await conn.execute(select(data_products).where(data_products.c.mosaic_pk == mosaic["id"])))
            .mappings()
            .one()
        )
    # The workflow's image, and the Dask test's image of the same MS if it ran first.
    assert mosaic["name"] == "mosaic_test" and mosaic["n_images"] == len(members) >= 1
    assert mosaic["status"] == "completed" and product["data_type"] == "mosaic"
    with fits.open(mosaic["path"]) as hdus:
        data = hdus[0].data
        assert hdus[0].header["NIMAGES"] == len(members)
    assert np.nanmax(data) == pytest.approx(INJECTED_JY, rel=0.05)


def test_the_job_environment_check_imports_casa_in_a_subprocess(ran: Ran) -> None:
    import sys

    from dsa110.ops.stages import casa_check

    assert casa_check(ran.root) == (True, None)
    assert "casatools" not in sys.modules and (ran.root / ".casa" / "casasiteconfig.py").is_file()
