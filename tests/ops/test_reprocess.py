"""Reprocessing a group queues its convert job (``reprocessGroup``, ``POST /api/reprocess``).

Only a group's convert job moves a pending group on (its run starts the group with
``start_group_work``); nothing picks up a pending group without one. Reprocess used to move
the group back to ``pending`` and queue nothing, so a reprocessed group never converted.
Now the move and the job commit together, one job per group however many operators click
at once (the later ones are a ``CONFLICT`` naming the job), and never a second job beside
one still open. The app runs the real pipeline kinds, so the job's parameters are checked
as any convert job's: the subband files are real (empty) files.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Role
from dsa110.db.engine import create_engine
from dsa110.db.tables import groups, jobs, subband_files
from dsa110.errors import ConflictError
from dsa110.ops import jobs as job_api
from dsa110.ops.streaming import conversion
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import running
from tests.ops.queue_helpers import url_of

GROUP = "2025-11-13T12:00:00"
SUBBANDS = 3
REPROCESS = "mutation($g: String!) { reprocessGroup(groupId: $g) { groupId state retryCount } }"


@dataclass
class App:
    http: httpx.AsyncClient
    engine: AsyncEngine
    operator: dict[str, str]
    settings: Settings


async def _seed(engine: AsyncEngine, root: Path, state: str = "failed", files: bool = True) -> int:
    """A ``state`` group of 16 expected subbands with ``SUBBANDS`` recorded (on disk with ``files``)."""
    incoming = root / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    paths = [incoming / f"{GROUP}_sb{i:02d}.hdf5" for i in range(SUBBANDS)]
    if files:
        for path in paths:
            path.write_bytes(b"")
    when = datetime(2025, 11, 13, 12, tzinfo=UTC)
    async with engine.begin() as conn:
        pk = (
            await conn.execute(
                insert(groups)
                .values(
                    group_id=GROUP,
                    state=state,
                    error="conversion failed: disk full" if state == "failed" else None,
                    received_at=when,
                    updated_at=when,
                    mid_mjd=60992.5,
                    expected_subbands=16,
                    retry_count=0,
                )
                .returning(groups.c.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(subband_files),
            [{"group_pk": pk, "subband_idx": i, "path": str(p)} for i, p in enumerate(paths)],
        )
    return int(pk)


@contextlib.asynccontextmanager
async def _app(database_url: str, root: Path) -> AsyncIterator[App]:
    settings = Settings(data_dir=root, database_url=database_url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(settings) as live:
        yield App(live.http, live.engine, await key_headers(live.engine, Role.OPERATOR), settings)


async def _state(engine: AsyncEngine) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with engine.connect() as conn:
        group = dict((await conn.execute(select(groups))).mappings().one())
        queued = [dict(r) for r in (await conn.execute(select(jobs).order_by(jobs.c.id))).mappings()]
    return group, queued


def _code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


async def test_reprocess_queues_the_groups_convert_job_which_starts_it(
    empty_db_url: str, tmp_path: Path
) -> None:
    async with _app(empty_db_url, tmp_path) as app:
        pk = await _seed(app.engine, tmp_path)
        body = (
            await app.http.post(
                "/graphql", json={"query": REPROCESS, "variables": {"g": GROUP}}, headers=app.operator
            )
        ).json()
        assert body == {"data": {"reprocessGroup": {"groupId": GROUP, "state": "PENDING", "retryCount": 1}}}
        group, queued = await _state(app.engine)
        assert (group["state"], group["retry_count"], group["error"]) == ("pending", 1, None)
        assert [(j["type"], j["state"], j["group_pk"]) for j in queued] == [("convert", "pending", pk)]
        (job,) = queued
        assert str(job["created_by"]).startswith("key:")  # the operator who asked
        params = job["params"]
        assert params["group_id"] == GROUP
        assert params["uvh5_paths"] == [
            str(tmp_path / "incoming" / f"{GROUP}_sb{i:02d}.hdf5") for i in range(3)
        ]
        assert params["output_dir"] == str(app.settings.ms_dir)
        assert params["missing_subbands"] == list(range(SUBBANDS, 16))
        # The queued job is the group's newest job in the graph.
        jobs_of = "query($g: String!) { group(groupId: $g) { jobs { jobId type state } } }"
        listed = (
            await app.http.post(
                "/graphql", json={"query": jobs_of, "variables": {"g": GROUP}}, headers=app.operator
            )
        ).json()
        assert listed["data"]["group"]["jobs"][-1] == {
            "jobId": job["id"],
            "type": "CONVERT",
            "state": "PENDING",
        }
    # When the job runs, it finds the group in a state it starts.
    engine = create_engine(empty_db_url)
    try:
        started = await job_api.start_group_work(engine, GROUP)
    finally:
        await engine.dispose()
    assert started["state"] == "in_progress"


async def test_the_rest_reprocess_answers_ok_and_queues_one_job(empty_db_url: str, tmp_path: Path) -> None:
    async with _app(empty_db_url, tmp_path) as app:
        await _seed(app.engine, tmp_path, state="completed")
        done = await app.http.post(f"/api/reprocess/{GROUP}", headers=app.operator)
        assert done.status_code == 200, done.text
        assert done.json() == {"ok": True, "group_id": GROUP, "state": "pending"}
        again = await app.http.post(f"/api/reprocess/{GROUP}", headers=app.operator)
        assert again.status_code == 409 and again.json()["code"] == "CONFLICT", again.text
        assert "convert job" in again.json()["error"]
        group, queued = await _state(app.engine)
        assert (group["state"], group["retry_count"]) == ("pending", 1)
        assert [(j["type"], j["state"]) for j in queued] == [("convert", "pending")]


async def test_concurrent_reprocesses_queue_one_job(empty_db_url: str, tmp_path: Path) -> None:
    """Four operators at once, through GraphQL and REST: one wins, the others are told the
    group is already queued, with its job."""
    async with _app(empty_db_url, tmp_path) as app:
        await _seed(app.engine, tmp_path)
        graph = {"query": REPROCESS, "variables": {"g": GROUP}}
        answers = await asyncio.gather(
            app.http.post("/graphql", json=graph, headers=app.operator),
            app.http.post("/graphql", json=graph, headers=app.operator),
            app.http.post(f"/api/reprocess/{GROUP}", headers=app.operator),
            app.http.post(f"/api/reprocess/{GROUP}", headers=app.operator),
        )
        bodies = [a.json() for a in answers]
        won = [b for b in bodies[:2] if "errors" not in b] + [b for b in bodies[2:] if b.get("ok")]
        refused = [_code(b) for b in bodies[:2] if "errors" in b] + [
            b["code"] for b in bodies[2:] if "ok" not in b
        ]
        assert len(won) == 1 and refused == ["CONFLICT"] * 3, bodies
        group, queued = await _state(app.engine)
        assert (group["state"], group["retry_count"]) == ("pending", 1)
        assert [(j["type"], j["state"]) for j in queued] == [("convert", "pending")]


async def test_concurrent_reprocesses_from_separate_processes_queue_one_job(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    """Each caller on its own engine (its own server process in production)."""
    await _seed(engine, tmp_path)
    settings = Settings(data_dir=tmp_path, database_url=url_of(engine))
    events: list[tuple[str, dict[str, Any]]] = []

    async def publish(channel: str, payload: dict[str, Any]) -> None:
        events.append((channel, payload))

    engines = [create_engine(url_of(engine)) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(conversion.reprocess(e, settings, GROUP, by="op", publish=publish) for e in engines),
            return_exceptions=True,
        )
    finally:
        for e in engines:
            await e.dispose()
    won = [r for r in results if isinstance(r, tuple)]
    assert len(won) == 1 and sum(isinstance(r, ConflictError) for r in results) == 3, results
    ((row, job),) = won
    assert (row["state"], job["group_pk"]) == ("pending", row["id"])
    group, queued = await _state(engine)
    assert (group["state"], group["retry_count"]) == ("pending", 1)
    assert [j["id"] for j in queued] == [job["id"]]
    # Events after the commit: the group's move naming the job, then the job's.
    assert [(c, p["state"], p.get("job_id")) for c, p in events] == [
        ("group.state", "pending", job["id"]),
        ("job.state", "pending", job["id"]),
    ]


async def test_a_group_with_an_open_convert_job_gets_no_second_one(empty_db_url: str, tmp_path: Path) -> None:
    """A failed group whose convert job was retried (queued again): that job converts it."""
    async with _app(empty_db_url, tmp_path) as app:
        pk = await _seed(app.engine, tmp_path)
        async with app.engine.begin() as conn:
            open_job = (
                await conn.execute(
                    insert(jobs)
                    .values(
                        type="convert",
                        state="pending",
                        params={"group_id": GROUP},
                        group_pk=pk,
                        created_at=datetime.now(UTC),
                    )
                    .returning(jobs.c.id)
                )
            ).scalar_one()
        body = (
            await app.http.post(
                "/graphql", json={"query": REPROCESS, "variables": {"g": GROUP}}, headers=app.operator
            )
        ).json()
        assert _code(body) == "CONFLICT" and f"convert job {open_job}" in body["errors"][0]["message"], body
        group, queued = await _state(app.engine)
        assert (group["state"], group["retry_count"]) == ("failed", 0)
        assert [j["id"] for j in queued] == [open_job]


async def test_a_group_whose_files_are_gone_is_refused_and_kept(empty_db_url: str, tmp_path: Path) -> None:
    """Its convert job could only fail: the reprocess is refused and the group keeps its state,
    rather than waiting pending for a conversion that cannot happen."""
    async with _app(empty_db_url, tmp_path) as app:
        await _seed(app.engine, tmp_path, files=False)
        body = (
            await app.http.post(
                "/graphql", json={"query": REPROCESS, "variables": {"g": GROUP}}, headers=app.operator
            )
        ).json()
        assert _code(body) == "CONFLICT" and "no file" in body["errors"][0]["message"], body
        group, queued = await _state(app.engine)
        assert (group["state"], group["retry_count"], group["error"]) == (
            "failed",
            0,
            "conversion failed: disk full",
        )
        assert queued == []


async def test_a_pending_group_left_without_its_job_gets_it(empty_db_url: str, tmp_path: Path) -> None:
    """Stranded: reprocessed before reprocess queued the job (or its job failed before it
    started the group). Nothing else would move it on; reprocess queues the job in place."""
    async with _app(empty_db_url, tmp_path) as app:
        pk = await _seed(app.engine, tmp_path, state="pending")
        async with app.engine.begin() as conn:
            await conn.execute(
                insert(jobs).values(
                    type="convert",
                    state="failed",
                    params={"group_id": GROUP},
                    group_pk=pk,
                    created_at=datetime.now(UTC),
                    error="subband file missing",
                )
            )
        body = (
            await app.http.post(
                "/graphql", json={"query": REPROCESS, "variables": {"g": GROUP}}, headers=app.operator
            )
        ).json()
        assert body == {"data": {"reprocessGroup": {"groupId": GROUP, "state": "PENDING", "retryCount": 1}}}
        _, queued = await _state(app.engine)
        assert [(j["type"], j["state"]) for j in queued] == [("convert", "failed"), ("convert", "pending")]
