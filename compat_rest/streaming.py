"""The streaming service: status, health, metrics, config; start, stop, restart, config changes.

Answers carry the real server's names (``StreamingStatusResponse``, ``StreamingControlResponse
{success, message, pid}``, ``StreamingMetrics``) and the document's (``status``,
``queue_stats{total, pending, processing}``). The service is a real process supervised by
the server; a control request answers once the process is in the asked state (or after
its wait, with the state as it is).
"""

from __future__ import annotations

from typing import Any

from compat_rest.params import Args, Bool, Float, Int, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "streaming"
FIELDS = """
  desired running pid host startedAt uptimeSeconds lastHeartbeat metrics cpuPercent memoryMb config generation
  runningGeneration current restarts lastExitCode lastExitAt lastError
  queueStats { total collecting pending inProgress completed failed processingRatePerHour }
"""
STATUS = f"query RestStreaming {{ streamingService {{ {FIELDS} }} }}"
START = f"""mutation RestStartStreaming($config: JSON, $wait: Float!) {{
  startStreaming(config: $config, waitSeconds: $wait) {{ {FIELDS} }}
}}"""
STOP = f"mutation RestStopStreaming($wait: Float!) {{ stopStreaming(waitSeconds: $wait) {{ {FIELDS} }} }}"
RESTART = f"""mutation RestRestartStreaming($wait: Float!) {{
  restartStreaming(waitSeconds: $wait) {{ {FIELDS} }}
}}"""
CONFIG = f"""mutation RestStreamingConfig($config: JSON!, $wait: Float!) {{
  setStreamingConfig(config: $config, waitSeconds: $wait) {{ {FIELDS} }}
}}"""
WAIT = Float(
    "wait", 15.0, ge=0, le=30, description="Seconds to wait for the process to be in the asked state"
)

CONFIG_BODY = [
    Str("input_dir", max_length=1024),
    Str("output_dir", max_length=1024),
    Str("scratch_dir", max_length=1024),
    Str("queue_db", max_length=1024),
    Str("registry_db", max_length=1024),
    Int("expected_subbands", ge=1, le=32),
    Int("min_subbands", ge=1, le=32),
    Float("chunk_duration", ge=0.1, le=1440),
    Str("log_level", max_length=16),
    Bool("use_subprocess"),
    Bool("monitoring"),
    Float("monitor_interval", ge=1, le=3600),
    Float("poll_interval", ge=0.05, le=600),
    Float("worker_poll_interval", ge=0.05, le=600),
    Int("max_workers", ge=1, le=64),
    Bool("stage_to_tmpfs"),
    Str("tmpfs_path", max_length=1024),
    Int("batch_size", ge=1, le=1000),
    Float("late_subband_wait_s", ge=0, le=86_400),
]

STATUS_SHAPE = obj(
    running=BOOL,
    desired=STR,
    pid=null(INT),
    host=null(STR),
    started_at=null(TIME),
    uptime_seconds=null(NUM),
    cpu_percent=null(NUM),
    memory_mb=null(NUM),
    last_heartbeat=null(TIME),
    config=ANY,
    error=null(STR),
    restarts=INT,
    last_exit_code=null(INT),
    metrics=ANY,
    queue_stats=ANY,
)
CONTROL_SHAPE = obj(success=BOOL, status=STR, message=STR, pid=null(INT), running=BOOL)


def _config(args: Args) -> dict[str, Any]:
    return {name: value for name in (p.name for p in CONFIG_BODY) if (value := args.get(name)) is not None}


def status(node: dict[str, Any]) -> dict[str, Any]:
    q = node["queueStats"]
    return {
        "running": node["running"],
        "desired": node["desired"],
        "pid": node["pid"],
        "host": node["host"],
        "started_at": node["startedAt"],
        "uptime_seconds": node["uptimeSeconds"],
        "cpu_percent": node["cpuPercent"],
        "memory_mb": node["memoryMb"],
        "last_heartbeat": node["lastHeartbeat"],
        "config": node["config"],
        "error": node["lastError"] if not node["running"] and node["desired"] == "running" else None,
        "restarts": node["restarts"],
        "last_exit_code": node["lastExitCode"],
        "metrics": node["metrics"],
        "queue_stats": {
            "total": q["total"],
            "pending": q["pending"],
            "processing": q["inProgress"],
            "collecting": q["collecting"],
            "in_progress": q["inProgress"],
            "completed": q["completed"],
            "failed": q["failed"],
        },
    }


def _control(verb: str, key: str, want_running: bool) -> Any:
    def shape(data: dict[str, Any], _args: Args) -> dict[str, Any]:
        node = data[key]
        ok = node["current"] if want_running else node["pid"] is None
        done = {"started": "started", "stopped": "stopped", "restarted": "restarted", "updated": "updated"}[
            verb
        ]
        state = "up" if want_running else "down"
        message = (
            f"Streaming service {done} successfully"
            if ok
            else f"Streaming service {verb} requested; the process is not {state} yet"
        )
        return {
            "success": ok,
            "status": done if ok else "requested",
            "message": message,
            "pid": node["pid"],
            "running": node["running"],
        }

    return shape


