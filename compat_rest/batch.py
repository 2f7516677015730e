"""Batch jobs: a parent and one child job per item; list, read, cancel (stops running children), retry.

Every ``/batch/*`` form of the real server is accepted: ``calibrate``, ``apply`` and
``image`` take ``ms_paths`` (top level, the document's form, or inside ``params`` with the
shared parameters in ``params.params``, the real server's); ``convert`` takes
``time_windows``; ``publish`` ``data_ids``; ``photometry`` ``fits_paths`` x ``coordinates``;
``ese-detect`` ``source_ids`` (or one item for all sources). Each item becomes a child job
whose parameters are the shared ones plus the item's own, all checked before any is
queued. Shapes carry the real ``BatchJob`` names (``id, type, status, total_items,
completed_items, failed_items, params, items``) and the document's (``batch_id, job_type,
n_jobs, n_completed, jobs``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from compat_rest.errors import validation_error
from compat_rest.jobs import JOB, Deployment, job, job_type, legacy_directories, legacy_params
from compat_rest.params import Args, Bool, Float, Int, Json, PathInt, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import ANY, INT, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "batch"
MAX_BATCHES: Final = 500
BATCH_ID = PathInt("batch_id", "Integer batch id")

JOB_FIELDS = """
  jobId type state params msPath createdAt startedAt finishedAt error attempts maxAttempts progress
  progressMessage result exitCode createdBy batchId batchItem cancelRequestedAt cancelRequestedBy worker
  outputs { stagePath } logs(last: 0) { line }
"""
BATCH_FIELDS = f"""
  batchId kind state params nItems createdAt createdBy cancelledAt cancelledBy
  counts {{ pending running done failed cancelled total }}
  jobs {{ {JOB_FIELDS} }}
"""
LIST = f"""query RestBatches($limit: Int!, $kind: JobType) {{
  batches(limit: $limit, kind: $kind) {{ {BATCH_FIELDS} }}
}}"""
DETAIL = f"query RestBatch($batchId: Int!) {{ batch(batchId: $batchId) {{ {BATCH_FIELDS} }} }}"
CREATE = f"""
mutation RestCreateBatch($kind: JobType!, $items: [BatchItemInput!]!, $params: JSON) {{
  createBatch(kind: $kind, items: $items, params: $params) {{ {BATCH_FIELDS} }}
}}
"""
CANCEL = f"mutation RestCancelBatch($batchId: Int!) {{ cancelBatch(batchId: $batchId) {{ {BATCH_FIELDS} }} }}"
RETRY = f"mutation RestRetryBatch($batchId: Int!) {{ retryBatch(batchId: $batchId) {{ {BATCH_FIELDS} }} }}"

ITEM = obj(
    ms_path=STR,
    item=STR,
    job_id=INT,
    status=STR,
    error=null(STR),
    started_at=null(TIME),
    completed_at=null(TIME),
)
BATCH: dict[str, Any] = {
    "type": "object",
    "required": [
        "id",
        "batch_id",
        "type",
        "job_type",
        "status",
        "total_items",
        "items",
        "jobs",
        "created_at",
    ],
    "properties": {
        "id": INT,
        "batch_id": INT,
        "type": STR,
        "job_type": STR,
        "status": STR,
        "total_items": INT,
        "completed_items": INT,
        "failed_items": INT,
        "cancelled_items": INT,
        "running_items": INT,
        "pending_items": INT,
        "n_jobs": INT,
        "n_completed": INT,
        "params": ANY,
        "items": arr(ITEM),
        "jobs": arr(JOB),
        "created_at": TIME,
        "created_by": null(STR),
        "cancelled_at": null(TIME),
    },
}


def batch(node: dict[str, Any]) -> dict[str, Any]:
    counts = node["counts"]
    children = node["jobs"]
    return {
        "id": node["batchId"],
        "batch_id": node["batchId"],
        "type": job_type(node["kind"]),
        "job_type": job_type(node["kind"]),
        "status": node["state"],
        "total_items": node["nItems"],
        "completed_items": counts["done"],
        "failed_items": counts["failed"],
        "cancelled_items": counts["cancelled"],
        "running_items": counts["running"],
        "pending_items": counts["pending"],
        "n_jobs": node["nItems"],
        "n_completed": counts["done"],
        "params": node["params"],
        "items": [
            {
                "ms_path": c["batchItem"] or "",
                "item": c["batchItem"] or "",
                "job_id": c["jobId"],
                "status": str(c["state"]).lower(),
                "error": c["error"],
                "started_at": c["startedAt"],
                "completed_at": c["finishedAt"],
            }
            for c in children
        ],
        "jobs": [job(c) for c in children],
        "created_at": node["createdAt"],
        "created_by": node["createdBy"],
        "cancelled_at": node["cancelledAt"],
    }


# -- the item forms -------------------------------------------------------------------------


def _object(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise validation_error(f"`{name}` must be a JSON object", parameter=name, location="body")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise validation_error(
            f"`{name}` must be a non-empty list of strings", parameter=name, location="body"
        )
    return value


def _nested(args: Args) -> dict[str, Any]:
    """The real server's form: ``{job_type, params: {<items>, params: {...}}}``."""
    return _object(args.get("params"), "params")


