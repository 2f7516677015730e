"""The ``db-maintain`` job: VACUUM after bulk ingest off the request path, one pending job at a time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.db.tables import jobs
from dsa110.errors import InputError
from dsa110.ops.maintenance import DB_MAINTAIN, KIND, enqueue_maintenance
from dsa110.ops.queue.store import claim
from tests.ops.queue_helpers import url_of


async def _maintenance_jobs(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(jobs.c.id, jobs.c.state, jobs.c.params).where(jobs.c.type == KIND).order_by(jobs.c.id)
        )
        return [dict(r) for r in rows.mappings()]


@pytest.mark.parametrize(
    "params",
    [{"tables": []}, {"tables": "sources"}, {"tables": ["pg_class"]}, {"tables": [1]}, {"vacuum": True}],
)
def test_job_parameters_are_checked(params: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        DB_MAINTAIN.validate(params)


def test_the_default_is_what_ingest_rewrites() -> None:
    assert DB_MAINTAIN.validate({}) == {"tables": ["measurements", "sources"]}
    assert DB_MAINTAIN.validate({"tables": ["sources", "images", "sources"]}) == {
        "tables": ["images", "sources"]
    }


async def test_ingests_coalesce_into_one_pending_job(engine: AsyncEngine) -> None:
    first = await enqueue_maintenance(engine, ["sources"])
    second = await enqueue_maintenance(engine, ["measurements", "sources"])
    assert first == second
    assert await _maintenance_jobs(engine) == [
        {"id": first, "state": "pending", "params": {"tables": ["measurements", "sources"]}}
    ]


async def test_concurrent_enqueuers_make_one_pending_job(engine: AsyncEngine) -> None:
    """Each enqueuer on its own connection, all at once: without a lock each could find no
    pending job and queue its own."""
    engines = [create_engine(url_of(engine)) for _ in range(6)]
    try:
        ids = await asyncio.gather(*(enqueue_maintenance(e) for e in engines))
    finally:
        for e in engines:
            await e.dispose()
    assert len(set(ids)) == 1
    assert [j["state"] for j in await _maintenance_jobs(engine)] == ["pending"]


async def test_a_claimed_job_is_not_reused(engine: AsyncEngine) -> None:
    """A worker may already have vacuumed past the pages a later ingest rewrites."""
    first = await enqueue_maintenance(engine)
    (claimed,) = await claim(engine, "w1", [KIND], limit=1, lease_s=60.0)
    assert claimed["id"] == first
    second = await enqueue_maintenance(engine)
    assert second != first
    assert [(j["id"], j["state"]) for j in await _maintenance_jobs(engine)] == [
        (first, "running"),
        (second, "pending"),
    ]


async def test_a_claim_committing_mid_enqueue_makes_a_new_job(engine: AsyncEngine) -> None:
    """The enqueuer reads the job as pending while a claim holds its row; the claim commits
    first, so the enqueuer's conditional update matches nothing and it queues a new job."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: a claim cannot interleave")
    first = await enqueue_maintenance(engine)
    async with engine.connect() as claimer:
        await claimer.execute(update(jobs).where(jobs.c.id == first).values(state="running"))
        other = create_engine(url_of(engine))
        try:
            task = asyncio.create_task(enqueue_maintenance(other))

            async def waiting_on_the_row() -> bool:
                async with engine.connect() as conn:
                    n = await conn.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND datname = current_database()"
                        )
                    )
                return bool(n)

            for _ in range(1000):
                if await waiting_on_the_row() or task.done():
                    break
                await asyncio.sleep(0.01)
            assert not task.done()
            await claimer.commit()
            second = await task
        finally:
            await other.dispose()
    assert second != first
    assert [(j["id"], j["state"]) for j in await _maintenance_jobs(engine)] == [
        (first, "running"),
        (second, "pending"),
    ]


async def test_the_job_process_entry_point_reports_the_visibility_map(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dsa110.ops.maintenance import _main
    from dsa110.ops.queue import kinds

    # Workers load the plugins: the kind is among them.
    assert "dsa110.ops.maintenance" in kinds.load_plugins([]) and KIND in kinds.names()
    monkeypatch.setenv("DSA110_DATABASE_URL", url_of(engine))
    assert await _main([json.dumps({"tables": ["sources"]})]) == 0
    out = capsys.readouterr().out
    result = json.loads(out.split("@@result ", 1)[1])
    assert result["tables"] == ["sources"]
    if engine.dialect.name == "postgresql":
        pages, visible = result["pages"]["sources"]
        assert visible == pages
