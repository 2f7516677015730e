"""A group's conversion: the ``convert`` job queued with the move that makes a group ``pending``.

Only a group's convert job moves a pending group on (its run calls
:func:`dsa110.ops.jobs.start_group_work`: ``pending -> in_progress``, then ``completed`` or
``failed``); nothing picks up a pending group without one. So every move to ``pending``
queues the job in the same write transaction, the two committing together or not at all:
the watcher's ``collecting -> pending`` of a complete group
(:mod:`dsa110.ops.streaming.watcher`) and an operator's reprocess of a completed or failed
group (:func:`reprocess`). Both build the job with :func:`queue_convert`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.enums import JobState, JobType
from dsa110.db.tables import jobs as jobs_table
from dsa110.db.tables import subband_files
from dsa110.db.writes import write_transaction
from dsa110.errors import ConflictError, InputError
from dsa110.ops import jobs
from dsa110.ops.queue import store
from dsa110.ops.streaming import service
from dsa110.settings import Settings

OPEN_STATES = (str(JobState.PENDING), str(JobState.RUNNING))


async def subband_paths(conn: AsyncConnection, group_pk: int) -> dict[int, str]:
    """A group's recorded subband files: index -> path."""
    rows = await conn.execute(
        select(subband_files.c.subband_idx, subband_files.c.path).where(subband_files.c.group_pk == group_pk)
    )
    return {int(i): str(p) for i, p in rows.all()}


async def queue_convert(
    conn: AsyncConnection,
    group: Mapping[str, Any],
    config: Mapping[str, Any],
    *,
    created_by: str | None,
    missing: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Queue ``group``'s convert job in the caller's write transaction and return its row: the
    group's recorded subband files, written to the streaming ``config``'s ``output_dir``.

    ``missing`` names the subbands converted without (``None``: those of the expected ones
    not recorded). The parameters are checked as every job's are (in a process that runs
    the convert kind, the files must exist): a coded error, and the caller's transaction
    rolls back. The caller emits the job's event (:func:`store.emit`) after the commit."""
    paths = await subband_paths(conn, int(group["id"]))
    if not paths:
        raise ConflictError(f"group {group['group_id']} has no subband files recorded: nothing to convert")
    if missing is None:
        missing = [i for i in range(int(group["expected_subbands"])) if i not in paths]
    start = datetime.fromisoformat(group["group_id"]).replace(tzinfo=UTC)
    end = start + timedelta(minutes=float(config["chunk_duration"]))
    params = {
        "group_id": group["group_id"],
        "uvh5_paths": [paths[i] for i in sorted(paths)],
        "input_dir": str(Path(config["input_dir"])),
        "output_dir": str(config["output_dir"]),
        "start_time": group["group_id"],
        "end_time": end.strftime("%Y-%m-%dT%H:%M:%S"),
        "missing_subbands": list(missing),
    }
    checked, allowed = store.checked_params("convert", params, require_registered=False)
    return await store.insert_job(
        conn, store.job_values("convert", checked, allowed, created_by=created_by, group_pk=int(group["id"]))
    )


async def open_convert_job(conn: AsyncConnection, group_pk: int) -> dict[str, Any] | None:
    """The group's oldest convert job still queued or running, if any."""
    c = jobs_table.c
    row = (
        (
            await conn.execute(
                select(jobs_table)
                .where(c.group_pk == group_pk, c.type == str(JobType.CONVERT), c.state.in_(OPEN_STATES))
                .order_by(c.id)
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def reprocess(
    engine: AsyncEngine,
    settings: Settings,
    group_id: str,
    *,
    by: str | None = None,
    publish: store.Publish | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send a completed or failed group back to ``pending`` (counting the retry, clearing its
    error) with its convert job queued, in one write transaction; returns (group, job).
    The ``group.state`` event (naming the job) and the job's ``job.state`` event follow the
    commit.

    The group's row is locked first, so concurrent reprocesses of one group, from any
    server process, run one after the other: the first queues the one convert job, and
    every later one finds the group pending with that job and is refused with a
    ``CONFLICT`` naming it (as a double click should be: nothing is queued twice, and the
    caller learns the group is already on its way). A group that still has a convert job
    queued or running (e.g. a failed job retried, or a conversion started by hand) is refused
    the same way, whatever its state: that job converts it, and a second would race it for
    the group. A group with no recorded subband files, or whose files the convert job's
    check refuses (gone from disk), is a ``CONFLICT`` too, and keeps its state. A group
    ``pending`` with no convert job open (stranded: reprocessed before reprocess queued the
    job, or its job failed before starting it) is reprocessed in place and gets its job.

    The job is built as the watcher builds it (:func:`queue_convert`) with the streaming
    service's current config, so it runs as the first conversion did; when it starts, the
    group is ``pending``, the state :func:`dsa110.ops.jobs.start_group_work` moves to
    ``in_progress``.
    """
    config = service.checked_config(settings, {}, (await service.get_service(engine, settings))["config"])
    async with write_transaction(engine) as conn:
        current = await jobs.lock_group(conn, group_id)
        queued = await open_convert_job(conn, int(current["id"]))
        if queued is not None:
            raise ConflictError(
                f"group {group_id} is {current['state']} with convert job {queued['id']} {queued['state']}: "
                "that job converts it (cancel it first to reprocess now)",
                job_id=int(queued["id"]),
            )
        row = await jobs.reprocess_locked(conn, current, stranded=True)
        try:
            job = await queue_convert(conn, row, config, created_by=by)
        except InputError as error:
            raise ConflictError(f"group {group_id} cannot be converted again: {error.message}") from None
    await jobs.publish_group(publish, str(current["state"]), row, job_id=int(job["id"]))
    await store.emit(publish, job, None)
    return row, job
