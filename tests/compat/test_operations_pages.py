"""The dashboard's operations pages (issue 17 item 1): DLQ, circuit breakers, pipeline, events,
caches, pointing monitor, in the frontend's field names (legacy-pipeline-facts §6, §2.3)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Role
from dsa110.db.ops_tables import dlq_resolutions, event_log
from dsa110.db.tables import groups, job_logs, jobs, measurement_sets
from dsa110.events import JOB_STATE
from dsa110.ops import breakers
from dsa110.settings import Settings
from dsa110.times import datetime_to_mjd
from tests.conftest import _backend_params
from tests.credentials import key_headers
from tests.databases import scratch_database
from tests.live.conftest import LiveApp, running
from tests.waiting import eventually

T = datetime(2025, 11, 1, 12, 0, tzinfo=UTC)
Ops = tuple[LiveApp, dict[str, str]]


@contextlib.asynccontextmanager
async def app_in_own_task(settings: Settings) -> AsyncIterator[LiveApp]:
    """``running`` entered and left by one background task, so that a module fixture can keep
    the app up across tests (set up and torn down by different tasks)."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[LiveApp] = loop.create_future()
    stop = asyncio.Event()

    async def run() -> None:
        try:
            async with running(settings) as live:
                ready.set_result(live)
                await stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    task = asyncio.create_task(run())
    try:
        yield await ready
    finally:
        stop.set()
        await task


@pytest.fixture(scope="module", params=_backend_params())
async def _shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Ops]:
    """One database and one running app per backend for the module (building each took 2-4 s
    a test); each test empties the tables it counts (``fresh``). No job slots: a job queued
    again stays queued."""
    root = tmp_path_factory.mktemp("operations")
    async with scratch_database(str(request.param), root) as url:
        settings = Settings(data_dir=root, database_url=url, metrics_interval_s=0, webhook_poll_s=0)
        async with app_in_own_task(settings) as live:
            yield live, await key_headers(live.engine, Role.OPERATOR)


@pytest.fixture
def ops(_shared: Ops) -> Ops:
    return _shared


async def fresh(engine: AsyncEngine, *tables: Any) -> None:
    """Empty ``tables`` (children first) before a test that counts their rows. With jobs go
    the dead-letter resolutions keyed by job id: SQLite gives a deleted job's id again."""
    async with engine.begin() as conn:
        for table in tables:
            await conn.execute(delete(table))


async def _job(engine: AsyncEngine, kind: str, state: str, took_s: float | None = None, **extra: Any) -> int:
    values: dict[str, Any] = {"type": kind, "state": state, "params": {}, "created_at": T, "attempts": 1}
    if took_s is not None:
        values |= {"started_at": T, "finished_at": T + timedelta(seconds=took_s)}
    async with engine.begin() as conn:
        return int(
            (await conn.execute(insert(jobs).values(**values, **extra).returning(jobs.c.id))).scalar_one()
        )


async def test_a_published_event_shows_in_the_stream_and_the_stats(ops: Ops) -> None:
    live = ops[0]
    http = live.http
    # First in the module, and on an empty log: the other tests' jobs publish job states too.
    await fresh(live.engine, event_log)
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
    # The Events page formats each of these counts (`stats.events_in_history.toLocaleString()`).
    assert stats["events_per_type"] == stats["events_by_type"] and stats["subscribers"] == {}
    assert stats["events_last_minute"] <= stats["events_last_hour"] <= stats["events_in_history"]
    assert stats["events_last_minute"] >= 1 and stats["events_in_history"] >= stats["total_events"]
    types = (await http.get("/api/events/types")).json()["event_types"]
    assert {"value": JOB_STATE, "name": "JOB_STATE"}.items() <= next(
        t for t in types if t["value"] == JOB_STATE
    ).items()
    assert (await http.get("/api/events/stream?limit=0")).status_code == 422
    assert (await http.get("/api/events/stream?since_minutes=-5")).status_code == 422


