"""The deadline and the client's departure stop a request's work, its running SQL included.

A statement is made to run "for ever" for real: on PostgreSQL, the test holds an
exclusive lock on the table the statement reads; on SQLite (where readers do not wait
for writers), a progress handler slows down every statement on the ``measurements``
table until the test lets it go. Then the request's deadline passes, or its client goes
away, and the statement must end while the lock (or the slowness) still holds: the
pool gets its connection back, PostgreSQL shows no statement of ours still running,
and no statement starts after the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette

from dsa110.auth.identity import Role
from dsa110.db.engine import create_engine
from dsa110.settings import Settings
from server.app import create_app
from tests.credentials import key_headers
from tests.databases import crawl_when
from tests.live.conftest import TransportWs
from tests.waiting import eventually

NESTED = (
    "{ sources(first: 3) { nodes { sourceId measurements(first: 5) { nodes { mjd image { path } } } } } }"
)
DEADLINE_S = 1.0


TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK"})


class SlowMeasurements:
    """Makes statements on ``measurements`` crawl (SQLite), or lock that table (PostgreSQL)."""

    def __init__(self, backend: str, url: str) -> None:
        self.backend = backend
        self.url = url
        self.slow = threading.Event()  # set: statements on measurements crawl (SQLite)
        self.statements: list[tuple[float, str]] = []
        self._holder: AsyncConnection | None = None
        self._engine: AsyncEngine | None = None

    def install(self, app: Starlette) -> None:
        engine: AsyncEngine = app.state.engine
        event.listen(engine.sync_engine, "before_cursor_execute", self._record)
        if self.backend == "sqlite":
            # 10 ms a step: a statement of a few thousand steps takes minutes
            crawl_when(engine, lambda _conn: self.slow.is_set(), 0.01)

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append((time.monotonic(), statement))
        if self.backend == "sqlite" and "FROM measurements" in statement:
            self.slow.set()

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """While inside: statements on measurements do not finish by themselves."""
        if self.backend == "postgresql":
            self._engine = create_engine(self.url)
            async with self._engine.connect() as conn:
                await conn.execute(text("BEGIN"))
                await conn.execute(text("LOCK TABLE measurements IN ACCESS EXCLUSIVE MODE"))
                self._holder = conn
                try:
                    yield
                finally:
                    await conn.execute(text("ROLLBACK"))
            await self._engine.dispose()
            return
        try:
            yield
        finally:
            self.slow.clear()

    async def statement_waiting(self) -> bool:
        """A statement of the app is stuck on measurements now."""
        if self.backend == "sqlite":
            return self.slow.is_set()
        return await self._our_statements_running() > 0

    async def _our_statements_running(self) -> int:
        assert self._holder is not None
        # A statement cancelled by the server no longer waits for the lock (pg_stat_activity
        # may still say `active` until that backend's next command; pg_locks does not).
        found = await self._holder.execute(
            text("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'measurements'::regclass")
        )
        return int(found.scalar_one())

    async def nothing_running(self, app: Starlette) -> bool:
        if app.state.engine.pool.checkedout() != 0:
            return False
        return self.backend == "sqlite" or await self._our_statements_running() == 0

    async def stopped_since(self, app: Starlette, moment: float) -> None:
        """Its statement on measurements ended (while the table is still locked) and none
        started after ``moment``."""
        await eventually(lambda: self.nothing_running(app))
        assert self.started_after(moment) == []

    def started_after(self, moment: float) -> list[str]:
        """The statements started after ``moment``, but the event bus's (its event log, and
        the transaction control around it: the app's background publishers, e.g. the
        metrics sampler, write there whenever they publish, whatever the query does)."""
        return [
            s
            for at, s in self.statements
            if at > moment and "event_log" not in s and s.split()[0].upper() not in TRANSACTION_CONTROL
        ]


@pytest.fixture
def deadline_settings(demo_url: str, tmp_path: Any) -> Settings:
    return Settings(data_dir=tmp_path, database_url=demo_url, request_deadline_s=DEADLINE_S)


@contextlib.contextmanager
def slow_app(settings: Settings, backend: str) -> Iterator[tuple[Starlette, SlowMeasurements]]:
    app = create_app(settings, migrate=False)
    slow = SlowMeasurements(backend, settings.resolved_database_url)
    slow.install(app)
    yield app, slow


async def test_a_request_past_its_deadline_is_answered_504_and_its_sql_stopped(
    deadline_settings: Settings, backend: str
) -> None:
    with slow_app(deadline_settings, backend) as (app, slow):
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
            slow.held(),
        ):
            response = await http.post("/graphql", json={"query": NESTED})
            assert response.status_code == 504
            assert response.json()["errors"][0]["extensions"]["code"] == "DEADLINE_EXCEEDED"
            answered = time.monotonic()
            # The statement on measurements ended while its table is still locked (slow).
            await slow.stopped_since(app, answered)
            # Stopped half-way, the operation gave back its part of the work in flight.
            in_flight = app.state.schema.in_flight
            await eventually(lambda: in_flight.running == 0)
            assert in_flight.cost == 0 and in_flight.by_client == {}
        await app.state.engine.dispose()


async def test_a_rest_route_past_its_deadline_answers_in_the_envelope(
    deadline_settings: Settings, backend: str
) -> None:
    # The source to ask for, read from the database directly: a set-up request through the
    # app would itself run under the 1-s deadline (a cold first request on a loaded machine
    # passed it once in CI).
    lookup = create_engine(deadline_settings.resolved_database_url)
    async with lookup.connect() as conn:
        source_id = (
            await conn.execute(text("SELECT source_id FROM sources ORDER BY id LIMIT 1"))
        ).scalar_one()
    await lookup.dispose()
    with slow_app(deadline_settings, backend) as (app, slow):
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
            slow.held(),
        ):
            response = await http.get(f"/api/sources/{source_id}/lightcurve")
            assert response.status_code == 504
            assert response.json()["code"] == "DEADLINE_EXCEEDED"
            # Asking for an event stream where none is served takes nothing out of the deadline.
            async with asyncio.timeout(SSE_WAIT_S):
                streamed = await http.get(
                    f"/api/sources/{source_id}/lightcurve", headers={"Accept": "text/event-stream"}
                )
            assert streamed.status_code == 504
            assert streamed.json()["code"] == "DEADLINE_EXCEEDED"
        await app.state.engine.dispose()


async def _asgi_post(
    app: Starlette,
    body: bytes,
    gone: asyncio.Event,
    *,
    method: str = "POST",
    path: str = "/graphql",
    headers: tuple[tuple[bytes, bytes], ...] = (),
    sent: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """POST /graphql (or ``method`` ``path``) straight through ASGI; the client disconnects
    when ``gone`` is set. The messages sent are collected in ``sent`` as they come."""
    sent = [] if sent is None else sent
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    return sent


async def test_when_the_client_goes_away_its_work_stops_and_no_more_sql_runs(
    demo_url: str, tmp_path: Any, backend: str
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=demo_url, request_deadline_s=0)  # no deadline
    with slow_app(settings, backend) as (app, slow):
        gone = asyncio.Event()
        async with slow.held():
            request = asyncio.create_task(_asgi_post(app, json.dumps({"query": NESTED}).encode(), gone))
            await eventually(slow.statement_waiting)
            gone.set()
            left = time.monotonic()
            sent = await asyncio.wait_for(request, 30)
            assert sent == []  # nobody to answer
            await slow.stopped_since(app, left)
        await app.state.engine.dispose()


async def test_deadline_zero_means_none(deadline_settings: Settings) -> None:
    app = create_app(dataclasses.replace(deadline_settings, request_deadline_s=0), migrate=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.post("/graphql", json={"query": NESTED})
    await app.state.engine.dispose()
    assert response.status_code == 200
    assert len(response.json()["data"]["sources"]["nodes"]) == 3


@contextlib.asynccontextmanager
async def websocket(app: Starlette, protocol: str, payload: Any = None) -> AsyncIterator[TransportWs]:
    """A client connected to ``/graphql`` over ``protocol``, its connection acknowledged
    (``payload``: its ``connection_init`` payload, such as credentials)."""
    async with (
        app.router.lifespan_context(app),
        ASGIWebSocketTransport(app=app) as transport,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
        aconnect_ws("/graphql", http, subprotocols=[protocol]) as ws,
    ):
        client = TransportWs(ws)
        assert (await client.init(payload))["type"] == "connection_ack"
        yield client


async def test_a_query_over_websocket_past_its_deadline_is_an_error_and_the_socket_stays(
    deadline_settings: Settings, backend: str
) -> None:
    status = "subscription { pipelineStatus { queue { total } } }"
    cheap = "{ sources(first: 1) { nodes { sourceId } } }"
    with slow_app(deadline_settings, backend) as (app, slow):
        async with websocket(app, "graphql-transport-ws") as client:
            await client.subscribe("s", status)  # a stream: no deadline
            await client.next_data("s")
            async with slow.held():
                await client.subscribe("q", NESTED)
                stopped = await client.for_op("q")
                assert stopped["type"] == "error", stopped
                assert [e["extensions"]["code"] for e in stopped["payload"]] == ["DEADLINE_EXCEEDED"]
                answered = time.monotonic()
                # Its statement ended while measurements are still locked (slow).
                await slow.stopped_since(app, answered)
            # The same socket (and the same id, free again) serves the next operation.
            await client.subscribe("q", cheap)
            assert len((await client.next_data("q"))["sources"]["nodes"]) == 1
            assert (await client.for_op("q"))["type"] == "complete"
            await asyncio.sleep(1.5 * DEADLINE_S)  # past the deadline (a functional wait, not a bound)
            await client.subscribe("q", cheap)
            await client.next_data("q")
            assert all(m.get("id") != "s" or m["type"] == "next" for m in client.pending)
            await client.send({"id": "s", "type": "complete"})
        await app.state.engine.dispose()


async def test_legacy_graphql_ws_runs_no_query_or_mutation_so_none_outlasts_the_deadline(
    deadline_settings: Settings, backend: str
) -> None:
    """The legacy protocol (subscriptions-transport-ws) carries subscriptions only: a query or
    a mutation sent over it is refused for its id before any SQL runs, so none can run past
    the deadline there (graphql-transport-ws runs them, under the deadline: above)."""
    status = "subscription { pipelineStatus { queue { total } } }"
    mutation = 'mutation { reprocessGroup(groupId: "2025-10-24T14:00:00") { groupId } }'
    with slow_app(deadline_settings, backend) as (app, slow):
        async with websocket(app, "graphql-ws") as client:
            async with slow.held():
                sent = time.monotonic()
                for op_id, document in (("q", NESTED), ("m", mutation)):
                    await client.send({"id": op_id, "type": "start", "payload": {"query": document}})
                    refused = await client.for_op(op_id)
                    assert refused["type"] == "error", refused
                    assert refused["payload"]["extensions"]["code"] == "BAD_USER_INPUT", refused
                # Refused before execution: none of their SQL ran (the app's background loops may run theirs).
                theirs = [s for s in slow.started_after(sent) if "sources" in s or "groups" in s]
                assert theirs == []
            # The socket stays, and serves a subscription.
            await client.send({"id": "s", "type": "start", "payload": {"query": status}})
            data = await client.for_op("s")
            assert data["type"] == "data" and "errors" not in data["payload"], data
            await client.send({"id": "s", "type": "stop"})
        await app.state.engine.dispose()


SSE_HEADERS = {"Accept": "text/event-stream", "Content-Type": "application/json"}
SSE_WAIT_S = 20 * DEADLINE_S
"""Bound on an SSE answer that should come at the deadline (a hang fails, it does not block)."""


def sse_events(body: str) -> list[tuple[str, Any]]:
    """``(event, data)`` of each event in a GraphQL-over-SSE body (``data`` parsed, or None)."""
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.splitlines() if line and not line.startswith(":")]
        if not lines:
            continue
        name = next((line[len("event: ") :] for line in lines if line.startswith("event: ")), "message")
        data = next((line[len("data:") :].strip() for line in lines if line.startswith("data:")), "")
        events.append((name, json.loads(data) if data else None))
    return events


async def test_a_query_over_sse_past_its_deadline_is_an_error_and_its_sql_stopped(
    deadline_settings: Settings, backend: str
) -> None:
    with slow_app(deadline_settings, backend) as (app, slow):
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
            slow.held(),
        ):
            async with asyncio.timeout(SSE_WAIT_S):  # without a deadline it would wait for the lock
                response = await http.post("/graphql", json={"query": NESTED}, headers=SSE_HEADERS)
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse_events(response.text)
            assert [name for name, _ in events] == ["next", "complete"], events
            payload = events[0][1]
            assert [e["extensions"]["code"] for e in payload["errors"]] == ["DEADLINE_EXCEEDED"], payload
            answered = time.monotonic()
            # The statement on measurements ended while its table is still locked (slow).
            await slow.stopped_since(app, answered)
        await app.state.engine.dispose()


async def test_a_mutation_over_sse_past_its_deadline_is_an_error_and_its_sql_stopped(
    deadline_settings: Settings, backend: str
) -> None:
    name = f"deadline-sse-{backend}"
    mutation = (
        "mutation($i: Int!, $n: String!, $s: JSON!) { createRegion(imageId: $i, name: $n, shape: $s) {"
        " regionId image { measurements(first: 5) { nodes { mjd } } } } }"
    )
    shape = {"type": "circle", "ra_deg": 180.0, "dec_deg": 40.0, "radius_arcsec": 60.0}
    database = create_engine(deadline_settings.resolved_database_url)
    try:
        headers = {**SSE_HEADERS, **await key_headers(database, Role.OPERATOR)}
        async with database.connect() as conn:
            image_id = (await conn.execute(text("SELECT id FROM images ORDER BY id LIMIT 1"))).scalar_one()
        with slow_app(deadline_settings, backend) as (app, slow):
            async with (
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://testserver"
                ) as http,
                slow.held(),
            ):
                body = {"query": mutation, "variables": {"i": image_id, "n": name, "s": shape}}
                async with asyncio.timeout(SSE_WAIT_S):
                    response = await http.post("/graphql", json=body, headers=headers)
                events = sse_events(response.text)
                assert [event for event, _ in events] == ["next", "complete"], events
                codes = [e["extensions"]["code"] for e in events[0][1]["errors"]]
                assert codes == ["DEADLINE_EXCEEDED"], events
                answered = time.monotonic()
                await slow.stopped_since(app, answered)
            await app.state.engine.dispose()
    finally:  # the demo database is shared by the session's tests: leave no region behind
        async with database.begin() as conn:
            await conn.execute(text("DELETE FROM regions WHERE name = :n"), {"n": name})
        await database.dispose()


async def test_a_quick_query_over_sse_is_answered_whole(deadline_settings: Settings) -> None:
    app = create_app(deadline_settings, migrate=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        async with asyncio.timeout(SSE_WAIT_S):
            response = await http.post(
                "/graphql",
                json={"query": "{ sources(first: 2) { nodes { sourceId } } }"},
                headers=SSE_HEADERS,
            )
    await app.state.engine.dispose()
    events = sse_events(response.text)
    assert [event for event, _ in events] == ["next", "complete"], events
    assert "errors" not in events[0][1]
    assert len(events[0][1]["data"]["sources"]["nodes"]) == 2


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/graphql", b'{"query": "subscription { pipelineStatus { queue { total } } }"}'),
        ("GET", "/api/sse/status", b""),
    ],
    ids=["graphql-sse-subscription", "legacy-sse-status"],
)
async def test_event_streams_outlast_the_deadline(
    deadline_settings: Settings, method: str, path: str, body: bytes
) -> None:
    """A subscription over SSE and the legacy /api/sse/status channel are streams: no deadline."""
    app = create_app(deadline_settings, migrate=False)
    async with app.router.lifespan_context(app):
        gone = asyncio.Event()
        sent: list[dict[str, Any]] = []
        accept = ((b"accept", b"text/event-stream"),)
        stream = asyncio.create_task(
            _asgi_post(app, body, gone, method=method, path=path, headers=accept, sent=sent)
        )

        def received() -> str:
            return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()

        await eventually(lambda: "data:" in received())
        await asyncio.sleep(2 * DEADLINE_S)  # past the deadline (a functional wait, not a bound)
        assert not stream.done()
        assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200, sent[0]
        assert "DEADLINE_EXCEEDED" not in received()
        assert all(m.get("more_body", False) for m in sent[1:]), "the stream ended"
        gone.set()
        await asyncio.wait_for(stream, 30)
    await app.state.engine.dispose()
