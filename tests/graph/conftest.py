"""Graph tests run against a small demo data set, built once per backend per session."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.demo.build import build_demo
from dsa110.settings import Settings
from schema.schema import build_schema, make_context
from server.app import create_app
from tests.credentials import TEST_ADMIN
from tests.databases import scratch_database

DEMO_SOURCES = 300
DEMO_DAYS = 2.0
IMAGE_DEMO_DAYS = 0.5  # with FITS files on disk, for image analysis and file routes


@pytest.fixture(scope="session")
async def _demo_databases(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, str]]:
    """backend -> URL of a demo database, built on first use and dropped at the end."""
    stack = contextlib.AsyncExitStack()
    built: dict[str, str] = {}
    roots: dict[str, Path] = {}

    class Lazy(dict[str, str]):
        async def get_url(self, backend: str, images: bool = False) -> str:
            key = f"{backend}-images" if images else backend
            if key not in built:
                root = tmp_path_factory.mktemp(f"demo-{key}")
                url = await stack.enter_async_context(scratch_database(backend, root, migrate=False))
                days = IMAGE_DEMO_DAYS if images else DEMO_DAYS
                await build_demo(url, root, sources=DEMO_SOURCES, days=days, images=images)
                built[key], roots[key] = url, root
            return built[key]

        async def get_root(self, backend: str, images: bool = False) -> Path:
            await self.get_url(backend, images)
            return roots[f"{backend}-images" if images else backend]

    lazy = Lazy()
    try:
        yield lazy
    finally:
        await stack.aclose()


@pytest.fixture
async def demo_url(backend: str, _demo_databases: Any) -> str:
    return str(await _demo_databases.get_url(backend))


@pytest.fixture
async def image_demo_url(backend: str, _demo_databases: Any) -> str:
    return str(await _demo_databases.get_url(backend, images=True))


@pytest.fixture
async def image_demo_settings(
    backend: str, image_demo_url: str, _demo_databases: Any, tmp_path: Path
) -> Settings:
    """A data directory of the test's own; the demo's image files are readable beside it."""
    root = await _demo_databases.get_root(backend, images=True)
    return Settings(data_dir=tmp_path, database_url=image_demo_url, extra_file_roots=(root,))


@pytest.fixture
async def image_graph(image_demo_url: str, image_demo_settings: Settings) -> AsyncIterator[Graph]:
    engine = create_engine(image_demo_url)
    yield Graph(engine, image_demo_settings)
    await engine.dispose()


@pytest.fixture
async def image_client(image_demo_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(image_demo_settings, migrate=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield http
    await app.state.engine.dispose()


@pytest.fixture
def demo_settings(demo_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=demo_url)


@pytest.fixture
async def demo_engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(demo_url)
    yield engine
    await engine.dispose()


class StatementCounter:
    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._hit)

    def _hit(self, *_: Any) -> None:
        self.count += 1

    @contextlib.contextmanager
    def measure(self) -> Iterator[list[int]]:
        out: list[int] = []
        start = self.count
        yield out
        out.append(self.count - start)


class Graph:
    """Run documents in-process against the demo database (one fresh context each)."""

    def __init__(self, engine: AsyncEngine, settings: Settings, executor: Any = "default") -> None:
        self.engine = engine
        self.settings = settings
        self.identity = TEST_ADMIN
        self.schema = build_schema(settings) if executor == "default" else build_schema(settings, executor)
        self.statements = StatementCounter(engine)

    async def run(self, document: str, **variables: Any) -> Any:
        return await self.schema.execute(
            document,
            variable_values=variables,
            context_value=make_context(self.engine, self.settings, identity=self.identity),
        )

    async def data(self, document: str, **variables: Any) -> Any:
        result = await self.run(document, **variables)
        assert not result.errors, result.errors
        return result.data


@pytest.fixture
def graph(demo_engine: AsyncEngine, demo_settings: Settings) -> Graph:
    return Graph(demo_engine, demo_settings)


@pytest.fixture
async def client(demo_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(demo_settings, migrate=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http
    await app.state.engine.dispose()
