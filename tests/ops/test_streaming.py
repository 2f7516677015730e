"""The streaming service as a supervised process: groups from dropped subband files, convert jobs, control."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from dsa110.auth.identity import Role
from dsa110.db.tables import groups, jobs, subband_files
from dsa110.events import GROUP_STATE
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import running
from tests.waiting import eventually

GROUP = "2025-10-24T14:00:00"
LATE = "2025-10-24T14:05:00"


def _settings(url: str, root: Path) -> Settings:
    return Settings(
        data_dir=root,
        database_url=url,
        metrics_interval_s=0,
        webhook_poll_s=0,
        job_slots=0,
        streaming_supervise=True,
    )


async def _status(http: httpx.AsyncClient) -> dict[str, Any]:
    return dict((await http.get("/api/streaming/status")).json())


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_dropped_subbands_make_a_group_and_a_convert_job_and_the_service_is_controlled(
    empty_db_url: str, tmp_path: Path
) -> None:
    incoming = tmp_path / "incoming"
    async with running(_settings(empty_db_url, tmp_path)) as live:
        http, engine = live.http, live.engine
        ops = await key_headers(engine, Role.OPERATOR, "ops")
        assert (await _status(http))["running"] is False
        assert (await http.post("/api/streaming/start", json={})).status_code == 401
        bad = await http.post("/api/streaming/start", json={"input_dir": "/etc"}, headers=ops)
        assert bad.status_code in (404, 422) and bad.json()["code"] == "BAD_PATH"
        config = {
            "input_dir": str(incoming),
            "poll_interval": 0.2,
            "late_subband_wait_s": 3.0,
            "min_subbands": 10,
        }
        started = await http.post("/api/streaming/start", json=config, headers=ops)
        assert started.status_code == 200 and started.json()["success"], started.text
        pid = started.json()["pid"]
        assert _alive(pid)
        status = await _status(http)
        assert status["running"] and status["config"]["input_dir"] == str(incoming)
        async with live.app.state.bus.subscribe(GROUP_STATE) as events:
            for sb in range(16):
                (incoming / f"{GROUP}_sb{sb:02d}.hdf5").write_bytes(b"placeholder")
            (incoming / "notes.txt").write_text("not a subband")
            for sb in range(3):  # a group whose other subbands never come
                (incoming / f"{LATE}_sb{sb:02d}.hdf5").write_bytes(b"placeholder")
            seen: list[dict[str, Any]] = []
            async with asyncio.timeout(60):
                async for event in events:
                    seen.append(event.payload)
                    states = {(p["group_id"], p["state"]) for p in seen}
                    if (GROUP, "pending") in states and (LATE, "failed") in states:
                        break
        assert {p["group_id"] for p in seen} == {GROUP, LATE}
        async with engine.connect() as conn:
            made = {r.group_id: r for r in (await conn.execute(select(groups))).all()}
            queued = (await conn.execute(select(jobs))).mappings().all()
            n_files = len((await conn.execute(select(subband_files))).all())
        assert made[GROUP].state == "pending" and made[LATE].state == "failed"
        assert "only 3 of 16 subbands" in made[LATE].error
        assert n_files == 19
        assert len(queued) == 1 and queued[0]["type"] == "convert" and queued[0]["state"] == "pending"
        assert queued[0]["group_pk"] == made[GROUP].id and queued[0]["created_by"] == "streaming"
        assert queued[0]["params"]["uvh5_paths"] == [
            str(incoming / f"{GROUP}_sb{sb:02d}.hdf5") for sb in range(16)
        ]
        metrics = (await http.get("/api/streaming/metrics")).json()
        await eventually(lambda: _metric(http, "convert_jobs_queued", 1), 30)
        assert metrics["queue_stats"]["pending"] == 1 and metrics["queue_stats"]["failed"] == 1
        # A crash: the supervisor starts it again (with back-off) and counts the restart.
        os.kill(pid, signal.SIGKILL)

        async def restarted() -> bool:
            now = await _status(http)
            return bool(now["running"] and now["pid"] not in (None, pid) and now["restarts"] == 1)

        await eventually(restarted, 60)
        assert not _alive(pid)
        # A config change restarts it (a new process with the new config, persisted).
        before = (await _status(http))["pid"]
        changed = await http.post("/api/streaming/config", json={"poll_interval": 0.3}, headers=ops)
        assert changed.status_code == 200 and changed.json()["status"] == "updated"
        after = await _status(http)
        assert after["pid"] != before and after["config"]["poll_interval"] == 0.3
        assert (await http.get("/api/streaming/config")).json()["poll_interval"] == 0.3
        stopped = await http.post("/api/streaming/stop", headers=ops)
        assert stopped.json()["success"] and stopped.json()["pid"] is None
        assert not _alive(after["pid"])
        assert (await http.get("/api/streaming/health")).json()["healthy"] is False


async def _metric(http: httpx.AsyncClient, name: str, value: int) -> bool:
    metrics = (await http.get("/api/streaming/metrics")).json()["metrics"] or {}
    return bool(metrics.get(name) == value)