def _ms_items(args: Args) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    nested = _nested(args)
    paths = args.get("ms_paths") if args.get("ms_paths") is not None else nested.get("ms_paths")
    shared = args.get("parameters") if args.get("parameters") is not None else nested.get("params", {})
    items = [{"label": p, "params": {"ms_path": p}} for p in _strings(paths, "ms_paths")]
    return _object(shared, "parameters"), items


def _convert_items(args: Args) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    nested = _nested(args)
    windows = args.get("time_windows") if args.get("time_windows") is not None else nested.get("time_windows")
    if not isinstance(windows, list) or not windows:
        raise validation_error(
            "`time_windows` must be a non-empty list", parameter="time_windows", location="body"
        )
    items = []
    for window in windows:
        w = _object(window, "time_windows")
        start, end = w.get("start_time"), w.get("end_time")
        if not isinstance(start, str) or not isinstance(end, str):
            raise validation_error("each time window needs start_time and end_time", location="body")
        items.append({"label": f"{start}/{end}", "params": {"start_time": start, "end_time": end}})
    shared = args.get("parameters") if args.get("parameters") is not None else nested.get("params", {})
    return _object(shared, "parameters"), items


def _publish_items(args: Args) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    nested = _nested(args)
    ids = args.get("data_ids") if args.get("data_ids") is not None else nested.get("data_ids")
    base = args.get("products_base") or nested.get("products_base")
    shared = {"products_base": base} if base else {}
    return shared, [{"label": d, "params": {"data_id": d}} for d in _strings(ids, "data_ids")]


def _photometry_items(args: Args) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    nested = _nested(args)
    paths = args.get("fits_paths") if args.get("fits_paths") is not None else nested.get("fits_paths")
    coordinates = (
        args.get("coordinates") if args.get("coordinates") is not None else nested.get("coordinates")
    )
    if not isinstance(coordinates, list) or not coordinates:
        raise validation_error(
            "`coordinates` must be a non-empty list", parameter="coordinates", location="body"
        )
    shared = {k: v for k, v in nested.items() if k not in ("fits_paths", "coordinates")}
    for name in ("box_size_pix", "use_aegean", "normalize"):
        if args.get(name) is not None:
            shared[name] = args[name]
    items = []
    for path in _strings(paths, "fits_paths"):
        for point in coordinates:
            p = _object(point, "coordinates")
            ra, dec = p.get("ra_deg"), p.get("dec_deg")
            items.append(
                {"label": f"{path}@{ra},{dec}", "params": {"fits_path": path, "ra_deg": ra, "dec_deg": dec}}
            )
    return shared, items


def _ese_items(args: Args) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    nested = _nested(args)
    ids = args.get("source_ids") if args.get("source_ids") is not None else nested.get("source_ids")
    shared = {k: v for k, v in nested.items() if k != "source_ids"}
    if args.get("min_sigma") is not None:
        shared["min_sigma"] = args["min_sigma"]
    if ids is None:
        return shared, [{"label": "all_sources", "params": {}}]
    return shared, [{"label": s, "params": {"source_id": s}} for s in _strings(ids, "source_ids")]


FORMS: Final[dict[str, tuple[str, Callable[[Args], tuple[dict[str, Any], list[dict[str, Any]]]]]]] = {
    "calibrate": ("CALIBRATE", _ms_items),
    "apply": ("APPLY", _ms_items),
    "image": ("IMAGE", _ms_items),
    "convert": ("CONVERT", _convert_items),
    "publish": ("PUBLISH", _publish_items),
    "photometry": ("PHOTOMETRY", _photometry_items),
    "ese-detect": ("ESE_DETECT", _ese_items),
}


