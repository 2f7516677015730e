"""A publisher killed outright after its claim (``kill -9``, out of memory, power) no longer
leaves its product ``publishing`` for good: the reaper's sweep settles it by what is on disk.

The dead publisher is reproduced as the row and the files it leaves behind at each point
of a publication: claimed (with its time), the target recorded, the files moved or not.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import data_products
from dsa110.ops import products
from dsa110.ops.queue.local import LocalExecutor
from dsa110.ops.queue.service import make_worker
from dsa110.ops.queue.worker import WorkerConfig
from dsa110.settings import Settings
from tests.waiting import eventually

BOUND_S = 3600.0


class Events:
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, channel: str, payload: dict[str, Any]) -> None:
        self.seen.append(payload)

    @property
    def names(self) -> list[str]:
        return [p["event"] for p in self.seen]


def _stage(settings: Settings, name: str = "g.ms") -> Path:
    ms = settings.staging_dir / "ms" / name
    ms.mkdir(parents=True)
    (ms / "table.dat").write_bytes(b"t" * 100)
    (ms / "table.f1").write_bytes(b"f" * 50)
    return ms


def _target(settings: Settings, staged: Path) -> Path:
    return products.destination_folder(settings, "ms") / staged.name


async def _left_publishing(
    engine: AsyncEngine,
    settings: Settings,
    *,
    claimed_ago_s: float | None,
    target: bool = True,
    name: str = "g.ms",
) -> tuple[Path, Path]:
    """A registered product its publisher claimed ``claimed_ago_s`` ago and died with
    (the target recorded when ``target``); returns (its staged path, its target)."""
    staged = await asyncio.to_thread(_stage, settings, name)
    await products.register_product(engine, data_id=name, data_type="ms", stage_path=str(staged))
    dest = _target(settings, staged)
    claimed = None if claimed_ago_s is None else datetime.now(UTC) - timedelta(seconds=claimed_ago_s)
    async with engine.begin() as conn:
        await conn.execute(
            update(data_products)
            .where(data_products.c.data_id == name)
            .values(
                status="publishing",
                publish_claimed_at=claimed,
                publish_target=str(dest) if target else None,
            )
        )
    return staged, dest


def _move(staged: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.rename(staged, dest)


def _copy(staged: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(staged, dest)


async def _sweep(engine: AsyncEngine, settings: Settings, events: Events) -> list[dict[str, Any]]:
    return await products.recover_publishing(engine, settings, older_than_s=BOUND_S, publish=events)


async def test_files_already_in_the_products_area_are_published_there(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    staged, dest = await _left_publishing(engine, settings, claimed_ago_s=2 * BOUND_S)
    await asyncio.to_thread(_move, staged, dest)
    events = Events()

    changed = await _sweep(engine, settings, events)

    row = await products.get_product(engine, "g.ms")
    assert [r["data_id"] for r in changed] == ["g.ms"]
    assert row["status"] == "published" and row["published_path"] == str(dest)
    assert row["publish_error"] is None and row["published_at"] is not None
    assert row["publish_claimed_at"] is None and row["publish_target"] is None
    assert events.names == ["published"] and events.seen[0]["status"] == "published"
    assert (dest / "table.dat").is_file() and not staged.exists()


@pytest.mark.parametrize("target", [True, False], ids=["target-recorded", "died-before-the-target"])
async def test_files_still_in_staging_go_back_to_staging_and_publish_again(
    engine: AsyncEngine, tmp_path: Path, target: bool
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    staged, dest = await _left_publishing(engine, settings, claimed_ago_s=2 * BOUND_S, target=target)
    events = Events()

    await _sweep(engine, settings, events)

    row = await products.get_product(engine, "g.ms")
    assert row["status"] == "staging"
    assert "publisher died" in row["publish_error"] and row["publish_failed_at"] is not None
    assert row["publish_attempts"] == 1
    assert row["publish_claimed_at"] is None and row["publish_target"] is None
    assert events.names == ["publish_failed"] and events.seen[0]["status"] == "staging"
    assert (staged / "table.dat").is_file() and not dest.exists()

    again = await products.publish_product(engine, settings, "g.ms")  # no longer refused as a conflict
    assert again["status"] == "published" and again["published_path"] == str(dest)
    assert again["publish_claimed_at"] is None and again["publish_target"] is None


async def test_a_move_that_died_while_removing_the_staged_copy_is_published_at_the_whole_copy(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Across filesystems the checked copy takes its name, then the staged copy is removed:
    killed in between, both are there and the staged one may be partly gone. The product is
    published at the whole copy and nothing is deleted (the staged remnant is left)."""
    settings = Settings(data_dir=tmp_path / "data")
    staged, dest = await _left_publishing(engine, settings, claimed_ago_s=2 * BOUND_S)
    await asyncio.to_thread(_copy, staged, dest)
    (staged / "table.f1").unlink()  # the removal had begun
    events = Events()

    await _sweep(engine, settings, events)

    row = await products.get_product(engine, "g.ms")
    assert row["status"] == "published" and row["published_path"] == str(dest)
    assert "removing the staged copy" in row["publish_error"] and str(staged) in row["publish_error"]
    assert events.names == ["published"]
    assert (dest / "table.dat").is_file() and (dest / "table.f1").is_file()
    assert (staged / "table.dat").is_file()  # left for an operator: the sweep deletes nothing


