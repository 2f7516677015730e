"""Operating the pipeline from the graph: job kinds, batches, the job environment (queries and types)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import strawberry
from strawberry.scalars import JSON

from dsa110.ops.queue import batches as batch_ops
from dsa110.ops.queue import kinds
from dsa110.ops.queue.health import jobs_health
from loaders.entities import JOB
from resolvers.errors import BadUserInput
from schema.base import GraphInfo
from schema.inputs import JobType
from schema.job_types import Job

MAX_BATCHES: Final = 500


@strawberry.type(description="A kind of job the workers of this deployment run.")
class JobKindInfo:
    name: str
    description: str
    max_attempts: int = strawberry.field(description="Attempts in all when workers are lost.")
    retry_on_lost: bool
    cancel_grace_s: float = strawberry.field(description="Seconds between SIGTERM and SIGKILL on cancel.")


@strawberry.type(description="How many of a batch's items are in each state.")
class BatchItemCounts:
    pending: int
    running: int
    done: int
    failed: int
    cancelled: int
    total: int


@strawberry.type(
    description="A batch: one child job per item. Its state follows the children: RUNNING while any runs, "
    "then FAILED if any failed, CANCELLED if any was cancelled, else DONE."
)
class Batch:
    row: strawberry.Private[dict[str, Any]]
    tally: strawberry.Private[batch_ops.BatchCounts]

    @strawberry.field
    def batch_id(self) -> int:
        return int(self.row["id"])

    @strawberry.field(description="The job kind of every item.")
    def kind(self) -> str:
        return str(self.row["kind"])

    @strawberry.field(description="`pending`, `running`, `done`, `failed` or `cancelled`.")
    def state(self) -> str:
        return batch_ops.batch_state(self.tally)

    @strawberry.field(description="Parameters shared by every item.")
    def params(self) -> JSON:
        value: JSON = self.row["params"]
        return value

    @strawberry.field
    def n_items(self) -> int:
        return int(self.row["n_items"])

    @strawberry.field
    def counts(self) -> BatchItemCounts:
        t = self.tally
        return BatchItemCounts(
            pending=t.pending,
            running=t.running,
            done=t.done,
            failed=t.failed,
            cancelled=t.cancelled,
            total=t.total,
        )

    @strawberry.field
    def created_at(self) -> datetime:
        value: datetime = self.row["created_at"]
        return value

    @strawberry.field
    def created_by(self) -> str | None:
        return _text(self.row["created_by"])

    @strawberry.field
    def cancelled_at(self) -> datetime | None:
        value: datetime | None = self.row["cancelled_at"]
        return value

    @strawberry.field
    def cancelled_by(self) -> str | None:
        return _text(self.row["cancelled_by"])

    @strawberry.field(description="The child jobs, one per item, in item order.")
    async def jobs(self, info: GraphInfo) -> list[Job]:
        wrap = info.context.loaders.wrap(JOB)
        return [
            wrap(_job_dict(r)) for r in await batch_ops.children(info.context.engine, int(self.row["id"]))
        ]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _job_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A jobs row as the graph's loaders hand it over (``id`` is ``pk``)."""
    out = dict(row)
    out["pk"] = out.pop("id")
    return out


async def batch_objects(info: GraphInfo, rows: list[dict[str, Any]]) -> list[Batch]:
    tallies = await batch_ops.counts_of(info.context.engine, [int(r["id"]) for r in rows])
    return [Batch(row=r, tally=tallies[int(r["id"])]) for r in rows]


@strawberry.type(description="Whether jobs can run here (legacy `/api/jobs/healthz`).")
class JobsHealth:
    ok: bool
    casa_ok: bool = strawberry.field(description="CASA (casatools, casatasks) is available to job processes.")
    casa_error: str | None
    database_ok: bool
    database_error: str | None
    disk_ok: bool = strawberry.field(description="More than 200 MB free in the data directory.")
    disk_total_bytes: float
    disk_used_bytes: float
    disk_free_bytes: float
    python: str = strawberry.field(description="The interpreter job processes run.")
    queued: int
    running: int
    workers: list[str] = strawberry.field(description="Workers holding running jobs now.")
    kinds: list[str] = strawberry.field(description="Job kinds registered in this server.")


@strawberry.type
class OpsQuery:
    @strawberry.field(description="The job kinds this server can queue.")
    def job_kinds(self) -> list[JobKindInfo]:
        return [
            JobKindInfo(
                name=k.name,
                description=k.description,
                max_attempts=k.max_attempts,
                retry_on_lost=k.retry_on_lost,
                cancel_grace_s=k.cancel_grace_s,
            )
            for k in (kinds.get(name) for name in kinds.names())
        ]

    @strawberry.field(description="Batches, newest first (at most 500).")
    async def batches(self, info: GraphInfo, limit: int = 50, kind: JobType | None = None) -> list[Batch]:
        if not 1 <= limit <= MAX_BATCHES:
            raise BadUserInput(f"limit must be between 1 and {MAX_BATCHES}", field="limit")
        rows = await batch_ops.list_batches(
            info.context.engine, limit=limit, kind=str(kind) if kind else None
        )
        return await batch_objects(info, rows)

    @strawberry.field(description="A batch by its integer id.")
    async def batch(self, info: GraphInfo, batch_id: int) -> Batch:
        row = await batch_ops.get_batch(info.context.engine, batch_id)
        return (await batch_objects(info, [row]))[0]

    @strawberry.field(description="Whether jobs can run here: CASA, the database, disk, queue and workers.")
    async def jobs_health(self, info: GraphInfo) -> JobsHealth:
        ctx = info.context
        h = await jobs_health(ctx.engine, ctx.settings.data_dir)
        return JobsHealth(
            ok=h.ok,
            casa_ok=h.casa_ok,
            casa_error=h.casa_error,
            database_ok=h.db_ok,
            database_error=h.db_error,
            disk_ok=h.disk_ok,
            disk_total_bytes=float(h.disk_total),
            disk_used_bytes=float(h.disk_used),
            disk_free_bytes=float(h.disk_free),
            python=h.python,
            queued=h.queued,
            running=h.running,
            workers=h.workers,
            kinds=kinds.names(),
        )
