"""Requests held in flight by events, for the tests of the request limits: a held request
is one the app has answered but whose answer the client does not take yet (its ``send``
waits), so it keeps whatever it holds until released; or one whose body is still coming."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from starlette.applications import Starlette

from dsa110.settings import Settings
from server.app import create_app

SMALL = "{ me { name } }"


@contextlib.asynccontextmanager
async def app_maker() -> AsyncIterator[Callable[..., Starlette]]:
    """``make(settings, **changes)``: apps (no lifespan) closed at the end."""
    made: list[Starlette] = []

    def make(settings: Settings, **changes: Any) -> Starlette:
        app = create_app(dataclasses.replace(settings, **changes), migrate=False)
        made.append(app)
        return app

    try:
        yield make
    finally:
        for app in made:
            await app.state.rate_limiter.close()
            await app.state.engine.dispose()


def client(app: Starlette, address: str = "10.0.0.9") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


def post_scope(address: str, length: int) -> dict[str, Any]:
    """The ASGI scope of a JSON POST /graphql of ``length`` bytes from ``address``."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
        ],
        "client": (address, 40000),
        "server": ("testserver", 80),
    }


class Held:
    """A POST /graphql from ``address``: with ``answered``, the app answers and the client
    does not take the answer until released (its place in flight held); else the client
    sends half its body and the rest when released."""

    def __init__(self, app: Starlette, address: str = "10.0.0.1", *, answered: bool = True) -> None:
        self.release = asyncio.Event()
        self.ready = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self.answered = answered
        self.task = asyncio.create_task(self._run(app, address))

    async def _run(self, app: Starlette, address: str) -> None:
        body = json.dumps({"query": SMALL}).encode()
        parts = [body] if self.answered else [body[:5], body[5:]]

        async def receive() -> dict[str, Any]:
            if not parts:
                await asyncio.Event().wait()  # connected, nothing more to say
            if len(parts) == 2:
                self.ready.set()
                return {"type": "http.request", "body": parts.pop(0), "more_body": True}
            if not self.answered:
                await self.release.wait()
            return {"type": "http.request", "body": parts.pop(0), "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            self.sent.append(message)
            if message["type"] == "http.response.start" and self.answered:
                self.ready.set()
                await self.release.wait()

        await app(post_scope(address, len(body)), receive, send)  # type: ignore[arg-type]

    async def end(self) -> int:
        self.release.set()
        await asyncio.wait_for(self.task, 10)
        return int(self.sent[0]["status"])


def graph_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])
