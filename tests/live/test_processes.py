"""Real uvicorn processes: SSE streams, and events crossing between two servers.

Two servers share one database and one event bus (Redis pub/sub, or PostgreSQL
LISTEN/NOTIFY): a write made through one server reaches a WebSocket subscriber of the
other. Skipped when DSA110_TEST_REDIS_URL / DSA110_TEST_POSTGRES_URL are not set.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from dsa110.auth.identity import Role
from dsa110.db.engine import create_engine
from tests.credentials import key_headers
from tests.databases import POSTGRES_URL, REDIS_URL, scratch_database
from tests.live.conftest import WAIT_S, seed
from tests.live.servers import server_process
from tests.waiting import eventually

FAILED_GROUP = "2025-10-24T14:05:00"
REPROCESS = "mutation($g: String!) { reprocessGroup(groupId: $g) { state retryCount } }"


async def _seeded(url: str, root: Path) -> dict[str, str]:
    """Seed the database (the subband files in ``root``, the servers' data directory, so that
    a reprocess can queue the group's convert job); returns the headers of an operator key."""
    engine = create_engine(url)
    try:
        await seed(engine, root)
        return await key_headers(engine, Role.OPERATOR)
    finally:
        await engine.dispose()


async def _reprocess(base: str, headers: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, headers=headers) as http:
        body = (
            await http.post("/graphql", json={"query": REPROCESS, "variables": {"g": FAILED_GROUP}})
        ).json()
    assert "errors" not in body, body
    return body["data"]["reprocessGroup"]  # type: ignore[no-any-return]


async def _subscribe(ws: ClientConnection, op_id: str, query: str) -> None:
    await ws.send(json.dumps({"type": "connection_init"}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))


async def _next(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_S):
        message = json.loads(await ws.recv())
    assert message["type"] == "next", message
    return message["payload"]["data"]  # type: ignore[no-any-return]


async def test_sse_channels_stream_from_a_real_server(tmp_path: Path) -> None:
    async with scratch_database("sqlite", tmp_path) as url:
        operator = await _seeded(url, tmp_path)
        async with (
            server_process(url, "memory://", tmp_path) as (base, _),
            httpx.AsyncClient(base_url=base, timeout=WAIT_S) as http,
            http.stream("GET", "/api/sse/status") as legacy,
        ):
            assert legacy.status_code == 200
            assert legacy.headers["content-type"].startswith("text/event-stream")
            assert legacy.headers["x-accel-buffering"] == "no"
            lines = legacy.aiter_lines()
            assert (await _sse_json(lines))["type"] == "connected"
            assert (await _sse_json(lines))["data"]["pipeline_status"]["queue"]["failed"] == 1
            body = {"query": "subscription { groupUpdates { groupId state retryCount } }"}
            headers = {"Accept": "text/event-stream"}
            async with http.stream("POST", "/graphql", json=body, headers=headers) as graph:
                assert graph.status_code == 200
                graph_lines = graph.aiter_lines()
                await asyncio.sleep(0.5)  # let the subscription reach the server's bus
                assert await _reprocess(base, operator) == {"state": "PENDING", "retryCount": 1}
                event = await _sse_json(graph_lines, event="next")
                assert event == {
                    "data": {"groupUpdates": {"groupId": FAILED_GROUP, "state": "PENDING", "retryCount": 1}}
                }
            update = await _sse_json(lines)
            while update["type"] != "status_update":
                update = await _sse_json(lines)
            assert update["data"]["pipeline_status"]["queue"]["pending"] == 1


async def _sse_json(lines: Any, event: str | None = None) -> dict[str, Any]:
    """The next ``data:`` payload (of ``event`` when given) from an SSE line stream."""
    current = None
    async with asyncio.timeout(WAIT_S):
        async for line in lines:
            if line.startswith("event: "):
                current = line[len("event: ") :]
            elif line.startswith("data: ") and (event is None or current == event):
                return json.loads(line[len("data: ") :])  # type: ignore[no-any-return]
    raise AssertionError("stream ended")


@pytest.mark.parametrize("bus", ["redis", "postgresql"])
async def test_a_write_through_one_server_reaches_a_subscriber_of_another(tmp_path: Path, bus: str) -> None:
    if bus == "redis" and not REDIS_URL:
        pytest.skip("DSA110_TEST_REDIS_URL not set")
    if not POSTGRES_URL and bus == "postgresql":
        pytest.skip("DSA110_TEST_POSTGRES_URL not set")
    backend = "postgresql" if bus == "postgresql" else "sqlite"
    namespace = f"t{uuid.uuid4().hex[:10]}"  # this test run only
    async with scratch_database(backend, tmp_path) as url:
        operator = await _seeded(url, tmp_path)
        events_url = REDIS_URL if bus == "redis" else url
        assert events_url is not None
        async with (
            server_process(url, events_url, tmp_path, namespace=namespace) as (writer, _),
            server_process(url, events_url, tmp_path, namespace=namespace) as (reader, _),
        ):
            ws_url = reader.replace("http://", "ws://") + "/graphql"
            async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
                await _subscribe(ws, "s", "subscription { pipelineStatus { queue { pending failed } } }")
                assert (await _next(ws))["pipelineStatus"]["queue"] == {"pending": 0, "failed": 1}
                await _reprocess(writer, operator)
                assert (await _next(ws))["pipelineStatus"]["queue"] == {"pending": 1, "failed": 0}


async def test_processes_sharing_a_bus_run_one_metrics_sampler_per_host(tmp_path: Path) -> None:
    if not REDIS_URL:
        pytest.skip("DSA110_TEST_REDIS_URL not set")
    namespace = f"t{uuid.uuid4().hex[:10]}"
    sample_often = {"DSA110_METRICS_INTERVAL_S": "0.2"}
    async with (
        scratch_database("sqlite", tmp_path) as url,
        server_process(url, REDIS_URL, tmp_path, namespace=namespace, extra_env=sample_often) as first,
        server_process(url, REDIS_URL, tmp_path, namespace=namespace, extra_env=sample_often) as second,
        httpx.AsyncClient(timeout=WAIT_S) as http,
    ):
        servers = {first[0]: first[1], second[0]: second[1]}
        states: dict[str, str] = {}

        async def one_samples(bases: list[str]) -> bool:
            for base in bases:
                states[base] = (await http.get(f"{base}/healthz")).json()["metrics_sampler"]
            return sorted(states[b] for b in bases) == sorted(["sampling", "standby"][: len(bases)])

        await eventually(lambda: one_samples(list(servers)), WAIT_S)
        holder = next(base for base in servers if states[base] == "sampling")
        servers[holder].terminate()  # the sampling process goes away...
        await servers.pop(holder).wait()
        await eventually(lambda: one_samples(list(servers)), WAIT_S)  # ...and the other takes over
