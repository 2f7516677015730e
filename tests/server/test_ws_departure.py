"""Operations on a GraphQL WebSocket end cleanly, however they end: nothing held, nothing logged.

The client is driven straight through ASGI, so the moment it acts is chosen, down to a loop
turn: ``client`` plays a script of messages and waits, then vanishes (no close frame).

Before, on graphql-transport-ws, a query runs under its deadline in a task of its own; a
client that went away (or sent ``complete``) in the loop turn after starting it had that
task run once more before the cancellation reached it, and answer the id strawberry had
just forgotten: ``KeyError`` logged from ``forget_id``, or, when the id was reused at
once, the new operation's registration deleted (it then outlived the connection) and an
``error`` sent for it. A send that found the client gone was logged as an error too.

Released without garbage collection (it is off in these tests): the process's cost in
flight (queries and mutations; nothing enters it on the legacy graphql-ws protocol, which
runs subscriptions only), each connection's subscription budget, and the shared producers'
subscribers, whether the operation ended on its own, failed first, raised, was stopped or
its client left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from sqlalchemy import delete
from starlette.applications import Starlette

from dsa110.db.tables import jobs as jobs_table
from dsa110.events import JOB_LOG
from dsa110.events.channels import JobLogPayload
from dsa110.ops import jobs
from dsa110.settings import Settings
from server.app import create_app
from tests.server.test_cost_in_flight import COSTLY, budget_settings
from tests.waiting import eventually

STATUS = "subscription { pipelineStatus { queue { total } } }"  # cost 2
INVALID_SUBSCRIPTION = (
    "subscription { pipelineStatus { queue { total noSuchField } } }"  # cost 2, fails first
)
RAISES = "subscription { jobLogs(jobId: 987654) { lines { line } } }"  # cost 12: NOT_FOUND from the resolver
HOLDS_ALL = "subscription { pipelineStatus { recentGroups { groupId } } }"  # cost 12, stays open
INVALID_QUERY = "{ sources(first: 1) { nodes { noSuchField } } }"
UNSET_VARIABLE = (
    "query($n: Int!) { sources(first: $n) { nodes { sourceId } } }"  # admitted, fails in execution
)
START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
STOP = {"graphql-transport-ws": "complete", "graphql-ws": "stop"}
PROTOCOLS = ["graphql-transport-ws", "graphql-ws"]
WAIT_S = 10.0

TURN: Final = "turn"
Step = dict[str, Any] | Callable[[list[dict[str, Any]]], bool] | str
"""A message the client sends, a condition on what the server sent that it waits for, or
``TURN``: one loop turn passes."""


class Client:
    """One WebSocket client on ``/graphql``, played through ASGI from a script."""

    def __init__(self, protocol: str, script: list[Step], *, lost: bool = False) -> None:
        self.protocol = protocol
        self.script: list[Step] = [{"type": "connection_init"}, *script]
        self.lost = lost  # the connection breaks after the script; the server hears of it late
        self.sent: list[dict[str, Any]] = []  # what the server sent, parsed
        self.gone = False
        self.failed_sends = 0
        self.sent_after_gone: list[dict[str, Any]] = []
        self.answered = asyncio.Event()  # the server sent something
        self.send_failed = asyncio.Event()

    def start(self, op_id: str, document: str) -> dict[str, Any]:
        return {"id": op_id, "type": START[self.protocol], "payload": {"query": document}}

    def stop(self, op_id: str) -> dict[str, Any]:
        return {"id": op_id, "type": STOP[self.protocol]}

    def of(self, op_id: str) -> list[dict[str, Any]]:
        return [m for m in self.sent if m.get("id") == op_id]

    async def run(self, app: Starlette) -> None:
        pending: list[dict[str, Any]] = [{"type": "websocket.connect"}]

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop(0)
            while self.script:
                step = self.script.pop(0)
                if step == TURN:
                    await asyncio.sleep(0)
                    continue
                if isinstance(step, dict):
                    return {"type": "websocket.receive", "text": json.dumps(step)}
                assert callable(step)
                while not step(self.sent):
                    self.answered.clear()
                    await self.answered.wait()
            # One loop turn (the operation tasks just started run once), then the client is gone.
            await asyncio.sleep(0)
            self.gone = True
            if self.lost:  # ... and the server hears of it once a send has failed
                await self.send_failed.wait()
            return {"type": "websocket.disconnect", "code": 1006}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] != "websocket.send":
                return
            parsed = json.loads(message["text"])
            if self.gone and self.lost:
                self.failed_sends += 1
                self.send_failed.set()
                raise OSError("connection lost")  # as uvicorn's ClientDisconnected
            if self.gone:
                self.sent_after_gone.append(parsed)
            self.sent.append(parsed)
            self.answered.set()

        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": "/graphql",
            "raw_path": b"/graphql",
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"testserver"), (b"sec-websocket-protocol", self.protocol.encode())],
            "subprotocols": [self.protocol],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "extensions": {},
        }
        try:
            async with asyncio.timeout(WAIT_S):
                await app(scope, receive, send)  # type: ignore[arg-type]
        except TimeoutError:
            raise AssertionError(
                f"the script did not play out: left {self.script}, sent {self.sent}"
            ) from None


def answered(op_id: str, *types: str) -> Callable[[list[dict[str, Any]]], bool]:
    """The server has sent a message of one of ``types`` for ``op_id``."""
    return lambda sent: any(m.get("id") == op_id and m["type"] in types for m in sent)


def codes(message: dict[str, Any]) -> list[str]:
    payload = message.get("payload")
    errors = payload if isinstance(payload, list) else [payload]
    if isinstance(payload, dict) and "errors" in payload:
        errors = payload["errors"]
    return [str((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)]


@pytest.fixture(autouse=True)
def no_garbage_collection() -> Iterator[None]:
    """What an operation holds must come back when it ends, not when a cycle is collected."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def settings(empty_db_url: str, tmp_path: Path) -> Settings:
    # A process budget and a client's share (so queries are counted), and a subscription
    # budget of 12 per connection: RAISES fits only when nothing else is held.
    return dataclasses.replace(
        budget_settings(empty_db_url, tmp_path, 1000, 500), subscription_cost_budget=12
    )


