"""``/api/pipeline/*`` and ``/api/pointing-monitor/status``: the dashboard's pipeline pages.

Not in the API document; the legacy frontend calls them (legacy-pipeline-facts §6, §2.3).
An *execution* is one of our jobs (the durable queue), with its stages: the stages a job
reported in its result (``@@result {"stages": [...]}``, as a workflow does), else the job
itself as its one stage. Stage metrics are aggregates over the jobs of each pipeline stage
(job kind), the dependency graph is the order data flows through the stages, and the
summary adds the stages up (``dsa110.ops.pipeline``). The pointing monitor is the freshness
of the pointing record and the last day's groups (``dsa110.ops.pointing``) with the
streaming service that writes them.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Final

from compat_rest.convert import epoch_seconds
from compat_rest.errors import not_found, validation_error
from compat_rest.graph import GraphCall
from compat_rest.jobs import job_type, state_filter
from compat_rest.paging import collect
from compat_rest.params import Args, Float, Int, PathInt, PathStr, Str
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.db.enums import JobType
from dsa110.settings import Settings

TAG = "pipeline"
MAX_LIMIT: Final = 1000
MAX_OFFSET: Final = 5000
FIELDS = "jobId type state createdAt startedAt finishedAt error attempts result progressMessage"
EXECUTIONS = f"""
query RestPipelineExecutions($first: Int!, $after: String, $filter: JobFilter) {{
  jobs(first: $first, after: $after, filter: $filter) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {FIELDS} }}
  }}
}}
"""
EXECUTION = f"query RestPipelineExecution($jobId: Int!) {{ job(jobId: $jobId) {{ {FIELDS} }} }}"
STAGE_FIELDS = """
  name label total pending running done failed cancelled successRate finished
  meanDurationS medianDurationS minDurationS maxDurationS lastRunAt
