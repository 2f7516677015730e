"""Control & Jobs: list and read jobs, submit each kind, cancel, retry, the job environment check.

Shapes carry the real server's ``Job`` names (``id, type, status, ms_path, params, logs,
artifacts, created_at, started_at, finished_at``) and the documented ones (``job_type,
parameters, ms_paths, completed_at, output_path``) together. ``status`` is the stored
state: ``pending`` (queued), ``running``, ``done`` (succeeded), ``failed``, ``cancelled``.

A submit's parameters are the body's ``params`` (real server) or ``parameters`` (the
document), with the body's other fields (``ms_path``, ``ms_paths``, ``caltable_paths``,
``uvh5_paths``, ``output_dir``, ...) merged in, and are checked by the job's kind before
anything is queued (400 ``BAD_JOB_PARAMS`` / ``UNKNOWN_JOB_KIND``). The legacy dashboard's
forms and the document's examples use some other names and some knobs of the legacy solver
and imager: those are renamed or set aside per kind (``LEGACY_PARAMS``) and the set-aside
ones listed back as ``ignored_params``; any other unknown name is still refused. The live log
(``GET /jobs/id/{id}/logs``, Server-Sent Events) is served by the server itself
(``server/job_logs.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from compat_rest.calfiles import LEGACY_INCOMING, LEGACY_MS_OUTPUT, is_legacy
from compat_rest.convert import lower
from compat_rest.errors import ApiError, validation_error
from compat_rest.params import Args, Int, Json, PathInt, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.db.enums import JobType
from dsa110.settings import Settings

TAG = "jobs"
MAX_JOBS: Final = 500
LIST_LOG_LINES: Final = 50
DETAIL_LOG_LINES: Final = 500
JOB_ID = PathInt("job_id", "Integer job id")
STATUS_ALIASES: Final = {
    "pending": "PENDING",
    "queued": "PENDING",
    "running": "RUNNING",
    "done": "DONE",
    "completed": "DONE",
    "succeeded": "DONE",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
}
# POST /jobs/<path> -> the GraphQL JobType.
SUBMIT_PATHS: Final = {
    "calibrate": "CALIBRATE",
    "apply": "APPLY",
    "image": "IMAGE",
    "convert": "CONVERT",
    "workflow": "WORKFLOW",
    "ese-detect": "ESE_DETECT",
    "photometry": "PHOTOMETRY",
    "mosaic": "MOSAIC",
}
# The body fields a legacy client sends besides params/parameters (merged into the parameters).
BODY_FIELDS: Final = (
    "ms_path",
    "ms_paths",
    "caltable_paths",
    "uvh5_paths",
    "input_dir",
    "output_dir",
    "start_time",
    "end_time",
    "calibrate_params",
    "apply_params",
    "image_params",
    "source_id",
    "source_ids",
)

# The legacy Control page's job forms (frontend ControlPage at 04470031: `{ms_path, params:
# CalibrateJobParams | JobParams}`, `{params: ConversionJobParams | WorkflowParams}`; the
# models in legacy-pipeline-facts §2.2) and the API document's examples (`cellsize`,
# `calibrator_source`) name some parameters otherwise than our kinds, and carry knobs of the
# legacy solver and imager (w-projection, NVSS masks, which solves to run, ...) that ours
# has no counterpart for. Per GraphQL kind: (renamed legacy name -> ours, legacy names set
# aside). A set-aside name with a value is listed back as `ignored_params`, never silently
# dropped; a name in neither set is still refused by the kind (a typo must not mean the
# default).
_LEGACY_JOB_PARAMS: Final = frozenset(
    {
        "field",
        "refant",
        "gaintables",
        "gridder",
        "wprojplanes",
        "datacolumn",
        "quality_tier",
        "skip_fits",
        "use_nvss_mask",
        "mask_radius_arcsec",
        "quick",
    }
)
_LEGACY_CONVERSION: Final = frozenset({"writer", "stage_to_tmpfs", "max_workers", "tmpfs_path"})
LEGACY_PARAMS: Final[dict[str, tuple[dict[str, str], frozenset[str]]]] = {
    "CALIBRATE": (
        {"gain_solint": "solint"},
        frozenset(
            {
                "field",
                "solve_delay",
                "solve_bandpass",
                "solve_gains",
                "delay_solint",
                "bandpass_solint",
                "gain_calmode",
                "auto_fields",
                "manual_fields",
                "cal_catalog",
                "search_radius_deg",
                "min_pb",
                "do_flagging",
                "use_existing_tables",
                "existing_k_table",
                "existing_bp_table",
                "existing_g_table",
                "calibrator_source",
            }
        ),
    ),
    "APPLY": ({"gaintables": "caltable_paths"}, _LEGACY_JOB_PARAMS - {"gaintables"}),
    "IMAGE": ({"cellsize": "cell_arcsec"}, _LEGACY_JOB_PARAMS - {"datacolumn"}),
    "CONVERT": ({}, _LEGACY_CONVERSION),
    "WORKFLOW": ({}, _LEGACY_CONVERSION | {"field", "refant", "gridder", "wprojplanes"}),
}
# A workflow's nested step parameters, each translated as its own kind.
_WORKFLOW_STEPS: Final = {"calibrate_params": "CALIBRATE", "apply_params": "APPLY", "image_params": "IMAGE"}


def _unset(value: Any) -> bool:
    """The legacy forms send unset fields as empty strings or empty lists."""
    return value is None or value in ("", [])


def legacy_params(kind: str, params: dict[str, Any], prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """``params`` with the legacy names of ``kind`` renamed and set aside: (params, set aside)."""
    renames, ignored = LEGACY_PARAMS.get(kind, ({}, frozenset()))
    out: dict[str, Any] = {}
    aside: list[str] = []
    for name, value in params.items():
        if name in ignored:
            if not _unset(value):
                aside.append(prefix + name)
            continue
        ours = renames.get(name)
        if ours is None:
            out[name] = value
        elif not _unset(value):
            if params.get(ours) not in (None, value):
                raise ApiError(
                    400,
                    "BAD_JOB_PARAMS",
                    f"`{prefix}{name}` and `{prefix}{ours}` name the same parameter differently",
                    {"field": prefix + name},
                )
            out[ours] = value
    if kind == "WORKFLOW":
        for step, step_kind in _WORKFLOW_STEPS.items():
            if isinstance(out.get(step), dict):
                out[step], nested = legacy_params(step_kind, out[step], f"{step}.")
                aside.extend(nested)
    return out, aside


JOB_FIELDS = """
  jobId type state params msPath createdAt startedAt finishedAt error attempts maxAttempts progress
  progressMessage result exitCode createdBy batchId batchItem cancelRequestedAt cancelRequestedBy worker
  outputs { stagePath }
