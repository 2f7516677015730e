"""What /graphql answers over HTTP when it does not execute, or when a writer found the database busy.

Every refusal is a GraphQL error body with a stable ``extensions.code`` and a 4xx status
(strawberry's own refusals are plain text without a code; ``refusal_for`` translates them):

=============================  ======  ==========================================================
code                           status  when
=============================  ======  ==========================================================
``INVALID_JSON``               400     the body (or ``variables``/``extensions``) is not JSON or not UTF-8
                                       (``NaN`` and ``Infinity`` are not JSON either)
``BAD_REQUEST``                400     the body is JSON but not an object with a string ``query``
``BATCHING_NOT_SUPPORTED``     400     a JSON array of operations
``NESTED_TOO_DEEP``            400     JSON nested deeper than ``MAX_JSON_DEPTH`` (or a document
                                       too deep to parse)
``INVALID_UNICODE``            400     a string holding a lone surrogate (``"\\ud800"``): no UTF-8
                                       encoding exists, so no database or response could hold it
``OPERATION_NAME_REQUIRED``    400     a document of several operations without ``operationName``
``UNKNOWN_OPERATION``          400     an ``operationName`` the document does not define
``SUBSCRIPTION_NEEDS_STREAM``  400     a subscription asked for as one JSON answer (no ``Accept:
                                       text/event-stream``): it is a stream, served over
                                       WebSocket (graphql-transport-ws) or SSE only
``METHOD_NOT_ALLOWED``         405     a mutation over GET, or a method other than GET/POST
``UNSUPPORTED_MEDIA_TYPE``     415     a POST body that is not ``application/json``
=============================  ======  ==========================================================

A request error (the document does not parse or validate, its variables do not coerce, it
costs too much: nothing was executed) has no ``data`` entry (GraphQL spec, "Response"). Its
status follows the media type the client accepts (GraphQL over HTTP, "Status Codes"): 200
for ``application/json``, whose clients read errors from the body, and 400 for
``application/graphql-response+json``, which is answered in that media type.

A result whose errors include ``BUSY`` (a writer that did not get the write lock within
its budget, ``dsa110.db.writes``) carries ``Retry-After``; when nothing else in it
succeeded its status is 503, as on the REST layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from cross_web import HTTPException
from starlette.responses import JSONResponse
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.execution import PreExecutionError

from dsa110 import json_text
from schema.errors import BAD_USER_INPUT, OPERATION_NAME_REQUIRED, OperationNameRequired

MAX_JSON_DEPTH: Final = 64
"""Deepest nesting of arrays and objects a request may hold (region shapes need about 5)."""
BUSY: Final = "BUSY"
GRAPHQL_RESPONSE: Final = "application/graphql-response+json"
JSON: Final = "application/json"


class Refused(HTTPException):
    """A request refused before execution, with its code (and headers such as ``Allow``)."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, message)
        self.code = code
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status,
        headers=dict(headers or {}),
    )


_CODE_OF_STATUS: Final = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 415: "UNSUPPORTED_MEDIA_TYPE"}


def refusal_for(error: HTTPException) -> Refused:
    """``error`` (ours or strawberry's) as a coded refusal."""
    if isinstance(error, Refused):
        return error
    if isinstance(error.__cause__, OperationNameRequired):
        return Refused(400, OPERATION_NAME_REQUIRED, error.reason)
    if isinstance(error.__cause__, InvalidOperationTypeError):
        return Refused(405, "METHOD_NOT_ALLOWED", error.reason, {"Allow": "POST"})
    if error.status_code == 405:
        return Refused(405, "METHOD_NOT_ALLOWED", error.reason, {"Allow": "GET, POST"})
    if error.status_code == 400 and error.reason.startswith("Unknown operation named"):
        # GraphiQL sends a stale operationName when Run is pressed right after an edit.
        return Refused(400, "UNKNOWN_OPERATION", error.reason)
    return Refused(error.status_code, _CODE_OF_STATUS.get(error.status_code, "BAD_REQUEST"), error.reason)


def too_deep() -> Refused:
    return Refused(400, json_text.NESTED_TOO_DEEP, _FAULT_MESSAGES[json_text.NESTED_TOO_DEEP])


def decode(data: str | bytes) -> Any:
    """Parse and check a JSON request body or message (``Refused`` for anything malformed:
    ``dsa110.json_text.strict_loads``)."""
    return _strict(data, "the request body")


