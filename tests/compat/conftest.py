"""Compat tests: the /api paths over HTTP (ASGI) against demo data with real FITS tiles."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Role
from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.demo.build import build_demo
from dsa110.ops.metrics import sample_system_metrics, store_sample
from dsa110.settings import Settings
from server.app import create_app
from tests.credentials import key_headers
from tests.databases import scratch_database
from tests.graph.conftest import Graph

DEMO_SOURCES = 300
DEMO_DAYS = 2.0


@dataclass(frozen=True)
class Demo:
    url: str
    root: Path
    candidate_source: str  # a source carrying the seeded ESE candidate


async def _seed(url: str) -> str:
    """What a 2-day demo lacks: an ESE candidate with its alert, and a metrics sample."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            row = (
                await conn.execute(select(t.sources.c.id, t.sources.c.source_id).order_by(t.sources.c.id))
            ).first()
            assert row is not None
            now = datetime(2025, 11, 13, 12, 0, tzinfo=UTC)
            candidate_pk = (
                await conn.execute(
                    insert(t.ese_candidates)
                    .values(
                        source_pk=row.id,
                        status="active",
                        score=9.5,
                        significance=7.8,
                        start_mjd=60990.5,
                        end_mjd=60992.0,
                        depth=0.3,
                        baseline_flux_jy=0.0145,
                        min_flux_jy=0.0101,
                        detector_version="test-1",
                        flagged_at=now,
                        updated_at=now,
                    )
                    .returning(t.ese_candidates.c.id)
                )
            ).scalar_one()
            await conn.execute(
                insert(t.alerts).values(
                    source_pk=row.id,
                    candidate_pk=candidate_pk,
                    alert_type="ese_candidate",
                    severity="critical",
                    message="ESE candidate detected: 7.8 sigma",
                    triggered_at=now,
                )
            )
        await store_sample(engine, sample_system_metrics(), retention=100)
        return str(row.source_id)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def _compat_demos(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    stack = contextlib.AsyncExitStack()
    built: dict[str, Demo] = {}

    class Lazy:
        async def get(self, backend: str) -> Demo:
            if backend not in built:
                root = tmp_path_factory.mktemp(f"compat-{backend}")
                url = await stack.enter_async_context(scratch_database(backend, root, migrate=False))
                await build_demo(url, root, sources=DEMO_SOURCES, days=DEMO_DAYS, images=True)
                built[backend] = Demo(url, root, await _seed(url))
            return built[backend]

    try:
        yield Lazy()
    finally:
        await stack.aclose()


@pytest.fixture
async def demo(backend: str, _compat_demos: Any) -> Demo:
    return await _compat_demos.get(backend)  # type: ignore[no-any-return]


@pytest.fixture
def settings(demo: Demo) -> Settings:
    return Settings(data_dir=demo.root, database_url=demo.url)


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings.resolved_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def graph(engine: AsyncEngine, settings: Settings) -> Graph:
    return Graph(engine, settings)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client with an operator's key: these tests exercise the contract, writes included
    (who may call what is tested in tests/server/test_access.py)."""
    app = create_app(settings, migrate=False)
    transport = httpx.ASGITransport(app=app)
    headers = await key_headers(settings.resolved_database_url, Role.OPERATOR)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as http:
        yield http
    await app.state.engine.dispose()


async def candidate_row(conn: Any, source_id: str) -> dict[str, Any]:
    """The seeded ESE candidate of ``source_id`` as a row without its id: a template for
    tests that add candidates beside it (and remove them after)."""
    row = (
        (
            await conn.execute(
                select(t.ese_candidates)
                .join(t.sources, t.sources.c.id == t.ese_candidates.c.source_pk)
                .where(t.sources.c.source_id == source_id)
            )
        )
        .mappings()
        .first()
    )
    assert row is not None, f"no seeded candidate on {source_id}"
    return {k: v for k, v in row.items() if k != "id"}


def assert_envelope(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The documented error envelope, with the expected HTTP status (and code)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "status", "code", "details"}, body
    assert body["status"] == "error" and isinstance(body["error"], str) and body["error"]
    if code is not None:
        assert body["code"] == code, body
    return body  # type: ignore[no-any-return]
