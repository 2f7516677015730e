"""Starting pipeline jobs from the graph (queued as ``pending`` rows; workers pick them up)."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from dsa110.auth.identity import Role
from dsa110.names import safe_name
from dsa110.ops import jobs
from dsa110.times import datetime_to_mjd
from loaders.entities import JOB
from resolvers import lists
from resolvers.errors import BadUserInput
from schema.base import GraphInfo
from schema.permissions import requires
from schema.types import Job

MAX_MOSAIC_WINDOW = timedelta(days=7)


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
        publish = ctx.bus.publish if ctx.bus is not None else None
        row = await jobs.create_job(ctx.engine, "mosaic", params, publish=publish)
        return await lists.by_natural_key(ctx, JOB, row["id"])
