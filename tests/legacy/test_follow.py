"""``--follow``: what the pipeline writes arrives, with its events, without disturbing the writer."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.events import GROUP_STATE, JOB_LOG, JOB_STATE, MEASUREMENTS_ADDED, PRODUCT_STATUS
from dsa110.legacy.files import locate
from dsa110.legacy.runner import LegacyImporter
from tests.legacy.conftest import SMALL, Recorder, counts
from tests.legacy.fixture import LegacyFixture

WAIT_S = 60.0  # a hang guard: nothing here asserts on timing
REPO = Path(__file__).resolve().parents[2]


async def eventually(check: Callable[[], object], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def following(importer: LegacyImporter) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(importer.follow(stop, poll_s=0.05))
    try:
        await eventually(lambda: importer.memory["products.photometry"].passes > 0, "the first pass")
        yield
    finally:
        stop.set()
        await task
        importer.close()


def legacy(path: Path, sql: str, *params: object) -> None:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn, conn:
        conn.execute(sql, params)


async def test_a_writer_process_is_followed_with_its_events(
    engine: AsyncEngine, fresh_fixture: LegacyFixture
) -> None:
    recorder = Recorder()
    importer = LegacyImporter(engine, locate([fresh_fixture.state_dir]), publish=recorder)
    async with following(importer):
        writer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.legacy.writer",
            str(fresh_fixture.state_dir),
            "--groups",
            "4",
            "--interval",
            "0.1",
            "--groups-per-day",
            str(SMALL.groups_per_day),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await writer.communicate()
        assert writer.returncode == 0
        written = [line.split() for line in out.decode().splitlines()]
        new_groups = [key for what, key, _ in written if what == "group"]
        images = {key for what, key, _ in written if what == "photometry"}
        assert len(new_groups) == 4

        def done() -> bool:
            completed = {p["group_id"] for p in recorder.on(GROUP_STATE) if p["state"] == "completed"}
            return set(new_groups) <= completed and len(recorder.on(MEASUREMENTS_ADDED)) >= len(images)

        await eventually(done, "every new group completed and measured")
    async with engine.connect() as conn:
        states = dict(
            (
                await conn.execute(
                    select(t.groups.c.group_id, t.groups.c.state).where(t.groups.c.group_id.in_(new_groups))
                )
            ).all()
        )
        measured = (
            await conn.execute(
                select(func.count())
                .select_from(t.measurements.join(t.images))
                .where(t.images.c.path.in_(images))
            )
        ).scalar_one()
    assert states == dict.fromkeys(new_groups, "completed")
    with sqlite3.connect(fresh_fixture.products) as conn:
        marks = ", ".join("?" * len(images))
        expected = conn.execute(
            f"SELECT count(*) FROM photometry WHERE image_path IN ({marks})", sorted(images)
        ).fetchone()[0]
    assert measured == expected > 0
    # every queue step of every new group was announced, in order, from the step before
    for gid in new_groups:
        steps = [(p["from_state"], p["state"]) for p in recorder.on(GROUP_STATE) if p["group_id"] == gid]
        assert steps[-1][1] == "completed"


async def test_rows_changed_in_place_are_seen(engine: AsyncEngine, fresh_fixture: LegacyFixture) -> None:
    recorder = Recorder()
    importer = LegacyImporter(engine, locate([fresh_fixture.state_dir]), publish=recorder)
    with sqlite3.connect(fresh_fixture.ingest) as conn:
        failed = conn.execute("SELECT group_id FROM ingest_queue WHERE state = 'failed' LIMIT 1").fetchone()[
            0
        ]
    with sqlite3.connect(fresh_fixture.products) as conn:
        running = conn.execute("SELECT id FROM jobs WHERE status = 'running'").fetchone()[0]
        staged = conn.execute(
            "SELECT data_id FROM data_registry WHERE status = 'staging' LIMIT 1"
        ).fetchone()[0]
    async with following(importer):
        recorder.events.clear()
        now = time.time()
        # POST /api/reprocess/{group_id}: back to pending, one more retry
        legacy(
            fresh_fixture.ingest,
            "UPDATE ingest_queue SET state = 'pending', retry_count = retry_count + 1, last_update = ? WHERE group_id = ?",
            now,
            failed,
        )
        legacy(
            fresh_fixture.products,
            "UPDATE jobs SET logs = logs || ? WHERE id = ?",
            "cleaning major cycle 2\n",
            running,
        )
        await eventually(lambda: recorder.on(JOB_LOG), "the new log line")
        legacy(
            fresh_fixture.products,
            "UPDATE jobs SET status = 'done', finished_at = ?, logs = logs || ? WHERE id = ?",
            now,
            "done\n",
            running,
        )
        legacy(
            fresh_fixture.products,
            "UPDATE data_registry SET status = 'published', published_at = ?, published_path = ? WHERE data_id = ?",
            now,
            "/data/dsa110-contimg/products/images/x.fits",
            staged,
        )

        def seen() -> bool:
            return (
                any(p["group_id"] == failed and p["state"] == "pending" for p in recorder.on(GROUP_STATE))
                and any(p["job_id"] == running and p["state"] == "done" for p in recorder.on(JOB_STATE))
                and any(p["status"] == "published" for p in recorder.on(PRODUCT_STATUS))
            )

        await eventually(seen, "the reprocessed group, the finished job and the published product")
    reprocessed = next(p for p in recorder.on(GROUP_STATE) if p["group_id"] == failed)
    assert reprocessed["from_state"] == "failed"
    async with engine.connect() as conn:
        job = (await conn.execute(select(t.jobs).where(t.jobs.c.id == running))).mappings().one()
        lines = (
            (
                await conn.execute(
                    select(t.job_logs.c.line).where(t.job_logs.c.job_pk == running).order_by(t.job_logs.c.id)
                )
            )
            .scalars()
            .all()
        )
    assert job["state"] == "done" and job["finished_at"] is not None
    assert lines[-2:] == ["cleaning major cycle 2", "done"]
    assert len(lines) == len(set(lines))  # nothing imported twice


async def test_a_writer_holding_its_lock_is_neither_blocked_nor_blocking(
    engine: AsyncEngine, fresh_fixture: LegacyFixture
) -> None:
    importer = LegacyImporter(engine, locate([fresh_fixture.state_dir]))
    await importer.run_pass()
    writer = sqlite3.connect(fresh_fixture.ingest, timeout=0, isolation_level=None)  # never waits
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO ingest_queue (group_id, state, received_at, last_update) VALUES ('2030-01-01T00:00:00', 'collecting', 1.9e9, 1.9e9)"
        )
        await importer.run_pass(changed_only=True)  # reads while the writer holds its lock
        assert importer.report.errors == []
        writer.execute("COMMIT")  # and the writer commits while we follow: WAL readers never block it
        await importer.run_pass(changed_only=True)
    finally:
        writer.close()
        importer.close()
    async with engine.connect() as conn:
        got = (
            await conn.execute(select(t.groups.c.state).where(t.groups.c.group_id == "2030-01-01T00:00:00"))
        ).scalar()
    assert got == "collecting"


async def test_a_locked_rollback_journal_file_is_named_and_retried(
    engine: AsyncEngine, tmp_path: Path, small_fixture: LegacyFixture
) -> None:
    queue = tmp_path / "ingest.sqlite3"
    shutil.copy(small_fixture.ingest, queue)
    with contextlib.closing(sqlite3.connect(queue)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")  # an older file, not in WAL mode
    holder = sqlite3.connect(queue, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    importer = LegacyImporter(engine, {"queue": queue}, lock_wait_s=0.2)
    try:
        await importer.run_pass()
        assert any(str(queue) in e and "locked" in e for e in importer.report.errors)
        assert (await counts(engine))["groups"] == 0
        holder.execute("ROLLBACK")
        await importer.run_pass(changed_only=True)
    finally:
        holder.close()
        importer.close()
    assert (await counts(engine))["groups"] == small_fixture.counts["ingest_queue"]


@pytest.mark.parametrize("n_followers", [2])
async def test_two_followers_import_each_row_once(
    engine: AsyncEngine, fresh_fixture: LegacyFixture, n_followers: int
) -> None:
    """Two processes following one pipeline (a CLI and a server): each row once, no error."""
    importers = [LegacyImporter(engine, locate([fresh_fixture.state_dir])) for _ in range(n_followers)]
    await asyncio.gather(*(i.run_pass() for i in importers))
    for i in importers:
        assert i.report.errors == []
        i.close()
    got = await counts(engine)
    assert got["measurements"] == fresh_fixture.counts["photometry"] - fresh_fixture.no_error_rows
    assert got["groups"] == fresh_fixture.counts["ingest_queue"]
    with sqlite3.connect(fresh_fixture.products) as conn:
        lines = sum(
            log.count("\n") for (log,) in conn.execute("SELECT logs FROM jobs WHERE type != 'reticulate'")
        )
    assert got["job_logs"] == lines