async def test_a_failed_job_is_in_the_dlq_and_retrying_queues_it_again(ops: Ops) -> None:
    live, operator = ops
    http = live.http
    await fresh(live.engine, dlq_resolutions, jobs)
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
    # Unix seconds: the DLQ table renders `format(new Date(created_at * 1000), ...)`, which
    # throws on an ISO string (the whole page fails); the ISO time is alongside.
    assert isinstance(entry["created_at"], float) and entry["resolved_at"] is None
    assert entry["created_at"] == datetime.fromisoformat(entry["created_at_iso"]).timestamp()
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

    async with live.engine.begin() as conn:  # the retry failed again: the item is pending again
        await conn.execute(update(jobs).where(jobs.c.id == job_id).values(state="failed"))
    noted = await http.post(
        f"/api/operations/dlq/items/job-{job_id}/fail", json={"note": "bad data"}, headers=operator
    )
    assert (
        noted.json()["item"]["status"] == "failed" and noted.json()["item"]["resolution_note"] == "bad data"
    )
    assert isinstance(noted.json()["item"]["resolved_at"], float)
    other = await _job(live.engine, "image", "failed", 5.0, error="boom")
    resolved = await http.post(f"/api/operations/dlq/items/job-{other}/resolve", headers=operator)
    assert resolved.json()["item"]["status"] == "resolved"
    assert (await http.get("/api/operations/dlq/items?status=resolved")).json()[0]["id"] == f"job-{other}"

    for path, status in (
        ("/api/operations/dlq/items/abc", 400),
        ("/api/operations/dlq/items/job-99999", 404),
        ("/api/operations/dlq/items?limit=100000", 422),
        ("/api/operations/dlq/items?status=exploded", 422),
        ("/api/operations/dlq/items?component=" + "x" * 300, 422),
    ):
        bad = await http.get(path)
        assert bad.status_code == status and bad.json()["code"], (path, bad.text)


async def _dlq(http: Any, key: str, action: str, operator: dict[str, str], note: str | None = None) -> Any:
    body = {"note": note} if note is not None else None
    return await http.post(f"/api/operations/dlq/items/{key}/{action}", json=body, headers=operator)


async def test_a_settled_dead_letter_stays_settled(ops: Ops) -> None:
    """Resolved is done and failed (given up) only retried: neither flips to the other, and a
    retrying item is settled by its retry, not by hand. Refusals are 409s naming the status
    (as the GraphQL mutations' ``CONFLICT``), change nothing, and are audited."""
    from dsa110.db.tables import audit_log

    live, operator = ops
    http = live.http
    await fresh(live.engine, dlq_resolutions, jobs)
    given_up = f"job-{await _job(live.engine, 'calibrate', 'failed', 5.0, error='boom')}"
    done = f"job-{await _job(live.engine, 'image', 'failed', 5.0, error='boom')}"
    assert (await _dlq(http, given_up, "fail", operator, "bad data")).status_code == 200
    assert (await _dlq(http, done, "resolve", operator, "fixed by hand")).status_code == 200

    for key, action, status in (
        (given_up, "resolve", "failed"),
        (given_up, "fail", "failed"),
        (done, "fail", "resolved"),
        (done, "resolve", "resolved"),
        (done, "retry", "resolved"),
    ):
        refused = await _dlq(http, key, action, operator, "flip")
        assert refused.status_code == 409 and refused.json()["code"] == "CONFLICT", (
            key,
            action,
            refused.text,
        )
        assert f"is {status}" in refused.json()["error"]
    items = {i["id"]: i for i in (await http.get("/api/operations/dlq/items")).json()}
    assert (items[given_up]["status"], items[given_up]["resolution_note"]) == ("failed", "bad data")
    assert (items[done]["status"], items[done]["resolution_note"]) == ("resolved", "fixed by hand")

    # Given up, then tried again after all: its retry, not a person, decides.
    retried = await _dlq(http, given_up, "retry", operator)
    assert retried.status_code == 200 and retried.json()["item"]["status"] == "retrying", retried.text
    for action in ("resolve", "fail"):
        refused = await _dlq(http, given_up, action, operator)
        assert refused.status_code == 409 and "is retrying" in refused.json()["error"], refused.text
    async with live.engine.begin() as conn:
        await conn.execute(update(jobs).where(jobs.c.id == int(given_up[4:])).values(state="done"))
    assert (await http.get(f"/api/operations/dlq/items/{given_up}")).json()["status"] == "resolved"

    graph = await http.post(
        "/graphql",
        json={"query": f'mutation {{ failDeadLetter(itemId: "{done}") {{ status }} }}'},
        headers=operator,
    )
    assert graph.json()["errors"][0]["extensions"]["code"] == "CONFLICT", graph.text

    async def audited() -> bool:
        async with live.engine.connect() as conn:
            outcomes = (
                await conn.execute(
                    select(audit_log.c.operation, audit_log.c.outcome).where(
                        audit_log.c.operation.in_(("resolveDeadLetter", "failDeadLetter"))
                    )
                )
            ).all()
        return ("failDeadLetter", "CONFLICT") in outcomes and ("resolveDeadLetter", "CONFLICT") in outcomes

    await eventually(audited)


