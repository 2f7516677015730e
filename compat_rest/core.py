"""Core: /status, /health, /metrics/system, /metrics/system/history."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse

from compat_rest.convert import lower
from compat_rest.errors import ApiError
from compat_rest.params import Args, Int
from compat_rest.routing import GraphCall, RestRoute, graphql_route, multi_query_route, unimplemented_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, enum, null, obj
from dsa110.settings import Settings

TAG = "core"
QUEUE_STATES = ("COLLECTING", "PENDING", "IN_PROGRESS", "COMPLETED", "FAILED")

STATUS = """
query RestStatus($recent: Int!) {
  collecting: groups(first: 0, filter: {states: [COLLECTING]}) { totalCount }
  pending: groups(first: 0, filter: {states: [PENDING]}) { totalCount }
  inProgress: groups(first: 0, filter: {states: [IN_PROGRESS]}) { totalCount }
  completed: groups(first: 0, filter: {states: [COMPLETED]}) { totalCount }
  failed: groups(first: 0, filter: {states: [FAILED]}) { totalCount }
  recent: groups(first: $recent, orderBy: RECEIVED_AT, direction: DESC) {
    nodes {
      groupId state receivedAt updatedAt presentSubbands expectedSubbands hasCalibrator calibrators
    }
  }
}
"""

HEALTH = "query RestHealth { groups(first: 0) { totalCount } }"

QUEUE = obj(total=INT, pending=INT, in_progress=INT, completed=INT, failed=INT, collecting=INT)
RECENT_GROUP = obj(
    group_id=STR,
    state=STR,
    received_at=TIME,
    last_update=TIME,
    subbands_present=INT,
    expected_subbands=INT,
    has_calibrator=null(BOOL),
    matches=arr(ANY),
)
STATUS_SCHEMA = obj(
    queue=QUEUE,
    recent_groups=arr(RECENT_GROUP),
    calibration_sets=arr(ANY),
    matched_recent=INT,
)


def recent_group(node: dict[str, Any]) -> dict[str, Any]:
    """A queue group in the union of the documented and the frontend's field names."""
    calibrators = node.get("calibrators")
    return {
        "group_id": node["groupId"],
        "state": lower(node["state"]),
        "received_at": node["receivedAt"],
        "last_update": node["updatedAt"],
        "subbands_present": node["presentSubbands"],
        "expected_subbands": node["expectedSubbands"],
        "has_calibrator": node["hasCalibrator"],
        "matches": calibrators if isinstance(calibrators, list) else [],
    }


def shape_status(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    counts = {
        "pending": data["pending"]["totalCount"],
        "in_progress": data["inProgress"]["totalCount"],
        "completed": data["completed"]["totalCount"],
        "failed": data["failed"]["totalCount"],
        "collecting": data["collecting"]["totalCount"],
    }
    recent = [recent_group(node) for node in data["recent"]["nodes"]]
    return {
        "queue": {"total": sum(counts.values()), **counts},
        "recent_groups": recent,
        # TODO(graph): calibration sets need a Query field (see the compat report).
        "calibration_sets": [],
        "matched_recent": sum(1 for group in recent if group["has_calibrator"]),
    }


def _disk(path: Path) -> dict[str, float]:
    # The data directory may not exist yet; its nearest existing parent is on the same disk.
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return {"free_gb": round(usage.free / 1e9, 3), "total_gb": round(usage.total / 1e9, 3)}


def _version() -> str:
    try:
        return metadata.version("dsa110-graph")
    except metadata.PackageNotFoundError:
        return "0.1.0"


HEALTH_SCHEMA = obj(
    status=enum("healthy", "degraded"),
    timestamp=TIME,
    databases=obj(queue=STR, products=STR, registry=STR),
    disk=obj(free_gb=NUM, total_gb=NUM),
    version=STR,
)


def routes(settings: Settings) -> list[RestRoute]:
    version = _version()

    async def health_fetch(call: GraphCall, _args: Args) -> bool:
        try:
            await call(HEALTH, {})
        except ApiError:
            return False
        return True

    def shape_health(accessible: bool, _args: Args) -> Any:
        # One database holds queue, products and registry; the legacy keys stay for clients.
        state = "accessible" if accessible else "error: database unreachable"
        body = {
            "status": "healthy" if accessible else "degraded",
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "databases": {"queue": state, "products": state, "registry": state},
            "disk": _disk(settings.data_dir),
            "version": version,
        }
        # A real 503 when degraded (the legacy server sent 200 with a [body, 503] array).
        return JSONResponse(body, status_code=200 if accessible else 503)

    metrics_reason = "system metrics need Query.systemMetrics / systemMetricsHistory (live-update work)"
    return [
        graphql_route(
            "GET",
            "/status",
            STATUS,
            shape_status,
            variables=lambda args: {"recent": args["limit"]},
            params=[Int("limit", 20, ge=0, le=100, description="How many recent groups")],
            response=STATUS_SCHEMA,
            tag=TAG,
            summary="Pipeline queue statistics and recent observation groups",
        ),
        multi_query_route(
            "GET",
            "/health",
            [HEALTH],
            health_fetch,
            shape_health,
            response=HEALTH_SCHEMA,
            errors=(),
            other_responses=[(503, HEALTH_SCHEMA)],
            tag=TAG,
            summary="Health check: 200 healthy, 503 degraded",
        ),
        unimplemented_route(
            "GET", "/metrics/system", metrics_reason, tag=TAG, summary="Current system metrics"
        ),
        unimplemented_route(
            "GET",
            "/metrics/system/history",
            metrics_reason,
            params=[Int("limit", 60, ge=1, le=1000)],
            tag=TAG,
            summary="System metrics history",
        ),
    ]
