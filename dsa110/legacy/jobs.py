"""``jobs`` (with their text logs) and ``batch_jobs``/``batch_job_items`` -> our jobs.

Legacy-pipeline-facts sections 1.3 and 4.2. A legacy job keeps its id as ours when free;
its ``params`` JSON is kept whole (the legacy API coerced it into ``JobParams`` and
dropped keys; not copied), ``artifacts`` are kept under ``params["artifacts"]``, an
empty ``ms_path`` is no MS, and its group is the timestamp in its MS's name.

``logs`` is one text blob the pipeline appends to. Complete lines (ending in a newline)
become our log lines, in order; the unterminated tail of a running job waits until it is
complete or the job has finished. A job's lines imported so far are counted on our side,
so a longer blob adds only its new lines, and publishes ``job.log`` as
:func:`dsa110.ops.jobs.append_job_log` does; a new job or a state change publishes
``job.state``. Jobs running or pending are re-read every pass until they end.

A batch becomes a job of the batch's kind (``batch_image`` -> ``image``, ...) whose
``params`` hold the legacy params (a Python ``repr`` for most kinds, read as a literal)
and the item counts; the child jobs its items name get its id as their ``batch_id``.
Items without a child job (photometry, publish) are counted, not imported.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import func, insert, select, update

from dsa110.db.enums import JobState, JobType
from dsa110.db.tables import groups, job_logs, jobs
from dsa110.events import JOB_LOG, JOB_STATE
from dsa110.legacy.context import Batch, ImportContext
from dsa110.legacy.keyed import known, save_keyed
from dsa110.legacy.table import Row, TableSpec
from dsa110.legacy.values import as_float, epoch_time, group_id_in, json_value, resolve_path, text
from dsa110.ops.jobs import JOB_TRANSITIONS, MAX_LOG_LINE_CHARS

JOBS: Final = "products.jobs"
BATCHES: Final = "products.batch_jobs"
ITEMS: Final = "products.batch_job_items"
TYPES: Final = frozenset(t.value for t in JobType)
STATES: Final = frozenset(s.value for s in JobState)
OPEN: Final = "status IN ('pending', 'running')"


def _times(
    ctx: ImportContext, row: Row, table: str
) -> tuple[datetime | None, datetime | None, datetime | None]:
    return (
        epoch_time(row.get("created_at"), ctx.odd, table, "created_at"),
        epoch_time(row.get("started_at"), ctx.odd, table, "started_at"),
        epoch_time(row.get("finished_at"), ctx.odd, table, "finished_at"),
    )


async def write_jobs(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    ms_paths = {
        int(r["id"]): resolve_path(r.get("ms_path"), ctx.root, ctx.odd, JOBS)
        for r in rows
        if r.get("id") is not None
    }
    gids = {i: group_id_in(p.rsplit("/", 1)[-1]) if p else None for i, p in ms_paths.items()}
    group_pks = await ctx.lookup(b, "group", groups, "group_id", gids.values())
    items: list[tuple[str, dict[str, Any]]] = []
    logs: dict[str, str] = {}
    for row in rows:
        if row.get("id") is None:
            ctx.report.skip(JOBS, "no id")
            continue
        legacy_id = int(row["id"])
        kind, state = text(row.get("type")), text(row.get("status"))
        created, started, finished = _times(ctx, row, JOBS)
        if kind not in TYPES or state not in STATES or created is None:
            ctx.report.skip(JOBS, f"unknown type or status ({kind!r}, {state!r}) or no created_at")
            continue
        params = json_value(row.get("params"), ctx.odd, JOBS, "params")
        params = params if isinstance(params, dict) else ({} if params is None else {"value": params})
        artifacts = json_value(row.get("artifacts"), ctx.odd, JOBS, "artifacts")
        if artifacts:
            params = {**params, "artifacts": artifacts}
        gid = gids.get(legacy_id)
        items.append(
            (
                str(legacy_id),
                {
                    "type": kind,
                    "state": state,
                    "params": params,
                    "group_pk": group_pks.get(gid) if gid else None,
                    "ms_path": ms_paths.get(legacy_id),
                    "created_at": created,
                    "started_at": started,
                    "finished_at": finished,
                },
            )
        )
        logs[str(legacy_id)] = text(row.get("logs")) or ""
    before = await _states(b, await known(ctx, b, "job", [k for k, _ in items]))
    saved = await save_keyed(ctx, b, jobs, "job", items, keep_ids=True, keep=("batch_id", "error"))
    appended: list[tuple[int, list[str], datetime]] = []
    have = await _line_counts(b, sorted(saved.pks.values()))
    for key, values in items:
        pk = saved.pks[key]
        if pk in saved.new or pk in saved.changed:
            b.emit(
                JOB_STATE.signal(
                    {
                        "job_id": pk,
                        "type": values["type"],
                        "state": values["state"],
                        "from_state": before.get(pk),
                        "group_pk": values["group_pk"],
                    }
                )
            )
        final = not JOB_TRANSITIONS[JobState(values["state"])]
        lines = _complete_lines(logs[key], final)[have.get(pk, 0) :]
        if lines:
            appended.append((pk, lines, (values["finished_at"] or values["created_at"]) if final else _now()))
    await _append_logs(ctx, b, appended)
    return len(saved.new) + len(saved.changed)


def _now() -> datetime:
    return datetime.now(UTC)


async def _states(b: Batch, pks: dict[str, int]) -> dict[int, str]:
    if not pks:
        return {}
    result = await b.conn.execute(select(jobs.c.id, jobs.c.state).where(jobs.c.id.in_(sorted(pks.values()))))
    return {int(i): str(s) for i, s in result.all()}


def _complete_lines(blob: str, final: bool) -> list[str]:
    """The log's lines; an unterminated last line only once the job has finished."""
    lines = blob.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")) and not final:
        lines = lines[:-1]  # still being written
    return [line.rstrip("\r\n") for line in lines]


