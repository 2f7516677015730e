"""Legacy-import tests: fixtures of the legacy state files, imported into each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.legacy.files import locate
from dsa110.legacy.runner import LegacyImporter
from tests.legacy.fixture import FixtureSpec, LegacyFixture, build_fixture

SMALL = FixtureSpec(sources=120, days=8, groups_per_day=12)


@pytest.fixture(scope="session")
def small_fixture(tmp_path_factory: pytest.TempPathFactory) -> LegacyFixture:
    root = tmp_path_factory.mktemp("legacy-small")
    return build_fixture(root / "state", SMALL)


@pytest.fixture
def fresh_fixture(tmp_path: Path) -> LegacyFixture:
    """A fixture of the test's own (it may be written to)."""
    return build_fixture(tmp_path / "pipeline" / "state", SMALL)


class Recorder:
    """A ``publish`` that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, channel: str, payload: dict[str, Any]) -> None:
        self.events.append((channel, payload))

    def on(self, channel: str) -> list[dict[str, Any]]:
        return [p for c, p in self.events if c == channel]


def importer(engine: AsyncEngine, fixture: LegacyFixture, **kwargs: Any) -> LegacyImporter:
    return LegacyImporter(engine, locate([fixture.state_dir]), **kwargs)


async def import_once(engine: AsyncEngine, fixture: LegacyFixture, **kwargs: Any) -> LegacyImporter:
    imp = importer(engine, fixture, **kwargs)
    try:
        await imp.run_pass()
    finally:
        imp.close()
    return imp


async def counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            table.name: int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
            for table in t.metadata.sorted_tables
            if table.name not in ("legacy_import_state",)
        }


@pytest.fixture
async def imported_small(engine: AsyncEngine, small_fixture: LegacyFixture) -> AsyncIterator[LegacyImporter]:
    yield await import_once(engine, small_fixture)