def _errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info else f"{r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR
    ]


async def nothing_held(app: Starlette) -> None:
    in_flight = app.state.schema.in_flight
    live = app.state.live
    await eventually(
        lambda: in_flight.running == 0 and live.subscriber_count == 0 and live.producer_count == 0
    )
    assert in_flight.cost == 0 and in_flight.by_client == {}


async def run_to_the_end(settings: Settings, client: Client, caplog: pytest.LogCaptureFixture) -> None:
    """Run ``client``'s script against a fresh app, then wait until the app holds nothing
    (an operation's cost, a subscriber, a producer); warnings and errors are captured."""
    app = create_app(settings, migrate=False)
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            await client.run(app)
            await nothing_held(app)
    await app.state.engine.dispose()


async def test_a_client_gone_while_its_operations_start_leaves_no_error_and_nothing_held(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client("graphql-transport-ws", [])
    client.script += [
        client.start("q", COSTLY),
        client.start("bad", INVALID_QUERY),  # answered without awaiting anything
        client.start("s", STATUS),
        client.start("q2", COSTLY),
    ]
    await run_to_the_end(settings, client, caplog)

    assert _errors_logged(caplog) == []
    assert client.sent_after_gone == []  # nothing for an operation after the socket was gone


async def test_an_id_reused_right_after_complete_is_the_new_operations_alone(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # `complete` for "q" one loop turn after it started, then "q" again at once: the first
    # one's answer must never come, nor may it end the second (which must end with the socket).
    client = Client("graphql-transport-ws", [])
    client.script += [
        client.start("q", INVALID_QUERY),
        TURN,  # its task starts the deadline's task
        client.stop("q"),
        client.start("q", STATUS),
        answered("q", "next", "error"),
    ]
    await run_to_the_end(settings, client, caplog)  # the second "q" ended with the connection

    assert [m["type"] for m in client.of("q")] == ["next"], client.of("q")
    assert "errors" not in client.of("q")[0]["payload"]
    assert _errors_logged(caplog) == []


async def test_a_send_that_finds_the_client_gone_is_not_an_error(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The connection breaks; the operations' answers fail to send before the server reads
    # the disconnect (uvicorn raises on a send to a lost connection).
    client = Client("graphql-transport-ws", [], lost=True)
    client.script += [
        client.start("bad", INVALID_QUERY),
        client.start("q", COSTLY),
        client.start("s", STATUS),
    ]
    await run_to_the_end(settings, client, caplog)

    assert client.failed_sends > 0
    assert _errors_logged(caplog) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_what_an_operation_holds_comes_back_however_it_ends(
    settings: Settings, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    # Each RAISES (cost 12) is accepted only if everything before it gave its charge back
    # to the connection's budget of 12; refused, it would be SUBSCRIPTION_BUDGET_EXCEEDED.
    # (A subscription whose resolver raised ends by itself; a `stop` after that is harmless.)
    ended = ("complete", "error")
    first = ("next", "data", "error")
    client = Client(protocol, [])
    client.script += [
        client.start("bad", INVALID_SUBSCRIPTION),  # charged, then fails before it executes
        answered("bad", *ended),
        client.start("raises1", RAISES),  # charged, then its resolver raises
        answered("raises1", *first),
        client.stop("raises1"),
        client.start("raises2", RAISES),
        answered("raises2", *first),
        client.stop("raises2"),
        client.start("s", STATUS),
        answered("s", *first),
        client.stop("s"),
        client.start("unset", UNSET_VARIABLE),  # a query admitted (transport-ws), failing in execution
        answered("unset", *ended),
        client.start("q", COSTLY),  # a query admitted and answered (transport-ws)
        answered("q", *ended),
        client.start("raises3", RAISES),
        answered("raises3", *first),
        client.start("held", HOLDS_ALL),
        answered("held", *first),  # left open, as the next: they end with the connection
        client.start("bad2", INVALID_SUBSCRIPTION),  # refused: "held" holds the whole budget
        answered("bad2", *ended),
    ]
    await run_to_the_end(settings, client, caplog)

    assert client.of("bad")[0]["type"] == "error", client.of("bad")
    assert codes(client.of("bad")[0]) == ["GRAPHQL_VALIDATION_FAILED"]
    for op_id in ("raises1", "raises2", "raises3"):
        answer = client.of(op_id)[0]
        assert answer["type"] in ("next", "data"), client.of(op_id)  # run, not refused
        assert codes(answer) == ["NOT_FOUND"], answer
    assert "errors" not in client.of("s")[0]["payload"]
    assert codes(client.of("bad2")[0]) == ["SUBSCRIPTION_BUDGET_EXCEEDED"]  # the budget does bind
    assert _errors_logged(caplog) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscription_that_fails_ends_and_gives_its_budget_back_at_once(
    settings: Settings, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    # RAISES (its resolver raises NOT_FOUND) costs the connection's whole budget of 12. Once
    # its error is sent it is over: it completes by itself, and the same subscription sent
    # the moment the error arrives, without a `complete`/`stop` first, is run, not refused
    # with SUBSCRIPTION_BUDGET_EXCEEDED. Before, its snapshot's error left it waiting for
    # events that would never come, holding the budget until the client stopped it.
    failed = ("next", "data", "error")
    client = Client(protocol, [])
    client.script += [
        client.start("raises1", RAISES),
        answered("raises1", *failed),
        client.start("raises2", RAISES),  # at once
        answered("raises2", *failed),
        answered("raises1", "complete"),
        answered("raises2", "complete"),
    ]
    await run_to_the_end(settings, client, caplog)

    for op_id in ("raises1", "raises2"):
        messages = client.of(op_id)
        assert [m["type"] for m in messages] == [failed[:2][PROTOCOLS.index(protocol)], "complete"], messages
        assert codes(messages[0]) == ["NOT_FOUND"], messages
    assert _errors_logged(caplog) == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_subscription_whose_resolver_fails_after_its_first_result_ends_too(
    settings: Settings, caplog: pytest.LogCaptureFixture, protocol: str
) -> None:
    # jobLogs of a job that exists (cost 12, the whole budget): its snapshot, then the job
    # is deleted and a log event for it comes: the shared producer's resolver raises
    # NOT_FOUND. The error goes out, the operation completes, its charge is back.
    client = Client(protocol, [])
    app = create_app(settings, migrate=False)
    with caplog.at_level(logging.WARNING):
        async with app.router.lifespan_context(app):
            job_id = int((await jobs.create_job(app.state.engine, "calibrate"))["id"])
            logs = f"subscription {{ jobLogs(jobId: {job_id}) {{ lines {{ line }} }} }}"
            client.script += [
                client.start("logs", logs),
                lambda sent: len(client.of("logs")) >= 2,  # the snapshot, then the failure
                client.start("after", HOLDS_ALL),  # at once
                answered("after", "next", "data", "error"),
                answered("logs", "complete"),
            ]
            playing = asyncio.create_task(client.run(app))
            await eventually(lambda: len(client.of("logs")) == 1)  # the producer listens by then
            async with app.state.engine.begin() as conn:
                await conn.execute(delete(jobs_table).where(jobs_table.c.id == job_id))
            payload = JobLogPayload(job_id=job_id, first_line_id=1, last_line_id=1, n_lines=1)
            await JOB_LOG.publish(app.state.bus.publish, payload)
            await playing
            await nothing_held(app)
    await app.state.engine.dispose()

    snapshot, failure, complete = client.of("logs")
    assert "errors" not in snapshot["payload"] and codes(failure) == ["NOT_FOUND"], client.of("logs")
    assert complete["type"] == "complete"
    assert "errors" not in client.of("after")[0]["payload"], client.of("after")  # run, not refused
    assert _errors_logged(caplog) == []
