"""Running a worker as a process (``dsa110-graph worker``) or inside the server (``serve``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.events import EventBus, create_event_bus
from dsa110.ops.queue import kinds
from dsa110.ops.queue.local import Executor, LocalExecutor
from dsa110.ops.queue.worker import Worker, WorkerConfig, job_environment
from dsa110.settings import Settings

log = logging.getLogger("dsa110.worker")


@dataclass(frozen=True)
class ExecutorChoice:
    name: str = "local"
    """``local`` (processes on this host) or ``dask`` (tasks on a dask.distributed cluster)."""
    scheduler: str | None = None
    """The Dask scheduler's address (``tcp://host:8786``) for ``dask``."""


def make_executor(choice: ExecutorChoice) -> Executor:
    if choice.name == "local":
        return LocalExecutor()
    if choice.name == "dask":
        if not choice.scheduler:
            raise ValueError(
                "the dask executor needs a scheduler address (--scheduler / DSA110_DASK_SCHEDULER)"
            )
        from dsa110.ops.queue.dask_executor import DaskExecutor

        return DaskExecutor(choice.scheduler)
    raise ValueError(f"unknown executor {choice.name!r}: use local or dask")


def make_worker(
    engine: AsyncEngine,
    settings: Settings,
    config: WorkerConfig,
    executor: Executor,
    bus: EventBus | None = None,
    label: str = "worker",
) -> Worker:
    from dsa110.ops.queue.worker import new_worker_id

    publish = bus.publish if bus is not None else None
    return Worker(
        engine, job_environment(settings), config, executor, publish, new_worker_id(label), settings=settings
    )


async def run_worker(settings: Settings, config: WorkerConfig, choice: ExecutorChoice) -> None:
    """Run one worker until SIGTERM or SIGINT, then stop its jobs and queue them again."""
    kinds.load_plugins()
    engine = create_engine(settings.resolved_database_url)
    bus = create_event_bus(settings.events_url, namespace=settings.events_namespace)
    shared = settings.events_shared
    if shared:
        await bus.start()
    worker = make_worker(engine, settings, config, make_executor(choice), bus if shared else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    log.info(
        "worker %s: %d slots, kinds %s, executor %s",
        worker.worker_id,
        config.slots,
        worker.kind_names(),
        choice.name,
    )
    waker = asyncio.create_task(_wake_on_events(bus, worker)) if shared else None
    try:
        await worker.run_until(stop)
    finally:
        if waker is not None:
            waker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waker
        if shared:
            await bus.close()
        await engine.dispose()


async def _wake_on_events(bus: EventBus, worker: Worker) -> None:
    """Claim (or look for cancels) as soon as a job changes, instead of at the next poll."""
    from dsa110.events import JOB_STATE

    async with bus.subscribe(JOB_STATE) as events:
        async for event in events:
            payload = JOB_STATE.payload(event)
            if payload.get("state") == "pending" or payload.get("cancel_requested"):
                worker.wake()
