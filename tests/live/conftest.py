"""Live-update tests: the real app (lifespan, bus, routes) spoken to as a client would."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.applications import Starlette

from dsa110.db.tables import ese_candidates, groups, sources, subband_files
from dsa110.science.healpix import healpix_index
from dsa110.settings import Settings
from server.app import create_app

WAIT_S = 10.0
"""Upper bound for anything that should arrive; tests never assert on timing."""
T0 = datetime(2025, 10, 24, 14, 0, tzinfo=UTC)


@dataclass
class LiveApp:
    app: Starlette
    http: httpx.AsyncClient

    @property
    def engine(self) -> AsyncEngine:
        return self.app.state.engine  # type: ignore[no-any-return]

    async def publish(self, channel: str, payload: dict[str, Any]) -> None:
        await self.app.state.bus.publish(channel, payload)

    def ws(self, path: str = "/graphql", protocol: str = "graphql-transport-ws") -> Any:
        return aconnect_ws(path, self.http, subprotocols=[protocol] if protocol else None)


@pytest.fixture
def live_settings(empty_db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0)


@contextlib.asynccontextmanager
async def running(settings: Settings, client: tuple[str, int] = ("127.0.0.1", 123)) -> AsyncIterator[LiveApp]:
    """The app with its lifespan (bus, producers) and an in-process HTTP/WebSocket client
    calling from the address ``client``.

    A context manager used inside the test (not a fixture): the transport's task group
    must be entered and left by the same task.
    """
    app = create_app(settings, migrate=False)
    async with (
        app.router.lifespan_context(app),
        ASGIWebSocketTransport(app=app, client=client) as transport,
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as http,
    ):
        yield LiveApp(app, http)


async def seed(engine: AsyncEngine, root: Path | None = None) -> dict[str, Any]:
    """Three groups (one failed), one source, one ESE candidate at 7 sigma.

    ``root``: the groups' subband files are real (empty) files in ``root/incoming``, so that
    reprocessing a group in a server running the pipeline kinds queues its convert job (the
    job's check wants the files); else they are paths with no file."""
    async with engine.begin() as conn:
        for i, state in enumerate(["completed", "failed", "in_progress"]):
            when = T0 + timedelta(minutes=5 * i)
            group_id = when.strftime("%Y-%m-%dT%H:%M:%S")
            result = await conn.execute(
                insert(groups)
                .values(
                    group_id=group_id,
                    state=state,
                    received_at=when,
                    updated_at=when,
                    mid_mjd=60972.5 + i / 288,
                    expected_subbands=16,
                    retry_count=0,
                    has_calibrator=i == 0,
                )
                .returning(groups.c.id)
            )
            pk = result.scalar_one()
            await conn.execute(
                insert(subband_files),
                [
                    {"group_pk": pk, "subband_idx": s, "path": _subband(root, pk, group_id, s)}
                    for s in range(4)
                ],
            )
        source_pk = await insert_source(conn)
        candidate_pk = await insert_candidate(conn, source_pk, significance=7.0, when=T0)
        return {"source_pk": source_pk, "candidate_pk": candidate_pk}


def _subband(root: Path | None, pk: int, group_id: str, subband: int) -> str:
    if root is None:
        return f"/d/{pk}_{subband}.h5"
    path = root / "incoming" / f"{group_id}_sb{subband:02d}.hdf5"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return str(path)


async def insert_source(conn: AsyncConnection) -> int:
    """One catalog source, NVSS J123456.7+420312 (14.5 mJy); returns its row id."""
    result = await conn.execute(
        insert(sources)
        .values(
            source_id="NVSS J123456.7+420312",
            ra_deg=188.73625,
            dec_deg=42.05333,
            healpix=int(healpix_index(188.73625, 42.05333)),
            catalog_flux_jy=0.0145,
        )
        .returning(sources.c.id)
    )
    return int(result.scalar_one())


async def insert_candidate(
    conn: AsyncConnection, source_pk: int, *, significance: float, when: datetime
) -> int:
    """An active ESE candidate of ``source_pk`` (a 40 % dip); returns its row id."""
    result = await conn.execute(
        insert(ese_candidates)
        .values(
            source_pk=source_pk,
            status="active",
            score=3.0,
            significance=significance,
            start_mjd=60970.0,
            end_mjd=60971.0,
            depth=0.4,
            baseline_flux_jy=0.0145,
            min_flux_jy=0.009,
            detector_version="test",
            flagged_at=when,
            updated_at=when,
        )
        .returning(ese_candidates.c.id)
    )
    return int(result.scalar_one())


class TransportWs:
    """A minimal graphql-transport-ws client over an httpx-ws session.

    Messages for other operations read while waiting for one are kept, not lost.
    """

    def __init__(self, ws: AsyncWebSocketSession) -> None:
        self.ws = ws
        self.pending: list[dict[str, Any]] = []

    async def init(self, payload: Any = None) -> dict[str, Any]:
        await self.send({"type": "connection_init", **({"payload": payload} if payload is not None else {})})
        return await self.receive()

    async def send(self, message: Any) -> None:
        await self.ws.send_text(json.dumps(message))

    async def subscribe(self, op_id: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        await self.send({"id": op_id, "type": "subscribe", "payload": payload})

    async def receive(self, wait_s: float = WAIT_S) -> dict[str, Any]:
        """The next message (kept ones first)."""
        if self.pending:
            return self.pending.pop(0)
        return json.loads(await self.ws.receive_text(timeout=wait_s))  # type: ignore[no-any-return]

    async def for_op(self, op_id: str, wait_s: float = WAIT_S) -> dict[str, Any]:
        """The next message of operation ``op_id``; others are kept for later."""
        for i, message in enumerate(self.pending):
            if message.get("id") == op_id:
                return self.pending.pop(i)
        async with asyncio.timeout(wait_s):
            while True:
                message = json.loads(await self.ws.receive_text(timeout=wait_s))
                if message.get("id") == op_id:
                    return message  # type: ignore[no-any-return]
                self.pending.append(message)

    async def next_data(self, op_id: str, wait_s: float = WAIT_S) -> dict[str, Any]:
        """The data of the next `next` message of ``op_id`` (which must not be an error)."""
        message = await self.for_op(op_id, wait_s)
        assert message["type"] == "next" and "errors" not in message["payload"], message
        return message["payload"]["data"]  # type: ignore[no-any-return]
