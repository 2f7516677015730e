"""Streaming end to end: 16 real subband files dropped in the incoming directory -> group -> convert -> MS;
and the group state a re-run or retried convert job leaves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

import dsa110.ops.stages  # noqa: F401  (registers the pipeline kinds)
from dsa110.auth.identity import Role
from dsa110.db.tables import data_products, groups, jobs, measurement_sets, subband_files
from dsa110.demo.raw import PointSource, RawSpec, simulate_group
from dsa110.ops.stages import convert
from dsa110.ops.stages.common import StageContext
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import running
from tests.waiting import eventually

GROUP = "2025-11-13T12:00:00"


def _is_file(path: str) -> bool:
    return Path(path).is_file()


@pytest.mark.parametrize("backend", ["sqlite"])  # the queue's backends are covered elsewhere
async def test_sixteen_dropped_subband_files_become_a_group_a_convert_job_and_an_ms(
    empty_db_url: str, tmp_path: Path
) -> None:
    staging, incoming = tmp_path / "staging", tmp_path / "incoming"
    incoming.mkdir()
    spec = RawSpec(start_mjd=60992.5, dec_deg=42.0, n_chan=1, n_times=1, n_antennas=4, seed=3)
    files = simulate_group(staging, GROUP, spec, [PointSource(114.6, 42.0, 1.0)])
    assert len(files) == 16
    settings = Settings(
        data_dir=tmp_path,
        database_url=empty_db_url,
        metrics_interval_s=0,
        webhook_poll_s=0,
        job_slots=1,
        streaming_supervise=True,
    )
    async with running(settings) as live:
        http, engine = live.http, live.engine
        ops = await key_headers(engine, Role.OPERATOR, "ops")
        config = {"input_dir": str(incoming), "poll_interval": 0.2, "late_subband_wait_s": 60.0}
        started = await http.post("/api/streaming/start", json=config, headers=ops)
        assert started.status_code == 200, started.text  # the process may still be starting: files wait
        for path in files:
            path.rename(incoming / path.name)

        async def converted() -> bool:
            async with engine.connect() as conn:
                states = (
                    (await conn.execute(select(jobs.c.state).where(jobs.c.type == "convert"))).scalars().all()
                )
            return list(states) in (["done"], ["failed"])

        await eventually(converted, 300)
        async with engine.connect() as conn:
            job = (await conn.execute(select(jobs))).mappings().one()
            group = (await conn.execute(select(groups))).mappings().one()
            ms = (await conn.execute(select(measurement_sets))).mappings().one()
            kinds = sorted((await conn.execute(select(data_products.c.data_type))).scalars().all())
        assert job["state"] == "done", job["error"]
        assert job["created_by"] == "streaming" and job["group_pk"] == group["id"]
        assert group["group_id"] == GROUP and group["state"] == "completed"
        assert _is_file(str(Path(ms["path"]) / "table.dat"))
        assert ms["group_pk"] == group["id"] and ms["stage"] == "converted"
        assert job["result"]["n_channels"] == 16 and job["result"]["n_antennas"] == 4
        assert kinds == ["ms", "raw"]
        await http.post("/api/streaming/stop", headers=ops)


async def _seed_group(engine: AsyncEngine, files: list[Path], state: str, error: str | None) -> None:
    when = datetime(2025, 11, 13, 12, tzinfo=UTC)
    async with engine.begin() as conn:
        pk = (
            await conn.execute(
                insert(groups)
                .values(
                    group_id=GROUP,
                    state=state,
                    error=error,
                    received_at=when,
                    updated_at=when,
                    mid_mjd=60992.5,
                    expected_subbands=len(files),
                    retry_count=0,
                )
                .returning(groups.c.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(subband_files),
            [{"group_pk": pk, "subband_idx": i, "path": str(f)} for i, f in enumerate(files)],
        )


@pytest.mark.parametrize(
    ("state", "error", "retries"),
    [
        ("in_progress", None, 0),  # a lost worker's job, re-queued by the reaper and run again
        ("failed", "conversion failed: disk full", 1),  # a failed job retried (retryJob)
        ("pending", None, 0),
    ],
)
async def test_a_rerun_or_retried_convert_job_completes_its_group(
    empty_db_url: str, engine: AsyncEngine, tmp_path: Path, state: str, error: str | None, retries: int
) -> None:
    spec = RawSpec(start_mjd=60992.5, dec_deg=42.0, n_chan=1, n_times=1, n_antennas=4, seed=3)
    files = simulate_group(tmp_path / "raw", GROUP, spec, [PointSource(114.6, 42.0, 1.0)])
    await _seed_group(engine, files, state, error)
    ctx = StageContext(data_dir=tmp_path, database_url=empty_db_url, job_id=None)
    result = await asyncio.to_thread(convert.run, ctx, {"group_id": GROUP})
    async with engine.connect() as conn:
        group = (await conn.execute(select(groups))).mappings().one()
    assert result["group_id"] == GROUP and _is_file(str(Path(result["path"]) / "table.dat"))
    assert (group["state"], group["error"], group["retry_count"]) == ("completed", None, retries)


async def test_a_completed_group_converted_again_by_hand_keeps_its_state(
    empty_db_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    spec = RawSpec(start_mjd=60992.5, dec_deg=42.0, n_chan=1, n_times=1, n_antennas=4, seed=3)
    files = simulate_group(tmp_path / "raw", GROUP, spec, [PointSource(114.6, 42.0, 1.0)])
    await _seed_group(engine, files, "completed", None)
    ctx = StageContext(data_dir=tmp_path, database_url=empty_db_url, job_id=None)
    await asyncio.to_thread(convert.run, ctx, {"group_id": GROUP})
    async with engine.connect() as conn:
        group = (await conn.execute(select(groups))).mappings().one()
    assert (group["state"], group["error"], group["retry_count"]) == ("completed", None, 0)
