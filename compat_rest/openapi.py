"""The OpenAPI 3.1 document of the compat layer, generated from the route declarations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from compat_rest.errors import ENVELOPE_SCHEMA
from compat_rest.routing import MAX_BODY_DEPTH, SAFE_METHODS, RestRoute
from dsa110.auth.identity import Role

_CONVERTER = re.compile(r"\{(\w+):\w+\}")
_STATUS_TEXT = {
    400: "Malformed request (bad JSON, bad graph input)",
    401: "Credentials needed, or credentials that do not verify",
    403: "Forbidden: the caller's role does not allow this",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "The body is not JSON (`Content-Type: application/json`)",
    422: "Invalid parameter",
    503: "Unavailable (a dependency is down, or the database is busy: retry after `Retry-After`)",
}


_BODY_400 = (
    "Malformed request: a body that is not JSON in UTF-8 (`INVALID_JSON`, `NaN` and `Infinity` "
    f"included), nests arrays and objects deeper than {MAX_BODY_DEPTH} levels (`NESTED_TOO_DEEP`) "
    "or holds a lone UTF-16 surrogate (`INVALID_UNICODE`); bad graph input"
)


SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "An API key (`d110_...`) or an OIDC token"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def openapi_path(template: str) -> str:
    """Starlette ``{name:path}`` -> OpenAPI ``{name}``."""
    return _CONVERTER.sub(r"{\1}", template)


def _operation_id(route: RestRoute) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", openapi_path(route.path)).strip("_")
    return f"{route.method.lower()}_{slug or 'root'}"


def _operation(route: RestRoute) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": _operation_id(route),
        "tags": [route.tag],
        "summary": route.summary,
    }
    description = route.description
    if description:
        operation["description"] = description
    parameters = [
        {
            "name": p.name,
            "in": p.where,
            "required": p.required or p.where == "path",
            "schema": p.json_schema(),
            **({"description": p.description} if p.description else {}),
        }
        for p in route.params
    ]
    if parameters:
        operation["parameters"] = parameters
    if route.body:
        body_schema: dict[str, Any] = {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in route.body},
        }
        required = [p.name for p in route.body if p.required]
        if required:
            body_schema["required"] = required
        operation["requestBody"] = {
            "required": bool(required),
            "content": {"application/json": {"schema": body_schema}},
        }
    responses: dict[str, Any] = {}
    if route.response is None:
        content = {route.media_type: {"schema": {"type": "string", "format": "binary"}}}
    else:
        content = {route.media_type: {"schema": route.response}}
    for media_type in route.other_media_types:
        content[media_type] = {"schema": {"type": "string", "format": "binary"}}
    responses[str(route.status_code)] = {"description": "Success", "content": content}
    for status, schema in route.other_responses:
        responses[str(status)] = {
            "description": _STATUS_TEXT.get(status, "Answer"),
            "content": {"application/json": {"schema": schema}},
        }
    statuses = set(route.errors) - {status for status, _ in route.other_responses}
    if any(p.where == "path" for p in route.params):
        statuses.add(404)
    if route.role is not None and route.role is not Role.VIEWER:
        statuses |= {401, 403}
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
        operation["description"] = (
            operation.get("description", "") + f"\n\nNeeds the `{route.role}` role."
        ).strip()
    if route.method not in SAFE_METHODS:
        statuses.add(415)
    if route.body:
        statuses.add(400)  # the body's JSON (compat_rest.query_json)
    if route.role is not None and route.role is not Role.VIEWER:
        statuses.add(503)  # BUSY: the write lock was not granted within its budget
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": _BODY_400 if status == 400 and route.body else _STATUS_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation["responses"] = responses
    return operation


def openapi_document(
    routes: Sequence[RestRoute], *, prefix: str = "/api", version: str = "0.1.0"
) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(prefix + openapi_path(route.path), {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "DSA-110 pipeline REST API (compatibility layer)",
            "version": version,
            "description": (
                "The documented legacy /api paths. Each answer is computed by a GraphQL query "
                "against /graphql; times are ISO 8601 UTC with Z. Errors use the envelope "
                '`{error, status: "error", code, details}`. Writes need an API key or OIDC token '
                "(`Authorization: Bearer ...`) with the role each operation names; every client has "
                "a request budget per minute (429 `RATE_LIMITED` with `Retry-After`)."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": {"Error": ENVELOPE_SCHEMA}, "securitySchemes": SECURITY_SCHEMES},
    }
