"""Shared fixtures: real databases on every backend the environment offers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import strawberry
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.extensions.validation_cache import _get_validate_cache

from dsa110.db.engine import create_engine
from dsa110.ops import breakers
from schema.schema import CACHE_SIZE
from tests.databases import BACKENDS, POSTGRES_URL, scratch_database


def _backend_params() -> list[object]:
    skip_pg = pytest.mark.skipif(not POSTGRES_URL, reason="DSA110_TEST_POSTGRES_URL not set")
    return [pytest.param(b, marks=skip_pg if b == "postgresql" else (), id=b) for b in BACKENDS]


@pytest.fixture(params=_backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    """Each test using a database runs once per backend: SQLite always, PostgreSQL when set."""
    return str(request.param)


@pytest.fixture
async def empty_db_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A freshly migrated, empty database."""
    async with scratch_database(backend, tmp_path) as url:
        yield url


@pytest.fixture
async def engine(empty_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(empty_db_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
def _closed_breakers() -> Iterator[None]:
    """Circuit breakers are per process and outlive a test: one that called SIMBAD, NED or Gaia
    without a network trips them for the next test on the same pytest worker. Each test starts
    with them closed."""
    for breaker in breakers.all_breakers():
        breaker.reset()
    yield


@pytest.fixture(autouse=True)
def _schemas_released() -> Iterator[None]:
    """A server process builds one schema; a test process builds one per app, hundreds. The
    process-wide caches keyed by the schema (the validated documents', strawberry's type and
    directive lookups) would keep each alive, with its ~20,000 objects, until pushed out,
    and every full garbage collection would walk them all (it took seconds late in a run).
    Each test ends with them empty."""
    yield
    _get_validate_cache(CACHE_SIZE).cache_clear()
    strawberry.Schema.get_type_by_name.cache_clear()  # type: ignore[attr-defined]
    strawberry.Schema.get_directive_by_name.cache_clear()  # type: ignore[attr-defined]