"""

LIST = f"""
query RestJobs($first: Int!, $filter: JobFilter, $lines: Int!) {{
  jobs(first: $first, filter: $filter) {{ totalCount nodes {{ {JOB_FIELDS} logs(last: $lines) {{ line }} }} }}
}}
"""
DETAIL = f"""
query RestJob($jobId: Int!, $lines: Int!) {{
  job(jobId: $jobId) {{ {JOB_FIELDS} logs(last: $lines) {{ line }} }}
}}
"""
SUBMIT = f"""
mutation RestSubmitJob($kind: JobType!, $params: JSON) {{
  submitJob(kind: $kind, params: $params) {{ {JOB_FIELDS} logs(last: 0) {{ line }} }}
}}
"""
CANCEL = f"""mutation RestCancelJob($jobId: Int!) {{
  cancelJob(jobId: $jobId) {{ {JOB_FIELDS} logs(last: 0) {{ line }} }}
}}"""
RETRY = f"""mutation RestRetryJob($jobId: Int!) {{
  retryJob(jobId: $jobId) {{ {JOB_FIELDS} logs(last: 0) {{ line }} }}
}}"""
HEALTH = """
query RestJobsHealth { jobsHealth {
  ok casaOk casaError databaseOk databaseError diskOk diskTotalBytes diskUsedBytes diskFreeBytes python
  queued running workers kinds
} }
"""

JOB: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "job_type", "status", "params", "logs", "artifacts", "created_at"],
    "properties": {
        "id": INT,
        "type": STR,
        "job_type": STR,
        "status": STR,
        "ms_path": STR,
        "ms_paths": arr(STR),
        "params": ANY,
        "parameters": ANY,
        "logs": STR,
        "artifacts": arr(STR),
        "output_path": null(STR),
        "created_at": TIME,
        "started_at": null(TIME),
        "finished_at": null(TIME),
        "completed_at": null(TIME),
        "error": null(STR),
        "attempts": INT,
        "max_attempts": INT,
        "progress": null(NUM),
        "progress_message": null(STR),
        "result": ANY,
    },
}


def job_type(graph_type: str) -> str:
    """``ESE_DETECT`` -> ``ese-detect``: the stored (legacy) name of a GraphQL JobType."""
    return graph_type.lower().replace("_", "-")


def _artifacts(node: dict[str, Any]) -> list[str]:
    result = node.get("result")
    if isinstance(result, dict) and isinstance(result.get("artifacts"), list):
        return [str(a) for a in result["artifacts"]]
    found = [o["stagePath"] for o in node.get("outputs") or []]
    if isinstance(result, dict):
        for key in ("output_path", "ms_path", "image_path", "path"):
            if isinstance(result.get(key), str) and result[key] not in found:
                found.append(result[key])
    return found


def job(node: dict[str, Any]) -> dict[str, Any]:
    params = node["params"] if isinstance(node["params"], dict) else {}
    ms_path = node["msPath"] or ""
    given = params.get("ms_paths")
    ms_paths: list[Any] = given if isinstance(given, list) else ([ms_path] if ms_path else [])
    artifacts = _artifacts(node)
    status = lower(node["state"]) or ""
    return {
        "id": node["jobId"],
        "type": job_type(node["type"]),
        "job_type": job_type(node["type"]),
        "status": status,
        "ms_path": ms_path,
        "ms_paths": [str(p) for p in ms_paths],
        "params": params,
        "parameters": params,
        "logs": "\n".join(line["line"] for line in node.get("logs") or []),
        "artifacts": artifacts,
        "output_path": artifacts[-1] if artifacts else None,
        "created_at": node["createdAt"],
        "started_at": node["startedAt"],
        "finished_at": node["finishedAt"],
        "completed_at": node["finishedAt"],
        "error": node["error"],
        "attempts": node["attempts"],
        "max_attempts": node["maxAttempts"],
        "progress": node["progress"],
        "progress_message": node["progressMessage"],
        "result": node["result"],
        "exit_code": node["exitCode"],
        "created_by": node["createdBy"],
        "batch_id": node["batchId"],
        "batch_item": node["batchItem"],
        "cancel_requested_at": node["cancelRequestedAt"],
        "cancel_requested_by": node["cancelRequestedBy"],
        "worker": node["worker"],
    }


def state_filter(status: str | None) -> dict[str, Any] | None:
    if status is None:
        return None
    state = STATUS_ALIASES.get(status.strip().lower())
    if state is None:
        raise validation_error(
            f"status must be one of {', '.join(STATUS_ALIASES)}", parameter="status", location="query"
        )
    return {"states": [state]}


@dataclass(frozen=True)
class Deployment:
    """This deployment's directories that the legacy dashboard names by their legacy paths."""

    incoming: str
    ms: str

    @classmethod
    def of(cls, settings: Settings) -> Deployment:
        return cls(incoming=str(settings.incoming_dir), ms=str(settings.ms_dir))


