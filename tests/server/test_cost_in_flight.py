"""The work one process runs at once is bounded for all clients together (``schema.in_flight``).

Before, fifty clients at fifty addresses, each well inside its own limits, could run fifty
costly queries at once (the server's memory 0.4 -> 2.1 GB, most timed out), and one
WebSocket could run 40 (no per-client request limit there; the database pool ran out and
they failed as internal errors). Now an operation that does not fit beside the work
already running is refused at once with ``BUSY`` and ``Retry-After`` on every transport,
and runs once the work it waited on is done.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dsa110.auth.identity import Identity, Role
from dsa110.settings import Settings
from schema.in_flight import CostInFlight
from tests.credentials import key_headers
from tests.databases import write_lock_held
from tests.live.conftest import WAIT_S, LiveApp, running
from tests.waiting import eventually

COSTLY = "{ sources(first: 20) { nodes { sourceId } } }"  # cost 21: over the budget below
CREATE_KEY = 'mutation { createApiKey(name: "held-writer", role: VIEWER) { secret } }'
BUDGET = 10


def budget_settings(url: str, root: Path, budget: int, share: int = 0) -> Settings:
    return Settings(
        data_dir=root,
        database_url=url,
        metrics_interval_s=0,
        job_slots=0,
        max_cost_in_flight=budget,
        max_cost_in_flight_per_client=share,
        write_lock_timeout_s=300.0,  # the held writer waits for as long as the test holds the lock
    )


@pytest.fixture
def settings(empty_db_url: str, tmp_path: Path) -> Settings:
    return budget_settings(empty_db_url, tmp_path, BUDGET)


async def start_held_writer(live: LiveApp, admin: dict[str, str]) -> asyncio.Task[httpx.Response]:
    """A mutation admitted and running (waiting for the write lock the test holds)."""
    writer = asyncio.create_task(live.http.post("/graphql", json={"query": CREATE_KEY}, headers=admin))
    await eventually(lambda: live.app.state.schema.in_flight.running == 1)
    return writer


def busy_details(error: dict[str, Any]) -> dict[str, Any]:
    assert error["extensions"]["code"] == "BUSY", error
    details: dict[str, Any] = error["extensions"]["details"]
    return details


async def test_work_that_does_not_fit_beside_running_work_is_refused_then_runs(
    settings: Settings, backend: str, empty_db_url: str
) -> None:
    async with running(settings) as live:
        in_flight = live.app.state.schema.in_flight
        admin = await key_headers(live.engine, Role.ADMIN)
        async with write_lock_held(backend, empty_db_url, "api_keys"):
            writer = await start_held_writer(live, admin)
            graph = await live.http.post("/graphql", json={"query": COSTLY})
            rest = await live.http.post("/api/sources/search", json={"limit": 20})
            cheap = await live.http.post("/graphql", json={"query": "{ sources(first: 1) { totalCount } }"})
        created = await writer

        assert graph.status_code == 503, graph.text
        assert graph.headers["Retry-After"] == "1"
        (error,) = graph.json()["errors"]
        details = busy_details(error)
        assert details["cost"] > BUDGET and details["limit"] == BUDGET
        assert "data" not in graph.json()  # nothing ran
        assert rest.status_code == 503, rest.text
        assert rest.headers["Retry-After"] == "1"
        assert rest.json()["code"] == "BUSY"
        assert cheap.status_code == 200 and cheap.json() == {"data": {"sources": {"totalCount": 0}}}
        assert created.status_code == 200 and created.json()["data"]["createApiKey"]["secret"]

        # Nothing runs now: the same operations go through, though one alone costs more than
        # the budget (the per-operation limit is what bounds one operation).
        assert in_flight.running == 0 and in_flight.cost == 0
        again = await live.http.post("/graphql", json={"query": COSTLY})
        rest_again = await live.http.post("/api/sources/search", json={"limit": 20})
        assert again.status_code == 200 and again.json() == {"data": {"sources": {"nodes": []}}}
        assert rest_again.status_code == 200, rest_again.text
        assert in_flight.running == 0 and in_flight.cost == 0


async def test_a_websocket_query_is_counted_with_the_rest(
    settings: Settings, backend: str, empty_db_url: str
) -> None:
    async with running(settings) as live:
        admin = await key_headers(live.engine, Role.ADMIN)
        async with write_lock_held(backend, empty_db_url, "api_keys"):
            writer = await start_held_writer(live, admin)
            async with live.ws() as ws:
                await ws.send_json({"type": "connection_init"})
                assert (await ws.receive_json())["type"] == "connection_ack"
                await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": COSTLY}})
                answer = await ws.receive_json()
        assert (await writer).status_code == 200

        assert answer["type"] == "error" and answer["id"] == "1", answer
        (error,) = answer["payload"]
        assert busy_details(error)["limit"] == BUDGET
        assert live.app.state.schema.in_flight.running == 0


async def test_the_servers_own_work_is_not_refused(
    settings: Settings, backend: str, empty_db_url: str
) -> None:
    # The legacy status channel builds one message per event for all its listeners; a
    # refusal there would end the channel for every one of them.
    async with running(settings) as live:
        admin = await key_headers(live.engine, Role.ADMIN)
        async with write_lock_held(backend, empty_db_url, "api_keys"):
            writer = await start_held_writer(live, admin)
            async with live.ws("/api/ws/status", protocol="") as ws:
                first = json.loads(await ws.receive_text(timeout=WAIT_S))
        assert (await writer).status_code == 200

        assert first["type"] == "status_update", first
        assert set(first["data"]) == {"pipeline_status", "metrics", "ese_candidates"}


async def test_one_client_cannot_hold_the_whole_budget(
    empty_db_url: str, backend: str, tmp_path: Path
) -> None:
    # One client's share is one COSTLY query: the admin, whose write is running, may not
    # start one beside it; another client may, the process's budget having room for both.
    share = 21
    fair = budget_settings(empty_db_url, tmp_path, 1000, share)
    async with running(fair) as live:
        in_flight = live.app.state.schema.in_flight
        admin = await key_headers(live.engine, Role.ADMIN)
        async with write_lock_held(backend, empty_db_url, "api_keys"):
            writer = await start_held_writer(live, admin)
            held = in_flight.cost
            own = await live.http.post("/graphql", json={"query": COSTLY}, headers=admin)
            other = await live.http.post("/graphql", json={"query": COSTLY})
        assert (await writer).status_code == 200

        assert own.status_code == 503, own.text
        details = busy_details(own.json()["errors"][0])
        assert details["client_in_flight"] == held and details["client_limit"] == share
        assert details["in_flight"] == held and details["limit"] == 1000  # the process had room
        assert "your own operations" in own.json()["errors"][0]["message"]
        assert other.status_code == 200 and other.json() == {"data": {"sources": {"nodes": []}}}
        assert in_flight.running == 0 and in_flight.by_client == {}


def test_a_clients_share_is_counted_per_client_and_given_back() -> None:
    budget = CostInFlight(limit=100, client_limit=30)
    assert budget.admit(25, "a")
    assert not budget.admit(10, "a")  # 35 > 30: a's share
    assert budget.admit(10, "b") and budget.admit(20, "b")
    assert budget.admit(40, "c")  # over its share, but nothing of c's runs: admitted
    assert not budget.admit(10, "d")  # 95 + 10 > 100: the process's budget
    assert (budget.cost, budget.client_cost("a"), budget.client_cost("b")) == (95, 25, 30)
    budget.release(25, "a")
    assert budget.client_cost("a") == 0 and "a" not in budget.by_client
    assert budget.admit(5, "a") and budget.cost == 75


SHARE = 21  # one COSTLY query


async def test_a_clients_share_holds_without_a_process_budget(empty_db_url: str, tmp_path: Path) -> None:
    # The share is its own bound: it holds when the process has no budget (before, the guards
    # counted nothing then, and a deployment that set only the share had none).
    settings = budget_settings(empty_db_url, tmp_path, 0, SHARE)
    async with running(settings) as live:
        in_flight = live.app.state.schema.in_flight
        headers = await key_headers(live.engine, Role.VIEWER, name="share")
        client = Identity("key", "key:share", Role.VIEWER).rate_key
        assert in_flight.admit(SHARE, client)  # stands for an operation of that client's, running
        try:
            own = await live.http.post("/graphql", json={"query": COSTLY}, headers=headers)
            other = await live.http.post("/graphql", json={"query": COSTLY})
        finally:
            in_flight.release(SHARE, client)
        again = await live.http.post("/graphql", json={"query": COSTLY}, headers=headers)

    assert own.status_code == 503, own.text
    error = own.json()["errors"][0]
    assert error["extensions"]["code"] == "BUSY"
    assert error["extensions"]["details"]["client_limit"] == SHARE
    assert other.status_code == 200 and other.json() == {"data": {"sources": {"nodes": []}}}
    assert again.status_code == 200, again.text
    assert in_flight.running == 0 and in_flight.by_client == {}
