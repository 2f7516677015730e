"""The streaming service as a supervised process: groups from dropped subband files, convert jobs, control."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from dsa110.auth.identity import Role
from dsa110.db.tables import groups, jobs, subband_files
from dsa110.events import GROUP_STATE
from dsa110.ops.streaming import service
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import running
from tests.waiting import eventually

GROUP = "2025-10-24T14:00:00"
LATE = "2025-10-24T14:05:00"
HTTP_POLL_S = 0.2
"""Between status requests while waiting: each is a GraphQL query on the server's loop."""


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
        # The call waits a bounded time for the process; on a loaded machine it may answer
        # "requested" (not up yet), which is the API's documented answer, not a failure.
        assert started.status_code == 200 and started.json()["status"] in ("started", "requested")
        await eventually(lambda: _running(http), 60, HTTP_POLL_S)
        pid = (await _status(http))["pid"]  # written by the process's own heartbeat
        # Starting a running service with its own config is no restart: the same process.
        again = await http.post("/api/streaming/start", json=config, headers=ops)
        assert again.json()["success"] and again.json()["status"] == "started", again.text
        assert again.json()["pid"] == pid and _alive(pid)
        assert (await _status(http))["config"]["input_dir"] == str(incoming)
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

        await eventually(restarted, 60, HTTP_POLL_S)
        assert not _alive(pid)
        # A config change restarts it (a new process with the new config, persisted).
        before = (await _status(http))["pid"]
        changed = await http.post("/api/streaming/config", json={"poll_interval": 0.3}, headers=ops)
        assert changed.status_code == 200 and changed.json()["status"] == "updated"

        async def replaced() -> bool:
            now = await _status(http)
            return bool(now["running"] and now["pid"] not in (None, before))

        await eventually(replaced, 60, HTTP_POLL_S)
        after = await _status(http)
        # A restart for the config, not a crash's (that would count a second restart).
        assert after["restarts"] == 1 and after["config"]["poll_interval"] == 0.3
        assert after["pid"] not in (None, before) and not _alive(before)
        assert (await http.get("/api/streaming/config")).json()["poll_interval"] == 0.3
        stopped = await http.post("/api/streaming/stop", headers=ops)
        assert stopped.status_code == 200 and stopped.json()["status"] in ("stopped", "requested")

        async def down() -> bool:
            return (await _status(http))["pid"] is None and not _alive(after["pid"])

        await eventually(down, 60, HTTP_POLL_S)
        assert (await http.get("/api/streaming/health")).json()["healthy"] is False


async def _running(http: httpx.AsyncClient) -> bool:
    return bool((await _status(http))["running"])


async def _metric(http: httpx.AsyncClient, name: str, value: int) -> bool:
    metrics = (await http.get("/api/streaming/metrics")).json()["metrics"] or {}
    return bool(metrics.get(name) == value)


def test_the_streaming_process_starts_without_astropy() -> None:
    """What the process imports is what an operator's start call waits for (its bounded wait,
    15 s by default, on a machine that may be busy). The watcher needs no astropy: importing
    it (through the engine's ``dsa110.db.sky``) cost 1.5 s of its 2.7 s start-up CPU."""
    probe = (
        "import sys, dsa110.ops.streaming.__main__, dsa110.ops.streaming.watcher; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('astropy', 'astropy_healpix')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


async def test_a_restart_is_not_reported_done_while_the_old_process_still_reports(
    empty_db_url: str, tmp_path: Path
) -> None:
    """The control answers read the process's generation, not only that one is up: the old
    process keeps reporting until the supervisor stops it, and "restarted successfully"
    then was not true. Rows are written as the supervisor and the process write them (no
    supervisor runs here, so nothing moves but what the test writes)."""
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(settings) as live:
        http, engine = live.http, live.engine
        ops = await key_headers(engine, Role.OPERATOR, "ops")
        generation = int((await service.request(engine, settings, desired=service.RUNNING))["generation"])

        async def report(running_generation: int) -> None:
            now = datetime.now(UTC)
            await service.record(
                engine,
                pid=os.getpid(),
                heartbeat_at=now,
                running_generation=running_generation,
                supervisor_at=now,
            )

        async def current() -> dict[str, Any]:
            query = "{ streamingService { running current } }"
            body: dict[str, Any] = (await http.post("/graphql", json={"query": query})).json()
            return dict(body["data"]["streamingService"])

        await report(generation)
        assert await current() == {"running": True, "current": True}
        restarted = (await http.post("/api/streaming/restart?wait=0", headers=ops)).json()
        assert restarted["running"] is True and restarted["success"] is False
        assert restarted["status"] == "requested"
        assert await current() == {"running": True, "current": False}  # GraphQL reads it the same way
        changed = await http.post("/api/streaming/config?wait=0", json={"poll_interval": 1.5}, headers=ops)
        assert changed.json()["message"].endswith("the new process is not up yet")
        await report(generation + 2)  # the process of the restart and the config change reports
        started = (await http.post("/api/streaming/start?wait=0", headers=ops)).json()
        assert started["success"] is True and started["status"] == "started"
        changed = await http.post("/api/streaming/config?wait=0", json={"poll_interval": 1.5}, headers=ops)
        assert changed.json()["message"].endswith("the service runs with it")
        stopped = (await http.post("/api/streaming/stop?wait=0", headers=ops)).json()
        assert stopped["success"] is False and stopped["status"] == "requested"  # its pid is still there
        await service.record(engine, pid=None, heartbeat_at=None)
        stopped = (await http.post("/api/streaming/stop?wait=0", headers=ops)).json()
        assert stopped["success"] is True and stopped["status"] == "stopped"