"""
STAGES = (
    f"query RestPipelineStages($names: [String!]) {{ pipelineStages(names: $names) {{ {STAGE_FIELDS} }} }}"
)
GRAPH = "query RestPipelineGraph { pipelineGraph { nodes { id label type } edges { from to type } } }"
POINTING = """
query RestPointingMonitor($staleAfter: Float!) {
  pointingMonitor(staleAfterSeconds: $staleAfter) {
    checkedAt lastPointingAt lastPointingMjd lastRaDeg lastDecDeg ageSeconds stale staleAfterSeconds
    groupsReceived24h groupsCompleted24h groupsFailed24h lastReceivedAt lastCompletedAt lastFailedAt
    lastError issues
  }
  streamingService { running uptimeSeconds config }
}
"""

STAGE_RUN = obj(
    name=STR,
    status=STR,
    duration_seconds=null(NUM),
    attempt=INT,
    error_message=null(STR),
    started_at=null(NUM),
    completed_at=null(NUM),
)
EXECUTION_SHAPE = obj(
    id=INT,
    job_type=STR,
    status=STR,
    created_at=NUM,
    started_at=null(NUM),
    finished_at=null(NUM),
    created_at_iso=TIME,
    started_at_iso=null(TIME),
    finished_at_iso=null(TIME),
    duration_seconds=null(NUM),
    stages=arr(STAGE_RUN),
    error_message=null(STR),
    retry_count=INT,
    progress_message=null(STR),
)
STAGE_METRICS = obj(
    stage_name=STR,
    label=STR,
    total_executions=INT,
    successful_executions=INT,
    failed_executions=INT,
    pending_executions=INT,
    running_executions=INT,
    cancelled_executions=INT,
    success_rate=null(NUM),
    average_duration_seconds=NUM,
    median_duration_seconds=NUM,
    min_duration_seconds=NUM,
    max_duration_seconds=NUM,
    average_memory_mb=null(NUM),
    average_cpu_percent=null(NUM),
    last_run_at=null(TIME),
)
LIMIT = Int("limit", 100, ge=1, le=MAX_LIMIT, description="Executions per page")
OFFSET = Int("offset", 0, ge=0, le=MAX_OFFSET)
STATUS = Str("status", max_length=32, description="pending, running, done (completed), failed, cancelled")
JOB_TYPE = Str("job_type", max_length=32, description="A job kind: convert, calibrate, image, ...")
EXECUTION_ID = PathInt("execution_id", "An execution is a job: its integer id")
STAGE_NAME = PathStr("stage_name", "A stage (job kind), e.g. `calibrate`", max_length=32)


def _seconds(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    parse = datetime.fromisoformat
    return (parse(end.replace("Z", "+00:00")) - parse(start.replace("Z", "+00:00"))).total_seconds()


def _reported_stages(result: Any) -> list[dict[str, Any]] | None:
    stages = result.get("stages") if isinstance(result, dict) else None
    if not isinstance(stages, list) or not all(isinstance(s, dict) and "name" in s for s in stages):
        return None
    keys = ("duration_seconds", "error_message")
    return [
        {
            "name": str(s["name"]),
            "status": str(s.get("status", "unknown")),
            "attempt": int(s["attempt"]) if isinstance(s.get("attempt"), int) else 1,
            **{k: s.get(k) for k in keys},
            "started_at": epoch_seconds(s.get("started_at")),
            "completed_at": epoch_seconds(s.get("completed_at")),
        }
        for s in stages[:100]
    ]


def execution(node: dict[str, Any]) -> dict[str, Any]:
    status = node["state"].lower()
    took = _seconds(node["startedAt"], node["finishedAt"])
    kind = job_type(node["type"])
    stages = _reported_stages(node["result"]) or [
        {
            "name": kind,
            "status": status,
            "duration_seconds": took,
            "attempt": node["attempts"],
            "error_message": node["error"],
            "started_at": epoch_seconds(node["startedAt"]),
            "completed_at": epoch_seconds(node["finishedAt"]),
        }
    ]
    return {
        "id": node["jobId"],
        "job_type": kind,
        "status": status,
        # Unix seconds, as the legacy state repository gave them and the pipeline pages read
        # them (`new Date(t * 1000)`); the ISO times alongside.
        "created_at": epoch_seconds(node["createdAt"]),
        "started_at": epoch_seconds(node["startedAt"]),
        "finished_at": epoch_seconds(node["finishedAt"]),
        "created_at_iso": node["createdAt"],
        "started_at_iso": node["startedAt"],
        "finished_at_iso": node["finishedAt"],
        "duration_seconds": took,
        "stages": stages,
        "error_message": node["error"],
        "retry_count": max(0, int(node["attempts"]) - 1),
        "progress_message": node["progressMessage"],
    }


def _filter(args: Args, active: bool) -> dict[str, Any] | None:
    found: dict[str, Any] = (
        {"states": ["PENDING", "RUNNING"]} if active else (state_filter(args["status"]) or {})
    )
    if args.get("job_type") is not None:
        name = args["job_type"].strip().lower()
        if name not in {str(k) for k in JobType}:
            raise validation_error(
                f"job_type must be one of {', '.join(str(k) for k in JobType)}", parameter="job_type"
            )
        found["types"] = [name.upper().replace("-", "_")]
    return found or None


def _executions(active: bool) -> Any:
    async def fetch(call: GraphCall, args: Args) -> list[Any]:
        variables = {"filter": _filter(args, active)}
        wanted = args["offset"] + args["limit"]
        data = await collect(call, EXECUTIONS, variables, lambda d: d["jobs"], max_rows=wanted)
        return list(data["jobs"]["nodes"][args["offset"] : wanted])

    return fetch


def _or_zero(value: float | None) -> float:
    """A legacy number the pipeline pages format (``.toFixed``): 0 where nothing was measured."""
    return 0.0 if value is None else value


def stage_metrics(node: dict[str, Any]) -> dict[str, Any]:
    # A stage never run has no durations; the stage table formats each one, so they are 0
    # there (its `total_executions` says why).
    return {
        "stage_name": node["name"],
        "label": node["label"],
        "total_executions": node["total"],
        "successful_executions": node["done"],
        "failed_executions": node["failed"],
        "pending_executions": node["pending"],
        "running_executions": node["running"],
        "cancelled_executions": node["cancelled"],
        "success_rate": node["successRate"],
        "average_duration_seconds": _or_zero(node["meanDurationS"]),
        "median_duration_seconds": _or_zero(node["medianDurationS"]),
        "min_duration_seconds": _or_zero(node["minDurationS"]),
        "max_duration_seconds": _or_zero(node["maxDurationS"]),
        "average_memory_mb": None,  # not measured per job
        "average_cpu_percent": None,
        "last_run_at": node["lastRunAt"],
    }


def summary(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    stages = data["pipelineStages"]
    done = sum(s["done"] for s in stages)
    failed = sum(s["failed"] for s in stages)
    timed = [
        (s["finished"], s["meanDurationS"])
        for s in stages
        if s["finished"] and s["meanDurationS"] is not None
    ]
    n_timed = sum(n for n, _ in timed)
    return {
        "total_jobs": sum(s["total"] for s in stages),
        "pending_jobs": sum(s["pending"] for s in stages),
        "running_jobs": sum(s["running"] for s in stages),
        "completed_jobs": done,
        "failed_jobs": failed,
        "cancelled_jobs": sum(s["cancelled"] for s in stages),
        "success_rate": done / (done + failed) if done + failed else 0.0,
        "average_duration_seconds": sum(n * m for n, m in timed) / n_timed if n_timed else 0.0,
        "timestamp": time.time(),
    }


def pointing_status(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    m = data["pointingMonitor"]
    service = data["streamingService"]
    running = bool(service["running"])
    issues = list(m["issues"]) + ([] if running else ["the streaming service is not running"])
    received, completed = m["groupsReceived24h"], m["groupsCompleted24h"]
    return {
        "running": running,
        "healthy": running and not m["stale"] and not m["groupsFailed24h"],
        "stale": m["stale"],
        "issues": issues,
        "watch_dir": (service["config"] or {}).get("input_dir"),
        "products_db": None,
        "metrics": {
            "files_processed": received,
            "files_succeeded": completed,
            "files_failed": m["groupsFailed24h"],
            # A number even when nothing arrived: the dashboard's pointing panel formats it
            # (`success_rate_percent.toFixed(1)`) whenever it has a pointing to show.
            "success_rate_percent": 100.0 * completed / received if received else 0.0,
            "uptime_seconds": service["uptimeSeconds"],
            "last_processed_time": m["lastReceivedAt"],
            "last_success_time": m["lastCompletedAt"],
            "last_error_time": m["lastFailedAt"],
            "last_error_message": m["lastError"],
            "recent_error_count": m["groupsFailed24h"],
        },
        "last_pointing": {
            "time": m["lastPointingAt"],
            "mjd": m["lastPointingMjd"],
            "ra_deg": m["lastRaDeg"],
            "dec_deg": m["lastDecDeg"],
        },
        "age_seconds": m["ageSeconds"],
        "stale_after_seconds": m["staleAfterSeconds"],
        "timestamp": time.time(),
        "timestamp_iso": m["checkedAt"],
        "status_file_age_seconds": m["ageSeconds"],
        "error": None,
        "status_file": None,
    }


def _one_stage(data: dict[str, Any], args: Args) -> dict[str, Any]:
    found = data["pipelineStages"]
    if not found:
        raise not_found(f"no pipeline stage {args['stage_name']!r}", stage_name=args["stage_name"])
    return stage_metrics(found[0])


def routes(settings: Settings) -> list[RestRoute]:
    return [
        multi_query_route(
            "GET",
            "/pipeline/executions",
            [EXECUTIONS],
            _executions(False),
            lambda nodes, _a: [execution(n) for n in nodes],
            summary="Pipeline executions (jobs), newest first, with their stages",
            params=[STATUS, JOB_TYPE, LIMIT, OFFSET],
            response=arr(EXECUTION_SHAPE),
            tag=TAG,
        ),
        multi_query_route(
            "GET",
            "/pipeline/executions/active",
            [EXECUTIONS],
            _executions(True),
            lambda nodes, _a: [execution(n) for n in nodes],
            summary="Executions queued or running",
            params=[STATUS, JOB_TYPE, LIMIT, OFFSET],
            response=arr(EXECUTION_SHAPE),
            tag=TAG,
        ),
        graphql_route(
            "GET",
            "/pipeline/executions/{execution_id}",
            EXECUTION,
            lambda data, _a: execution(data["job"]),
            variables=lambda a: {"jobId": a["execution_id"]},
            params=[EXECUTION_ID],
            response=EXECUTION_SHAPE,
            tag=TAG,
            summary="One execution (job) with its stages",
            errors=(404, 422),
        ),
        graphql_route(
            "GET",
            "/pipeline/executions/{execution_id}/stages",
            EXECUTION,
            lambda data, _a: execution(data["job"])["stages"],
            variables=lambda a: {"jobId": a["execution_id"]},
            params=[EXECUTION_ID],
            response=arr(STAGE_RUN),
            tag=TAG,
            summary="The stages of one execution",
            errors=(404, 422),
        ),
        graphql_route(
            "GET",
            "/pipeline/stages/metrics",
            STAGES,
            lambda data, a: [stage_metrics(s) for s in data["pipelineStages"]][: a["limit"]],
            # The stage-metrics panel filters here (frontend queries.ts useStageMetrics:
            # `?stage_name=<name>&limit=100`); a name no stage has lists none.
            variables=lambda a: {"names": [a["stage_name"]] if a["stage_name"] else None},
            params=[
                Str("stage_name", max_length=32, description="Only this stage (job kind), e.g. `calibrate`"),
                Int("limit", 100, ge=1, le=MAX_LIMIT, description="Stages listed at most"),
            ],
            response=arr(STAGE_METRICS),
            tag=TAG,
            summary="Each pipeline stage (job kind): executions by outcome and run times",
        ),
        graphql_route(
            "GET",
            "/pipeline/stages/{stage_name}/metrics",
            STAGES,
            _one_stage,
            variables=lambda a: {"names": [a["stage_name"]]},
            params=[STAGE_NAME],
            response=STAGE_METRICS,
            tag=TAG,
            summary="One pipeline stage's metrics",
            errors=(404, 422),
        ),
        graphql_route(
            "GET",
            "/pipeline/dependency-graph",
            GRAPH,
            lambda data, _a: data["pipelineGraph"],
            response=obj(
                nodes=arr(obj(id=STR, label=STR, type=STR)),
                edges=arr(obj(**{"from": STR, "to": STR, "type": STR})),
            ),
            tag=TAG,
            summary="The stages and the order data flows through them",
        ),
        graphql_route(
            "GET",
            "/pipeline/metrics/summary",
            STAGES,
            summary,
            response=obj(
                total_jobs=INT,
                pending_jobs=INT,
                running_jobs=INT,
                completed_jobs=INT,
                failed_jobs=INT,
                cancelled_jobs=INT,
                success_rate=null(NUM),
                average_duration_seconds=null(NUM),
                timestamp=NUM,
            ),
            tag=TAG,
            summary="All executions added up",
        ),
        graphql_route(
            "GET",
            "/pointing-monitor/status",
            POINTING,
            pointing_status,
            variables=lambda a: {"staleAfter": a["stale_after_s"]},
            params=[Float("stale_after_s", 900.0, ge=1, le=30 * 86400, description="Stale after (seconds)")],
            response=obj(
                running=BOOL,
                healthy=BOOL,
                stale=BOOL,
                issues=arr(STR),
                watch_dir=null(STR),
                products_db=null(STR),
                metrics=ANY,
                last_pointing=ANY,
                age_seconds=null(NUM),
                stale_after_seconds=NUM,
                timestamp=NUM,
                timestamp_iso=TIME,
                status_file_age_seconds=null(NUM),
                error=null(STR),
                status_file=null(STR),
            ),
            tag="observing",
            summary="The pointing record's freshness and the last day's groups",
        ),
    ]
