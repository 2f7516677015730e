"""A mutation stopped half-way is still audited, with why it stopped.

The mutation (``createRegion``) is made to hang in its own write: on PostgreSQL the test
holds an exclusive lock on ``regions``; on SQLite a progress handler makes the statement
inserting into ``regions`` crawl (that statement only: the audit record's own write must
not crawl). Then its client sends ``complete`` (graphql-transport-ws) or goes away (HTTP),
or its deadline passes, and its work is stopped: no more SQL runs for it. The audit
record must be written all the same (a write may have committed just before the stop),
with the outcome ``CANCELLED`` or ``DEADLINE_EXCEEDED``, and nothing logged as an error.

Before, the record's insert ran as part of the stopped work and was refused
(``WorkStopped``): no row, and ``dsa110.audit`` logged "could not record createRegion ...".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette

from dsa110.auth.audit import AuditRecord, _record_within, drain, record_timeout_s, start_record
from dsa110.auth.identity import Role, anonymous
from dsa110.db.access_tables import audit_log
from dsa110.db.engine import create_engine
from dsa110.db.work import track_work
from dsa110.settings import Settings
from server.app import create_app
from tests.credentials import key_headers
from tests.databases import crawl_when
from tests.graph.test_deadline import _asgi_post, websocket
from tests.waiting import eventually

MUTATION = "mutation($i: Int!, $n: String!, $s: JSON!) { createRegion(imageId: $i, name: $n, shape: $s) { regionId } }"
SHAPE = {"type": "circle", "ra_deg": 180.0, "dec_deg": 40.0, "radius_arcsec": 60.0}
DEADLINE_S = 1.0
NO_DEADLINE_SOON_S = 60.0
WAIT_S = 10.0


class SlowInserts:
    """Makes an engine's inserts into ``table`` hang: a table lock (PostgreSQL), or a crawl
    of that statement alone (SQLite)."""

    def __init__(self, backend: str, url: str, table: str = "regions") -> None:
        self.backend = backend
        self.url = url
        self.table = table
        self.holding = threading.Event()
        self.seen = threading.Event()  # an insert into the table started while holding
        self._crawling: set[int] = set()  # ids of the DBAPI connections running that insert
        self._holder: AsyncConnection | None = None

    def install(self, app: Starlette) -> None:
        self.install_on(app.state.engine)

    def install_on(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        if self.backend == "sqlite":
            # 100 ms a step: the insert (some 100 steps) outlasts the test
            crawl_when(engine, lambda conn: self.holding.is_set() and id(conn) in self._crawling, 0.1)

    def _before(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        key = id(conn.connection.dbapi_connection)
        insert = f"INSERT INTO {self.table.upper()} "
        if self.holding.is_set() and statement.lstrip().upper().startswith(insert):
            self._crawling.add(key)
            self.seen.set()
        else:
            self._crawling.discard(key)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        self.holding.set()
        try:
            if self.backend == "postgresql":
                engine = create_engine(self.url)
                try:
                    async with engine.connect() as conn:
                        await conn.execute(text("BEGIN"))
                        await conn.execute(text(f"LOCK TABLE {self.table} IN ACCESS EXCLUSIVE MODE"))
                        self._holder = conn
                        try:
                            yield
                        finally:
                            self._holder = None
                            await conn.execute(text("ROLLBACK"))
                finally:
                    await engine.dispose()
            else:
                yield
        finally:
            self.holding.clear()
            self._crawling.clear()

    async def waiting(self) -> bool:
        """The engine's insert into the table is stuck now."""
        if self.backend == "sqlite":
            return self.seen.is_set()
        assert self._holder is not None
        found = await self._holder.execute(
            text(f"SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = '{self.table}'::regclass")
        )
        return int(found.scalar_one()) > 0


