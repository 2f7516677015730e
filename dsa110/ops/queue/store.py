"""The durable queue: every change of a job's life is one conditional statement in the database.

States (stored under the legacy names the REST layer shows): ``pending`` (queued) ->
``running`` -> ``done`` (succeeded) | ``failed`` | ``cancelled``.

* **Submit** validates the parameters with the job's kind first (a coded ``InputError``
  and nothing queued when they are wrong) and inserts a ``pending`` row.
* **Claim** moves the oldest due ``pending`` rows of the kinds a worker runs to
  ``running`` in ONE statement, stamping the worker's lease: ``UPDATE ... WHERE id IN
  (SELECT ... FOR UPDATE SKIP LOCKED)`` on PostgreSQL (concurrent claimers skip each
  other's rows instead of queueing behind them); on SQLite the same statement is a
  conditional UPDATE that the single-writer lock makes atomic. A row is won by one worker.
* **Heartbeat** extends the leases a worker still holds (``WHERE lease_owner = me``);
  a job missing from the answer was taken away, and the worker kills it.
* **Reap**: a ``running`` job whose lease ran out lost its worker (``kill -9``, host gone).
  It is queued again (after a back-off) while its kind allows attempts, else failed; a
  job whose cancel was asked for is cancelled. The lease is the only judge: a worker
  writes a final state only while it holds the lease.
* **Cancel**: a pending job is cancelled at once; for a running one the request is
  recorded and its worker stops the process group (``dsa110.ops.queue.worker``).
* **Retry**: a failed or cancelled job is queued again with its attempts renewed.

Operators' writes (submit, cancel, retry) run in ``write_transaction``: the write lock is
taken first and waited for within the engine's budget, past which the caller is told
``BUSY`` with nothing written (with a plain transaction SQLite's "database is locked"
came out as an internal error, and PostgreSQL waited without limit). The worker's own
writes (claim, heartbeat, progress, finish, reap) are left as they are: single conditional
statements, run by its loop rather than for a waiting client.

Outputs of a job that failed or was cancelled are marked partial (``finalization_status
= partial``, auto-publish off), and publishing refuses them. Each change publishes a
``job.state`` event after its commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.enums import JobState, JobType
from dsa110.db.tables import data_products, job_products, jobs
from dsa110.db.writes import write_transaction
from dsa110.errors import ConflictError, InputError, NotFoundError
from dsa110.events import JOB_STATE, EventBusError
from dsa110.events.channels import JobStatePayload
from dsa110.ops.jobs import append_job_log
from dsa110.ops.products import PARTIAL
from dsa110.ops.queue import kinds

log = logging.getLogger("dsa110.queue")

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]

MAX_PARAMS_BYTES: Final = 64_000
MAX_ERROR_CHARS: Final = 10_000
MAX_BACKOFF_S: Final = 60.0
FINAL: Final = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})


def now_utc() -> datetime:
    return datetime.now(UTC)


async def emit(
    publish: Publish | None,
    row: Mapping[Any, Any],
    from_state: str | None,
    *,
    progress: float | None = None,
    cancel_requested: bool | None = None,
) -> None:
    """Announce a job change; the row is already committed, so a bus failure loses only the signal."""
    if publish is None:
        return
    payload: JobStatePayload = {
        "job_id": row["id"],
        "type": row["type"],
        "state": row["state"],
        "from_state": from_state,
        "group_pk": row["group_pk"],
        "batch_id": row["batch_id"],
    }
    if progress is not None:
        payload["progress"] = progress
    if cancel_requested is not None:
        payload["cancel_requested"] = cancel_requested
    try:
        await JOB_STATE.publish(publish, payload)
    except EventBusError:
        log.warning("job %s: the %s event was not published", row["id"], row["state"], exc_info=True)


# -- submitting ----------------------------------------------------------------------------


def checked_params(
    kind_name: str, params: Any, *, require_registered: bool = True
) -> tuple[dict[str, Any], int]:
    """The stored parameters and the allowed attempts for a job of ``kind_name``, or a coded error.

    ``require_registered=False`` queues a known job type that no kind in this process
    runs (the streaming service queues ``convert`` for whatever workers run it); its
    parameters are then only checked to be a small JSON object.
    """
    if not isinstance(kind_name, str) or (kinds.find(kind_name) is None and kind_name not in set(JobType)):
        raise InputError(
            f"unknown job type {str(kind_name)[:40]!r}; expected one of {', '.join(JobType)}",
            code=kinds.UNKNOWN_KIND,
        )
    if not isinstance(params, Mapping) or not all(isinstance(k, str) for k in params):
        raise InputError("job parameters must be a JSON object", code=kinds.BAD_PARAMS, field="params")
    try:
        size = len(json.dumps(params, allow_nan=False))
    except (TypeError, ValueError, RecursionError):
        raise InputError(
            "job parameters must be plain JSON (no NaN)", code=kinds.BAD_PARAMS, field="params"
        ) from None
    if size > MAX_PARAMS_BYTES:
        raise InputError(
            f"job parameters are at most {MAX_PARAMS_BYTES} bytes of JSON",
            code=kinds.BAD_PARAMS,
            field="params",
        )
    kind = kinds.find(kind_name)
    if kind is None:
        if require_registered:
            kinds.get(kind_name)  # raises the coded error naming the known kinds
        return dict(params), 1
    return kind.validate(params), kind.max_attempts


def job_values(
    kind_name: str,
    params: dict[str, Any],
    max_attempts: int,
    *,
    created_by: str | None = None,
    group_pk: int | None = None,
    ms_path: str | None = None,
    batch_id: int | None = None,
    batch_item: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    return {
        "type": kind_name,
        "state": str(JobState.PENDING),
        "params": params,
        "group_pk": group_pk,
        "ms_path": ms_path,
        "batch_id": batch_id,
        "batch_item": batch_item,
        "created_at": now or now_utc(),
        "created_by": created_by,
        "attempts": 0,
        "max_attempts": max_attempts,
    }


async def submit(
    engine: AsyncEngine,
    kind_name: str,
    params: Any,
    *,
    created_by: str | None = None,
    group_pk: int | None = None,
    ms_path: str | None = None,
    require_registered: bool = True,
    publish: Publish | None = None,
) -> dict[str, Any]:
    """Validate and queue one job; returns its row (``pending``)."""
    checked, max_attempts = checked_params(kind_name, params, require_registered=require_registered)
    values = job_values(
        kind_name, checked, max_attempts, created_by=created_by, group_pk=group_pk, ms_path=ms_path
    )
    async with write_transaction(engine) as conn:
        row = await insert_job(conn, values)
    await emit(publish, row, None)
    return row


async def insert_job(conn: AsyncConnection, values: Mapping[str, Any]) -> dict[str, Any]:
    """Insert a job (``job_values``) in the caller's transaction, so that a state change and
    the job queued for it commit together or not at all; the caller emits its event after
    the commit."""
    return dict((await conn.execute(jobs.insert().values(**values).returning(*jobs.c))).mappings().one())


# -- the worker's side ---------------------------------------------------------------------


async def claim(
    engine: AsyncEngine,
    worker_id: str,
    kind_names: Sequence[str],
    limit: int,
    lease_s: float,
    executor: str = "local",
    publish: Publish | None = None,
) -> list[dict[str, Any]]:
    """Take up to ``limit`` due pending jobs of ``kind_names``, oldest first, for this worker."""
    if limit <= 0 or not kind_names:
        return []
    now = now_utc()
    c = jobs.c
    ids: list[int] = []
    due = (
        select(c.id)
        .where(
            c.state == str(JobState.PENDING),
            c.type.in_(list(kind_names)),
            or_(c.not_before.is_(None), c.not_before <= now),
        )
        .order_by(c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # nothing on SQLite, where the statement is atomic anyway
    )
    values = {
        "state": str(JobState.RUNNING),
        "attempts": c.attempts + 1,
        "lease_owner": worker_id,
        "lease_expires_at": now + timedelta(seconds=lease_s),
        "heartbeat_at": now,
        "started_at": now,
        "finished_at": None,
        "worker": worker_id,
        "executor": executor,
        "exit_code": None,
        "error": None,
        "progress": 0.0,
        "progress_message": None,
        "process_group": None,
    }
    pending = c.state == str(JobState.PENDING)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Lock the rows first, then update exactly those: inside `IN (subquery LIMIT n
            # FOR UPDATE SKIP LOCKED)` PostgreSQL may run the subquery more than once and
            # claim more than n rows.
            ids = list((await conn.execute(due)).scalars().all())
            where = c.id.in_(ids)
        else:
            # SQLite: one statement, so the read and the write happen under one write lock
            # (a separate SELECT first could meet a newer snapshot and fail as busy).
            where = c.id.in_(due.scalar_subquery())
        if conn.dialect.name == "postgresql" and not ids:
            return []
        claimed = await conn.execute(update(jobs).where(where, pending).values(**values).returning(*jobs.c))
        rows = [dict(r) for r in claimed.mappings().all()]
    rows.sort(key=lambda r: int(r["id"]))
    for row in rows:
        await emit(publish, row, str(JobState.PENDING))
    return rows


def _held(job_id: int, worker_id: str) -> Any:
    c = jobs.c
    return and_(c.id == job_id, c.lease_owner == worker_id, c.state == str(JobState.RUNNING))


async def heartbeat(engine: AsyncEngine, worker_id: str, job_ids: Iterable[int], lease_s: float) -> set[int]:
    """Extend this worker's leases; returns the jobs it still holds (the others were taken away)."""
    ids = list(job_ids)
    if not ids:
        return set()
    now = now_utc()
    c = jobs.c
    async with engine.begin() as conn:
        result = await conn.execute(
            update(jobs)
            .where(
                c.id.in_(ids),
                c.lease_owner == worker_id,
                c.state == str(JobState.RUNNING),
                c.lease_expires_at >= now,  # a lease that ran out is gone, reaped or not
            )
            .values(lease_expires_at=now + timedelta(seconds=lease_s), heartbeat_at=now)
            .returning(c.id)
        )
        return {int(pk) for pk in result.scalars().all()}


