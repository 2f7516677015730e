"""A cap on the size of one JSON answer: ``RESPONSE_TOO_LARGE`` instead of megabytes.

Cost analysis (``schema.cost``) refuses what is certainly too much before it runs; an
estimate can still be beaten by real data (a light curve of 100,000 epochs). The JSON
answers of /graphql and /api declare their length before their body; one longer than
``Settings.max_response_bytes`` is replaced by a 422 saying how large it was and what
the cap is, so that the client can ask for smaller pages. Streamed answers (exports,
files, event streams) declare no length and have limits of their own.
"""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RESPONSE_TOO_LARGE: Final = "RESPONSE_TOO_LARGE"
STATUS: Final = 422


class ResponseCapMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.max_bytes <= 0:
            await self.app(scope, receive, send)
            return
        refused = False

        async def capped_send(message: Message) -> None:
            nonlocal refused
            if refused:
                return  # the body of the answer replaced
            if message["type"] == "http.response.start" and (size := self._oversized(message)) is not None:
                refused = True
                await _refuse(scope, send, size, self.max_bytes)
                return
            await send(message)

        await self.app(scope, receive, capped_send)

    def _oversized(self, start: Message) -> int | None:
        headers = dict(start.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if "json" not in headers.get(b"content-type", b"").decode("latin-1") or not length.isdigit():
            return None
        size = int(length)
        return size if size > self.max_bytes else None


async def _refuse(scope: Scope, send: Send, size: int, limit: int) -> None:
    message = (
        f"the answer would be {size} bytes, over the limit of {limit}: ask for smaller pages "
        "(`first`/`limit`) or fewer fields"
    )
    body: Any
    if scope["path"] == "/api" or scope["path"].startswith("/api/"):
        body = {
            "error": message,
            "status": "error",
            "code": RESPONSE_TOO_LARGE,
            "details": {"size": size, "limit": limit},
        }
    else:
        body = {
            "errors": [
                {"message": message, "extensions": {"code": RESPONSE_TOO_LARGE, "size": size, "limit": limit}}
            ]
        }
    encoded = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": STATUS,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(encoded)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": encoded})
