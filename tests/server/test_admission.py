"""The process's request slots (``server.admission``): at most N requests execute at once,
the next waits its turn, and one whose wait runs out is refused at once with 503
``SERVER_BUSY`` and ``Retry-After``, having done nothing. What must answer under load is
not counted.

Slots are held by events, never by timing (``tests.server.held``). The waits configured here are either far longer than any test (a slot is
freed first) or end with every slot still held: no outcome depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from dsa110.auth.identity import Role
from dsa110.db.access_tables import audit_log
from dsa110.db.tables import jobs
from dsa110.settings import Settings, SettingsError
from server.admission import SERVER_BUSY, Slots, pool_slots
from server.cli import main
from tests.credentials import key_headers
from tests.live.conftest import TransportWs, running
from tests.server.held import SHORT_WAIT_S, SMALL, Held, app_maker, client, graph_code, holding, slots_of
from tests.waiting import eventually

CREATE_JOB = 'mutation { createMosaicJob(startTime: "2025-10-24T00:00:00Z", endTime: "2025-10-24T06:00:00Z") { jobId } }'
LONG_WAIT_S = 600.0
"""A wait no test reaches: a slot is freed first."""


@pytest.fixture
def settings(empty_db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0)


@pytest.fixture
async def app_factory() -> AsyncIterator[Any]:
    async with app_maker() as make:
        yield make


# --- the bound ---------------------------------------------------------------------------------


async def test_past_its_slots_a_request_waits_then_is_refused_busy(
    settings: Settings, app_factory: Any
) -> None:
    app = app_factory(settings, max_in_flight=2, max_queue_wait_s=SHORT_WAIT_S)
    held = await holding(app, 2)
    assert slots_of(app).in_use == 2
    async with client(app) as http:
        graph = await http.post("/graphql", json={"query": SMALL})
        rest = await http.get("/api/status")
    assert graph.status_code == 503 and graph_code(graph) == SERVER_BUSY
    assert graph.headers["retry-after"] == "1"
    body = rest.json()  # the compat envelope under /api
    assert rest.status_code == 503 and body["status"] == "error" and body["code"] == SERVER_BUSY
    assert body["details"] == {"retry_after_s": 1} and rest.headers["retry-after"] == "1"
    assert slots_of(app).shed == 2 and slots_of(app).waiting == 0

    assert await held[0].end() == 200
    async with client(app) as http:  # a slot is free again
        assert (await http.post("/graphql", json={"query": SMALL})).status_code == 200
    assert await held[1].end() == 200
    assert slots_of(app).in_use == 0


async def test_a_waiting_request_runs_when_a_slot_frees_in_time_first_come_first_served(
    settings: Settings, app_factory: Any
) -> None:
    app = app_factory(settings, max_in_flight=1, max_queue_wait_s=LONG_WAIT_S)
    (held,) = await holding(app, 1)
    done: list[str] = []

    async def ask(name: str) -> int:
        async with client(app, f"10.0.2.{len(name)}") as http:
            status = (await http.post("/graphql", json={"query": SMALL})).status_code
        done.append(name)
        return status

    first = asyncio.create_task(ask("a"))
    await eventually(lambda: slots_of(app).waiting == 1)
    second = asyncio.create_task(ask("bb"))
    await eventually(lambda: slots_of(app).waiting == 2)
    assert await held.end() == 200
    assert await asyncio.wait_for(first, 10) == 200 and await asyncio.wait_for(second, 10) == 200
    assert done == ["a", "bb"] and slots_of(app).shed == 0 and slots_of(app).in_use == 0


async def test_slots_pass_down_the_line_and_a_newcomer_cannot_jump_it() -> None:
    slots = Slots(limit=1, wait_s=LONG_WAIT_S)
    assert await slots.acquire()
    waiter = asyncio.create_task(slots.acquire())
    await eventually(lambda: slots.waiting == 1)
    slots.release()  # handed to the waiter, not freed
    assert slots.in_use == 1
    slots.wait_s = 0.0  # a newcomer that will not wait finds none free
    assert not await slots.acquire()
    assert await asyncio.wait_for(waiter, 10)
    slots.release()
    assert slots.in_use == 0

    slots = Slots(limit=1, wait_s=SHORT_WAIT_S)  # a wait that runs out leaves the line
    assert await slots.acquire()
    assert not await slots.acquire()
    assert (slots.in_use, slots.waiting, slots.shed) == (1, 0, 1)


async def test_a_waiter_that_goes_away_leaves_the_line() -> None:
    slots = Slots(limit=1, wait_s=LONG_WAIT_S)
    assert await slots.acquire()
    gone = asyncio.create_task(slots.acquire())
    await eventually(lambda: slots.waiting == 1)
    gone.cancel()
    await asyncio.gather(gone, return_exceptions=True)
    assert slots.waiting == 0 and slots.shed == 0
    slots.release()
    assert slots.in_use == 0


async def test_a_body_still_arriving_holds_no_slot(settings: Settings, app_factory: Any) -> None:
    app = app_factory(settings, max_in_flight=1, max_queue_wait_s=SHORT_WAIT_S)
    trickling = Held(app, answered=False)
    await asyncio.wait_for(trickling.ready.wait(), 10)
    assert slots_of(app).in_use == 0
    async with client(app) as http:
        assert (await http.post("/graphql", json={"query": SMALL})).status_code == 200
    assert await trickling.end() == 200


# --- what is not counted -----------------------------------------------------------------------


async def test_health_metrics_static_files_and_websockets_answer_while_every_slot_is_held(
    settings: Settings,
) -> None:
    async with running(dataclasses.replace(settings, max_in_flight=1, max_queue_wait_s=0)) as live:
        (held,) = await holding(live.app, 1)
        refused = await live.http.post("/graphql", json={"query": SMALL})
        assert refused.status_code == 503 and graph_code(refused) == SERVER_BUSY  # saturated
        assert (await live.http.get("/healthz")).status_code == 200
        assert (await live.http.get("/metrics")).status_code == 200
        assert (await live.http.get("/graphql/static/graphiql.min.js")).status_code == 200
        legacy = await live.http.get("/api/health")  # its own answer, whatever it says
        assert legacy.status_code in (200, 503) and legacy.json().get("code") != SERVER_BUSY
        async with live.ws() as ws:  # a handshake, and an operation on the open socket
            client_ws = TransportWs(ws)
            await client_ws.init()
            await client_ws.subscribe("me", SMALL)
            assert (await client_ws.next_data("me"))["me"]["name"] == "anonymous"
        assert slots_of(live.app).shed == 1
        assert await held.end() == 200


# --- nothing done ------------------------------------------------------------------------------


async def _count(app: Starlette, table: Any) -> int:
    async with app.state.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_shed_mutation_writes_nothing(settings: Settings, app_factory: Any) -> None:
    app = app_factory(settings, max_in_flight=1, max_queue_wait_s=SHORT_WAIT_S)
    operator = await key_headers(app.state.engine, Role.OPERATOR)
    audited = await _count(app, audit_log)
    (held,) = await holding(app, 1)
    async with client(app) as http:
        shed = await http.post("/graphql", json={"query": CREATE_JOB}, headers=operator)
        assert shed.status_code == 503 and graph_code(shed) == SERVER_BUSY
        assert await _count(app, jobs) == 0 and await _count(app, audit_log) == audited
        assert await held.end() == 200
        done = await http.post("/graphql", json={"query": CREATE_JOB}, headers=operator)
    assert done.status_code == 200 and done.json()["data"]["createMosaicJob"]["jobId"]
    assert await _count(app, jobs) == 1  # the same mutation, let in, writes


# --- settings ----------------------------------------------------------------------------------


async def test_the_default_is_the_database_pools_connections(settings: Settings, app_factory: Any) -> None:
    app = app_factory(settings)
    pool = app.state.engine.sync_engine.pool
    assert slots_of(app).limit == pool_slots(app.state.engine) == pool.size() + pool._max_overflow
    assert slots_of(app).wait_s == 5.0
    assert slots_of(app_factory(settings, max_in_flight=7)).limit == 7
    unbounded = app_factory(settings, max_in_flight=0, max_queue_wait_s=0)
    async with client(unbounded) as http:
        assert (await http.post("/graphql", json={"query": SMALL})).status_code == 200
    assert slots_of(unbounded).in_use == 0  # not counted at all


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DSA110_MAX_IN_FLIGHT", "-1"),
        ("DSA110_MAX_IN_FLIGHT", "1.5"),
        ("DSA110_MAX_IN_FLIGHT", "many"),
        ("DSA110_MAX_QUEUE_WAIT_S", "-1"),
        ("DSA110_MAX_QUEUE_WAIT_S", "nan"),
        ("DSA110_MAX_QUEUE_WAIT_S", "inf"),
        ("DSA110_MAX_QUEUE_WAIT_S", "soon"),
    ],
)
def test_bad_values_are_refused_at_start_naming_the_variable(
    variable: str,
    value: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env()
    with pytest.raises(SystemExit) as exit_info:  # the server does not start
        main(["serve", "--data-dir", str(tmp_path), "--port", "1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert variable in err and value in err and "Traceback" not in err


def test_good_values_and_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_in_flight is None and Settings().max_queue_wait_s == 5.0
    for text, expected in (("auto", None), ("", None), ("0", 0), ("64", 64)):
        monkeypatch.setenv("DSA110_MAX_IN_FLIGHT", text)
        assert Settings.from_env().max_in_flight == expected
    monkeypatch.setenv("DSA110_MAX_QUEUE_WAIT_S", "0")
    assert Settings.from_env().max_queue_wait_s == 0.0
    with pytest.raises(SettingsError, match="max_in_flight"):
        Settings(max_in_flight=-3)
    with pytest.raises(SettingsError, match="max_queue_wait_s"):
        dataclasses.replace(Settings(), max_queue_wait_s=float("nan"))
