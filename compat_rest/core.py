"""Core: /status, /health, /metrics/system, /metrics/system/history."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse

from compat_rest.convert import lower
from compat_rest.errors import ApiError
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Int
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, enum, null, obj
from dsa110.settings import Settings

TAG = "core"
GIB = 2**30
RECENT_GROUPS = 20  # what pipelineStatus.recentGroups holds (the legacy default)

STATUS = """
query RestStatus {
  pipelineStatus {
    queue { total collecting pending inProgress completed failed }
    recentGroups {
      groupId state receivedAt updatedAt presentSubbands expectedSubbands hasCalibrator calibrators
    }
    calibrationSets { setName tables active total createdAt }
    matchedRecent
  }
}
"""

HEALTH = "query RestHealth { groups(first: 0) { totalCount } }"

METRICS_FIELDS = """
  sampledAt cpuPercent memoryTotalBytes memoryUsedBytes memoryPercent load1 load5 load15
  disks { mount totalBytes usedBytes freeBytes percent }
"""
METRICS = f"""
query RestSystemMetrics($maxAge: Float!) {{ systemMetrics(maxAgeSeconds: $maxAge) {{ {METRICS_FIELDS} }} }}
"""
METRICS_HISTORY = f"""
query RestSystemMetricsHistory($limit: Int!) {{
  systemMetricsHistory(limit: $limit) {{ {METRICS_FIELDS} }}
}}
"""

RECENT_GROUP = obj(
    group_id=STR,
    state=STR,
    received_at=TIME,
    last_update=TIME,
    subbands_present=INT,
    expected_subbands=INT,
    has_calibrator=null(BOOL),
    matches=null(arr(ANY)),
)
STATUS_SCHEMA = obj(
    queue=obj(total=INT, pending=INT, in_progress=INT, completed=INT, failed=INT, collecting=INT),
    recent_groups=arr(RECENT_GROUP),
    calibration_sets=arr(obj(set_name=STR, tables=arr(STR), active=INT, total=INT, created_at=null(TIME))),
    matched_recent=INT,
)
METRICS_SCHEMA = obj(
    ts=TIME,
    cpu_percent=NUM,
    mem_percent=NUM,
    mem_total=INT,
    mem_used=INT,
    disk_total=null(INT),
    disk_used=null(INT),
    disk_free=null(INT),
    disks=arr(obj(mount_point=STR, total=INT, used=INT, free=INT, percent=NUM)),
    load_1=null(NUM),
    load_5=null(NUM),
    load_15=null(NUM),
)
HEALTH_SCHEMA = obj(
    status=enum("healthy", "degraded"),
    timestamp=TIME,
    databases=obj(queue=STR, products=STR, registry=STR),
    disk=obj(free_gb=NUM, total_gb=NUM),
    version=STR,
)


def recent_group(node: dict[str, Any]) -> dict[str, Any]:
    """A queue group in the union of the documented and the frontend's field names.

    ``matches`` is null while no calibrator match has been computed for the group, as the
    legacy server sends it; an empty list means "computed, none matched".
    """
    calibrators = node.get("calibrators")
    return {
        "group_id": node["groupId"],
        "state": lower(node["state"]),
        "received_at": node["receivedAt"],
        "last_update": node["updatedAt"],
        "subbands_present": node["presentSubbands"],
        "expected_subbands": node["expectedSubbands"],
        "has_calibrator": node["hasCalibrator"],
        "matches": calibrators if isinstance(calibrators, list) else None,
    }


CAL_SET_OF_GROUP = re.compile(r"^cal_(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})$")
"""The set name the pipeline gives the tables solved on a calibrator group: ``cal_<group_id>``."""


def cal_group_id(set_name: str) -> str:
    """The document's ``cal_group_id`` (``2025-10-13T13:28:03``): the calibrator group a set
    was solved on; a set named otherwise (registered by hand) is its own id."""
    match = CAL_SET_OF_GROUP.match(set_name)
    return match.group(1) if match else set_name


def calibration_set(node: dict[str, Any]) -> dict[str, Any]:
    """The real server's ``CalibrationSet`` names, the document's and the frontend's."""
    return {
        "set_name": node["setName"],
        "tables": node["tables"],
        "active": node["active"],
        "total": node["total"],
        "cal_group_id": cal_group_id(node["setName"]),
        "created_at": node["createdAt"],
        "num_targets": node["total"],
        "id": node["setName"],
        "name": node["setName"],
    }


