"""The data registry's write side and publish monitoring: finalize, publish, the auto-publish
switch, retries. Each is a graph mutation; a failed publish answers 409 ``PUBLISH_FAILED``
in the envelope with the attempt count and error, the product left staged.

These paths come before ``GET /data/{data_id:path}`` so that its ``:path`` parameter does not
swallow them (the legacy server's shadowing defect)."""

from __future__ import annotations

from typing import Any

from compat_rest.convert import epoch_fields
from compat_rest.params import Args, Int, Str
from compat_rest.products import DATA_ID, PRODUCT_FIELDS, product
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "products"
QA_STATUSES = ("pending", "passed", "failed", "warning")
VALIDATION_STATUSES = ("pending", "validated", "invalid")

FINALIZE = f"""
mutation RestFinalize($dataId: String!, $qa: String, $validation: String) {{
  finalizeDataProduct(dataId: $dataId, qaStatus: $qa, validationStatus: $validation) {{
    autoPublished product {{ {PRODUCT_FIELDS} }}
  }}
}}
"""
PUBLISH = (
    f"mutation RestPublish($dataId: String!) {{ publishDataProduct(dataId: $dataId) {{ {PRODUCT_FIELDS} }} }}"
)
RETRY = f"mutation RestRetry($dataId: String!) {{ retryPublish(dataId: $dataId) {{ {PRODUCT_FIELDS} }} }}"
AUTO = f"""
mutation RestAutoPublish($dataId: String!, $enabled: Boolean!) {{
  setAutoPublish(dataId: $dataId, enabled: $enabled) {{ {PRODUCT_FIELDS} }}
}}
"""
STATUS = """
query RestPublishStatus {
  publishMonitoring { totalPublished totalStaging totalPublishing failedPublishes maxAttemptsExceeded
                      recentFailures24h successRatePercent timestamp }
}
"""
FAILED = f"""
query RestFailed($min: Int!, $limit: Int!) {{
  failedPublishes(minAttempts: $min, limit: $limit) {{ {PRODUCT_FIELDS} }}
}}
"""
RETRY_ALL = """
mutation RestRetryAll($min: Int!, $limit: Int!) {
  retryFailedPublishes(minAttempts: $min, limit: $limit) { dataId published error }
}
"""


