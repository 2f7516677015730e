"""Operators changing the streaming service's config at once, from different server processes.

``setStreamingConfig`` takes a partial config and merges it over the stored one. Each
writer on its own engine (its own server process in production), all at once: every
change must be in the stored config, and each change must bump the generation once (the
supervisor restarts the process per generation).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.ops.streaming import service
from dsa110.settings import Settings
from tests.databases import write_lock_held
from tests.ops.queue_helpers import url_of

HANG_GUARD_S = 30.0
"""Only so that a reader waiting without limit fails the test instead of hanging it."""

CHANGES = [
    {"poll_interval": 7.0},
    {"chunk_duration": 6.0},
    {"monitor_interval": 30.0},
    {"max_workers": 3},
    {"batch_size": 20},
    {"log_level": "DEBUG"},
]


async def test_concurrent_partial_config_changes_are_all_kept(engine: AsyncEngine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=url_of(engine))
    before = await service.get_service(engine, settings)
    engines = [create_engine(url_of(engine)) for _ in CHANGES]
    try:
        await asyncio.gather(
            *(
                service.request(e, settings, config=change, by=f"op{i}")
                for i, (e, change) in enumerate(zip(engines, CHANGES, strict=True))
            )
        )
    finally:
        for e in engines:
            await e.dispose()
    after = await service.get_service(engine, settings)
    for change in CHANGES:
        for name, value in change.items():
            assert after["config"][name] == value, name
    assert after["generation"] == before["generation"] + len(CHANGES)
    assert after["config_version"] == before["config_version"] + len(CHANGES)


async def test_reading_the_service_waits_for_no_writer(
    engine: AsyncEngine, backend: str, empty_db_url: str, tmp_path: Path
) -> None:
    """The status query reads the row; it took the write lock on every call (an insert of
    the row if missing), so a long write made it fail (SQLite) or wait (PostgreSQL)."""
    settings = Settings(data_dir=tmp_path, database_url=url_of(engine))
    created = await service.get_service(engine, settings)
    impatient = create_engine(url_of(engine), write_lock_timeout_s=0.3)
    try:
        async with write_lock_held(backend, empty_db_url, "services"):
            row = await asyncio.wait_for(service.get_service(impatient, settings), HANG_GUARD_S)
    finally:
        await impatient.dispose()
    assert row == created