async def test_simultaneous_retries_of_one_item_queue_the_job_once(ops: Ops) -> None:
    """Two operators press Retry on the same item at once: one wins, the others get 409."""
    live, operator = ops
    http = live.http
    await fresh(live.engine, dlq_resolutions, jobs)
    job_id = await _job(live.engine, "calibrate", "failed", 5.0, error="exit status 1", exit_code=1)

    answers = await asyncio.gather(
        *(http.post(f"/api/operations/dlq/items/job-{job_id}/retry", headers=operator) for _ in range(5))
    )
    won = [a for a in answers if a.status_code == 200]
    assert len(won) == 1, [a.text for a in answers]
    # The others find the item taken (409) or already out of the queue (404): coded, never a 500.
    lost = [a for a in answers if a.status_code != 200]
    assert all((a.status_code, a.json()["code"]) in {(409, "CONFLICT"), (404, "NOT_FOUND")} for a in lost)
    assert (won[0].json()["item"]["status"], won[0].json()["item"]["retry_count"]) == ("retrying", 1)
    async with live.engine.connect() as conn:
        requeued = (
            await conn.execute(
                select(func.count())
                .select_from(job_logs)
                .where(job_logs.c.job_pk == job_id, job_logs.c.line.like("%queued again%"))
            )
        ).scalar_one()
    assert requeued == 1


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


async def test_circuit_breakers_over_rest_and_reset(ops: Ops) -> None:
    from dsa110.science.errors import ExternalServiceUnavailable
    from dsa110.science.external import query_external

    simbad = breakers.EXTERNAL["simbad"]
    try:
        live, operator = ops
        http = live.http
        listed = (await http.get("/api/operations/circuit-breakers")).json()["circuit_breakers"]
        assert {"database", "event_bus", "external_simbad", "external_ned", "external_gaia"} <= {
            b["name"] for b in listed
        }
        assert {"name", "state", "failure_count", "last_failure_time", "recovery_timeout"} <= set(listed[0])
        refused_before = simbad.snapshot().refused  # counted since the process started
        for _ in range(simbad.threshold):
            simbad.failure("SIMBAD timed out")
        one = (await http.get("/api/operations/circuit-breakers/external_simbad")).json()
        assert one["state"] == "open" and one["failure_count"] == simbad.threshold
        assert isinstance(one["last_failure_time"], float) and one["last_failure_time_iso"].endswith("Z")
        with pytest.raises(ExternalServiceUnavailable):  # refused at once: no network touched
            await query_external(live.engine, "simbad", 180.0, 42.0, 10.0)
        assert simbad.snapshot().refused == refused_before + 1
        assert (await http.post("/api/operations/circuit-breakers/external_simbad/reset")).status_code == 401
        reset = await http.post("/api/operations/circuit-breakers/external_simbad/reset", headers=operator)
        assert reset.status_code == 200 and reset.json()["circuit_breaker"]["state"] == "closed"
        missing = await http.get("/api/operations/circuit-breakers/nope")
        assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"
    finally:
        simbad.reset()


