"""Request-body guard: bodies over the limit get a 413 with a code, before any parsing, and
compressed bodies (``Content-Encoding`` other than ``identity``) a 415.

The answer speaks the caller's error format: GraphQL ``{"errors": [...]}`` on ``/graphql``
(and anything else), the compat layer's envelope ``{error, status: "error", code, details}``
(``compat_rest/errors.py``) on the REST paths under ``/api``.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"request body is larger than {max_bytes} bytes")
        self.max_bytes = max_bytes


def error_body(message: str, code: str) -> bytes:
    return json.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}).encode()


def rest_error_body(message: str, code: str, details: dict[str, object] | None = None) -> bytes:
    """The compat REST envelope (``compat_rest.errors.error_response``), as bytes."""
    return json.dumps({"error": message, "status": "error", "code": code, "details": details}).encode()


def is_rest_path(path: str, prefix: str = "/api") -> bool:
    return path == prefix or path.startswith(prefix + "/")


class BodyLimitMiddleware:
    """Reject HTTP bodies larger than ``max_bytes``, whether declared or streamed (chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int, rest_prefix: str = "/api") -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.rest_prefix = rest_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_headers = scope.get("headers") or []
        headers = dict(raw_headers)
        declared = headers.get(b"content-length")
        has_body = b"transfer-encoding" in headers or (declared is not None and declared not in (b"", b"0"))
        if has_body and (codings := _codings(raw_headers)):
            # A compressed body is not decoded here: read as it is, it would be "not JSON".
            # RFC 9110 section 15.5.16: 415, naming the codings taken.
            message = f"Content-Encoding {', '.join(codings)!r} is not accepted: send the body uncompressed"
            taken = [(b"accept-encoding", b"identity")]
            await _refuse(scope, send, self.rest_prefix, 415, message, "UNSUPPORTED_MEDIA_TYPE", {}, taken)
            return
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._reject(scope, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        message = f"request body is larger than {self.max_bytes} bytes"
        details: dict[str, object] = {"max_bytes": self.max_bytes}
        await _refuse(scope, send, self.rest_prefix, 413, message, "PAYLOAD_TOO_LARGE", details)


def _codings(raw_headers: list[tuple[bytes, bytes]]) -> list[str]:
    """The content codings of a request other than ``identity``: every ``Content-Encoding``
    line counts (RFC 9110 section 5.3: repeated lines are one comma-separated list)."""
    return [
        coding
        for name, value in raw_headers
        if name.lower() == b"content-encoding"
        for coding in (part.strip().lower() for part in value.decode("latin-1").split(","))
        if coding not in ("", "identity")
    ]


async def _refuse(
    scope: Scope,
    send: Send,
    rest_prefix: str,
    status: int,
    message: str,
    code: str,
    details: dict[str, object],
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Answer in the caller's error format (REST envelope under ``rest_prefix``, else GraphQL's)."""
    if is_rest_path(str(scope.get("path", "")), rest_prefix):
        body = rest_error_body(message, code, details or None)
    else:
        body = error_body(message, code)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += extra_headers or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