def routes(settings: Settings) -> list[RestRoute]:
    def metrics(data: dict[str, Any], _args: Args) -> dict[str, Any]:
        node = data["streamingService"]
        shaped = status(node)
        return {
            "service_running": node["running"],
            "uptime_seconds": node["uptimeSeconds"],
            "cpu_percent": node["cpuPercent"],
            "memory_mb": node["memoryMb"],
            "queue_stats": shaped["queue_stats"],
            "processing_rate_per_hour": node["queueStats"]["processingRatePerHour"],
            "queue_error": None,
            "metrics": node["metrics"],
        }

    def health(data: dict[str, Any], _args: Args) -> dict[str, Any]:
        shaped = status(data["streamingService"])
        return {
            "healthy": shaped["running"] and shaped["error"] is None,
            "running": shaped["running"],
            "uptime_seconds": shaped["uptime_seconds"],
            "cpu_percent": shaped["cpu_percent"],
            "memory_mb": shaped["memory_mb"],
            "error": shaped["error"],
        }

    def updated(data: dict[str, Any], args: Args) -> dict[str, Any]:
        node = data["setStreamingConfig"]
        return {
            "success": True,
            "status": "updated",
            "message": "Configuration updated successfully"
            + (
                "; the service runs with it"
                if node["current"]
                else "; the service restarts with it, the new process is not up yet"
                if node["running"]
                else ""
            ),
            "pid": node["pid"],
            "running": node["running"],
        }

    return [
        graphql_route(
            "GET",
            "/streaming/status",
            STATUS,
            lambda data, _args: status(data["streamingService"]),
            response=STATUS_SHAPE,
            tag=TAG,
            summary="The streaming service: process, heartbeats, config, queue",
        ),
        graphql_route(
            "GET",
            "/streaming/health",
            STATUS,
            health,
            response=obj(
                healthy=BOOL,
                running=BOOL,
                uptime_seconds=null(NUM),
                cpu_percent=null(NUM),
                memory_mb=null(NUM),
                error=null(STR),
            ),
            tag=TAG,
            summary="Whether the streaming service is up and well",
        ),
        graphql_route(
            "GET",
            "/streaming/metrics",
            STATUS,
            metrics,
            response=obj(
                service_running=BOOL,
                uptime_seconds=null(NUM),
                cpu_percent=null(NUM),
                memory_mb=null(NUM),
                queue_stats=ANY,
                processing_rate_per_hour=INT,
                queue_error=null(STR),
                metrics=ANY,
            ),
            tag=TAG,
            summary="The streaming service's metrics (from its heartbeats) and the group queue",
        ),
        graphql_route(
            "GET",
            "/streaming/config",
            STATUS,
            lambda data, _args: data["streamingService"]["config"],
            response={"type": "object"},
            tag=TAG,
            summary="The persisted streaming config",
        ),
        graphql_route(
            "POST",
            "/streaming/config",
            CONFIG,
            updated,
            variables=lambda args: {"config": _config(args), "wait": args["wait"]},
            params=[WAIT],
            body=CONFIG_BODY,
            response=CONTROL_SHAPE,
            tag=TAG,
            summary="Change the streaming config (persisted); a running service restarts with it",
            errors=(400, 422),
            role=Role.OPERATOR,
        ),
        graphql_route(
            "POST",
            "/streaming/start",
            START,
            _control("started", "startStreaming", True),
            variables=lambda args: {"config": _config(args) or None, "wait": args["wait"]},
            params=[WAIT],
            body=CONFIG_BODY,
            response=CONTROL_SHAPE,
            tag=TAG,
            summary="Start the streaming service (an optional body changes its config first)",
            errors=(400, 422),
            role=Role.OPERATOR,
        ),
        graphql_route(
            "POST",
            "/streaming/stop",
            STOP,
            _control("stopped", "stopStreaming", False),
            variables=lambda args: {"wait": args["wait"]},
            params=[WAIT],
            response=CONTROL_SHAPE,
            tag=TAG,
            summary="Stop the streaming service (SIGTERM, then SIGKILL after a grace period)",
            role=Role.OPERATOR,
        ),
        graphql_route(
            "POST",
            "/streaming/restart",
            RESTART,
            _control("restarted", "restartStreaming", True),
            variables=lambda args: {"wait": args["wait"]},
            params=[WAIT],
            response=CONTROL_SHAPE,
            tag=TAG,
            summary="Restart the streaming service",
            role=Role.OPERATOR,
        ),
    ]