async def test_pipeline_executions_and_stage_metrics(ops: Ops) -> None:
    live = ops[0]
    http = live.http
    await fresh(live.engine, dlq_resolutions, jobs)
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
    # The stage table formats every duration (`average_duration_seconds.toFixed(1)`), run or not.
    never = [s for s in every if s["total_executions"] == 0]
    assert never and all(s["average_duration_seconds"] == s["max_duration_seconds"] == 0.0 for s in never)
    assert all(
        isinstance(s[k], float) for s in every for k in ("min_duration_seconds", "median_duration_seconds")
    )

    listed = (await http.get("/api/pipeline/executions", params={"job_type": "calibrate"})).json()
    assert len(listed) == 4 and {e["job_type"] for e in listed} == {"calibrate"}
    one = (await http.get(f"/api/pipeline/executions/{failed}")).json()
    assert one["status"] == "failed" and one["error_message"] == "boom" and one["duration_seconds"] == 5.0
    # Unix seconds, as the pipeline pages read them (`new Date(t * 1000)`); ISO alongside.
    assert one["finished_at"] - one["started_at"] == pytest.approx(5.0)
    assert one["created_at"] == datetime.fromisoformat(one["created_at_iso"]).timestamp()
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


async def test_pointing_monitor_freshness(ops: Ops) -> None:
    live = ops[0]
    http = live.http
    await fresh(live.engine, measurement_sets, groups)
    empty = (await http.get("/api/pointing-monitor/status")).json()
    assert empty["stale"] is True and "no pointing recorded yet" in empty["issues"]
    # The dashboard's pointing panel formats it (`success_rate_percent.toFixed(1)`).
    assert empty["metrics"]["files_processed"] == 0 and empty["metrics"]["success_rate_percent"] == 0.0
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
    recent = (await http.get("/api/pointing-monitor/status")).json()
    assert recent["stale"] is False and recent["last_pointing"]["ra_deg"] == 150.0
    assert 100 < recent["age_seconds"] < 600 and recent["metrics"]["files_succeeded"] == 1
    stale = (await http.get("/api/pointing-monitor/status", params={"stale_after_s": 60})).json()
    assert stale["stale"] is True
    assert (await http.get("/api/pointing-monitor/status?stale_after_s=0")).status_code == 422


async def test_cache_stats_count_real_hits(ops: Ops) -> None:
    live = ops[0]
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
    # The Cache page formats each of the legacy totals (`stats.active_keys.toLocaleString()`,
    # `stats.hit_rate.toFixed(1)%`): numbers, rates in percent.
    totals = (await http.get("/api/cache/stats")).json()
    for key in ("total_keys", "active_keys", "hits", "misses", "sets", "deletes", "total_requests"):
        assert isinstance(totals[key], int), key
    assert totals["total_requests"] == totals["hits"] + totals["misses"] > 0
    assert totals["hit_rate"] + totals["miss_rate"] == pytest.approx(100.0)
    assert totals["hit_rate"] == pytest.approx(100.0 * totals["hits"] / totals["total_requests"])
    assert totals["backend_type"] == "in-process"
    # The Cache page's Keys tab (`useCacheKeys`: `/cache/keys?limit=100`, `keysData.keys.length`,
    # `keysData.total`) shows an empty table: no key-value cache, no keys (a 501 was shown as
    # "Failed to load cache keys").
    keys = await http.get("/api/cache/keys", params={"pattern": "variability_stats:*", "limit": 100})
    assert keys.status_code == 200 and "x-ignored-parameters" not in keys.headers, keys.text
    assert keys.json() == {"keys": [], "total": 0, "pattern": "variability_stats:*", "limit": 100}
    assert (await http.get("/api/cache/keys/some-key")).json()["code"] == "NOT_IMPLEMENTED"