def finalized(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    result = data["finalizeDataProduct"]
    shaped = product(result["product"])
    return {
        **shaped,
        "finalized": True,
        "auto_published": result["autoPublished"],
        "status": "published" if result["autoPublished"] else "finalized",
        "product_status": shaped["status"],
        "message": "Data product finalized" + (" and published" if result["autoPublished"] else ""),
    }


def published(key: str, message: str) -> Any:
    def shape(data: dict[str, Any], _args: Args) -> dict[str, Any]:
        shaped = product(data[key])
        return {
            **shaped,
            "published": True,
            "retried": key == "retryPublish",
            "status": "published",
            "message": message,
        }

    return shape


def switched(enabled: bool) -> Any:
    def shape(data: dict[str, Any], _args: Args) -> dict[str, Any]:
        word = "enabled" if enabled else "disabled"
        return {
            "data_id": data["setAutoPublish"]["dataId"],
            "status": word,
            "enabled": enabled,
            "message": f"Auto-publish {word}",
        }

    return shape


def status(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    m = data["publishMonitoring"]
    return {
        "total_published": m["totalPublished"],
        "total_staging": m["totalStaging"],
        "total_publishing": m["totalPublishing"],
        "failed_publishes": m["failedPublishes"],
        "max_attempts_exceeded": m["maxAttemptsExceeded"],
        "success_rate_percent": m["successRatePercent"],
        "recent_failures_24h": m["recentFailures24h"],
        "timestamp": m["timestamp"],
    }


def failed(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    items = [
        {
            "data_id": n["dataId"],
            "data_type": n["type"].lower(),
            "stage_path": n["stagePath"],
            "publish_attempts": n["publishAttempts"],
            "publish_error": n["publishError"],
            # Unix seconds, as the legacy registry rows held them (ISO as `*_iso`).
            **epoch_fields(
                publish_failed_at=n["publishFailedAt"], staged_at=n["stagedAt"], created_at=n["createdAt"]
            ),
        }
        for n in data["failedPublishes"]
    ]
    return {"count": len(items), "failed_publishes": items}


def retried_all(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    results = [
        {"data_id": r["dataId"], "success": r["published"], "error": r["error"]}
        for r in data["retryFailedPublishes"]
    ]
    ok = sum(1 for r in results if r["success"])
    return {
        "total_attempted": len(results),
        "successful": ok,
        "failed": len(results) - ok,
        "results": results,
    }


def _finalize_vars(args: Args) -> dict[str, Any]:
    # The legacy server read these from the query string, its dashboard sent them in the body.
    return {
        "dataId": args["data_id"],
        "qa": args.get("qa_status_body") or args.get("qa_status"),
        "validation": args.get("validation_status_body") or args.get("validation_status"),
    }


def routes(settings: Settings) -> list[RestRoute]:
    # Every write here is an operator action; the mutations check the same role and audit it.
    by_id: dict[str, Any] = {"params": [DATA_ID], "errors": (400, 404, 409, 422), "role": Role.OPERATOR}
    result = obj(data_id=STR, status=STR, message=STR)
    return [
        graphql_route(
            "POST",
            "/data/{data_id:path}/finalize",
            FINALIZE,
            finalized,
            variables=_finalize_vars,
            params=[
                DATA_ID,
                Str("qa_status", enum=QA_STATUSES),
                Str("validation_status", enum=VALIDATION_STATUSES),
            ],
            body=[
                Str(
                    "qa_status_body",
                    enum=QA_STATUSES,
                    description="Also accepted as `qa_status` in the query",
                ),
                Str("validation_status_body", enum=VALIDATION_STATUSES),
            ],
            response=obj(finalized=BOOL, auto_published=BOOL, status=STR, message=STR),
            errors=(400, 404, 409, 422),
            tag=TAG,
            summary="Finalize a staged product; publishes it when the auto-publish criteria hold",
            role=Role.OPERATOR,
        ),
        graphql_route(
            "POST",
            "/data/{data_id:path}/publish",
            PUBLISH,
            published("publishDataProduct", "Data product published"),
            variables=lambda args: {"dataId": args["data_id"]},
            response=obj(published=BOOL, status=STR, published_path=null(STR), message=STR),
            tag=TAG,
            summary="Move a staged product to the products area now (manual publish)",
            **by_id,
        ),
        graphql_route(
            "POST",
            "/data/{data_id:path}/auto-publish/enable",
            AUTO,
            switched(True),
            variables=lambda args: {"dataId": args["data_id"], "enabled": True},
            response={**result, "properties": {**result["properties"], "enabled": BOOL}},
            tag=TAG,
            summary="Turn automatic publishing of a product on",
            **by_id,
        ),
        graphql_route(
            "POST",
            "/data/{data_id:path}/auto-publish/disable",
            AUTO,
            switched(False),
            variables=lambda args: {"dataId": args["data_id"], "enabled": False},
            response={**result, "properties": {**result["properties"], "enabled": BOOL}},
            tag=TAG,
            summary="Turn automatic publishing of a product off",
            **by_id,
        ),
        graphql_route(
            "GET",
            "/monitoring/publish/status",
            STATUS,
            status,
            response=obj(
                total_published=INT,
                total_staging=INT,
                total_publishing=INT,
                failed_publishes=INT,
                max_attempts_exceeded=INT,
                success_rate_percent=NUM,
                recent_failures_24h=INT,
                timestamp=TIME,
            ),
            tag=TAG,
            summary="Publishing across the registry",
        ),
        graphql_route(
            "GET",
            "/monitoring/publish/failed",
            FAILED,
            failed,
            variables=lambda args: {"min": args["max_attempts"], "limit": args["limit"]},
            params=[
                Int(
                    "max_attempts",
                    1,
                    ge=1,
                    le=1000,
                    description="Only products with at least this many failures",
                ),
                Int("limit", 50, ge=1, le=500),
            ],
            response=obj(
                count=INT,
                failed_publishes=arr(obj(data_id=STR, publish_attempts=INT, publish_error=null(STR))),
            ),
            tag=TAG,
            summary="Staged products whose publishing failed",
        ),
        graphql_route(
            "POST",
            "/monitoring/publish/retry/{data_id:path}",
            RETRY,
            published("retryPublish", "Data product published on retry"),
            variables=lambda args: {"dataId": args["data_id"]},
            response=obj(retried=BOOL, published=BOOL, status=STR, published_path=null(STR)),
            tag=TAG,
            summary="Reset a product's failed attempts and publish it again",
            **by_id,
        ),
        graphql_route(
            "POST",
            "/monitoring/publish/retry-all",
            RETRY_ALL,
            retried_all,
            variables=lambda args: {"min": args["max_attempts"], "limit": args["limit"]},
            params=[Int("max_attempts", 1, ge=1, le=1000), Int("limit", 10, ge=1, le=100)],
            response=obj(total_attempted=INT, successful=INT, failed=INT, results=arr(ANY)),
            tag=TAG,
            summary="Retry every failed publish (at most `limit`)",
            role=Role.OPERATOR,
        ),
    ]