async def test_files_in_neither_area_go_back_to_staging_with_the_error(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    staged, _dest = await _left_publishing(engine, settings, claimed_ago_s=2 * BOUND_S)
    await asyncio.to_thread(shutil.rmtree, staged)
    events = Events()

    await _sweep(engine, settings, events)

    row = await products.get_product(engine, "g.ms")
    assert row["status"] == "staging" and "neither" in row["publish_error"]
    assert events.names == ["publish_failed"]


async def test_a_claim_younger_than_the_bound_is_left_alone(engine: AsyncEngine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    staged, dest = await _left_publishing(engine, settings, claimed_ago_s=BOUND_S / 2)
    await asyncio.to_thread(_move, staged, dest)  # a move in progress could be at any point
    before = await products.get_product(engine, "g.ms")
    events = Events()

    assert await _sweep(engine, settings, events) == []

    assert await products.get_product(engine, "g.ms") == before
    assert events.names == []


async def test_a_claim_without_a_time_is_stamped_then_settled_a_bound_later(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Left ``publishing`` before the claim time was recorded (or by an older server)."""
    settings = Settings(data_dir=tmp_path / "data")
    await _left_publishing(engine, settings, claimed_ago_s=None, target=False)
    events = Events()

    assert await _sweep(engine, settings, events) == []
    stamped = await products.get_product(engine, "g.ms")
    assert stamped["status"] == "publishing" and stamped["publish_claimed_at"] is not None

    later = datetime.now(UTC) + timedelta(seconds=2 * BOUND_S)
    await products.recover_publishing(engine, settings, older_than_s=BOUND_S, publish=events, now=later)
    assert (await products.get_product(engine, "g.ms"))["status"] == "staging"
    assert events.names == ["publish_failed"]


async def test_two_sweeps_at_once_settle_a_product_once(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both sweepers have read the product and looked at the disk before either writes."""
    settings = Settings(data_dir=tmp_path / "data")
    await _left_publishing(engine, settings, claimed_ago_s=2 * BOUND_S)
    both_looked = threading.Barrier(2, timeout=10)
    on_disk = products._on_disk

    def looked(*args: Any) -> Any:
        found = on_disk(*args)
        both_looked.wait()
        return found

    monkeypatch.setattr(products, "_on_disk", looked)
    events = Events()

    first, second = await asyncio.gather(_sweep(engine, settings, events), _sweep(engine, settings, events))

    assert len(first) + len(second) == 1
    row = await products.get_product(engine, "g.ms")
    assert row["status"] == "staging" and row["publish_attempts"] == 1
    assert events.names == ["publish_failed"]


async def test_a_publication_records_its_claim_time_and_target_before_moving(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    staged = await asyncio.to_thread(_stage, settings)
    await products.register_product(engine, data_id="g.ms", data_type="ms", stage_path=str(staged))
    moving, go_on = threading.Event(), threading.Event()
    move = products.move_product

    def held_move(*args: Any) -> Path:
        moving.set()
        go_on.wait(10)
        return move(*args)

    monkeypatch.setattr(products, "move_product", held_move)
    publishing = asyncio.create_task(products.publish_product(engine, settings, "g.ms"))
    await asyncio.to_thread(moving.wait, 10)
    try:
        during = await products.get_product(engine, "g.ms")
    finally:
        go_on.set()
    done = await publishing

    assert during["status"] == "publishing" and during["publish_claimed_at"] is not None
    assert during["publish_target"] == str(_target(settings, staged)) == done["published_path"]
    assert done["publish_claimed_at"] is None and done["publish_target"] is None


async def test_the_workers_reaper_loop_runs_the_sweep(engine: AsyncEngine, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", publish_claim_timeout_s=BOUND_S)
    staged, dest = await _left_publishing(engine, settings, claimed_ago_s=2 * BOUND_S)
    await asyncio.to_thread(_move, staged, dest)
    worker = make_worker(engine, settings, WorkerConfig(slots=1, poll_s=0.1, kinds=()), LocalExecutor())
    worker.start()
    try:

        async def settled() -> bool:
            return (await products.get_product(engine, "g.ms"))["status"] != "publishing"

        await eventually(settled)
    finally:
        await worker.stop()
    assert (await products.get_product(engine, "g.ms"))["status"] == "published"
