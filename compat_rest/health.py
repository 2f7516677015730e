"""``/api/health/summary``: the dashboard's Health page, one answer from the graph.

The legacy server's summary (legacy-pipeline-facts §2.3, §6: ``useHealthSummary``) was
``{status: healthy|degraded|unhealthy, timestamp, checks, circuit_breakers[{name, state,
failure_count}], dlq_stats{total, pending, retrying, resolved, failed}}``, its ``checks``
the detailed health checks ``{name: {healthy, error, ...}}``. Here the checks are this
deployment's own parts, each from the graph: the database, the event bus (its breaker), the
job pool (queued and running jobs, workers holding them, disk), CASA for job processes, the
streaming service (asked to run: is it up and beating), the metrics sampler (is a stored
sample fresh) and the external catalogs (their breakers). ``unhealthy`` means the database
cannot be read (the answer is then a 503, like ``/api/health``); ``degraded`` means another
check fails.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from starlette.responses import JSONResponse

from compat_rest.convert import epoch_seconds
from compat_rest.errors import ApiError
from compat_rest.graph import GraphCall
from compat_rest.params import Args
from compat_rest.routing import RestRoute, multi_query_route
from compat_rest.shapes import BOOL, INT, NUM, STR, TIME, arr, enum, null, obj
from dsa110.settings import Settings

TAG = "status"
SUMMARY: Final = """
query RestHealthSummary {
  jobsHealth {
    casaOk casaError databaseOk databaseError diskOk diskFreeBytes diskTotalBytes queued running workers
  }
  streamingService { desired running lastHeartbeat lastError }
  systemMetrics { sampledAt }
  circuitBreakers { name kind state failureCount lastFailureAt lastError recoveryTimeoutS }
  deadLetterCounts { total pending retrying resolved failed }
}
"""
SAMPLE_SLACK: Final = 3.0
"""A stored metrics sample older than this many sampler intervals means no process samples."""

CHECK = obj(healthy=BOOL, error=null(STR))
SUMMARY_SCHEMA = obj(
    status=enum("healthy", "degraded", "unhealthy"),
    timestamp=NUM,
    timestamp_iso=TIME,
    checks={"type": "object", "additionalProperties": CHECK},
    circuit_breakers=arr(obj(name=STR, state=STR, failure_count=INT)),
    dlq_stats=obj(total=INT, pending=INT, retrying=INT, resolved=INT, failed=INT),
    failing=arr(STR),
)


def _now() -> dict[str, Any]:
    """Unix seconds (the Health page shows ``new Date(timestamp * 1000)``), and the ISO time."""
    now = datetime.now(UTC)
    return {"timestamp": now.timestamp(), "timestamp_iso": now.isoformat().replace("+00:00", "Z")}


def _age_s(iso: str | None) -> float | None:
    if iso is None:
        return None
    return (datetime.now(UTC) - datetime.fromisoformat(iso.replace("Z", "+00:00"))).total_seconds()


def _check(healthy: bool, error: str | None = None, **facts: Any) -> dict[str, Any]:
    return {"healthy": healthy, "error": None if healthy else error, **facts}


def _breaker_check(b: dict[str, Any]) -> dict[str, Any]:
    return _check(
        b["state"] == "closed",
        f"circuit {b['state']} after {b['failureCount']} failures in a row: {b['lastError']}",
        state=b["state"],
        failure_count=b["failureCount"],
        last_failure_time=b["lastFailureAt"],
    )


def checks(data: dict[str, Any], settings: Settings) -> dict[str, dict[str, Any]]:
    """Each part's check, ``{healthy, error, ...facts}``, from one graph answer."""
    jobs, stream = data["jobsHealth"], data["streamingService"]
    by_name = {b["name"]: b for b in data["circuitBreakers"]}
    out: dict[str, dict[str, Any]] = {}
    database = _check(jobs["databaseOk"], jobs["databaseError"])
    if "database" in by_name:
        database["circuit"] = by_name["database"]["state"]
    out["database"] = database
    if "event_bus" in by_name:
        out["event_bus"] = _breaker_check(by_name["event_bus"])
    out["job_pool"] = _check(
        jobs["diskOk"],
        "less than 200 MB free in the data directory",
        queued=jobs["queued"],
        running=jobs["running"],
        workers=jobs["workers"],
        disk_free_gb=round(jobs["diskFreeBytes"] / 2**30, 2),
        disk_total_gb=round(jobs["diskTotalBytes"] / 2**30, 2),
    )
    out["casa"] = _check(jobs["casaOk"], jobs["casaError"] or "CASA is not available to job processes")
    wanted = stream["desired"] == "running"
    out["streaming_service"] = _check(
        stream["running"] or not wanted,
        stream["lastError"] or "asked to run, but no recent heartbeat",
        desired=stream["desired"],
        running=stream["running"],
        last_heartbeat=stream["lastHeartbeat"],
    )
    sample = data["systemMetrics"]
    sampled_at = sample["sampledAt"] if sample else None
    age = _age_s(sampled_at)
    interval = settings.metrics_interval_s
    if interval <= 0:
        out["metrics_sampler"] = _check(True, state="off", last_sample=sampled_at)
    else:
        fresh = age is not None and age <= SAMPLE_SLACK * interval
        out["metrics_sampler"] = _check(
            fresh,
            "no sample stored yet" if age is None else f"newest sample is {age:.0f} s old",
            state="sampling" if fresh else "stale",
            last_sample=sampled_at,
            interval_seconds=interval,
        )
    for name, b in by_name.items():
        if b["kind"] == "external_catalog":
            out[name] = _breaker_check(b)
    return out


def routes(settings: Settings) -> list[RestRoute]:
    async def fetch(call: GraphCall, _args: Args) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await call(SUMMARY, {})
        except ApiError:  # the graph cannot read the database: unhealthy
            return None
        return found

    def shape(data: dict[str, Any] | None, _args: Args) -> JSONResponse:
        body: dict[str, Any]
        if data is None:
            body = {
                "status": "unhealthy",
                **_now(),
                "checks": {"database": _check(False, "database unreachable")},
                "circuit_breakers": [],
                "dlq_stats": {"total": 0, "pending": 0, "retrying": 0, "resolved": 0, "failed": 0},
                "failing": ["database"],
            }
            return JSONResponse(body, status_code=503)
        found = checks(data, settings)
        failing = sorted(name for name, c in found.items() if not c["healthy"])
        status = "unhealthy" if "database" in failing else "degraded" if failing else "healthy"
        body = {
            "status": status,
            **_now(),
            "checks": found,
            "circuit_breakers": [
                {
                    "name": b["name"],
                    "state": b["state"],
                    "failure_count": b["failureCount"],
                    "last_failure_time": epoch_seconds(b["lastFailureAt"]),
                    "last_failure_time_iso": b["lastFailureAt"],
                    "recovery_timeout": b["recoveryTimeoutS"],
                }
                for b in data["circuitBreakers"]
            ],
            "dlq_stats": data["deadLetterCounts"],
            "failing": failing,
        }
        return JSONResponse(body, status_code=503 if status == "unhealthy" else 200)

    return [
        multi_query_route(
            "GET",
            "/health/summary",
            [SUMMARY],
            fetch,
            shape,
            response=SUMMARY_SCHEMA,
            errors=(),
            other_responses=[(503, SUMMARY_SCHEMA)],
            tag=TAG,
            summary="Health of each part (database, bus, job pool, CASA, streaming, sampler, catalogs), "
            "circuit breakers and the dead-letter queue: the dashboard's Health page",
        )
    ]
