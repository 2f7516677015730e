"""The streaming service in the graph: its status, metrics and config (query), and its control (operator).

A control mutation records the request (desired state, config, restart generation) and
waits, at most ``waitSeconds``, until the supervising server reports the process in that
state (``running`` with the new generation, or stopped); the answer is the service as it
is then, so a client sees the pid of the process it started.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import strawberry
from strawberry.scalars import JSON

from dsa110.auth.identity import Role
from dsa110.ops.streaming import service
from resolvers.errors import BadUserInput
from schema.base import GraphInfo
from schema.permissions import requires

MAX_WAIT_S: Final = 30.0


@strawberry.type(description="Observation groups by queue state, and the recent processing rate.")
class StreamingQueueStats:
    total: int
    collecting: int
    pending: int
    in_progress: int
    completed: int
    failed: int
    processing_rate_per_hour: int = strawberry.field(description="Groups completed in the last hour.")


@strawberry.type(description="The streaming service: what operators asked for and what its process reports.")
class StreamingService:
    row: strawberry.Private[dict[str, Any]]
    counts: strawberry.Private[service.GroupCounts]

    @strawberry.field(description="`running` or `stopped`: what operators asked for.")
    def desired(self) -> str:
        return str(self.row["desired"])

    @strawberry.field(description="The process is up and sent a heartbeat recently.")
    def running(self) -> bool:
        return service.alive(self.row)

    @strawberry.field
    def pid(self) -> int | None:
        value = self.row.get("pid")
        return None if value is None else int(value)

    @strawberry.field
    def host(self) -> str | None:
        value = self.row.get("host")
        return None if value is None else str(value)

    @strawberry.field
    def started_at(self) -> datetime | None:
        value: datetime | None = self.row.get("started_at") if self.row.get("pid") is not None else None
        return value

    @strawberry.field
    def uptime_seconds(self) -> float | None:
        started: datetime | None = self.row.get("started_at")
        if started is None or self.row.get("pid") is None:
            return None
        return max(0.0, (datetime.now(UTC) - started).total_seconds())

    @strawberry.field
    def last_heartbeat(self) -> datetime | None:
        value: datetime | None = self.row.get("heartbeat_at")
        return value

    @strawberry.field(description="What the process reported: files, groups, jobs queued, CPU, memory.")
    def metrics(self) -> JSON | None:
        value: JSON | None = self.row.get("metrics")
        return value

    @strawberry.field
    def cpu_percent(self) -> float | None:
        metrics = self.row.get("metrics") or {}
        return float(metrics["cpu_percent"]) if "cpu_percent" in metrics and self.running() else None

    @strawberry.field
    def memory_mb(self) -> float | None:
        metrics = self.row.get("metrics") or {}
        return float(metrics["memory_mb"]) if "memory_mb" in metrics and self.running() else None

    @strawberry.field(description="The persisted config (legacy StreamingConfigRequest names).")
    def config(self) -> JSON:
        value: JSON = self.row["config"]
        return value

    @strawberry.field(description="Bumped by each restart or config change.")
    def generation(self) -> int:
        return int(self.row["generation"])

    @strawberry.field(description="The generation the running process was started for.")
    def running_generation(self) -> int | None:
        value = self.row.get("running_generation")
        return None if value is None else int(value)

    @strawberry.field(
        description="The process runs the current generation: a restart or config change asked for is "
        "done (the old process may report until the new one is up)."
    )
    def current(self) -> bool:
        return service.serving(self.generation())(self.row)

    @strawberry.field(description="Times the process exited on its own and was started again.")
    def restarts(self) -> int:
        return int(self.row["restarts"])

    @strawberry.field
    def last_exit_code(self) -> int | None:
        value = self.row.get("last_exit_code")
        return None if value is None else int(value)

    @strawberry.field
    def last_exit_at(self) -> datetime | None:
        value: datetime | None = self.row.get("last_exit_at")
        return value

    @strawberry.field(description="The last lines the process printed before it last exited.")
    def last_error(self) -> str | None:
        value = self.row.get("last_error")
        return None if value is None else str(value)

    @strawberry.field
    def updated_by(self) -> str | None:
        value = self.row.get("updated_by")
        return None if value is None else str(value)

    @strawberry.field
    def queue_stats(self) -> StreamingQueueStats:
        c = self.counts
        return StreamingQueueStats(
            total=c.total,
            collecting=c.collecting,
            pending=c.pending,
            in_progress=c.in_progress,
            completed=c.completed,
            failed=c.failed,
            processing_rate_per_hour=c.completed_last_hour,
        )


async def _service(info: GraphInfo, row: dict[str, Any] | None = None) -> StreamingService:
    ctx = info.context
    row = row if row is not None else await service.get_service(ctx.engine, ctx.settings)
    return StreamingService(row=row, counts=await service.group_counts(ctx.engine))


def _wait(wait_seconds: float) -> float:
    if not 0 <= wait_seconds <= MAX_WAIT_S:
        raise BadUserInput(f"waitSeconds must be between 0 and {MAX_WAIT_S:g}", field="waitSeconds")
    return wait_seconds


@strawberry.type
class StreamingQuery:
    @strawberry.field(description="The streaming service: status, heartbeats, metrics, config.")
    async def streaming_service(self, info: GraphInfo) -> StreamingService:
        return await _service(info)


@strawberry.type
class StreamingMutation:
    @strawberry.mutation(
        description="Start the streaming service (optionally with config changes); waits for its process "
        "(operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def start_streaming(
        self, info: GraphInfo, config: JSON | None = None, wait_seconds: float = 10.0
    ) -> StreamingService:
        ctx = info.context
        row = await service.request(
            ctx.engine, ctx.settings, desired=service.RUNNING, config=config, by=ctx.identity.name[:255]
        )
        done = await service.wait_for(
            ctx.engine, ctx.settings, service.serving(int(row["generation"])), _wait(wait_seconds)
        )
        return await _service(info, done)

    @strawberry.mutation(
        description="Stop the streaming service: SIGTERM, then SIGKILL after a grace period (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def stop_streaming(self, info: GraphInfo, wait_seconds: float = 15.0) -> StreamingService:
        ctx = info.context
        await service.request(ctx.engine, ctx.settings, desired=service.STOPPED, by=ctx.identity.name[:255])
        done = await service.wait_for(ctx.engine, ctx.settings, service.stopped, _wait(wait_seconds))
        return await _service(info, done)

    @strawberry.mutation(
        description="Restart the streaming service (starts it if stopped) (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def restart_streaming(self, info: GraphInfo, wait_seconds: float = 20.0) -> StreamingService:
        ctx = info.context
        row = await service.request(
            ctx.engine, ctx.settings, desired=service.RUNNING, restart=True, by=ctx.identity.name[:255]
        )
        done = await service.wait_for(
            ctx.engine, ctx.settings, service.serving(int(row["generation"])), _wait(wait_seconds)
        )
        return await _service(info, done)

    @strawberry.mutation(
        description="Change the streaming config (persisted); a running service restarts with it (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    async def set_streaming_config(
        self, info: GraphInfo, config: JSON, wait_seconds: float = 20.0
    ) -> StreamingService:
        ctx = info.context
        row = await service.request(ctx.engine, ctx.settings, config=config, by=ctx.identity.name[:255])
        if row["desired"] != service.RUNNING:
            return await _service(info, row)
        done = await service.wait_for(
            ctx.engine, ctx.settings, service.serving(int(row["generation"])), _wait(wait_seconds)
        )
        return await _service(info, done)