async def _line_counts(b: Batch, job_pks: list[int]) -> dict[int, int]:
    if not job_pks:
        return {}
    result = await b.conn.execute(
        select(job_logs.c.job_pk, func.count())
        .where(job_logs.c.job_pk.in_(job_pks))
        .group_by(job_logs.c.job_pk)
    )
    return {int(pk): int(n) for pk, n in result.all()}


async def _append_logs(ctx: ImportContext, b: Batch, appended: list[tuple[int, list[str], datetime]]) -> None:
    """Append the new lines of several jobs in one statement; one ``job.log`` event per job."""
    if not appended:
        return
    before = (await b.conn.execute(select(func.coalesce(func.max(job_logs.c.id), 0)))).scalar_one()
    rows = []
    for pk, lines, stamp in appended:
        if any(len(line) > MAX_LOG_LINE_CHARS for line in lines):
            ctx.odd.note(JOBS, f"log line longer than {MAX_LOG_LINE_CHARS} characters: cut")
        rows += [{"job_pk": pk, "logged_at": stamp, "line": line[:MAX_LOG_LINE_CHARS]} for line in lines]
    for start in range(0, len(rows), 5000):  # in order: ids ascend with the lines
        await b.conn.execute(insert(job_logs), rows[start : start + 5000])
    result = await b.conn.execute(
        select(job_logs.c.job_pk, func.min(job_logs.c.id), func.max(job_logs.c.id), func.count())
        .where(job_logs.c.id > before, job_logs.c.job_pk.in_([pk for pk, _, _ in appended]))
        .group_by(job_logs.c.job_pk)
    )
    for pk, first, last, n in sorted(result.all()):
        b.emit(
            JOB_LOG.signal(
                {"job_id": int(pk), "first_line_id": int(first), "last_line_id": int(last), "n_lines": int(n)}
            )
        )


def _batch_kind(value: str | None) -> str | None:
    if not value or not value.startswith("batch_"):
        return None
    kind = value.removeprefix("batch_")
    return kind if kind in TYPES else None


async def write_batches(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    items: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        kind, state = _batch_kind(text(row.get("type"))), text(row.get("status"))
        created = epoch_time(row.get("created_at"), ctx.odd, BATCHES, "created_at")
        if row.get("id") is None or kind is None or state not in STATES or created is None:
            ctx.report.skip(
                BATCHES, f"unknown type or status ({row.get('type')!r}, {state!r}) or no created_at"
            )
            continue
        items.append(
            (
                str(int(row["id"])),
                {
                    "type": kind,
                    "state": state,
                    "params": {
                        "batch": True,
                        "legacy_type": text(row.get("type")),
                        "params": json_value(row.get("params"), ctx.odd, BATCHES, "params"),
                        "total_items": int(as_float(row.get("total_items")) or 0),
                        "completed_items": int(as_float(row.get("completed_items")) or 0),
                        "failed_items": int(as_float(row.get("failed_items")) or 0),
                    },
                    "group_pk": None,
                    "ms_path": None,
                    "created_at": created,
                    "started_at": None,
                    "finished_at": None,
                },
            )
        )
    before = await _states(b, await known(ctx, b, "batch", [k for k, _ in items]))
    saved = await save_keyed(ctx, b, jobs, "batch", items, keep_ids=False, keep=("batch_id", "error"))
    for key, values in items:
        pk = saved.pks[key]
        if pk in saved.new or pk in saved.changed:
            b.emit(
                JOB_STATE.signal(
                    {
                        "job_id": pk,
                        "type": values["type"],
                        "state": values["state"],
                        "from_state": before.get(pk),
                        "group_pk": None,
                    }
                )
            )
    return len(saved.new) + len(saved.changed)


async def write_batch_items(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    batch_pks = await known(
        ctx, b, "batch", [str(int(r["batch_id"])) for r in rows if r.get("batch_id") is not None]
    )
    child_pks = await known(
        ctx, b, "job", [str(int(r["job_id"])) for r in rows if r.get("job_id") is not None]
    )
    written = 0
    for row in rows:
        batch = batch_pks.get(str(int(row["batch_id"]))) if row.get("batch_id") is not None else None
        child = child_pks.get(str(int(row["job_id"]))) if row.get("job_id") is not None else None
        if batch is None:
            ctx.report.skip(ITEMS, "its batch was not imported")
            continue
        if child is None:
            ctx.report.skip(ITEMS, "no child job (counted in the batch's params only)")
            continue
        result = await b.conn.execute(
            update(jobs)
            .where(jobs.c.id == child, jobs.c.batch_id.is_distinct_from(batch))
            .values(batch_id=batch)
        )
        written += result.rowcount or 0
    return written


SPECS: Final = (
    TableSpec(
        "products",
        "jobs",
        write_jobs,
        required=("id", "type", "status"),
        mutable=True,
        changed=("created_at", "started_at", "finished_at"),
        open_when=lambda cols: OPEN if "status" in cols else None,
        batch_rows=1000,
    ),
    TableSpec(
        "products",
        "batch_jobs",
        write_batches,
        required=("id", "type", "status"),
        mutable=True,
        changed=("created_at",),
        open_when=lambda cols: OPEN if "status" in cols else None,
    ),
    TableSpec(
        "products",
        "batch_job_items",
        write_batch_items,
        required=("batch_id",),
        mutable=True,
        changed=("started_at", "completed_at"),
        open_when=lambda cols: OPEN if "status" in cols else None,
    ),
)
