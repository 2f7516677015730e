"""The dashboard's operations pages (issue 17 item 1): DLQ, circuit breakers, pipeline, events,
caches, pointing monitor, in the frontend's field names (legacy-pipeline-facts §6, §2.3)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Role
from dsa110.db.tables import groups, jobs, measurement_sets
from dsa110.events import JOB_STATE
from dsa110.ops import breakers
from dsa110.settings import Settings
from dsa110.times import datetime_to_mjd
from tests.credentials import key_headers
from tests.live.conftest import LiveApp, running
from tests.waiting import eventually

T = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)


@contextlib.asynccontextmanager
async def app_on(url: str, root: Path) -> AsyncIterator[tuple[LiveApp, dict[str, str]]]:
    settings = Settings(data_dir=root, database_url=url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(settings) as live:
        yield live, await key_headers(live.engine, Role.OPERATOR)


async def _job(engine: AsyncEngine, kind: str, state: str, took_s: float | None = None, **extra: Any) -> int:
    values: dict[str, Any] = {"type": kind, "state": state, "params": {}, "created_at": T, "attempts": 1}
    if took_s is not None:
        values |= {"started_at": T, "finished_at": T + timedelta(seconds=took_s)}
    async with engine.begin() as conn:
        return int(
            (await conn.execute(insert(jobs).values(**values, **extra).returning(jobs.c.id))).scalar_one()
        )


async def test_a_failed_job_is_in_the_dlq_and_retrying_queues_it_again(
    empty_db_url: str, tmp_path: Path
) -> None:
    async with app_on(empty_db_url, tmp_path) as (live, operator):
        http = live.http
        job_id = await _job(live.engine, "calibrate", "failed", 5.0, error="exit status 1", exit_code=1)
        await _job(live.engine, "image", "done", 5.0)
        listed = (await http.get("/api/operations/dlq/items")).json()
        assert [i["id"] for i in listed] == [f"job-{job_id}"]
        entry = listed[0]
        assert set(entry) >= {
            "id", "component", "operation", "error_type", "error_message", "context", "created_at",
            "retry_count", "status", "resolved_at", "resolution_note",
        }  # fmt: skip
        assert (entry["component"], entry["operation"], entry["status"]) == ("jobs", "calibrate", "pending")
        assert entry["error_type"] == "exit_code_1" and entry["error_message"] == "exit status 1"
        assert (await http.get("/api/operations/dlq/stats")).json() == {
            "total": 1, "pending": 1, "retrying": 0, "resolved": 0, "failed": 0,
        }  # fmt: skip

        refused = await http.post(f"/api/operations/dlq/items/job-{job_id}/retry")
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED"
        retried = await http.post(f"/api/operations/dlq/items/job-{job_id}/retry", headers=operator)
        assert retried.status_code == 200, retried.text
        assert retried.json()["item"]["status"] == "retrying" and retried.json()["item"]["retry_count"] == 1
        assert (await http.get(f"/api/jobs/id/{job_id}")).json()["status"] == "pending"  # queued again
        again = await http.post(f"/api/operations/dlq/items/{job_id}/retry", headers=operator)
        assert again.status_code == 409 and again.json()["code"] == "CONFLICT"

        noted = await http.post(
            f"/api/operations/dlq/items/job-{job_id}/fail", json={"note": "bad data"}, headers=operator
        )
        assert (
            noted.json()["item"]["status"] == "failed"
            and noted.json()["item"]["resolution_note"] == "bad data"
        )
        assert noted.json()["item"]["resolved_at"] is not None
        resolved = await http.post(f"/api/operations/dlq/items/job-{job_id}/resolve", headers=operator)
        assert resolved.json()["item"]["status"] == "resolved"
        assert (await http.get("/api/operations/dlq/items?status=resolved")).json()[0][
            "id"
        ] == f"job-{job_id}"

        for path, status in (
            ("/api/operations/dlq/items/abc", 400),
            ("/api/operations/dlq/items/job-99999", 404),
            ("/api/operations/dlq/items?limit=100000", 422),
            ("/api/operations/dlq/items?status=exploded", 422),
            ("/api/operations/dlq/items?component=" + "x" * 300, 422),
        ):
            bad = await http.get(path)
            assert bad.status_code == status and bad.json()["code"], (path, bad.text)


async def test_a_published_event_shows_in_the_stream_and_the_stats(empty_db_url: str, tmp_path: Path) -> None:
    async with app_on(empty_db_url, tmp_path) as (live, _):
        http = live.http
        await live.publish(JOB_STATE, {"job_pk": 42, "state": "failed"})

        async def logged() -> bool:
            found = (await http.get("/api/events/stream", params={"event_type": JOB_STATE})).json()
            return any(e["data"] == {"job_pk": 42, "state": "failed"} for e in found)

        await eventually(logged)
        event = (await http.get("/api/events/stream", params={"limit": 1, "event_type": JOB_STATE})).json()[0]
        assert event["event_type"] == JOB_STATE and event["timestamp_iso"].endswith("Z")
        assert isinstance(event["timestamp"], float) and event["source"]
        stats = (await http.get("/api/events/stats", params={"since_minutes": 10})).json()
        assert stats["events_by_type"][JOB_STATE] == 1 and stats["total_events"] >= 1
        types = (await http.get("/api/events/types")).json()["event_types"]
        assert {"value": JOB_STATE, "name": "JOB_STATE"}.items() <= next(
            t for t in types if t["value"] == JOB_STATE
        ).items()
        assert (await http.get("/api/events/stream?limit=0")).status_code == 422
        assert (await http.get("/api/events/stream?since_minutes=-5")).status_code == 422


async def test_the_log_keeps_one_row_per_event_and_the_newest_n(engine: AsyncEngine) -> None:
    from dsa110.events.envelope import Event
    from dsa110.events.log import recent, record

    events = [Event(JOB_STATE, {"i": i}, T + timedelta(seconds=i), "host:1:ab") for i in range(5)]
    assert await record(engine, events, cap=3) == 5
    assert await record(engine, events[-1:], cap=3) == 0  # another process heard it too: one row
    kept = await recent(engine, limit=10)
    assert [e.payload["i"] for e in kept] == [4, 3, 2]


def test_a_breaker_opens_after_failures_and_a_trial_closes_it() -> None:
    now = [0.0]
    b = breakers.CircuitBreaker(
        "x", "external_catalog", threshold=3, recovery_timeout_s=60, clock=lambda: now[0]
    )
    for _ in range(2):
        b.before_call()
        b.failure("timeout")
    assert b.snapshot().state == "closed"
    b.failure("timeout")
    assert b.snapshot().state == "open"
    with pytest.raises(breakers.BreakerOpen):
        b.before_call()
    now[0] = 61.0
    assert b.snapshot().state == "half_open"
    b.before_call()  # the one trial call
    with pytest.raises(breakers.BreakerOpen):
        b.before_call()  # a second one waits for the trial's outcome
    b.success()
    assert b.snapshot().state == "closed" and b.snapshot().refused == 2


async def test_circuit_breakers_over_rest_and_reset(empty_db_url: str, tmp_path: Path) -> None:
    from dsa110.science.errors import ExternalServiceUnavailable
    from dsa110.science.external import query_external

    simbad = breakers.EXTERNAL["simbad"]
    try:
        async with app_on(empty_db_url, tmp_path) as (live, operator):
            http = live.http
            listed = (await http.get("/api/operations/circuit-breakers")).json()["circuit_breakers"]
            assert {"database", "event_bus", "external_simbad", "external_ned", "external_gaia"} <= {
                b["name"] for b in listed
            }
            assert {"name", "state", "failure_count", "last_failure_time", "recovery_timeout"} <= set(
                listed[0]
            )
            for _ in range(simbad.threshold):
                simbad.failure("SIMBAD timed out")
            one = (await http.get("/api/operations/circuit-breakers/external_simbad")).json()
            assert one["state"] == "open" and one["failure_count"] == simbad.threshold
            with pytest.raises(ExternalServiceUnavailable):  # refused at once: no network touched
                await query_external(live.engine, "simbad", 180.0, 42.0, 10.0)
            assert simbad.snapshot().refused == 1
            assert (
                await http.post("/api/operations/circuit-breakers/external_simbad/reset")
            ).status_code == 401
            reset = await http.post(
                "/api/operations/circuit-breakers/external_simbad/reset", headers=operator
            )
            assert reset.status_code == 200 and reset.json()["circuit_breaker"]["state"] == "closed"
            missing = await http.get("/api/operations/circuit-breakers/nope")
            assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    finally:
        simbad.reset()


async def test_pipeline_executions_and_stage_metrics(empty_db_url: str, tmp_path: Path) -> None:
    async with app_on(empty_db_url, tmp_path) as (live, _):
        http = live.http
        for took in (10.0, 20.0, 30.0):
            await _job(live.engine, "calibrate", "done", took)
        failed = await _job(live.engine, "calibrate", "failed", 5.0, error="boom")
        running_id = await _job(live.engine, "image", "running", None)
        m = (await http.get("/api/pipeline/stages/calibrate/metrics")).json()
        assert (m["stage_name"], m["total_executions"], m["successful_executions"], m["failed_executions"]) == (
            "calibrate", 4, 3, 1,
        )  # fmt: skip
        assert m["success_rate"] == pytest.approx(0.75)
        assert m["average_duration_seconds"] == pytest.approx(16.25, abs=1e-3)  # (10+20+30+5)/4
        assert m["median_duration_seconds"] == pytest.approx(15.0, abs=1e-3)
        assert (m["min_duration_seconds"], m["max_duration_seconds"]) == pytest.approx((5.0, 30.0), abs=1e-3)
        every = (await http.get("/api/pipeline/stages/metrics")).json()
        assert [s["stage_name"] for s in every][:4] == ["calibrate", "apply", "image", "convert"]

        listed = (await http.get("/api/pipeline/executions", params={"job_type": "calibrate"})).json()
        assert len(listed) == 4 and {e["job_type"] for e in listed} == {"calibrate"}
        one = (await http.get(f"/api/pipeline/executions/{failed}")).json()
        assert one["status"] == "failed" and one["error_message"] == "boom" and one["duration_seconds"] == 5.0
        assert one["stages"] == [
            {
                "name": "calibrate", "status": "failed", "duration_seconds": 5.0, "attempt": 1,
                "error_message": "boom", "started_at": one["started_at"], "completed_at": one["finished_at"],
            }
        ]  # fmt: skip
        assert (await http.get(f"/api/pipeline/executions/{failed}/stages")).json() == one["stages"]
        active = (await http.get("/api/pipeline/executions/active")).json()
        assert [e["id"] for e in active] == [running_id]
        summary = (await http.get("/api/pipeline/metrics/summary")).json()
        assert (summary["total_jobs"], summary["completed_jobs"], summary["failed_jobs"]) == (5, 3, 1)
        assert summary["running_jobs"] == 1 and summary["success_rate"] == pytest.approx(0.75)
        graph = (await http.get("/api/pipeline/dependency-graph")).json()
        assert {"from": "convert", "to": "calibrate", "type": "data"} in graph["edges"]
        assert {n["id"] for n in graph["nodes"]} >= {e["from"] for e in graph["edges"]} | {
            e["to"] for e in graph["edges"]
        }
        for path, status in (
            ("/api/pipeline/executions?job_type=bogus", 422),
            ("/api/pipeline/executions?limit=100000", 422),
            ("/api/pipeline/executions?offset=-1", 422),
            ("/api/pipeline/executions/abc", 422),
            ("/api/pipeline/executions/99999", 404),
            ("/api/pipeline/stages/nope/metrics", 404),
        ):
            bad = await http.get(path)
            assert bad.status_code == status and bad.json()["code"], (path, bad.text)


async def test_pointing_monitor_freshness(empty_db_url: str, tmp_path: Path) -> None:
    async with app_on(empty_db_url, tmp_path) as (live, _):
        http = live.http
        empty = (await http.get("/api/pointing-monitor/status")).json()
        assert empty["stale"] is True and "no pointing recorded yet" in empty["issues"]
        assert {
            "running",
            "healthy",
            "metrics",
            "timestamp",
            "timestamp_iso",
            "status_file_age_seconds",
        } <= set(empty)
        now = datetime.now(UTC)
        async with live.engine.begin() as conn:
            pk = (
                await conn.execute(
                    insert(groups)
                    .values(
                        group_id="g1", state="completed", received_at=now, updated_at=now,
                        mid_mjd=datetime_to_mjd(now - timedelta(minutes=2)),
                    )
                    .returning(groups.c.id)
                )
            ).scalar_one()  # fmt: skip
            await conn.execute(
                insert(measurement_sets).values(
                    path="/ms/g1.ms", group_pk=pk, status="ok", stage="imaged", ra_deg=150.0, dec_deg=42.0,
                    created_at=now,
                )
            )  # fmt: skip
        fresh = (await http.get("/api/pointing-monitor/status")).json()
        assert fresh["stale"] is False and fresh["last_pointing"]["ra_deg"] == 150.0
        assert 100 < fresh["age_seconds"] < 600 and fresh["metrics"]["files_succeeded"] == 1
        stale = (await http.get("/api/pointing-monitor/status", params={"stale_after_s": 60})).json()
        assert stale["stale"] is True
        assert (await http.get("/api/pointing-monitor/status?stale_after_s=0")).status_code == 422


async def test_cache_stats_count_real_hits(empty_db_url: str, tmp_path: Path) -> None:
    async with app_on(empty_db_url, tmp_path) as (live, _):
        http = live.http
        before = (await http.get("/api/cache/stats")).json()
        names = {c["name"] for c in before["caches"]}
        assert {"graphql_parse", "graphql_validation", "plots", "external_catalogs"} <= names
        parse = next(c for c in before["caches"] if c["name"] == "graphql_parse")
        for _ in range(2):
            await http.post("/graphql", json={"query": "{ jobKinds { name } }"})
        after = next(
            c for c in (await http.get("/api/cache/stats")).json()["caches"] if c["name"] == "graphql_parse"
        )
        assert after["hits"] >= parse["hits"] + 1
        keys = await http.get("/api/cache/keys")
        assert keys.status_code == 501 and keys.json()["code"] == "NOT_IMPLEMENTED"
