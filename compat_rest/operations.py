"""``/api/operations/dlq/*`` and ``/api/operations/circuit-breakers*``: the Operations page.

Not in the API document; the legacy frontend calls them (legacy-pipeline-facts §6, §2.3).
The dead-letter queue is failed work that can be retried (``dsa110.ops.dlq``): failed
jobs (``job-<id>``, component ``jobs``) and webhook deliveries that ran out of attempts
(``webhook-<id>``, component ``webhooks``). Retrying a job goes through the job queue's own
retry (the job is queued again, with fresh attempts). Circuit breakers are the health of
the database, the event bus and the external catalogs, as this server process sees them
(``dsa110.ops.breakers``). Retry, resolve, fail and reset are an operator's.
"""

from __future__ import annotations

from typing import Any

from compat_rest.convert import epoch_seconds
from compat_rest.params import Args, Int, PathStr, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.ops.dlq import COMPONENTS, MAX_LIMIT, MAX_NOTE, MAX_OFFSET, STATUSES
from dsa110.settings import Settings

TAG = "operations"
ITEM_FIELDS = """
  itemId component operation errorType errorMessage context createdAt retryCount status resolvedAt
  resolutionNote
"""
ITEMS = f"""
query RestDeadLetters($component: String, $status: String, $limit: Int!, $offset: Int!) {{
  deadLetters(component: $component, status: $status, limit: $limit, offset: $offset) {{ {ITEM_FIELDS} }}
}}
"""
ITEM = f"query RestDeadLetter($id: String!) {{ deadLetter(itemId: $id) {{ {ITEM_FIELDS} }} }}"
COUNTS = """
query RestDeadLetterCounts($component: String) {
  deadLetterCounts(component: $component) { total pending retrying resolved failed }
}
"""
RETRY = f"mutation RestRetryDeadLetter($id: String!) {{ retryDeadLetter(itemId: $id) {{ {ITEM_FIELDS} }} }}"
RESOLVE = f"""mutation RestResolveDeadLetter($id: String!, $note: String) {{
  resolveDeadLetter(itemId: $id, note: $note) {{ {ITEM_FIELDS} }}
}}"""
FAIL = f"""mutation RestFailDeadLetter($id: String!, $note: String) {{
  failDeadLetter(itemId: $id, note: $note) {{ {ITEM_FIELDS} }}
}}"""
BREAKER_FIELDS = """
  name kind state failureCount threshold recoveryTimeoutS lastFailureAt lastError lastSuccessAt calls failures
  refused guarding
"""
BREAKERS = f"query RestBreakers($name: String) {{ circuitBreakers(name: $name) {{ {BREAKER_FIELDS} }} }}"
RESET = (
    f"mutation RestResetBreaker($name: String!) {{ resetCircuitBreaker(name: $name) {{ {BREAKER_FIELDS} }} }}"
)

ITEM_ID = PathStr("item_id", "`job-<id>`, `webhook-<id>`, or a job's integer id", max_length=40)
BREAKER_NAME = PathStr(
    "name", "database, event_bus, external_simbad, external_ned, external_gaia", max_length=64
)
NOTE = [Str("note", max_length=MAX_NOTE, description="What was done or found")]
DLQ_ITEM = obj(
    id=STR,
    component=STR,
    operation=STR,
    error_type=STR,
    error_message=null(STR),
    context=ANY,
    created_at=NUM,
    created_at_iso=TIME,
    retry_count=INT,
    status=STR,
    resolved_at=null(NUM),
    resolved_at_iso=null(TIME),
    resolution_note=null(STR),
)
BREAKER = obj(
    name=STR,
    kind=STR,
    state=STR,
    failure_count=INT,
    failure_threshold=INT,
    last_failure_time=null(NUM),
    last_failure_time_iso=null(TIME),
    last_error=null(STR),
    last_success_time=null(NUM),
    last_success_time_iso=null(TIME),
    recovery_timeout=NUM,
    calls=INT,
    failures=INT,
    refused=INT,
    guarding=BOOL,
)


def item(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node["itemId"],
        "component": node["component"],
        "operation": node["operation"],
        "error_type": node["errorType"],
        "error_message": node["errorMessage"],
        "context": node["context"],
        # Unix seconds, as the legacy queue stored them and the DLQ table formats them.
        "created_at": epoch_seconds(node["createdAt"]),
        "created_at_iso": node["createdAt"],
        "retry_count": node["retryCount"],
        "status": node["status"],
        "resolved_at": epoch_seconds(node["resolvedAt"]),
        "resolved_at_iso": node["resolvedAt"],
        "resolution_note": node["resolutionNote"],
    }


def breaker(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": node["name"],
        "kind": node["kind"],
        "state": node["state"],
        "failure_count": node["failureCount"],
        "failure_threshold": node["threshold"],
        "last_failure_time": epoch_seconds(node["lastFailureAt"]),
        "last_failure_time_iso": node["lastFailureAt"],
        "last_error": node["lastError"],
        "last_success_time": epoch_seconds(node["lastSuccessAt"]),
        "last_success_time_iso": node["lastSuccessAt"],
        "recovery_timeout": node["recoveryTimeoutS"],
        "calls": node["calls"],
        "failures": node["failures"],
        "refused": node["refused"],
        "guarding": node["guarding"],
    }


