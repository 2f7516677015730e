"""A group the watcher completes is ``pending`` together with its convert job, or neither.

The watcher moves a complete group ``collecting -> pending`` and queues its ``convert``
job. Nothing queues a pending group's job later, so if the move could commit without the
job (the job's insert refused, the process killed in between) the group would wait
forever. The database refuses the job's insert here (a trigger: a real failure of the real
database); the group must stay ``collecting``, and the next scan completes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import groups, jobs
from dsa110.ops.streaming import service
from dsa110.ops.streaming.watcher import Watcher
from dsa110.settings import Settings
from tests.ops.queue_helpers import url_of

GROUP = "2025-11-13T12:00:00"

_REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'no space left'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_jobs() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no space left'; END $$"
        " LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_jobs()",
    ],
}
_ALLOW = {"sqlite": ["DROP TRIGGER refuse_jobs"], "postgresql": ["DROP TRIGGER refuse_jobs ON jobs"]}


async def _run(engine: AsyncEngine, statements: list[str]) -> None:
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def _state(engine: AsyncEngine) -> tuple[list[str], list[dict[str, Any]]]:
    async with engine.connect() as conn:
        states = list((await conn.execute(select(groups.c.state))).scalars())
        queued = [dict(r) for r in (await conn.execute(select(jobs.c.type, jobs.c.group_pk))).mappings()]
    return states, queued


def _drop_subbands(incoming: Path, n: int) -> None:
    """Empty files are enough: the watcher goes by the names."""
    incoming.mkdir(parents=True, exist_ok=True)
    for subband in range(n):
        (incoming / f"{GROUP}_sb{subband:02d}.hdf5").write_bytes(b"")


async def _noop(channel: str, payload: dict[str, Any]) -> None:
    return None


async def test_a_group_is_never_pending_without_its_convert_job(
    engine: AsyncEngine, backend: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=url_of(engine))
    config = {
        **service.default_config(settings),
        "expected_subbands": 2,
        "min_subbands": 2,
        "late_subband_wait_s": 0.0,
    }
    _drop_subbands(Path(config["input_dir"]), 2)
    watcher = Watcher(engine, config, _noop)

    await _run(engine, _REFUSE[backend])
    with pytest.raises(DBAPIError):
        await watcher.scan()
    assert await _state(engine) == (["collecting"], [])

    await _run(engine, _ALLOW[backend])
    await watcher.scan()  # the late-subband pass completes a group whose files are all in
    states, queued = await _state(engine)
    assert states == ["pending"]
    assert [q["type"] for q in queued] == ["convert"]
