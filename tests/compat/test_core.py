"""Core paths: status, health (200 and a real 503), system metrics."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.ops.metrics import sample_system_metrics, store_sample
from dsa110.settings import Settings
from server.app import create_app
from tests.compat.conftest import Graph, assert_envelope

ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"


async def test_status_agrees_with_pipeline_status(api: httpx.AsyncClient, graph: Graph) -> None:
    response = await api.get("/api/status")
    assert response.status_code == 200
    body = response.json()
    data = await graph.data(
        "{ pipelineStatus { queue { total pending inProgress completed failed collecting }"
        " recentGroups { groupId } calibrationSets { setName } matchedRecent } }"
    )
    status = data["pipelineStatus"]
    queue = status["queue"]
    assert body["queue"] == {
        "total": queue["total"],
        "pending": queue["pending"],
        "in_progress": queue["inProgress"],
        "completed": queue["completed"],
        "failed": queue["failed"],
        "collecting": queue["collecting"],
    }
    assert [g["group_id"] for g in body["recent_groups"]] == [g["groupId"] for g in status["recentGroups"]]
    assert [c["set_name"] for c in body["calibration_sets"]] == [
        c["setName"] for c in status["calibrationSets"]
    ]
    assert body["matched_recent"] == status["matchedRecent"]
    group = body["recent_groups"][0]
    for key in (
        "group_id",
        "state",
        "subbands_present",
        "expected_subbands",
        "has_calibrator",
        "received_at",
    ):
        assert key in group
    assert group["received_at"].endswith("Z")
    limited = (await api.get("/api/status", params={"limit": 3})).json()
    assert len(limited["recent_groups"]) == 3


async def test_health_healthy(api: httpx.AsyncClient) -> None:
    response = await api.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "healthy"
    assert body["databases"] == {"queue": "accessible", "products": "accessible", "registry": "accessible"}
    assert body["timestamp"].endswith("Z") and body["disk"]["total_gb"] > 0 and body["version"]


async def test_health_degraded_is_a_real_503(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "db.sqlite3"
    app = create_app(
        Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{missing}"), migrate=False
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        response = await http.get("/api/health")
    await app.state.engine.dispose()
    assert response.status_code == 503
    body = response.json()
    assert isinstance(body, dict) and body["status"] == "degraded"
    assert body["databases"]["products"].startswith("error")


async def test_metrics_system_and_history(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    # A sample stored just now is fresh (younger than two sampler intervals): served as stored.
    sample = replace(sample_system_metrics(cpu_interval_s=0.05), sampled_at=datetime.now(UTC))
    await store_sample(engine, sample, retention=8640)
    body = (await api.get("/api/metrics/system")).json()
    assert body["ts"].endswith("Z")
    assert (
        abs((datetime.fromisoformat(body["ts"].replace("Z", "+00:00")) - sample.sampled_at).total_seconds())
        < 1e-3
    )
    assert body["cpu_percent"] == sample.cpu_percent and body["mem_percent"] == sample.memory_percent
    assert body["mem_total"] == sample.memory_total_bytes and body["load_1"] == sample.load_1
    assert isinstance(body["disk_total"], int) and body["disks"] and "mount_point" in body["disks"][0]
    history = (await api.get("/api/metrics/system/history", params={"limit": 5})).json()
    assert isinstance(history, list) and 1 <= len(history) <= 5
    assert set(history[0]) == set(body)


@pytest.mark.parametrize("limit", ["0", "1001", "x", "1e3"])
async def test_metrics_history_bad_limit(api: httpx.AsyncClient, limit: str) -> None:
    assert_envelope(
        await api.get("/api/metrics/system/history", params={"limit": limit}), 422, "VALIDATION_ERROR"
    )
