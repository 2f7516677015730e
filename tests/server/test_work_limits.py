"""Bounds on one request and one client: answer size, requests in flight, subscription budget."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from dsa110.settings import Settings
from server.app import create_app
from tests.server.held import post_scope
from tests.waiting import eventually

SMALL = "{ me { name } }"


@pytest.fixture
def settings(empty_db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0)


@pytest.fixture
async def app_factory() -> AsyncIterator[Any]:
    made: list[Starlette] = []

    def make(settings: Settings, **changes: Any) -> Starlette:
        app = create_app(dataclasses.replace(settings, **changes), migrate=False)
        made.append(app)
        return app

    yield make
    for app in made:
        await app.state.engine.dispose()


def client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


# --- answer size --------------------------------------------------------------------------------


async def test_an_answer_over_the_cap_is_refused_with_its_size(settings: Settings, app_factory: Any) -> None:
    app = app_factory(settings, max_response_bytes=300)
    introspection = "{ __schema { types { name description } } }"  # large, costs nothing
    async with client(app) as http:
        small = await http.post("/graphql", json={"query": SMALL})
        large = await http.post("/graphql", json={"query": introspection})
        rest = await http.get("/api/openapi.json")  # JSON, over 300 bytes
    assert small.status_code == 200 and small.json()["data"]["me"]["name"] == "anonymous"
    assert large.status_code == 422
    error = large.json()["errors"][0]
    assert error["extensions"]["code"] == "RESPONSE_TOO_LARGE"
    assert error["extensions"]["limit"] == 300 and error["extensions"]["size"] > 300
    assert rest.status_code == 422
    assert rest.json()["code"] == "RESPONSE_TOO_LARGE"
    assert rest.json()["details"]["limit"] == 300


def fragment_fan_out(levels: int, leaf: str) -> str:
    """``levels`` fragments, each spreading the next twice: 2^levels copies of ``leaf`` expanded."""
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels))
    return f"query {{ ...F0 }} {chain} fragment F{levels} on Query {{ {leaf} }}"


# --- document limits ----------------------------------------------------------------------------


@pytest.mark.timeout(60)  # the old walk of 2^30 copies never ended: the timeout fails it
async def test_fragment_fan_out_is_answered_at_once(settings: Settings, app_factory: Any) -> None:
    """30 fragments that each spread the next twice (1.5 kB) held the event loop for minutes:
    the depth and alias limits walked all 2^30 expanded copies. Each fragment is read once now."""
    app = app_factory(settings)
    hops = "measurements(first: 1) { nodes { source { " * 4 + "sourceId" + " } } }" * 4
    deep_leaf = f"sources(first: 1) {{ nodes {{ {hops} }} }}"  # 14 levels
    async with client(app) as http:
        plain = await http.post("/graphql", json={"query": fragment_fan_out(30, "me { name }")})
        aliased = await http.post("/graphql", json={"query": fragment_fan_out(30, "a: me { name }")})
        deep = await http.post("/graphql", json={"query": fragment_fan_out(30, deep_leaf)})
        after = await http.post("/graphql", json={"query": SMALL})
    # Within the depth and alias limits; the cost estimate counts every copy and refuses it.
    assert plain.status_code == 200 and "data" not in plain.json()
    [error] = plain.json()["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": 2**30, "limit": 1_000_000}
    # Through the fragments aliases and levels still count: 2^30 aliases, 14 levels of fields.
    [error] = aliased.json()["errors"]
    assert error["message"] == f"{2**30} aliases found. Allowed: 30"
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    [error] = deep.json()["errors"]
    assert error["message"] == "'anonymous' exceeds maximum operation depth of 12"
    assert after.json() == {"data": {"me": {"name": "anonymous"}}}


async def test_files_and_streams_are_not_capped(settings: Settings, app_factory: Any) -> None:
    app = app_factory(settings, max_response_bytes=300)
    async with client(app) as http:
        asset = await http.get("/graphql/static/graphiql.min.js")
    assert asset.status_code == 200 and len(asset.content) > 300


# --- requests in flight per client ------------------------------------------------------------


class HeldRequest:
    """A POST /graphql whose body the client has not finished sending: in flight until released."""

    def __init__(self, app: Starlette, address: str) -> None:
        self.release = asyncio.Event()
        self.sent: list[dict[str, Any]] = []
        self.started = asyncio.Event()
        self.task = asyncio.create_task(self._run(app, address))

    async def _run(self, app: Starlette, address: str) -> None:
        body = json.dumps({"query": SMALL}).encode()
        parts = [body[:5], body[5:]]

        async def receive() -> dict[str, Any]:
            if len(parts) == 2:
                self.started.set()
                return {"type": "http.request", "body": parts.pop(0), "more_body": True}
            await self.release.wait()
            return {"type": "http.request", "body": parts.pop(0), "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            self.sent.append(message)

        await app(post_scope(address, len(body)), receive, send)  # type: ignore[arg-type]

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])


async def test_a_client_over_its_concurrency_gets_429_others_do_not(
    settings: Settings, app_factory: Any
) -> None:
    app = app_factory(settings, max_concurrent_requests_per_client=2)
    held = [HeldRequest(app, "10.0.0.1") for _ in range(2)]
    for request in held:
        await asyncio.wait_for(request.started.wait(), 10)

    third = HeldRequest(app, "10.0.0.1")
    await asyncio.wait_for(third.task, 10)  # refused at once, without waiting for its body
    assert third.status == 429
    headers = dict(third.sent[0]["headers"])
    assert headers[b"retry-after"] == b"1"
    body = json.loads(third.sent[1]["body"])
    assert body["errors"][0]["extensions"]["code"] == "TOO_MANY_CONCURRENT_REQUESTS"

    other = HeldRequest(app, "10.0.0.2")  # another client is not affected
    await asyncio.wait_for(other.started.wait(), 10)
    async with client(app) as http:  # nor are the health check and static files
        assert (await http.get("/healthz")).status_code == 200

    held[0].release.set()
    await asyncio.wait_for(held[0].task, 10)
    assert held[0].status == 200
    again = HeldRequest(app, "10.0.0.1")  # a slot is free again
    await asyncio.wait_for(again.started.wait(), 10)
    for request in (held[1], other, again):
        request.release.set()
        await asyncio.wait_for(request.task, 10)
        assert request.status == 200
    await eventually(lambda: not app.state.in_flight.counts)
