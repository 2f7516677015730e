"""A real HTTP receiver for webhook tests: uvicorn on a free loopback port, in this process.

It verifies each delivery's signature with the ``standardwebhooks`` library (what a
receiver would use), counts raw requests, and keeps one entry per ``webhook-id`` as a
receiver that honours the idempotency key does. Scripted answers per request: an HTTP
status, or ``"hang"`` (hold the request until ``release()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.live.servers import free_port


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    verified: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str = ""
    secret: str | None = None
    script: list[int | str] = field(default_factory=list)
    raw: list[Delivery] = field(default_factory=list)
    unique: dict[str, Delivery] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self._release.set()

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified = False
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except Exception:
                verified = False
        delivery = Delivery(headers, body, verified)
        self.raw.append(delivery)
        self.arrived.set()
        answer = self.script.pop(0) if self.script else 200
        if answer == "hang":
            await self._release.wait()
            answer = 200
        status = int(answer)
        if 200 <= status < 300 and verified:
            self.unique.setdefault(headers["webhook-id"], delivery)  # the idempotency key dedupes
        return Response(status_code=status)


@contextlib.asynccontextmanager
async def receiving(**kwargs: Any) -> AsyncIterator[Receiver]:
    receiver = Receiver(**kwargs)
    port = free_port()
    receiver.url = f"http://127.0.0.1:{port}/hook"
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield receiver
    finally:
        receiver.release()
        server.should_exit = True
        server.force_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
