"""Operating jobs from the graph: submit any kind, cancel, retry, batches (queued rows; workers run them).

Every mutation here is the operator's. Parameters are validated by the job's kind before
anything is queued (``BAD_JOB_PARAMS`` / ``UNKNOWN_JOB_KIND``, nothing queued); who asked
is the caller's identity, recorded as ``createdBy`` / ``cancelRequestedBy``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import strawberry
from strawberry.scalars import JSON

from dsa110.auth.identity import Role
from dsa110.names import safe_name
from dsa110.ops.queue import batches as batch_ops
from dsa110.ops.queue import store
from dsa110.times import datetime_to_mjd
from loaders.entities import GROUP, JOB
from resolvers import lists
from resolvers.errors import BadUserInput
from schema.base import GraphInfo
from schema.inputs import JobType
from schema.job_types import Job
from schema.ops import Batch, batch_objects
from schema.permissions import requires

MAX_MOSAIC_WINDOW = timedelta(days=7)


@strawberry.input(description="One item of a batch: what it works on, and its own parameters.")
class BatchItemInput:
    label: str = strawberry.field(description="What the item works on (an MS path, a data id, ...).")
    params: JSON = strawberry.field(
        default_factory=dict, description="Overlaid on the batch's shared parameters for this item."
    )


def _publish(info: GraphInfo) -> Any:
    bus = info.context.bus
    return bus.publish if bus is not None else None


def _object(value: Any) -> dict[str, Any]:
    """A JSON argument that must be an object (the kinds check its contents)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadUserInput("item parameters must be a JSON object", field="params")
    return value


async def _job(info: GraphInfo, job_id: int) -> Job:
    return await lists.by_natural_key(info.context, JOB, job_id, "id")


async def _batch(info: GraphInfo, row: dict[str, Any]) -> Batch:
    return (await batch_objects(info, [row]))[0]


@strawberry.type
class JobsMutation:
    @strawberry.mutation(
        description="Queue a mosaic of the images taken between two times; returns the job (operator). "
        "`name` and `calibratorName` are file-safe names: letters, digits and `. _ + : @ -`.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def create_mosaic_job(
        self,
        info: GraphInfo,
        start_time: datetime,
        end_time: datetime,
        name: str | None = None,
        calibrator_name: str | None = None,
    ) -> Job:
        if end_time <= start_time:
            raise BadUserInput("`endTime` must be after `startTime`", field="endTime")
        if end_time - start_time > MAX_MOSAIC_WINDOW:
            raise BadUserInput("a mosaic spans at most 7 days", field="endTime")
        for field, value in (("name", name), ("calibratorName", calibrator_name)):
            if value is not None:
                safe_name(value, field)
        ctx = info.context
        params = {
            "start_time": start_time.isoformat().replace("+00:00", "Z"),
            "end_time": end_time.isoformat().replace("+00:00", "Z"),
            "start_mjd": datetime_to_mjd(start_time),
            "end_mjd": datetime_to_mjd(end_time),
            "name": name,
            "calibrator_name": calibrator_name,
        }
        # Through the queue's check, like every submitted job: the mosaic kind fills in its
        # defaults (`max_images`, `cell_arcsec`), without which the job could only fail.
        row = await store.submit(
            ctx.engine,
            "mosaic",
            {k: v for k, v in params.items() if v is not None},
            created_by=ctx.identity.name[:255],
            publish=_publish(info),
        )
        return await _job(info, int(row["id"]))

    @strawberry.mutation(
        description="Queue a job of any kind (see `jobKinds`); its parameters are checked first (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def submit_job(
        self,
        info: GraphInfo,
        kind: JobType,
        params: JSON | None = None,
        group_id: str | None = None,
    ) -> Job:
        ctx = info.context
        group_pk = None
        if group_id is not None:
            group = await ctx.loaders.by_key(GROUP, "group_id").load(group_id[:64])
            if group is None:
                raise BadUserInput(f"no group {group_id[:64]!r}", field="groupId")
            group_pk = group.pk
        row = await store.submit(
            ctx.engine,
            str(kind),
            params if params is not None else {},
            created_by=ctx.identity.name[:255],
            group_pk=group_pk,
            ms_path=params.get("ms_path")
            if isinstance(params, dict) and isinstance(params.get("ms_path"), str)
            else None,
            publish=_publish(info),
        )
        return await _job(info, int(row["id"]))

    @strawberry.mutation(
        description="Cancel a job: a queued one at once; a running one is stopped (SIGTERM to its process "
        "group, SIGKILL after its kind's grace) and ends CANCELLED (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def cancel_job(self, info: GraphInfo, job_id: int) -> Job:
        ctx = info.context
        await store.request_cancel(ctx.engine, job_id, ctx.identity.name[:255], _publish(info))
        return await _job(info, job_id)

    @strawberry.mutation(
        description="Queue a failed or cancelled job again, with fresh attempts (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def retry_job(self, info: GraphInfo, job_id: int) -> Job:
        ctx = info.context
        await store.retry(ctx.engine, job_id, ctx.identity.name[:255], _publish(info))
        return await _job(info, job_id)

    @strawberry.mutation(
        description="Queue a batch: one child job of `kind` per item, each with the shared `params` overlaid "
        "by its own; every item is checked before any is queued (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def create_batch(
        self, info: GraphInfo, kind: JobType, items: list[BatchItemInput], params: JSON | None = None
    ) -> Batch:
        ctx = info.context
        row = await batch_ops.create_batch(
            ctx.engine,
            str(kind),
            params if params is not None else {},
            [batch_ops.Item(i.label, _object(i.params)) for i in items],
            created_by=ctx.identity.name[:255],
            publish=_publish(info),
        )
        return await _batch(info, row)

    @strawberry.mutation(
        description="Cancel a batch: its queued items at once, its running items stopped (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def cancel_batch(self, info: GraphInfo, batch_id: int) -> Batch:
        ctx = info.context
        row = await batch_ops.cancel_batch(ctx.engine, batch_id, ctx.identity.name[:255], _publish(info))
        return await _batch(info, row)

    @strawberry.mutation(
        description="Queue a batch's failed and cancelled items again (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def retry_batch(self, info: GraphInfo, batch_id: int) -> Batch:
        ctx = info.context
        row = await batch_ops.retry_batch(ctx.engine, batch_id, ctx.identity.name[:255], _publish(info))
        return await _batch(info, row)