async def cancel_requested(engine: AsyncEngine, worker_id: str, job_ids: Iterable[int]) -> set[int]:
    """Which of this worker's jobs an operator asked to cancel."""
    ids = list(job_ids)
    if not ids:
        return set()
    c = jobs.c
    async with engine.connect() as conn:
        result = await conn.execute(
            select(c.id).where(c.id.in_(ids), c.lease_owner == worker_id, c.cancel_requested_at.is_not(None))
        )
        return {int(pk) for pk in result.scalars().all()}


async def record_process(engine: AsyncEngine, job_id: int, worker_id: str, process_group: int | None) -> None:
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(_held(job_id, worker_id)).values(process_group=process_group))


async def set_progress(
    engine: AsyncEngine,
    job_id: int,
    worker_id: str,
    fraction: float,
    message: str | None,
    publish: Publish | None = None,
) -> None:
    async with engine.begin() as conn:
        row = (
            (
                await conn.execute(
                    update(jobs)
                    .where(_held(job_id, worker_id))
                    .values(progress=fraction, progress_message=message)
                    .returning(*jobs.c)
                )
            )
            .mappings()
            .first()
        )
    if row is not None:
        await emit(publish, row, row["state"], progress=fraction)


async def finish(
    engine: AsyncEngine,
    job_id: int,
    worker_id: str,
    state: JobState,
    *,
    exit_code: int | None = None,
    error: str | None = None,
    result: Any = None,
    publish: Publish | None = None,
) -> dict[str, Any] | None:
    """Write a final state while holding the lease; None when the lease had been lost."""
    if state not in FINAL:
        raise ValueError(f"{state} is not a final state")
    values: dict[str, Any] = {
        "state": str(state),
        "finished_at": now_utc(),
        "exit_code": exit_code,
        "error": error[-MAX_ERROR_CHARS:] if error else None,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if result is not None:
        values["result"] = result
    if state is JobState.DONE:
        values["progress"] = 1.0
    async with engine.begin() as conn:
        row = (
            (
                await conn.execute(
                    update(jobs).where(_held(job_id, worker_id)).values(**values).returning(*jobs.c)
                )
            )
            .mappings()
            .first()
        )
        if row is not None and state is not JobState.DONE:
            await mark_partial_outputs(conn, job_id)
    if row is None:
        return None
    await emit(publish, row, str(JobState.RUNNING))
    return dict(row)


async def mark_partial_outputs(conn: AsyncConnection, job_id: int) -> None:
    """The staged outputs of a job that did not succeed: never published, automatically or not."""
    outputs = select(job_products.c.product_pk).where(
        job_products.c.job_pk == job_id, job_products.c.role == "output"
    )
    await conn.execute(
        update(data_products)
        .where(data_products.c.id.in_(outputs), data_products.c.status == "staging")
        .values(finalization_status=PARTIAL, auto_publish=False)
    )


async def expire(engine: AsyncEngine, job_id: int, worker_id: str) -> None:
    """Give up a job's lease at once (its guard killed it): the reaper then retries or fails it."""
    past = now_utc() - timedelta(seconds=1)
    async with engine.begin() as conn:
        await conn.execute(update(jobs).where(_held(job_id, worker_id)).values(lease_expires_at=past))


def backoff_s(attempts: int) -> float:
    """Seconds before attempt ``attempts + 1`` of a job whose worker was lost: 1, 2, 4 ... 60."""
    return float(min(MAX_BACKOFF_S, 2.0 ** max(0, attempts - 1)))


async def reap(engine: AsyncEngine, publish: Publish | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Settle running jobs whose lease ran out: queue again, fail, or cancel; returns the changed rows."""
    now = now_utc()
    c = jobs.c
    expired = and_(c.state == str(JobState.RUNNING), c.lease_expires_at < now)
    async with engine.connect() as conn:
        found = (await conn.execute(select(jobs).where(expired).order_by(c.id).limit(limit))).mappings().all()
    changed: list[dict[str, Any]] = []
    for old in found:
        kind = kinds.find(old["type"])
        retry = kind.retry_on_lost if kind is not None else True
        attempts, allowed = int(old["attempts"]), int(old["max_attempts"])
        values: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None, "process_group": None}
        if old["cancel_requested_at"] is not None:
            values.update(
                state=str(JobState.CANCELLED), finished_at=now, error="cancelled; its worker was lost"
            )
            note = "its worker was lost while it was being cancelled: cancelled"
        elif retry and attempts < allowed:
            values.update(
                state=str(JobState.PENDING), not_before=now + timedelta(seconds=backoff_s(attempts))
            )
            note = (
                f"its worker {old['lease_owner']} was lost (lease expired); "
                f"queued again ({attempts} of {allowed} attempts used)"
            )
        else:
            why = "this kind is not retried" if not retry else f"all {allowed} attempts used"
            error = f"its worker {old['lease_owner']} was lost (lease expired) and {why}"
            values.update(state=str(JobState.FAILED), finished_at=now, error=error)
            note = error
        async with engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        update(jobs)
                        .where(c.id == old["id"], c.lease_owner == old["lease_owner"], expired)
                        .values(**values)
                        .returning(*jobs.c)
                    )
                )
                .mappings()
                .first()
            )
            if row is not None and row["state"] != str(JobState.PENDING):
                await mark_partial_outputs(conn, int(row["id"]))
        if row is None:
            continue  # renewed meanwhile, or settled by another reaper
        log.warning("job %s: %s", row["id"], note)
        await append_job_log(engine, int(row["id"]), f"[queue] {note}", publish=publish)
        await emit(publish, row, str(JobState.RUNNING))
        changed.append(dict(row))
    return changed


# -- operators' requests -------------------------------------------------------------------


async def _get(conn: AsyncConnection, job_id: int) -> dict[str, Any]:
    row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).mappings().first()
    if row is None:
        raise NotFoundError(f"job {job_id} does not exist", key=str(job_id))
    return dict(row)


async def request_cancel(
    engine: AsyncEngine, job_id: int, by: str | None, publish: Publish | None = None
) -> dict[str, Any]:
    """Cancel a job: at once when queued; a running one is stopped by its worker (SIGTERM, then SIGKILL).

    Cancelling a cancelled job answers it as it is; a finished one is a ``CONFLICT``.
    """
    async with write_transaction(engine) as conn:
        changed = await cancel_open(conn, jobs.c.id == job_id, by)
        if not changed:
            current = await _get(conn, job_id)
            if current["state"] in (str(JobState.CANCELLED), str(JobState.RUNNING)):
                return current  # already cancelled, or its cancel is under way
            raise ConflictError(
                f"job {job_id} is {current['state']}; only queued or running jobs can be cancelled"
            )
    await cancelled(changed, publish)
    return changed[0][0]


async def cancel_open(conn: AsyncConnection, which: Any, by: str | None) -> list[tuple[dict[str, Any], str]]:
    """Cancel the open jobs matching ``which`` in the caller's write transaction: the queued
    ones at once, the running ones by recording the request their workers act on (once).
    Returns (row, state it was in) per job changed, by id; the caller then calls
    :func:`cancelled` after the commit."""
    now = now_utc()
    c = jobs.c
    queued = await conn.execute(
        update(jobs)
        .where(which, c.state == str(JobState.PENDING))
        .values(
            state=str(JobState.CANCELLED),
            finished_at=now,
            cancel_requested_at=now,
            cancel_requested_by=by,
            error=f"cancelled by {by or 'the pipeline'} before it ran",
        )
        .returning(*jobs.c)
    )
    changed = [(dict(r), str(JobState.PENDING)) for r in queued.mappings().all()]
    running = await conn.execute(
        update(jobs)
        .where(which, c.state == str(JobState.RUNNING), c.cancel_requested_at.is_(None))
        .values(cancel_requested_at=now, cancel_requested_by=by)
        .returning(*jobs.c)
    )
    changed += [(dict(r), str(JobState.RUNNING)) for r in running.mappings().all()]
    return sorted(changed, key=lambda change: int(change[0]["id"]))


async def cancelled(changed: Sequence[tuple[Mapping[str, Any], str]], publish: Publish | None) -> None:
    """After a committed :func:`cancel_open`: the jobs' events."""
    for row, from_state in changed:
        await emit(publish, row, from_state, cancel_requested=True)


async def retry(
    engine: AsyncEngine, job_id: int, by: str | None, publish: Publish | None = None
) -> dict[str, Any]:
    """Queue a failed or cancelled job again, with a fresh allowance of attempts."""
    async with write_transaction(engine) as conn:
        row, from_state = await requeue(conn, job_id)
    await requeued(engine, row, from_state, by, publish)
    return row


async def requeue(conn: AsyncConnection, job_id: int) -> tuple[dict[str, Any], str]:
    """The row change of :func:`retry`, in the caller's write transaction (so that a caller
    can record why in the same commit); returns the row and the state it left. The caller
    calls :func:`requeued` after the commit."""
    c = jobs.c
    current = await _get(conn, job_id)
    if current["state"] not in (str(JobState.FAILED), str(JobState.CANCELLED)):
        raise ConflictError(
            f"job {job_id} is {current['state']}; only failed or cancelled jobs can be retried"
        )
    kind = kinds.find(current["type"])
    allowance = kind.max_attempts if kind is not None else 1
    row = (
        (
            await conn.execute(
                update(jobs)
                .where(c.id == job_id, c.state == current["state"])
                .values(
                    state=str(JobState.PENDING),
                    max_attempts=int(current["attempts"]) + allowance,
                    finished_at=None,
                    not_before=None,
                    error=None,
                    exit_code=None,
                    progress=None,
                    progress_message=None,
                    cancel_requested_at=None,
                    cancel_requested_by=None,
                )
                .returning(*jobs.c)
            )
        )
        .mappings()
        .first()
    )
    if row is None:
        raise ConflictError(f"job {job_id} changed concurrently; retry")
    return dict(row), str(current["state"])


async def requeued(
    engine: AsyncEngine, row: Mapping[str, Any], from_state: str, by: str | None, publish: Publish | None
) -> None:
    """After a committed :func:`requeue`: the job's log line and its event."""
    await append_job_log(
        engine, int(row["id"]), f"[queue] queued again by {by or 'the pipeline'}", publish=publish
    )
    await emit(publish, row, from_state)


async def get_job(engine: AsyncEngine, job_id: int) -> dict[str, Any]:
    async with engine.connect() as conn:
        return await _get(conn, job_id)