@pytest.fixture
async def database(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(demo_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def image_id(database: AsyncEngine) -> int:
    async with database.connect() as conn:
        return int((await conn.execute(text("SELECT id FROM images ORDER BY id LIMIT 1"))).scalar_one())


@pytest.fixture
def region_name(backend: str) -> Iterator[str]:
    name = f"audit-stop-{backend}-{uuid.uuid4().hex[:8]}"
    yield name


@pytest.fixture(autouse=True)
async def _leave_nothing(database: AsyncEngine, region_name: str) -> AsyncIterator[None]:
    """The demo database is shared by the session's tests: no region or audit row of ours stays."""
    yield
    rows = await audit_rows(database, region_name)
    async with database.begin() as conn:
        await conn.execute(text("DELETE FROM regions WHERE name = :n"), {"n": region_name})
        for row in rows:
            await conn.execute(audit_log.delete().where(audit_log.c.id == row["id"]))


async def audit_rows(database: AsyncEngine, region_name: str) -> list[dict[str, Any]]:
    async with database.connect() as conn:
        found = await conn.execute(select(audit_log).where(audit_log.c.operation == "createRegion"))
        rows = [dict(r._mapping) for r in found]
    return [r for r in rows if isinstance(r["arguments"], dict) and r["arguments"].get("name") == region_name]


async def audited(database: AsyncEngine, region_name: str) -> dict[str, Any]:
    """The one audit row of the mutation (waited for: it may be written after the answer)."""

    async def written() -> bool:
        return bool(await audit_rows(database, region_name))

    await eventually(written, timeout_s=WAIT_S)
    rows = await audit_rows(database, region_name)
    assert len(rows) == 1, rows
    return rows[0]


def audit_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dsa110.audit" and r.levelno >= logging.ERROR]


@contextlib.contextmanager
def slow_app(
    demo_url: str, tmp_path: Any, backend: str, deadline_s: float
) -> Iterator[tuple[Starlette, SlowInserts]]:
    settings = Settings(data_dir=tmp_path, database_url=demo_url, request_deadline_s=deadline_s)
    app = create_app(settings, migrate=False)
    slow = SlowInserts(backend, settings.resolved_database_url)
    slow.install(app)
    yield app, slow


@pytest.mark.parametrize(
    ("ending", "outcome"), [("complete", "CANCELLED"), ("deadline", "DEADLINE_EXCEEDED")]
)
async def test_a_mutation_stopped_over_websocket_is_audited_with_its_outcome(
    demo_url: str,
    tmp_path: Any,
    backend: str,
    database: AsyncEngine,
    image_id: int,
    region_name: str,
    ending: str,
    outcome: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dsa110.audit")
    headers = await key_headers(database, Role.OPERATOR)
    deadline_s = DEADLINE_S if ending == "deadline" else NO_DEADLINE_SOON_S
    with slow_app(demo_url, tmp_path, backend, deadline_s) as (app, slow):
        async with websocket(app, "graphql-transport-ws", headers) as client, slow.held():
            variables = {"i": image_id, "n": region_name, "s": SHAPE}
            await client.subscribe("m", MUTATION, variables)
            await eventually(slow.waiting, timeout_s=WAIT_S)
            if ending == "complete":
                await client.send({"id": "m", "type": "complete"})
            else:
                stopped = await client.for_op("m", WAIT_S)
                assert stopped["type"] == "error", stopped
                assert [e["extensions"]["code"] for e in stopped["payload"]] == ["DEADLINE_EXCEEDED"]
            row = await audited(database, region_name)
        await app.state.engine.dispose()
    assert row["outcome"] == outcome, row
    assert row["role"] == "operator" and row["actor_kind"] == "key", row
    assert row["arguments"] == {"imageId": image_id, "name": region_name, "shape": SHAPE}, row
    assert audit_errors(caplog) == []


@pytest.mark.parametrize(("ending", "outcome"), [("gone", "CANCELLED"), ("deadline", "DEADLINE_EXCEEDED")])
async def test_a_mutation_stopped_over_http_is_audited_with_its_outcome(
    demo_url: str,
    tmp_path: Any,
    backend: str,
    database: AsyncEngine,
    image_id: int,
    region_name: str,
    ending: str,
    outcome: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dsa110.audit")
    headers = await key_headers(database, Role.OPERATOR)
    deadline_s = DEADLINE_S if ending == "deadline" else NO_DEADLINE_SOON_S
    body = json.dumps({"query": MUTATION, "variables": {"i": image_id, "n": region_name, "s": SHAPE}})
    raw_headers = tuple((k.lower().encode(), v.encode()) for k, v in headers.items())
    with slow_app(demo_url, tmp_path, backend, deadline_s) as (app, slow):
        async with slow.held():
            gone = asyncio.Event()
            request = asyncio.create_task(_asgi_post(app, body.encode(), gone, headers=raw_headers))
            await eventually(slow.waiting, timeout_s=WAIT_S)
            if ending == "gone":
                gone.set()
            sent = await asyncio.wait_for(request, WAIT_S)
            if ending == "gone":
                assert sent == []  # nobody to answer
            else:
                assert sent[0]["status"] == 504, sent
            row = await audited(database, region_name)
        await app.state.engine.dispose()
    assert row["outcome"] == outcome, row
    assert audit_errors(caplog) == []


async def test_a_mutation_that_ends_by_itself_is_audited_ok(
    demo_url: str,
    tmp_path: Any,
    database: AsyncEngine,
    image_id: int,
    region_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    headers = await key_headers(database, Role.OPERATOR)
    settings = Settings(data_dir=tmp_path, database_url=demo_url, request_deadline_s=NO_DEADLINE_SOON_S)
    app = create_app(settings, migrate=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        body = {"query": MUTATION, "variables": {"i": image_id, "n": region_name, "s": SHAPE}}
        response = await http.post("/graphql", json=body, headers=headers)
    await app.state.engine.dispose()
    assert "errors" not in response.json(), response.json()
    assert (await audited(database, region_name))["outcome"] == "OK"
    assert audit_errors(caplog) == []


async def test_records_still_being_written_are_waited_for_before_the_engine_goes(
    database: AsyncEngine, region_name: str
) -> None:
    # A stopped mutation's record is started, not awaited (its answer does not wait for it);
    # at shutdown `drain` waits for it, so it is there when the engine is disposed.
    entry = AuditRecord(anonymous("127.0.0.1"), "createRegion", None, {"name": region_name}, "CANCELLED")
    task = start_record(database, entry)
    await drain(record_timeout_s(database))
    assert task.done() and not task.cancelled() and task.exception() is None
    rows = await audit_rows(database, region_name)
    assert [r["outcome"] for r in rows] == ["CANCELLED"], rows


async def test_a_record_that_hangs_past_its_time_limit_is_stopped_and_logged(
    demo_url: str, backend: str, region_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Its insert hangs (audit_log locked, or the insert crawling) for as long as the test
    # holds it, far past the record's time limit (and short of the lock budget, 10 s): the
    # write is stopped at the limit (its SQL ended), logged, and the record comes back while
    # the hang goes on; the engine's connections are fit for the next record.
    limit_s = 0.5
    engine = track_work(create_engine(demo_url))
    slow = SlowInserts(backend, demo_url, table="audit_log")
    slow.install_on(engine)
    entry = AuditRecord(anonymous("127.0.0.1"), "createRegion", None, {"name": region_name}, "OK")
    try:
        async with slow.held():
            await asyncio.wait_for(_record_within(engine, entry, limit_s), WAIT_S)
            assert slow.holding.is_set()  # still hanging: it was left, not waited for
            if backend == "postgresql":
                assert not await slow.waiting()  # its statement was cancelled on the server
            else:
                assert slow.seen.is_set()  # it did start
        assert [r.getMessage() for r in caplog.records if r.name == "dsa110.audit"] == [
            f"audit: could not record createRegion by anonymous (OK) within {limit_s:g} s"
        ]
        assert await audit_rows(engine, region_name) == []
        await _record_within(engine, entry, WAIT_S)  # no busy connection was handed back
        assert [r["outcome"] for r in await audit_rows(engine, region_name)] == ["OK"]
    finally:
        await engine.dispose()
