"""The worker pool of ``dsa110-graph serve``: a small job worker in the server, so ``make run`` works alone.

It is an ordinary queue worker (``dsa110.ops.queue.worker``) with ``settings.job_slots``
slots, woken at once by ``job.state`` events on the app's bus (a new job, a cancel)
rather than only at its poll. When several server processes share a bus, the processes
of one host elect one pool between them with a file lease (as the metrics sampler does),
so ``serve --workers 4`` does not run four pools; a standby takes over when the holder
dies. More capacity: ``dsa110-graph worker`` processes, on this host or others.

With the in-process ``memory://`` bus a job's subprocess cannot publish to this server's
subscribers; the ``ese-detect`` job keeps its candidate events in its result and the pool
republishes them when the job is done (``JobPool._relay``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from abc import ABC, abstractmethod
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.events import JOB_STATE, EventBus
from dsa110.ops.ese_detect import KIND as ESE_KIND
from dsa110.ops.ese_relay import relay_events
from dsa110.ops.lease import HostLease
from dsa110.ops.queue.service import ExecutorChoice, make_executor, make_worker
from dsa110.ops.queue.worker import Worker, WorkerConfig, job_environment
from dsa110.ops.streaming.supervisor import StreamSupervisor
from dsa110.settings import Settings

log = logging.getLogger("dsa110.server.jobs")

LEASE_RETRY_S: Final = 5.0


class _HostElected(ABC):
    """A service one server process per host runs when several share a bus: the holder of
    the host's file lease ``name`` runs it, the others wait on standby and take over when the
    holder dies (with an in-process bus there is one process: no lease)."""

    def __init__(self, settings: Settings, engine: AsyncEngine, bus: EventBus, name: str) -> None:
        self.settings = settings
        self.engine = engine
        self.bus = bus
        self.lease = (
            HostLease(settings.data_dir / f".{name}.{socket.gethostname()}.lock")
            if settings.events_shared
            else None
        )
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._name = name

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        if self.lease is not None:
            self.lease.release()

    async def _run(self) -> None:
        while self.lease is not None and not self.lease.try_acquire():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(LEASE_RETRY_S):
                    await self._stop.wait()
            if self._stop.is_set():
                return
        await self._serve()

    @abstractmethod
    async def _serve(self) -> None:
        """Run the service until ``self._stop`` is set (the lease is held)."""


class JobPool(_HostElected):
    def __init__(self, settings: Settings, engine: AsyncEngine, bus: EventBus) -> None:
        # The job kinds are loaded by the app at start (server.app), pool or not.
        super().__init__(settings, engine, bus, "job-pool")
        self.worker: Worker | None = None

    @property
    def state(self) -> str:
        """``running`` (this process runs the pool), ``standby`` (another does) or ``off``."""
        if self._task is None:
            return "off"
        return "running" if self.worker is not None and self.worker.running else "standby"

    async def _serve(self) -> None:
        s = self.settings
        config = WorkerConfig(slots=s.job_slots, lease_s=s.job_lease_s, poll_s=s.job_poll_s)
        executor = make_executor(ExecutorChoice(s.job_executor, s.dask_scheduler))
        worker = self.worker = make_worker(self.engine, s, config, executor, self.bus, label="serve")
        log.info("job pool %s: %d slots, kinds %s", worker.worker_id, config.slots, worker.kind_names())
        waker = asyncio.create_task(self._wake_on_events(worker))
        worker.start()
        try:
            await self._stop.wait()
        finally:
            waker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waker
            await worker.stop()

    async def _wake_on_events(self, worker: Worker) -> None:
        while True:
            try:
                async with self.bus.subscribe(JOB_STATE) as events:
                    async for event in events:
                        payload = JOB_STATE.payload(event)
                        if (
                            event.resync
                            or payload.get("state") == "pending"
                            or payload.get("cancel_requested")
                        ):
                            worker.wake()
                        if payload.get("type") == ESE_KIND and payload.get("state") == "done":
                            await self._relay(int(payload["job_id"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("job pool: event subscription lost; polling until it is back", exc_info=True)
                await asyncio.sleep(LEASE_RETRY_S)

    async def _relay(self, job_id: int) -> None:
        """A finished ``ese-detect`` job's candidate events, on this server's bus.

        With the in-process ``memory://`` bus the job's subprocess cannot reach this
        server's subscribers, so it keeps its ``ese.candidate`` events in its result
        (``dsa110.ops.ese_relay``); with a shared bus it publishes them itself
        and its result holds none.
        """
        try:
            await relay_events(self.engine, job_id, self.bus.publish)
        except Exception:
            log.warning("job pool: the events of ese-detect job %s were not relayed", job_id, exc_info=True)


class StreamingPool(_HostElected):
    """The streaming supervisor of this server (one per host when processes share a bus)."""

    def __init__(self, settings: Settings, engine: AsyncEngine, bus: EventBus) -> None:
        super().__init__(settings, engine, bus, "stream-supervisor")
        self.supervisor: StreamSupervisor | None = None

    @property
    def state(self) -> str:
        if self._task is None:
            return "off"
        return "supervising" if self.supervisor is not None else "standby"

    async def _serve(self) -> None:
        env = job_environment(self.settings)
        supervisor = self.supervisor = StreamSupervisor(
            self.settings, self.engine, self.bus.publish, env, poll_s=0.5
        )
        supervisor.start()
        try:
            await self._stop.wait()
        finally:
            await supervisor.stop()