async def test_an_operator_clears_the_caches_and_it_is_audited(ops: Ops) -> None:
    from sqlalchemy import select

    from dsa110.db.tables import audit_log

    live, operator = ops
    http = live.http
    for _ in range(2):
        await http.post("/graphql", json={"query": "{ jobKinds { name } }"})

    def parse_entries(body: dict[str, Any]) -> int:
        return int(next(c["entries"] for c in body["caches"] if c["name"] == "graphql_parse"))

    assert parse_entries((await http.get("/api/cache/stats")).json()) >= 1
    refused = await http.delete("/api/cache/clear")
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED"
    one = await http.delete("/api/cache/clear", params={"cache": "graphql_parse"}, headers=operator)
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["success"] is True and [c["name"] for c in body["cleared"]] == ["graphql_parse"]
    assert body["cleared"][0]["removed"] >= 1 and body["total_removed"] == body["cleared"][0]["removed"]
    # The stats request itself is parsed again after the clear: at most that one entry.
    assert parse_entries((await http.get("/api/cache/stats")).json()) <= 2
    every = (await http.delete("/api/cache/clear", headers=operator)).json()
    assert {"graphql_parse", "graphql_validation", "plots", "external_catalogs"} <= {
        c["name"] for c in every["cleared"]
    }
    async with live.engine.connect() as conn:
        audited = (
            await conn.execute(
                select(audit_log.c.outcome).where(audit_log.c.operation == "clearCaches")
            )
        ).scalars().all()  # fmt: skip
    assert list(audited).count("OK") >= 2  # who cleared what, when (refusals stop at the REST layer)
    for path, status, code in (
        ("/api/cache/clear?cache=nope", 404, "NOT_FOUND"),
        ("/api/cache/clear?cache=" + "x" * 300, 422, None),
        ("/api/cache/clear?cache=../../etc", 404, "NOT_FOUND"),
        ("/api/cache/keys/some-key", 501, "NOT_IMPLEMENTED"),
    ):
        bad = await http.delete(path, headers=operator)
        assert bad.status_code == status and bad.json()["code"] == (code or bad.json()["code"]), (
            path,
            bad.text,
        )
    assert (await http.delete("/api/cache/keys/some-key")).status_code == 401


async def test_health_summary_has_each_part_breakers_and_the_dlq(ops: Ops) -> None:
    live = ops[0]
    http = live.http
    await fresh(live.engine, dlq_resolutions, jobs)
    await _job(live.engine, "calibrate", "failed", 5.0, error="boom")
    ok = await http.get("/api/health/summary")
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert set(body) >= {"status", "timestamp", "checks", "circuit_breakers", "dlq_stats"}
    # Unix seconds: the Health page shows `new Date(timestamp * 1000)`; ISO alongside.
    assert body["timestamp"] == datetime.fromisoformat(body["timestamp_iso"]).timestamp()
    checks = body["checks"]
    assert {"database", "event_bus", "job_pool", "casa", "streaming_service", "metrics_sampler"} <= set(
        checks
    )
    assert all({"healthy", "error"} <= set(c) for c in checks.values())
    assert checks["database"]["healthy"] is True and checks["job_pool"]["queued"] == 0
    assert checks["metrics_sampler"]["state"] == "off"  # this app samples on demand only
    assert checks["streaming_service"]["healthy"] is True  # not asked to run
    assert body["dlq_stats"] == {"total": 1, "pending": 1, "retrying": 0, "resolved": 0, "failed": 0}
    assert {"name": "database", "state": "closed", "failure_count": 0}.items() <= next(
        b for b in body["circuit_breakers"] if b["name"] == "database"
    ).items()
    assert body["status"] == ("healthy" if not body["failing"] else "degraded")
    assert set(body["failing"]) <= {"casa"}  # CASA may be absent where the tests run

    gaia = breakers.EXTERNAL["gaia"]
    try:
        for _ in range(gaia.threshold):
            gaia.failure("Gaia timed out")
        down = (await http.get("/api/health/summary")).json()
        assert down["status"] == "degraded" and "external_gaia" in down["failing"]
        assert "Gaia timed out" in down["checks"]["external_gaia"]["error"]
        tripped = next(b for b in down["circuit_breakers"] if b["name"] == "external_gaia")
        assert isinstance(tripped["last_failure_time"], float)
    finally:
        gaia.reset()