def _create_route(path: str, here: Deployment) -> RestRoute:
    kind, form = FORMS[path]

    def variables(args: Args) -> dict[str, Any]:
        given = args.get("job_type")
        if given is not None and given.strip().lower() != path:
            raise validation_error(f"job_type {given!r} does not match /batch/{path}", location="body")
        shared, items = form(args)
        return {
            "kind": kind,
            "items": items,
            "params": legacy_directories(kind, legacy_params(kind, shared)[0], here),
        }

    def created(data: dict[str, Any], args: Args) -> dict[str, Any]:
        # The shared parameters' legacy names set aside (the dashboard's JobParams knobs).
        return {**batch(data["createBatch"]), "ignored_params": legacy_params(kind, form(args)[0])[1]}

    return graphql_route(
        "POST",
        f"/batch/{path}",
        CREATE,
        created,
        variables=variables,
        body=[
            Str("job_type", max_length=32),
            Json("params", description="The real server's form: the items and `params` (shared) inside"),
            Json("parameters", description="Shared parameters (the document's form)"),
            Json("ms_paths"),
            Json("time_windows"),
            Json("data_ids"),
            Str("products_base", max_length=4096),
            Json("fits_paths"),
            Json("coordinates"),
            Int("box_size_pix", ge=1, le=1000),
            Bool("use_aegean"),
            Bool("normalize"),
            Json("source_ids"),
            Float("min_sigma", ge=0, le=1000),
        ],
        response={**BATCH, "properties": {**BATCH["properties"], "ignored_params": arr(STR)}},
        tag=TAG,
        summary=f"Queue a {path} batch: one child job per item, all checked before any is queued",
        errors=(400, 404, 409, 422),
        role=Role.OPERATOR,
    )


def _status_filter(rows: list[dict[str, Any]], status: str | None) -> list[dict[str, Any]]:
    if status is None:
        return rows
    wanted = {"completed": "done", "queued": "pending"}.get(status.lower(), status.lower())
    return [r for r in rows if r["status"] == wanted]


def routes(settings: Settings) -> list[RestRoute]:
    return [
        graphql_route(
            "GET",
            "/batch",
            LIST,
            lambda data, args: {
                "batches": (shaped := _status_filter([batch(b) for b in data["batches"]], args["status"])),
                "items": shaped,
                "total": len(shaped),
            },
            variables=lambda args: {"limit": args["limit"], "kind": None},
            params=[Str("status", max_length=16), Int("limit", 50, ge=1, le=MAX_BATCHES)],
            response=obj(batches=arr(BATCH), items=arr(BATCH), total=INT),
            tag=TAG,
            summary="Batches, newest first",
        ),
        *[_create_route(path, Deployment.of(settings)) for path in FORMS],
        graphql_route(
            "GET",
            "/batch/{batch_id}",
            DETAIL,
            lambda data, _args: batch(data["batch"]),
            variables=lambda args: {"batchId": args["batch_id"]},
            params=[BATCH_ID],
            response=BATCH,
            tag=TAG,
            summary="A batch with its items",
            errors=(404, 422),
        ),
        graphql_route(
            "POST",
            "/batch/{batch_id}/cancel",
            CANCEL,
            lambda data, _args: {
                **batch(data["cancelBatch"]),
                "status": "cancelled",
                "message": "Batch job cancelled",
            },
            variables=lambda args: {"batchId": args["batch_id"]},
            params=[BATCH_ID],
            response={**BATCH, "properties": {**BATCH["properties"], "message": STR}},
            tag=TAG,
            summary="Cancel a batch: queued items at once, running items stopped",
            errors=(404, 409, 422),
            role=Role.OPERATOR,
        ),
        graphql_route(
            "POST",
            "/batch/{batch_id}/retry",
            RETRY,
            lambda data, _args: {**batch(data["retryBatch"]), "message": "Failed items queued again"},
            variables=lambda args: {"batchId": args["batch_id"]},
            params=[BATCH_ID],
            response={**BATCH, "properties": {**BATCH["properties"], "message": STR}},
            tag=TAG,
            summary="Queue a batch's failed and cancelled items again",
            errors=(404, 409, 422),
            role=Role.OPERATOR,
        ),
    ]