def legacy_directories(kind: str, params: dict[str, Any], here: Deployment | None) -> dict[str, Any]:
    """The legacy pipeline's directories, the dashboard's defaults (``/data/incoming`` for
    ``WorkflowParams.input_dir``, ``/stage/dsa110-contimg/ms`` for its ``output_dir``), mean
    this deployment's; a workflow asked for by time alone reads this deployment's incoming."""
    if here is None or kind not in ("CONVERT", "WORKFLOW"):
        return params
    out = dict(params)
    given = out.get("input_dir")
    if is_legacy(given, LEGACY_INCOMING):
        out["input_dir"] = here.incoming
    by_time = out.get("start_time") and out.get("end_time")
    if kind == "WORKFLOW" and given is None and by_time and not out.get("uvh5_paths"):
        out["input_dir"] = here.incoming
    if is_legacy(out.get("output_dir"), LEGACY_MS_OUTPUT):
        out["output_dir"] = here.ms
    return out


def submitted_params(
    args: Args, kind: str, here: Deployment | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The body's params (or parameters) with its other legacy fields merged in and the
    legacy names of ``kind`` translated: (params, the legacy names set aside). ``here``:
    this deployment's directories, for the legacy ones."""
    base = args.get("params") if args.get("params") is not None else args.get("parameters")
    if base is None:
        base = {}
    if not isinstance(base, dict):
        raise validation_error("`params` must be a JSON object", parameter="params", location="body")
    merged = dict(base)
    for name in BODY_FIELDS:
        if args.get(name) is not None:
            merged[name] = args[name]
    translated, aside = legacy_params(kind, _one_ms(merged))
    return legacy_directories(kind, translated, here), aside


def _one_ms(params: dict[str, Any]) -> dict[str, Any]:
    """The document's ``ms_paths: [path]`` as the ``ms_path`` a job's kind takes.

    A job works on one Measurement Set, and no kind takes a list: one path becomes
    ``ms_path``; several are refused with the way to queue them (a batch, one job each).
    """
    paths = params.get("ms_paths")
    if not isinstance(paths, list):
        return params
    if len(paths) > 1:
        raise ApiError(
            400,
            "BAD_JOB_PARAMS",
            f"a job works on one Measurement Set, not {len(paths)}: give one path in `ms_paths` "
            "(or `ms_path`), or queue one job per path with POST /api/batch/{kind}",
            {"field": "ms_paths"},
        )
    rest = {k: v for k, v in params.items() if k != "ms_paths"}
    if not paths:
        return rest
    if rest.get("ms_path") not in (None, paths[0]):
        raise ApiError(
            400, "BAD_JOB_PARAMS", "`ms_path` and `ms_paths` name different paths", {"field": "ms_paths"}
        )
    return {**rest, "ms_path": paths[0]}


def submit_body() -> list[Any]:
    return [
        Json("params", description="The job's parameters (real server); checked by the job's kind."),
        Json("parameters", description="The job's parameters (the document's name)."),
        Str("ms_path", max_length=4096),
        Json("ms_paths"),
        Json("caltable_paths"),
        Json("uvh5_paths"),
        Str("input_dir", max_length=4096),
        Str("output_dir", max_length=4096),
        Str("start_time", max_length=64),
        Str("end_time", max_length=64),
        Json("calibrate_params"),
        Json("apply_params"),
        Json("image_params"),
        Str("source_id", max_length=128),
        Json("source_ids"),
        Str("job_type", max_length=32),
    ]


def _submit_route(path: str, kind: str, here: Deployment) -> RestRoute:
    def variables(args: Args) -> dict[str, Any]:
        given = args.get("job_type")
        if given is not None and job_type(given.upper().replace("-", "_")) != job_type(kind):
            raise validation_error(f"job_type {given!r} does not match /jobs/{path}", location="body")
        return {"kind": kind, "params": submitted_params(args, kind, here)[0]}

    def submitted(data: dict[str, Any], args: Args) -> dict[str, Any]:
        return {
            **job(data["submitJob"]),
            "message": "Job created successfully",
            "ignored_params": submitted_params(args, kind)[1],
        }

    return graphql_route(
        "POST",
        f"/jobs/{path}",
        SUBMIT,
        submitted,
        variables=variables,
        body=submit_body(),
        response={**JOB, "properties": {**JOB["properties"], "message": STR, "ignored_params": arr(STR)}},
        tag=TAG,
        summary=f"Queue a {path} job (its parameters are checked first)",
        errors=(400, 404, 409, 422),
        role=Role.OPERATOR,
    )


def _create_kind(args: Args) -> str:
    """The GraphQL JobType of the body's ``job_type`` (``ese-detect`` -> ``ESE_DETECT``)."""
    kind = (args.get("job_type") or "").strip().lower()
    known = [t.value for t in JobType]
    if kind not in known:
        raise validation_error(
            f"job_type must be one of {', '.join(known)}", parameter="job_type", location="body"
        )
    return kind.upper().replace("-", "_")


def _create_variables(args: Args, here: Deployment) -> dict[str, Any]:
    kind = _create_kind(args)
    return {"kind": kind, "params": submitted_params(args, kind, here)[0]}


def _created(data: dict[str, Any], args: Args) -> dict[str, Any]:
    return {
        "job_id": data["submitJob"]["jobId"],
        "status": lower(data["submitJob"]["state"]),
        "message": "Job created successfully",
        "job": job(data["submitJob"]),
        "ignored_params": submitted_params(args, _create_kind(args))[1],
    }


def _health(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    h = data["jobsHealth"]
    disk = {
        "total": int(h["diskTotalBytes"]),
        "used": int(h["diskUsedBytes"]),
        "free": int(h["diskFreeBytes"]),
    }
    return {
        "ok": h["ok"],
        "subprocess_ok": True,
        "casa_ok": h["casaOk"],
        "casa_error": h["casaError"],
        "src_ok": True,
        "src_error": None,
        "db_ok": h["databaseOk"],
        "db_exists": h["databaseOk"],
        "db_error": h["databaseError"],
        "disk_ok": h["diskOk"],
        "disk": disk,
        "python": h["python"],
        "queue": {"pending": h["queued"], "running": h["running"]},
        "workers": h["workers"],
        "kinds": h["kinds"],
    }


def routes(settings: Settings) -> list[RestRoute]:
    job_list = obj(jobs=arr(JOB), items=arr(JOB), total=INT)
    here = Deployment.of(settings)
    logs_doc = RestRoute(
        path="/jobs/id/{job_id}/logs",
        method="GET",
        tag=TAG,
        summary="A job's log, live",
        shape=lambda data, _args: data,  # never called: the server answers this path
        response={"type": "string"},
        params=(JOB_ID,),
        media_type="text/event-stream",
        errors=(),
        served_elsewhere=True,
        description="Server-Sent Events: the log so far, then new lines as the job writes them, as default "
        'events `data: {"logs": "<new text>"}`; when the job ends `event: complete` with `data: {"status": '
        '"done"|"failed"|"cancelled"}`; an unknown job gives `event: error` with `data: {"message": "Job not '
        "found\"}`. Driven by the job's log events, not by polling.",
    )
    return [
        graphql_route(
            "GET",
            "/jobs",
            LIST,
            lambda data, _args: {
                "jobs": [job(n) for n in data["jobs"]["nodes"]],
                "items": [job(n) for n in data["jobs"]["nodes"]],
                "total": data["jobs"]["totalCount"],
            },
            variables=lambda args: {
                "first": args["limit"],
                "filter": state_filter(args["status"]),
                "lines": LIST_LOG_LINES,
            },
            params=[
                Str("status", description=f"One of {', '.join(STATUS_ALIASES)}", max_length=16),
                Int("limit", 50, ge=1, le=MAX_JOBS),
            ],
            response=job_list,
            tag=TAG,
            summary=f"Jobs, newest first (each with the last {LIST_LOG_LINES} lines of its log)",
        ),
        graphql_route(
            "GET",
            "/jobs/healthz",
            HEALTH,
            _health,
            response=obj(
                ok=BOOL,
                subprocess_ok=BOOL,
                casa_ok=BOOL,
                casa_error=null(STR),
                src_ok=BOOL,
                src_error=null(STR),
                db_ok=BOOL,
                db_exists=BOOL,
                db_error=null(STR),
                disk_ok=BOOL,
                disk=obj(total=INT, used=INT, free=INT),
                python=STR,
                queue=obj(pending=INT, running=INT),
                workers=arr(STR),
                kinds=arr(STR),
            ),
            tag=TAG,
            summary="Whether jobs can run here: CASA, the database, disk; the queue and its workers",
        ),
        graphql_route(
            "GET",
            "/jobs/id/{job_id}",
            DETAIL,
            lambda data, _args: job(data["job"]),
            variables=lambda args: {"jobId": args["job_id"], "lines": DETAIL_LOG_LINES},
            params=[JOB_ID],
            response=JOB,
            tag=TAG,
            summary=f"A job (with the last {DETAIL_LOG_LINES} lines of its log)",
            errors=(404, 422),
        ),
        logs_doc,
        graphql_route(
            "POST",
            "/jobs/id/{job_id}/cancel",
            CANCEL,
            lambda data, _args: {**job(data["cancelJob"]), "message": "Cancel requested"},
            variables=lambda args: {"jobId": args["job_id"]},
            params=[JOB_ID],
            response={**JOB, "properties": {**JOB["properties"], "message": STR}},
            tag=TAG,
            summary="Cancel a job (a running one: SIGTERM to its process group, then SIGKILL)",
            errors=(404, 409, 422),
            role=Role.OPERATOR,
        ),
        graphql_route(
            "POST",
            "/jobs/id/{job_id}/retry",
            RETRY,
            lambda data, _args: {**job(data["retryJob"]), "message": "Job queued again"},
            variables=lambda args: {"jobId": args["job_id"]},
            params=[JOB_ID],
            response={**JOB, "properties": {**JOB["properties"], "message": STR}},
            tag=TAG,
            summary="Queue a failed or cancelled job again",
            errors=(404, 409, 422),
            role=Role.OPERATOR,
        ),
        *[_submit_route(path, kind, here) for path, kind in SUBMIT_PATHS.items()],
        graphql_route(
            "POST",
            "/control/jobs/create",
            SUBMIT,
            _created,
            variables=lambda args: _create_variables(args, here),
            body=submit_body(),
            response=obj(job_id=INT, status=STR, message=STR, job=JOB, ignored_params=arr(STR)),
            tag=TAG,
            summary="Queue a pipeline job of `job_type` (the document's form of POST /jobs/{type})",
            errors=(400, 404, 409, 422),
            role=Role.OPERATOR,
        ),
    ]
