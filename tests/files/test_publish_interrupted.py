"""A publish whose caller is cancelled (deadline passed, client gone) still ends consistently.

After the claim, publishing sends the ``publishing`` event, moves the files (in a thread
that cancelling cannot stop) and records the outcome. The caller is cancelled here while
the event is being sent (a slow bus): the product must still end ``published`` with its
files in the products area, never ``publishing`` for good or staged without its files.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.ops import products
from dsa110.settings import Settings
from tests.waiting import eventually


def _stage(settings: Settings) -> Path:
    ms = settings.staging_dir / "ms" / "g.ms"
    ms.mkdir(parents=True)
    (ms / "table.dat").write_bytes(b"t" * 100)
    return ms


def _moved(published: Path, staged: Path) -> bool:
    return (published / "table.dat").is_file() and not staged.exists()


async def test_a_cancelled_caller_leaves_the_publication_to_finish(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    ms = await asyncio.to_thread(_stage, settings)
    await products.register_product(engine, data_id="g.ms", data_type="ms", stage_path=str(ms))
    sending, bus_free = asyncio.Event(), asyncio.Event()

    async def slow_bus(channel: str, payload: dict[str, Any]) -> None:
        if payload["event"] == "publishing":
            sending.set()
            await bus_free.wait()

    caller = asyncio.create_task(products.publish_product(engine, settings, "g.ms", publish=slow_bus))
    await sending.wait()
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    bus_free.set()

    async def settled() -> bool:
        return (await products.get_product(engine, "g.ms"))["status"] != "publishing"

    await eventually(settled)
    row = await products.get_product(engine, "g.ms")
    assert row["status"] == "published"
    assert await asyncio.to_thread(_moved, Path(row["published_path"]), ms)