def _done(key: str, verb: str) -> Any:
    def shape(data: dict[str, Any], _args: Args) -> dict[str, Any]:
        found = item(data[key])
        return {"success": True, "message": f"{found['id']} {verb}", "item": found}

    return shape


def _by_id(args: Args) -> dict[str, Any]:
    return {"id": args["item_id"]}


def _with_note(args: Args) -> dict[str, Any]:
    return {"id": args["item_id"], "note": args["note"]}


def routes(settings: Settings) -> list[RestRoute]:
    answer = obj(success=BOOL, message=STR, item=DLQ_ITEM)
    return [
        graphql_route(
            "GET",
            "/operations/dlq/items",
            ITEMS,
            lambda data, _a: [item(n) for n in data["deadLetters"]],
            variables=lambda a: {k: a[k] for k in ("component", "status", "limit", "offset")},
            params=[
                Str("component", enum=COMPONENTS, description="jobs or webhooks"),
                Str("status", enum=STATUSES),
                Int("limit", 100, ge=1, le=MAX_LIMIT),
                Int("offset", 0, ge=0, le=MAX_OFFSET),
            ],
            response=arr(DLQ_ITEM),
            tag=TAG,
            summary="Failed work that can be retried (jobs, webhook deliveries), newest first",
        ),
        graphql_route(
            "GET",
            "/operations/dlq/stats",
            COUNTS,
            lambda data, _a: data["deadLetterCounts"],
            variables=lambda a: {"component": a["component"]},
            params=[Str("component", enum=COMPONENTS)],
            response=obj(total=INT, pending=INT, retrying=INT, resolved=INT, failed=INT),
            tag=TAG,
            summary="Dead-letter items by status",
        ),
        graphql_route(
            "GET",
            "/operations/dlq/items/{item_id}",
            ITEM,
            lambda data, _a: item(data["deadLetter"]),
            params=[ITEM_ID],
            response=DLQ_ITEM,
            tag=TAG,
            summary="One dead-letter item",
            errors=(400, 404, 422),
            variables=_by_id,
        ),
        graphql_route(
            "POST",
            "/operations/dlq/items/{item_id}/retry",
            RETRY,
            _done("retryDeadLetter", "queued again"),
            params=[ITEM_ID],
            response=answer,
            tag=TAG,
            summary="Retry the item's work (a job is queued again)",
            errors=(400, 404, 409, 422),
            role=Role.OPERATOR,
            variables=_by_id,
        ),
        graphql_route(
            "POST",
            "/operations/dlq/items/{item_id}/resolve",
            RESOLVE,
            _done("resolveDeadLetter", "resolved"),
            params=[ITEM_ID],
            body=NOTE,
            response=answer,
            tag=TAG,
            summary="Mark a pending item resolved, with a note (409 for any other status)",
            errors=(400, 404, 409, 422),
            role=Role.OPERATOR,
            variables=_with_note,
        ),
        graphql_route(
            "POST",
            "/operations/dlq/items/{item_id}/fail",
            FAIL,
            _done("failDeadLetter", "given up"),
            params=[ITEM_ID],
            body=NOTE,
            response=answer,
            tag=TAG,
            summary="Give up on a pending item (status failed), with a note (409 for any other status)",
            errors=(400, 404, 409, 422),
            role=Role.OPERATOR,
            variables=_with_note,
        ),
        graphql_route(
            "GET",
            "/operations/circuit-breakers",
            BREAKERS,
            lambda data, _a: {"circuit_breakers": [breaker(b) for b in data["circuitBreakers"]]},
            variables=lambda _a: {"name": None},
            response=obj(circuit_breakers=arr(BREAKER)),
            tag=TAG,
            summary="Circuit breakers of the database, the event bus and the external catalogs",
        ),
        graphql_route(
            "GET",
            "/operations/circuit-breakers/{name}",
            BREAKERS,
            lambda data, _a: breaker(data["circuitBreakers"][0]),
            variables=lambda a: {"name": a["name"]},
            params=[BREAKER_NAME],
            response=BREAKER,
            tag=TAG,
            summary="One circuit breaker",
            errors=(404, 422),
        ),
        graphql_route(
            "POST",
            "/operations/circuit-breakers/{name}/reset",
            RESET,
            lambda data, _a: {
                "success": True,
                "message": f"circuit breaker {data['resetCircuitBreaker']['name']} reset",
                "circuit_breaker": breaker(data["resetCircuitBreaker"]),
            },
            variables=lambda a: {"name": a["name"]},
            params=[BREAKER_NAME],
            response=obj(success=BOOL, message=STR, circuit_breaker=BREAKER),
            tag=TAG,
            summary="Close a circuit breaker by hand (this server process's)",
            errors=(404, 422),
            role=Role.OPERATOR,
        ),
    ]
