"""The minimal write API for jobs and observation groups; each write publishes its event.

``create_job`` / ``set_job_state`` / ``append_job_log`` and ``set_group_state`` /
``reprocess_group`` change one row (or append lines) in one transaction and then call
``publish(channel, payload)`` - an optional async callable, normally ``bus.publish`` -
*after the commit*, so a subscriber never hears of a change that was rolled back.
Payloads are small signals (ids and states); readers query the rows.

Job lifecycle (legacy-pipeline-facts §4.2, plus cancellation):
``pending -> running | failed | cancelled``, ``running -> done | failed | cancelled``;
``done``, ``failed`` and ``cancelled`` are final. ``started_at`` is stamped on entering
``running``, ``finished_at`` on entering a final state.

Group queue: ``collecting -> pending -> in_progress -> completed | failed``; a failed or
completed group may be sent back to ``pending`` by ``reprocess_group``, which counts the
retry; the operators' reprocess (legacy ``POST /api/reprocess/{group_id}``) is
``dsa110.ops.streaming.conversion.reprocess``, which makes the same move with
``reprocess_locked`` and queues the group's convert job in the same transaction (a pending
group without one never moves on). ``start_group_work`` is what a job working
on a group calls first: ``pending -> in_progress``, ``in_progress`` kept (a re-run), ``failed``
reprocessed and then moved to ``in_progress`` (a retry), all in one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.enums import GroupState, JobState, JobType
from dsa110.db.tables import groups, job_logs, jobs
from dsa110.db.writes import write_transaction
from dsa110.errors import ConflictError, InputError, NotFoundError
from dsa110.events import GROUP_STATE, JOB_LOG, JOB_STATE
from dsa110.events.channels import GroupStatePayload, JobStatePayload

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]

JOB_TRANSITIONS: Final[Mapping[JobState, frozenset[JobState]]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.FAILED, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED}),
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}

GROUP_TRANSITIONS: Final[Mapping[GroupState, frozenset[GroupState]]] = {
    GroupState.COLLECTING: frozenset({GroupState.PENDING, GroupState.FAILED}),
    GroupState.PENDING: frozenset({GroupState.IN_PROGRESS, GroupState.FAILED}),
    GroupState.IN_PROGRESS: frozenset({GroupState.COMPLETED, GroupState.FAILED}),
    GroupState.COMPLETED: frozenset({GroupState.PENDING}),
    GroupState.FAILED: frozenset({GroupState.PENDING}),
}
REPROCESSABLE: Final = frozenset({GroupState.COMPLETED, GroupState.FAILED})

MAX_LOG_LINES_PER_CALL: Final = 1000
MAX_LOG_LINE_CHARS: Final = 10_000
MAX_ERROR_CHARS: Final = 10_000


def _job_state(value: str) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        raise InputError(f"unknown job state {value!r}; expected one of {', '.join(JobState)}") from None


def _group_state(value: str) -> GroupState:
    try:
        return GroupState(value)
    except ValueError:
        raise InputError(f"unknown group state {value!r}; expected one of {', '.join(GroupState)}") from None


def _check_error(error: str | None) -> None:
    if error is not None and (not isinstance(error, str) or len(error) > MAX_ERROR_CHARS):
        raise InputError(f"error must be text of at most {MAX_ERROR_CHARS} characters")


# -- jobs -------------------------------------------------------------------------------


async def create_job(
    engine: AsyncEngine,
    job_type: str,
    params: Mapping[str, Any] | None = None,
    *,
    group_pk: int | None = None,
    ms_path: str | None = None,
    publish: Publish | None = None,
) -> dict[str, Any]:
    """Insert a ``pending`` job and return its row; publishes ``job.state``."""
    try:
        kind = JobType(job_type)
    except ValueError:
        raise InputError(f"unknown job type {job_type!r}; expected one of {', '.join(JobType)}") from None
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            insert(jobs)
            .values(
                type=str(kind),
                state=str(JobState.PENDING),
                params=dict(params or {}),
                group_pk=group_pk,
                ms_path=ms_path,
                created_at=now,
            )
            .returning(*jobs.c)
        )
        row = dict(result.mappings().one())
    if publish is not None:
        await JOB_STATE.publish(publish, _job_event(row, None))
    return row


async def set_job_state(
    engine: AsyncEngine,
    job_id: int,
    state: str,
    *,
    error: str | None = None,
    publish: Publish | None = None,
) -> dict[str, Any]:
    """Move job ``job_id`` to ``state`` along ``JOB_TRANSITIONS``; return the updated row.

    Raises ``InputError`` (unknown state), ``NotFoundError`` (no such job) and
    ``ConflictError`` (a transition the lifecycle does not allow, or a concurrent change).
    Publishes ``job.state`` after the commit.
    """
    target = _job_state(state)
    _check_error(error)
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        current = (
            (await conn.execute(select(jobs).where(jobs.c.id == job_id).with_for_update())).mappings().first()
        )
        if current is None:
            raise NotFoundError(f"job {job_id} does not exist", key=str(job_id))
        source = JobState(current["state"])
        if target not in JOB_TRANSITIONS[source]:
            allowed = ", ".join(sorted(JOB_TRANSITIONS[source])) or "none (final state)"
            raise ConflictError(f"job {job_id} cannot go from {source} to {target}; allowed: {allowed}")
        values: dict[str, Any] = {"state": str(target)}
        if target is JobState.RUNNING:
            values["started_at"] = now
        if not JOB_TRANSITIONS[target]:
            values["finished_at"] = now
        if error is not None:
            values["error"] = error
        result = await conn.execute(
            update(jobs).where(jobs.c.id == job_id, jobs.c.state == str(source)).values(**values)
        )
        if result.rowcount != 1:
            raise ConflictError(f"job {job_id} changed concurrently; retry")
        row = dict((await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().one())
    if publish is not None:
        await JOB_STATE.publish(publish, _job_event(row, str(source)))
    return row


def _job_event(row: Mapping[str, Any], from_state: str | None) -> JobStatePayload:
    return {
        "job_id": row["id"],
        "type": row["type"],
        "state": row["state"],
        "from_state": from_state,
        "group_pk": row["group_pk"],
    }


async def append_job_log(
    engine: AsyncEngine,
    job_id: int,
    lines: str | Sequence[str],
    *,
    publish: Publish | None = None,
) -> list[int]:
    """Append log ``lines`` (one string may hold several, split on newlines) to a job.

    Returns the new line ids (increasing), publishes one ``job.log`` event naming the id
    range. Lines longer than ``MAX_LOG_LINE_CHARS`` are refused, not truncated.
    """
    split = lines.splitlines() if isinstance(lines, str) else list(lines)
    if not split:
        return []
    if len(split) > MAX_LOG_LINES_PER_CALL:
        raise InputError(f"at most {MAX_LOG_LINES_PER_CALL} log lines per call")
    for line in split:
        if not isinstance(line, str) or len(line) > MAX_LOG_LINE_CHARS:
            raise InputError(f"each log line must be text of at most {MAX_LOG_LINE_CHARS} characters")
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        exists = (await conn.execute(select(jobs.c.id).where(jobs.c.id == job_id))).first()
        if exists is None:
            raise NotFoundError(f"job {job_id} does not exist", key=str(job_id))
        ids: list[int] = []
        # One INSERT per line keeps ids in order on every backend (RETURNING of a
        # multi-row insert has no guaranteed order on PostgreSQL).
        for line in split:
            result = await conn.execute(
                insert(job_logs).values(job_pk=job_id, logged_at=now, line=line).returning(job_logs.c.id)
            )
            ids.append(int(result.scalar_one()))
    if publish is not None:
        await JOB_LOG.publish(
            publish, {"job_id": job_id, "first_line_id": ids[0], "last_line_id": ids[-1], "n_lines": len(ids)}
        )
    return ids


# -- groups -----------------------------------------------------------------------------


async def set_group_state(
    engine: AsyncEngine,
    group_id: str,
    state: str,
    *,
    error: str | None = None,
    publish: Publish | None = None,
) -> dict[str, Any]:
    """Move group ``group_id`` to ``state`` along ``GROUP_TRANSITIONS``; publishes ``group.state``."""
    return await _change_group(engine, group_id, _group_state(state), error=error, publish=publish)


async def reprocess_group(
    engine: AsyncEngine, group_id: str, *, publish: Publish | None = None
) -> dict[str, Any]:
    """Send a completed or failed group back to ``pending``; count the retry and clear its error.

    The bare state move: nothing converts a pending group but its convert job, so the
    operators' reprocess (``reprocessGroup``, ``POST /api/reprocess``) is
    :func:`dsa110.ops.streaming.conversion.reprocess`, which queues that job in the same
    transaction (with :func:`lock_group` and :func:`reprocess_locked`)."""
    return await _change_group(engine, group_id, GroupState.PENDING, reprocess=True, publish=publish)


async def lock_group(conn: AsyncConnection, group_id: str) -> dict[str, Any]:
    """Group ``group_id``'s row, locked for the rest of the caller's write transaction."""
    _check_group_id(group_id)
    return await _lock_group(conn, group_id)


async def reprocess_locked(
    conn: AsyncConnection, current: Mapping[str, Any], *, stranded: bool = False
) -> dict[str, Any]:
    """The move of :func:`reprocess_group` for a row the caller locked (:func:`lock_group`) in
    its write transaction; returns the moved row. The caller publishes with
    :func:`publish_group` after the commit.

    ``stranded``: the caller found no convert job open for the group, so a ``pending`` group is
    reprocessed in place (retry counted, error cleared) rather than refused: nothing would
    ever move it on (groups reprocessed before reprocess queued their job were left so)."""
    source = GroupState(current["state"])
    now = datetime.now(UTC)
    if stranded and source is GroupState.PENDING:
        values = {"retry_count": func.coalesce(groups.c.retry_count, 0) + 1, "error": None, "updated_at": now}
        await _update_group(conn, current, source, values)
        return await _group_row(conn, current["id"])
    return await _move_group(conn, current, source, GroupState.PENDING, now, reprocess=True)


async def publish_group(
    publish: Publish | None, from_state: str, row: Mapping[str, Any], *, job_id: int | None = None
) -> None:
    """The ``group.state`` event of a committed move (naming the job queued with it, if any)."""
    await _publish_group(publish, GroupState(from_state), row, job_id=job_id)


async def start_group_work(
    engine: AsyncEngine, group_id: str, *, publish: Publish | None = None
) -> dict[str, Any]:
    """Mark group ``group_id`` as being worked on, in one transaction: ``pending -> in_progress``;
    ``in_progress`` stays (a re-run of the same work, e.g. a re-queued job); ``failed`` is
    reprocessed (``-> pending``, counting the retry and clearing the error) and then moved to
    ``in_progress`` (a retried job). Any other state (``completed``, ``collecting``) is a
    ``ConflictError`` and the group keeps it. Publishes ``group.state`` per move made."""
    _check_group_id(group_id)
    now = datetime.now(UTC)
    moves: list[tuple[GroupState, dict[str, Any]]] = []
    async with write_transaction(engine) as conn:
        current = await _lock_group(conn, group_id)
        source = GroupState(current["state"])
        if source is GroupState.FAILED:
            pending = await _move_group(conn, current, source, GroupState.PENDING, now, reprocess=True)
            moves.append((source, pending))
            source = GroupState.PENDING
        if source is GroupState.PENDING:
            moves.append((source, await _move_group(conn, current, source, GroupState.IN_PROGRESS, now)))
        elif source is GroupState.IN_PROGRESS:
            await _update_group(conn, current, source, {"updated_at": now})
        else:
            raise ConflictError(f"cannot start work on group {group_id} in state {source}")
        row = await _group_row(conn, current["id"])
    for from_state, moved in moves:
        await _publish_group(publish, from_state, moved)
    return row


def _check_group_id(group_id: str) -> None:
    if not isinstance(group_id, str) or not group_id or len(group_id) > 32:
        raise InputError("group_id must be a timestamp id like 2025-10-24T14:00:00")


async def _lock_group(conn: AsyncConnection, group_id: str) -> dict[str, Any]:
    current = (
        (await conn.execute(select(groups).where(groups.c.group_id == group_id).with_for_update()))
        .mappings()
        .first()
    )
    if current is None:
        raise NotFoundError(f"group {group_id} does not exist", key=group_id)
    return dict(current)


async def _update_group(
    conn: AsyncConnection, current: Mapping[str, Any], source: GroupState, values: Mapping[str, Any]
) -> None:
    result = await conn.execute(
        update(groups).where(groups.c.id == current["id"], groups.c.state == str(source)).values(**values)
    )
    if result.rowcount != 1:
        raise ConflictError(f"group {current['group_id']} changed concurrently; retry")


async def _move_group(
    conn: AsyncConnection,
    current: Mapping[str, Any],
    source: GroupState,
    target: GroupState,
    now: datetime,
    *,
    error: str | None = None,
    reprocess: bool = False,
) -> dict[str, Any]:
    """Move the locked group row ``current``, now in state ``source``, to ``target``."""
    allowed = (
        REPROCESSABLE if reprocess else frozenset(s for s in GroupState if target in GROUP_TRANSITIONS[s])
    )
    if source not in allowed or target not in GROUP_TRANSITIONS[source]:
        verb = "reprocess" if reprocess else f"move to {target}"
        raise ConflictError(f"cannot {verb} group {current['group_id']} in state {source}")
    values: dict[str, Any] = {"state": str(target), "updated_at": now}
    if reprocess:
        values["retry_count"] = func.coalesce(groups.c.retry_count, 0) + 1
        values["error"] = None
    elif error is not None:
        values["error"] = error
    await _update_group(conn, current, source, values)
    return await _group_row(conn, current["id"])


async def _group_row(conn: AsyncConnection, pk: int) -> dict[str, Any]:
    return dict((await conn.execute(select(groups).where(groups.c.id == pk))).mappings().one())


async def _publish_group(
    publish: Publish | None, source: GroupState, row: Mapping[str, Any], *, job_id: int | None = None
) -> None:
    if publish is not None:
        payload: GroupStatePayload = {
            "group_pk": row["id"],
            "group_id": row["group_id"],
            "state": row["state"],
            "from_state": str(source),
            "retry_count": row["retry_count"],
        }
        if job_id is not None:
            payload["job_id"] = job_id
        await GROUP_STATE.publish(publish, payload)


async def _change_group(
    engine: AsyncEngine,
    group_id: str,
    target: GroupState,
    *,
    error: str | None = None,
    reprocess: bool = False,
    publish: Publish | None = None,
) -> dict[str, Any]:
    _check_error(error)
    _check_group_id(group_id)
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        current = await _lock_group(conn, group_id)
        source = GroupState(current["state"])
        row = await _move_group(conn, current, source, target, now, error=error, reprocess=reprocess)
    await _publish_group(publish, source, row)
    return row
