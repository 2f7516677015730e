"""``dsa110-graph serve --workers N``: several processes over one database and one bus.

A real supervisor and its workers on a free port. Each TCP connection is served by one
worker, and ``/healthz`` names the worker's pid, so a test can tell which worker holds a
WebSocket and send a write through another one on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from dsa110.auth.identity import Role
from dsa110.db.engine import create_engine
from server.cli import main
from tests.credentials import key_headers
from tests.databases import REDIS_URL, scratch_database
from tests.live.conftest import WAIT_S, seed
from tests.live.servers import server_process
from tests.waiting import eventually

WORKERS = 2
FAILED_GROUP = "2025-10-24T14:05:00"
MAX_CONNECTIONS = 400
"""Bound on new connections made while looking for a given worker (the kernel spreads them)."""


def test_several_workers_need_a_shared_bus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["serve", "--workers", "2", "--data-dir", str(tmp_path), "--events-url", "memory://"])
    assert refused.value.code == 2
    assert "needs an event bus shared between processes" in capsys.readouterr().err


async def _health_by_worker(base: str, wanted: int) -> dict[int, dict[str, Any]]:
    """``/healthz`` of ``wanted`` distinct workers, one new connection per request."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(MAX_CONNECTIONS):
        async with httpx.AsyncClient(base_url=base, timeout=WAIT_S) as http:
            health = (await http.get("/healthz")).json()
        seen[health["pid"]] = health
        if len(seen) == wanted:
            return seen
    raise AssertionError(f"saw only workers {sorted(seen)}")


@contextlib.asynccontextmanager
async def connection_to_worker_other_than(base: str, pid: int) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose (kept-alive) connection is served by a worker other than ``pid``."""
    for _ in range(MAX_CONNECTIONS):
        http = httpx.AsyncClient(base_url=base, timeout=WAIT_S, limits=httpx.Limits(max_connections=1))
        if (await http.get("/healthz")).json()["pid"] != pid:
            try:
                yield http
            finally:
                await http.aclose()
            return
        await http.aclose()
    raise AssertionError("every connection went to one worker")


@pytest.mark.skipif(not REDIS_URL, reason="DSA110_TEST_REDIS_URL not set")
async def test_a_subscription_on_one_worker_hears_a_write_through_another(tmp_path: Path) -> None:
    assert REDIS_URL is not None
    namespace = f"t{uuid.uuid4().hex[:10]}"
    async with scratch_database("sqlite", tmp_path) as url:
        engine = create_engine(url)
        try:
            await seed(engine, tmp_path)  # real subband files: reprocess queues a job
            operator = await key_headers(engine, Role.OPERATOR)
        finally:
            await engine.dispose()
        # This test is about live updates and the metrics lease: no job pool or stream supervisor.
        sample_often = {
            "DSA110_METRICS_INTERVAL_S": "0.2",
            "DSA110_JOB_SLOTS": "0",
            "DSA110_STREAMING_SUPERVISE": "false",
        }
        async with server_process(
            url, REDIS_URL, tmp_path, workers=WORKERS, namespace=namespace, extra_env=sample_often
        ) as (base, _):
            workers = await _health_by_worker(base, WORKERS)
            assert len(workers) == WORKERS
            # Every worker admits connections through server.http_protocol (caps, header deadline).
            assert all(h["connections"]["open"] >= 1 for h in workers.values())

            async def one_sampler() -> bool:
                states = [h["metrics_sampler"] for h in (await _health_by_worker(base, WORKERS)).values()]
                return sorted(states) == ["sampling", "standby"]

            await eventually(one_sampler, 3 * WAIT_S)  # the host lease elects one sampler (a hang guard)

            ws_url = base.replace("http://", "ws://") + "/graphql"
            async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                await ws.send(json.dumps({"type": "connection_init"}))
                assert json.loads(await ws.recv())["type"] == "connection_ack"
                query = "subscription { pipelineStatus { queue { pending failed } } }"
                await ws.send(json.dumps({"id": "s", "type": "subscribe", "payload": {"query": query}}))
                first = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
                assert first["payload"]["data"]["pipelineStatus"]["queue"] == {"pending": 0, "failed": 1}
                healths = await _health_by_worker(base, WORKERS)
                (ws_worker,) = [pid for pid, h in healths.items() if h["live"]["subscribers"] == 1]

                async with connection_to_worker_other_than(base, ws_worker) as http:
                    mutation = "mutation($g: String!) { reprocessGroup(groupId: $g) { state } }"
                    request = {"query": mutation, "variables": {"g": FAILED_GROUP}}
                    done = (await http.post("/graphql", json=request, headers=operator)).json()
                    assert done == {"data": {"reprocessGroup": {"state": "PENDING"}}}
                    writer = (await http.get("/healthz")).json()["pid"]
                assert writer != ws_worker  # the write went through the other worker...

                async with asyncio.timeout(WAIT_S):
                    while True:
                        message = json.loads(await ws.recv())
                        if message.get("type") == "next":
                            break
                # ...and the subscriber on this one heard it, through the shared bus.
                assert message["payload"]["data"]["pipelineStatus"]["queue"] == {"pending": 1, "failed": 0}
