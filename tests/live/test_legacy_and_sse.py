"""Legacy /api/ws/status and /api/sse/status, GraphQL over SSE, and clean teardown."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest

from dsa110.auth.identity import Role
from dsa110.events import ESE_CANDIDATE
from dsa110.ops import jobs
from dsa110.ops.metrics import MetricsSampler
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import WAIT_S, LiveApp, TransportWs, running, seed
from tests.waiting import eventually

pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

FAILED_GROUP = "2025-10-24T14:05:00"
WEBSOCKET_METRIC_NAMES = {
    "memory_percent",
    "memory_used_gb",
    "memory_total_gb",
    "load_avg_1min",
    "timestamp",
    "disk_percent",
    "disk_free_gb",
    "disk_total_gb",
}


async def _message(ws: Any, kind: str) -> dict[str, Any]:
    """The next JSON message of ``kind`` on the legacy socket (others skipped)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            message = json.loads(await ws.receive_text(timeout=WAIT_S))
            if message["type"] == kind:
                return message  # type: ignore[no-any-return]


async def _pong(ws: Any) -> bool:
    """The text ``pong`` arrives (JSON messages the hub sends meanwhile are skipped)."""
    async with asyncio.timeout(WAIT_S):
        while (text := await ws.receive_text(timeout=WAIT_S)) != "pong":
            assert json.loads(text)["type"] in {"status_update", "metrics_update", "ese_update"}
    return True


async def _rest(live: LiveApp, path: str, headers: dict[str, str]) -> Any:
    response = await live.http.get(path, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def _same_as_rest(live_part: dict[str, Any], rest: dict[str, Any]) -> None:
    """Every REST field is in the live part with the same value (the live part may add names)."""
    assert {k: live_part.get(k) for k in rest} == rest


async def test_ws_status_messages_carry_the_rest_answers(live_settings: Settings) -> None:
    # A long sampler interval: the sample stored at start-up (and the test's) stay fresh, so
    # the channel and the REST path read the same stored sample.
    settings = dataclasses.replace(live_settings, metrics_interval_s=3600.0)
    async with running(settings) as live:
        ids = await seed(live.engine)
        viewer = await key_headers(live.engine, Role.VIEWER)
        async with live.ws("/api/ws/status", protocol="") as ws:
            first = json.loads(await ws.receive_text(timeout=WAIT_S))
            assert first["type"] == "status_update" and first["timestamp"].endswith("Z")
            data = first["data"]
            assert set(data) == {"pipeline_status", "metrics", "ese_candidates"}
            status = data["pipeline_status"]
            assert status == await _rest(live, "/api/status", viewer)
            assert status["queue"] == {
                "total": 3,
                "pending": 0,
                "in_progress": 1,
                "failed": 1,
                "completed": 1,
                "collecting": 0,
            }
            assert status["recent_groups"][1]["group_id"] == FAILED_GROUP
            assert status["recent_groups"][1]["subbands_present"] == 4
            assert data["ese_candidates"] == await _rest(live, "/api/ese/candidates", viewer)
            (candidate,) = data["ese_candidates"]["candidates"]
            assert candidate["max_sigma_dev"] == 7.0 and candidate["source_id"] == "NVSS J123456.7+420312"

            await ws.send_text("ping")
            assert await _pong(ws)

            await jobs.reprocess_group(live.engine, FAILED_GROUP, publish=live.publish)
            update = await _message(ws, "status_update")
            assert update["data"]["pipeline_status"]["queue"]["pending"] == 1
            assert update["data"]["pipeline_status"] == await _rest(live, "/api/status", viewer)

            sample = await MetricsSampler(live.engine, live.app.state.bus, mounts=["/"]).sample_once()
            metrics = (await _message(ws, "metrics_update"))["data"]
            rest_metrics = await _rest(live, "/api/metrics/system", viewer)
            _same_as_rest({**metrics, "disks": [_bytes(d) for d in metrics["disks"]]}, rest_metrics)
            assert set(metrics) >= WEBSOCKET_METRIC_NAMES  # the legacy WebSocket's names as well
            assert metrics["memory_percent"] == metrics["mem_percent"] == sample.memory_percent
            assert metrics["load_avg_1min"] == metrics["load_1"] and metrics["timestamp"] == metrics["ts"]
            assert metrics["disks"][0]["mount_point"] == "/"
            assert metrics["disks"][0]["total_gb"] == round(metrics["disks"][0]["total"] / 2**30, 3)

            await live.publish(ESE_CANDIDATE, {"event": "new", "candidate_pk": ids["candidate_pk"]})
            ese = await _message(ws, "ese_update")
            assert [c["id"] for c in ese["data"]["candidates"]] == [ids["candidate_pk"]]
            assert ese["data"] == await _rest(live, "/api/ese/candidates", viewer)
        await eventually(lambda: not live.app.state.legacy_status.running)


def _bytes(disk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in disk.items() if not k.endswith("_gb")}


async def test_ws_status_repeats_the_status_without_events(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        live.app.state.legacy_status.heartbeat_s = 0.2
        async with live.ws("/api/ws/status", protocol="") as ws:
            await _message(ws, "status_update")
            again = await _message(ws, "status_update")
            assert again["data"]["pipeline_status"]["queue"]["total"] == 3


async def test_no_task_is_left_after_clients_disconnect_mid_stream(live_settings: Settings) -> None:
    async with running(live_settings) as live:
        await seed(live.engine)
        registry = live.app.state.live
        baseline = len(asyncio.all_tasks())
        # The server's own listeners (the recent-events recorder) stay; the clients' must go.
        own_listeners = live.app.state.bus.subscriber_count("group.state")
        for _round in range(2):
            async with (
                live.ws() as a,
                live.ws() as b,
                live.ws(protocol="graphql-ws") as c,
                live.ws("/api/ws/status", protocol="") as legacy,
            ):
                clients = [TransportWs(ws) for ws in (a, b, c)]
                for client in clients:
                    await client.init()
                for client, op in zip(clients[:2], "ab", strict=True):
                    await client.subscribe(op, "subscription { pipelineStatus { queue { total } } }")
                    await client.subscribe(op + "j", "subscription { jobLogs(jobId: 1) { finished } }")
                await clients[2].send(
                    {
                        "id": "c",
                        "type": "start",
                        "payload": {"query": "subscription { groupUpdates { groupId } }"},
                    }
                )
                await clients[0].next_data("a")
                await json_message(legacy)
                await eventually(lambda: registry.subscriber_count >= 3)
                assert registry.producer_count >= 2
                # Leave without completing anything: the sockets just go away.
        await eventually(lambda: registry.producer_count == 0 and not registry.tasks())
        await eventually(lambda: not live.app.state.legacy_status.running)
        await eventually(lambda: len(asyncio.all_tasks()) <= baseline)
        assert live.app.state.bus.subscriber_count("group.state") == own_listeners


async def json_message(ws: Any) -> dict[str, Any]:
    return json.loads(await ws.receive_text(timeout=WAIT_S))  # type: ignore[no-any-return]


async def _unused(live: LiveApp) -> None:  # pragma: no cover - keeps LiveApp imported for typing
    del live