def shape_status(data: dict[str, Any], args: Args) -> dict[str, Any]:
    status = data["pipelineStatus"]
    queue = status["queue"]
    return {
        "queue": {
            "total": queue["total"],
            "pending": queue["pending"],
            "in_progress": queue["inProgress"],
            "completed": queue["completed"],
            "failed": queue["failed"],
            "collecting": queue["collecting"],
        },
        "recent_groups": [recent_group(node) for node in status["recentGroups"][: args["limit"]]],
        "calibration_sets": [calibration_set(node) for node in status["calibrationSets"]],
        "matched_recent": status["matchedRecent"],
    }


def _disk_of(disks: list[dict[str, Any]], data_dir: Path) -> dict[str, Any] | None:
    """The disk holding the data directory (the legacy `disk_*` mirrored /stage)."""
    target = str(data_dir.resolve())
    best: dict[str, Any] | None = None
    for disk in disks:
        mount = disk["mount"].rstrip("/") or "/"
        inside = target == mount or target.startswith(mount if mount == "/" else mount + "/")
        if inside and (best is None or len(mount) > len(best["mount"].rstrip("/"))):
            best = disk
    return best or (disks[0] if disks else None)


def metrics_sample(node: dict[str, Any], data_dir: Path) -> dict[str, Any]:
    """A sample under the legacy ``SystemMetrics`` names (bytes as integers)."""
    disks = node["disks"]
    main = _disk_of(disks, data_dir)
    return {
        "ts": node["sampledAt"],
        "cpu_percent": node["cpuPercent"],
        "mem_percent": node["memoryPercent"],
        "mem_total": int(node["memoryTotalBytes"]),
        "mem_used": int(node["memoryUsedBytes"]),
        "disk_total": int(main["totalBytes"]) if main else None,
        "disk_used": int(main["usedBytes"]) if main else None,
        "disk_free": int(main["freeBytes"]) if main else None,
        "disks": [
            {
                "mount_point": d["mount"],
                "total": int(d["totalBytes"]),
                "used": int(d["usedBytes"]),
                "free": int(d["freeBytes"]),
                "percent": d["percent"],
            }
            for d in disks
        ],
        "load_1": node["load1"],
        "load_5": node["load5"],
        "load_15": node["load15"],
    }


def metrics_variables(settings: Settings) -> dict[str, Any]:
    # Older than two sampler intervals means the sampler is off or stalled: sample now,
    # as the legacy server did on every call.
    return {"maxAge": max(2 * settings.metrics_interval_s, 1.0)}


def _disk(path: Path) -> dict[str, float]:
    # The data directory may not exist yet; its nearest existing parent is on the same disk.
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    # The legacy unit: GiB (2**30 bytes) to two decimals, although the key says "gb".
    return {"free_gb": round(usage.free / GIB, 2), "total_gb": round(usage.total / GIB, 2)}


def _version() -> str:
    try:
        return metadata.version("dsa110-graph")
    except metadata.PackageNotFoundError:
        return "0.1.0"


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

    def shape_metrics(data: dict[str, Any], _args: Args) -> dict[str, Any]:
        node = data["systemMetrics"]
        if node is None:
            raise ApiError(503, "METRICS_UNAVAILABLE", "no system metrics sample has been taken yet")
        return metrics_sample(node, settings.data_dir)

    return [
        graphql_route(
            "GET",
            "/status",
            STATUS,
            shape_status,
            params=[
                Int("limit", RECENT_GROUPS, ge=0, le=RECENT_GROUPS, description="How many recent groups")
            ],
            response=STATUS_SCHEMA,
            tag=TAG,
            summary="Pipeline queue statistics, calibration sets and recent observation groups",
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
        graphql_route(
            "GET",
            "/metrics/system",
            METRICS,
            shape_metrics,
            variables=lambda _args: metrics_variables(settings),
            response=METRICS_SCHEMA,
            errors=(503,),
            tag=TAG,
            summary="Latest system metrics sample (CPU, memory, disks, load)",
        ),
        graphql_route(
            "GET",
            "/metrics/system/history",
            METRICS_HISTORY,
            lambda data, _args: [metrics_sample(n, settings.data_dir) for n in data["systemMetricsHistory"]],
            variables=lambda args: {"limit": args["limit"]},
            params=[Int("limit", 60, ge=1, le=1000)],
            response=arr(METRICS_SCHEMA),
            tag=TAG,
            summary="System metrics history",
        ),
    ]
