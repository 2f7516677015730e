"""The documented error envelope ``{error, status: "error", code, details}`` and HTTP statuses.

Every failure of a compat route leaves through :class:`ApiError`, so a legacy client
always gets the same JSON shape with a stable ``code``, never an HTML page or a 500 for
its own mistakes. GraphQL ``extensions.code`` values map to statuses here, in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from dsa110.errors import bounded_message, shown

log = logging.getLogger("dsa110.compat")

# GraphQL extensions.code -> HTTP status. Other codes the graph lets through unmasked are
# the domain's public errors about the request (BAD_REGION, BAD_SIZE, ...): 400. Only the
# masked INTERNAL_SERVER_ERROR is the server's fault (500).
INTERNAL = "INTERNAL_SERVER_ERROR"
STATUS_OF_GRAPH_CODE: dict[str, int] = {
    "BAD_USER_INPUT": 400,
    "GRAPHQL_PARSE_FAILED": 400,
    "NOT_FOUND": 404,
    "FILE_NOT_FOUND": 404,
    "OUT_OF_IMAGE": 404,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "CONFLICT": 409,
    "EMPTY_REGION": 422,
    "FIT_FAILED": 422,
    "UNAVAILABLE": 503,
    "BUSY": 503,  # the write lock was not granted in time: nothing written, retry (Retry-After)
    "PAYLOAD_TOO_LARGE": 413,
    # Paths and files: a path no file name needs, or a file that is not what was asked for.
    "BAD_PATH": 422,
    "NOT_A_MEASUREMENT_SET": 422,
    "NOT_A_CALTABLE": 422,
    "NOT_UVH5": 422,
    "NOT_FITS": 422,
    "NOT_A_TABLE": 422,
    "NOT_AN_IMAGE": 422,
    "PUBLISH_FAILED": 409,
    INTERNAL: 500,
}

BEARER_CHALLENGE = 'Bearer realm="dsa110"'

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "status", "code"],
    "properties": {
        "error": {"type": "string"},
        "status": {"type": "string", "enum": ["error"]},
        "code": {"type": "string"},
        "details": {"type": ["object", "null"]},
    },
}


class ApiError(Exception):
    """An answer in the error envelope: HTTP ``status``, stable ``code``, readable message."""

    def __init__(
        self, status: int, code: str, message: str, details: Mapping[str, Any] | None = None
    ) -> None:
        message = bounded_message(message)  # it may quote the input: bounded as the graph's are
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = {key: shown(value) for key, value in details.items()} if details else None

    def response(self) -> JSONResponse:
        response = error_response(self.status, self.code, self.message, self.details)
        if self.status == 401:  # how to authenticate (RFC 9110): a bearer key or token
            response.headers["WWW-Authenticate"] = BEARER_CHALLENGE
        wait = (self.details or {}).get("retry_after_s")
        if self.status == 503 and isinstance(wait, int):
            response.headers["Retry-After"] = str(wait)
        return response


def error_response(
    status: int, code: str, message: str, details: Mapping[str, Any] | None = None
) -> JSONResponse:
    body = {"error": message, "status": "error", "code": code, "details": dict(details) if details else None}
    return JSONResponse(body, status_code=status)


def bad_request(message: str, **details: Any) -> ApiError:
    return ApiError(400, "BAD_REQUEST", message, details)


def validation_error(message: str, **details: Any) -> ApiError:
    return ApiError(422, "VALIDATION_ERROR", message, details)


def not_found(message: str, **details: Any) -> ApiError:
    return ApiError(404, "NOT_FOUND", message, details)


def from_graph_errors(errors: Sequence[Any]) -> ApiError:
    """The first GraphQL error decides the answer; its code picks the HTTP status."""
    first = errors[0]
    extensions = getattr(first, "extensions", None) or {}
    code = str(extensions.get("code") or INTERNAL)
    status = STATUS_OF_GRAPH_CODE.get(code, 400)
    if status == 500:
        # A GraphQL error we cannot attribute to the client: a server defect. The message
        # was already masked by the schema; the traceback is in the graph's log.
        log.error("compat route got an internal graph error: %s", getattr(first, "message", first))
        return ApiError(500, "INTERNAL_SERVER_ERROR", "Internal server error.")
    details = extensions.get("details")
    return ApiError(
        status, code, str(getattr(first, "message", first)), details if isinstance(details, dict) else None
    )


async def unknown_path(request: Request) -> JSONResponse:
    """Catch-all for /api paths no route serves: 404 in the envelope (never an HTML page)."""
    return error_response(404, "NOT_FOUND", f"no such API path: {request.url.path[:200]}")


class UnknownPath:
    """:func:`unknown_path` as an ASGI app, so that its route takes every method (a method
    the route did not list was a plain-text 405 without the envelope)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await unknown_path(Request(scope, receive))
        await response(scope, receive, send)