def decode_parameter(name: str, text: str) -> Any:
    """A GET's ``variables`` or ``extensions`` parameter, checked as ``decode`` checks a body.

    Refused with the same codes, the message naming the parameter: a GET has no body.
    """
    return _strict(text, f"the `{name}` parameter")


def _strict(data: str | bytes, where: str) -> Any:
    try:
        return json_text.strict_loads(data, MAX_JSON_DEPTH)
    except json_text.JsonFault as fault:
        message = _FAULT_MESSAGES.get(fault.code, _FAULT_MESSAGE)
        raise Refused(400, fault.code, message.format(where=where)) from None


_FAULT_MESSAGE: Final = "{where} is not JSON this server accepts"
"""For a refusal with a code of its own that ``_FAULT_MESSAGES`` does not word yet."""
_FAULT_MESSAGES: Final = {
    json_text.INVALID_JSON: "{where} is not valid JSON",
    json_text.NESTED_TOO_DEEP: f"{{where}} nests deeper than {MAX_JSON_DEPTH} levels",
    json_text.INVALID_UNICODE: (
        "a string in {where} holds a lone UTF-16 surrogate (such as \\ud800), which is not text"
    ),
}
SUBSCRIPTION_NEEDS_STREAM: Final = "SUBSCRIPTION_NEEDS_STREAM"


def subscription_needs_stream() -> Refused:
    """A subscription asked for as one JSON answer: it has no single result to give."""
    return Refused(
        400,
        SUBSCRIPTION_NEEDS_STREAM,
        "a subscription is a stream of results, not one answer: subscribe over a WebSocket on"
        " /graphql (protocol graphql-transport-ws) or over SSE (send `Accept: text/event-stream`)",
    )


def operation_body(parsed: Any) -> None:
    """Refuse a POSTed JSON body that is not one operation object."""
    if isinstance(parsed, list):
        raise Refused(400, "BATCHING_NOT_SUPPORTED", "send one operation per request: batching is off")
    if not isinstance(parsed, dict):
        raise Refused(
            400, "BAD_REQUEST", 'the body must be a JSON object such as {"query": "...", "variables": {...}}'
        )


def busy_answer(result: Any) -> tuple[int | None, dict[str, str]]:
    """(503 or None, ``Retry-After`` header) for a result holding ``BUSY`` errors."""
    errors = getattr(result, "errors", None) or ()
    waits = [
        _retry_after(error)
        for error in errors
        if (getattr(error, "extensions", None) or {}).get("code") == BUSY
    ]
    if not waits:
        return None, {}
    data = getattr(result, "data", None)
    nothing_done = data is None or all(value is None for value in data.values())
    return (503 if nothing_done else None), {"Retry-After": str(max(waits))}


def _retry_after(error: Any) -> int:
    details = (getattr(error, "extensions", None) or {}).get("details") or {}
    wait = details.get("retry_after_s") if isinstance(details, dict) else None
    return wait if isinstance(wait, int) and wait > 0 else 1


def wants_graphql_response(accept: str | None) -> bool:
    """Does the ``Accept`` header prefer ``application/graphql-response+json``?

    Only when it names that type, with a quality no lower than the best it gives
    ``application/json`` (directly or through ``application/*`` or ``*/*``): a client
    that sends ``*/*`` or nothing gets ``application/json``, as the spec asks of legacy
    clients.
    """
    if not accept or GRAPHQL_RESPONSE not in accept.lower():
        return False
    ours = json_q = 0.0
    for item in accept.lower().split(","):
        media, _, params = item.partition(";")
        media = media.strip()
        q = _quality(params)
        if media == GRAPHQL_RESPONSE:
            ours = max(ours, q)
        elif media in (JSON, "application/*", "*/*"):
            json_q = max(json_q, q)
    return ours > 0 and ours >= json_q


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0  # a malformed weight: not acceptable rather than preferred
    return 1.0


def is_request_error(result: Any) -> bool:
    """Was the operation refused before execution (parse, validation, cost, variables)?"""
    errors = getattr(result, "errors", None)
    if not errors or getattr(result, "data", None) is not None:
        return False
    if isinstance(result, PreExecutionError):
        return True
    # Variables that do not coerce come back as an ordinary result: no path, the client's input.
    return all(
        error.path is None and (error.extensions or {}).get("code") == BAD_USER_INPUT for error in errors
    )
