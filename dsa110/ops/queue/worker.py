"""A worker: claims queued jobs, runs each in its own process group, keeps its leases.

One worker has ``slots`` jobs at most. Its loops:

* **claim**: while a slot is free, claim due jobs of the kinds it runs (woken at once by
  ``wake()`` - the server calls it on ``job.state`` events - else every ``poll_s``);
* **heartbeat** (every ``lease_s / 3``): renew the leases of its running jobs, then tell
  each job's guard it is safe for ``fence_fraction * lease_s`` more seconds, measured
  from before the renewal was sent. A job whose lease was taken away is killed at once;
  a worker that cannot renew (database down, process hung) is fenced by the guards,
  which kill their jobs before the lease can run out and another worker take them;
* **cancel**: every poll, look for cancel requests on its jobs: SIGTERM to the group,
  SIGKILL after the kind's grace, then the job ends ``cancelled``;
* **reap**: settle jobs of any worker whose lease ran out (``store.reap``); and, every
  ``PUBLISH_SWEEP_S`` when the worker is given the settings, data products whose
  publisher died mid-publication (``dsa110.ops.products.recover_publishing``).

A job's output becomes its log (batched into one insert and one ``job.log`` event per
``log_flush_s``); ``@@progress`` and ``@@result`` lines also set its progress and result.
All of the log is stored before the final state is written, so whoever follows the log
until the job ends has every line. Stopping the worker stops its jobs and queues them
again without counting the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.enums import JobState
from dsa110.db.tables import jobs
from dsa110.ops.jobs import MAX_LOG_LINES_PER_CALL, append_job_log
from dsa110.ops.products import recover_publishing
from dsa110.ops.queue import kinds, store
from dsa110.ops.queue.local import Executor, JobProcess, LocalExecutor
from dsa110.ops.queue.protocol import LineSplitter, Progress, Result, parse
from dsa110.settings import Settings

log = logging.getLogger("dsa110.worker")

TAIL_LINES: Final = 20
GUARD_KILL: Final = ("[guard] ", "; killing the job")
PUBLISH_SWEEP_S: Final = 60.0
"""How often the reaper looks for data products whose publisher died (claims are hours old)."""


@dataclass(frozen=True)
class WorkerConfig:
    slots: int = 2
    lease_s: float = 30.0
    poll_s: float = 0.5
    fence_fraction: float = 0.6
    """How much of the lease a guard waits for a renewal before it kills its job."""
    log_flush_s: float = 0.2
    max_log_lines: int = 200_000
    """Lines stored per attempt; beyond, lines are counted and dropped (said in the log)."""
    kinds: tuple[str, ...] | None = None
    """The kinds this worker runs (None: every registered kind)."""
    stop_grace_s: float = 10.0


def job_environment(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a job process sees: this environment plus where the database and the data are."""
    env = dict(os.environ if base is None else base)
    env["DSA110_DATABASE_URL"] = settings.resolved_database_url
    env["DSA110_DATA_DIR"] = str(settings.data_dir)
    env["DSA110_OUTPUT_DIRS"] = os.pathsep.join(str(root) for root in settings.output_roots)
    env["DSA110_EVENTS_URL"] = settings.events_url
    env["DSA110_EVENTS_NAMESPACE"] = settings.events_namespace
    env["PYTHONUNBUFFERED"] = "1"
    return env


def new_worker_id(label: str = "worker") -> str:
    return f"{label}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:200]


@dataclass(eq=False)
class _Run:
    row: dict[str, Any]
    kind: kinds.JobKind
    process: JobProcess | None = None
    cancelling: bool = False
    lost: bool = False
    fenced: bool = False
    stopping: bool = False
    lines: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    stored: int = 0
    dropped: int = 0
    progress: Progress | None = None
    progress_dirty: bool = False
    result: Any = None
    kill_timer: asyncio.TimerHandle | None = None

    @property
    def job_id(self) -> int:
        return int(self.row["id"])


class Worker:
    def __init__(
        self,
        engine: AsyncEngine,
        env: Mapping[str, str],
        config: WorkerConfig | None = None,
        executor: Executor | None = None,
        publish: store.Publish | None = None,
        worker_id: str | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        """Where the data areas are, for the publication sweep (None: no sweep)."""
        self.env = dict(env)
        self.config = config or WorkerConfig()
        self.executor: Executor = executor or LocalExecutor()
        self.publish = publish
        self.worker_id = worker_id or new_worker_id()
        self.runs: dict[int, _Run] = {}
        self.claimed_total = 0
        self._wake = asyncio.Event()
        self._beat = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._main: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._main is not None and not self._main.done()

    def start(self) -> None:
        self._stopping = False
        self._main = asyncio.create_task(self._run(), name=f"worker:{self.worker_id}")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming, stop the running jobs (SIGTERM, then SIGKILL) and queue them again."""
        self._stopping = True
        self._wake.set()
        for run in list(self.runs.values()):
            run.stopping = True
            self._stop_process(run, self.config.stop_grace_s)
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.config.stop_grace_s + 5.0)
        if self._main is not None:
            # Never cancelled mid-statement: a cancelled database call can leave SQLite locked.
            await self._main
        await self.executor.close()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set (the ``dsa110-graph worker`` command)."""
        self.start()
        await stop.wait()
        await self.stop()

    # -- the loops ------------------------------------------------------------------------

    def kind_names(self) -> list[str]:
        wanted = self.config.kinds
        return [k for k in kinds.names() if wanted is None or k in wanted]

    async def _run(self) -> None:
        heartbeats = asyncio.create_task(self._heartbeat_loop(), name="worker-heartbeat")
        try:
            next_reap = next_sweep = 0.0
            while not self._stopping:
                self._wake.clear()
                loop_time = time.monotonic()
                try:
                    if loop_time >= next_reap:
                        next_reap = loop_time + max(self.config.poll_s, 1.0)
                        await store.reap(self.engine, self.publish)
                    if self.settings is not None and loop_time >= next_sweep:
                        next_sweep = loop_time + PUBLISH_SWEEP_S
                        await recover_publishing(self.engine, self.settings, publish=self.publish)
                    claimed = await self._claim()
                    await self._check_cancels()
                except Exception:
                    log.exception("worker %s: a queue operation failed; trying again", self.worker_id)
                    claimed = 0
                if claimed and len(self.runs) < self.config.slots:
                    continue  # more may be waiting: claim again at once
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.poll_s):
                        await self._wake.wait()
        finally:
            self._stopping = True
            self._beat.set()
            await heartbeats

    async def _claim(self) -> int:
        free = self.config.slots - len(self.runs)
        if free <= 0 or self._stopping:
            return 0
        claimed_at = time.monotonic()
        rows = await store.claim(
            self.engine,
            self.worker_id,
            self.kind_names(),
            free,
            self.config.lease_s,
            executor=self.executor.name,
            publish=self.publish,
        )
        for row in rows:
            kind = kinds.get(row["type"])
            run = _Run(row, kind)
            self.runs[run.job_id] = run
            self.claimed_total += 1
            task = asyncio.create_task(self._execute(run, claimed_at), name=f"job:{run.job_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(rows)

    async def _check_cancels(self) -> None:
        wanted = [j for j, run in self.runs.items() if not run.cancelling]
        for job_id in await store.cancel_requested(self.engine, self.worker_id, wanted):
            run = self.runs.get(job_id)
            if run is not None and not run.cancelling:
                run.cancelling = True
                self._stop_process(run, run.kind.cancel_grace_s)

    def _stop_process(self, run: _Run, grace_s: float) -> None:
        process = run.process
        if process is None:
            return
        process.terminate()
        if run.kill_timer is None:
            run.kill_timer = asyncio.get_running_loop().call_later(grace_s, process.kill)

    async def _heartbeat_loop(self) -> None:
        interval = self.config.lease_s / 3.0
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._beat.wait()
            if self._stopping:
                return
            ids = list(self.runs)
            if not ids:
                continue
            sent_at = time.monotonic()
            try:
                held = await store.heartbeat(self.engine, self.worker_id, ids, self.config.lease_s)
            except Exception:
                log.exception(
                    "worker %s: heartbeat failed; the guards will stop the jobs in time", self.worker_id
                )
                continue
            safe_for = self.config.fence_fraction * self.config.lease_s - (time.monotonic() - sent_at)
            for job_id in ids:
                run = self.runs.get(job_id)
                if run is None or run.process is None:
                    continue
                if job_id in held:
                    run.process.keepalive(safe_for)
                elif not run.lost:
                    log.warning("worker %s: lost the lease of job %s; killing it", self.worker_id, job_id)
                    run.lost = True
                    run.process.kill()

    # -- one job ------------------------------------------------------------------------

    async def _execute(self, run: _Run, claimed_at: float) -> None:
        job_id = run.job_id
        flusher: asyncio.Task[None] | None = None
        ended = asyncio.Event()
        try:
            try:
                argv = run.kind.argv(job_id, dict(run.row["params"] or {}))
            except Exception as exc:
                log.exception("job %s: the command could not be built", job_id)
                await self._add_lines(run, [f"[queue] the {run.kind.name} command could not be built: {exc}"])
                await self._flush(run)
                await store.finish(
                    self.engine,
                    job_id,
                    self.worker_id,
                    JobState.FAILED,
                    error=f"could not start: {exc}",
                    publish=self.publish,
                )
                return
            fence_s = self.config.fence_fraction * self.config.lease_s - (time.monotonic() - claimed_at)
            env = {**self.env, "DSA110_JOB_ID": str(job_id)}
            run.process = process = await self.executor.start(job_id, argv, env, fence_s)
            if run.cancelling or run.stopping:  # asked while it was starting
                self._stop_process(run, run.kind.cancel_grace_s)
            await store.record_process(self.engine, job_id, self.worker_id, process.process_group)
            attempt = f"attempt {run.row['attempts']} of {run.row['max_attempts']}"
            await self._add_lines(
                run,
                [
                    f"[queue] {run.kind.name} job {job_id}, {attempt}, on {self.worker_id} "
                    f"({self.executor.name}, process group {process.process_group})"
                ],
            )
            flusher = asyncio.create_task(self._flush_loop(run, ended))
            splitter = LineSplitter()
            async for chunk in process.chunks():
                await self._add_lines(run, splitter.feed(chunk))
            await self._add_lines(run, splitter.flush())
            status = await process.wait()
            if run.kill_timer is not None:
                run.kill_timer.cancel()
            ended.set()
            await flusher  # it stops between statements, never inside one
            await self._settle(run, status)
        except Exception:
            log.exception("job %s: the worker failed while running it", job_id)
            if run.process is not None:
                run.process.kill()
        finally:
            ended.set()
            if flusher is not None:
                await asyncio.wait({flusher})
            self.runs.pop(job_id, None)
            self._wake.set()  # a slot is free

    async def _settle(self, run: _Run, status: int) -> None:
        job_id = run.job_id
        if run.lost:
            log.warning("job %s ended (status %s) after its lease was lost; not recorded", job_id, status)
            return
        if run.fenced and not run.cancelling:
            # The guard had no renewal in time (this worker stalled): a lost worker's job.
            await self._flush(run)
            await store.expire(self.engine, job_id, self.worker_id)
            await store.reap(self.engine, self.publish)
            return
        if run.stopping and not run.cancelling:
            await self._add_lines(
                run, [f"[queue] the worker stopped; the job is queued again (status {status})"]
            )
            await self._flush(run)
            await self._release(run)
            return
        result = run.result.value if isinstance(run.result, Result) else None
        if run.cancelling:
            by = await self._cancelled_by(job_id)
            await self._add_lines(
                run, [f"[queue] cancelled by {by}; the process group was stopped (status {status})"]
            )
            await self._flush(run)
            state, error = JobState.CANCELLED, f"cancelled by {by}"
        elif status == 0:
            await self._add_lines(run, [f"[queue] done in {self._elapsed(run)}"])
            await self._flush(run)
            state, error = JobState.DONE, None
        else:
            await self._add_lines(
                run, [f"[queue] failed with exit status {status} after {self._elapsed(run)}"]
            )
            await self._flush(run)
            tail = "\n".join(run.tail[-TAIL_LINES:])
            state, error = JobState.FAILED, f"exit status {status}" + (f"\n{tail}" if tail else "")
        row = await store.finish(
            self.engine,
            job_id,
            self.worker_id,
            state,
            exit_code=status,
            error=error,
            result=result,
            publish=self.publish,
        )
        if row is None:
            log.warning("job %s: the lease was lost before its end could be recorded", job_id)

    def _elapsed(self, run: _Run) -> str:
        started = run.row.get("started_at")
        if started is None:
            return "?"
        return f"{(store.now_utc() - started).total_seconds():.1f} s"

    async def _cancelled_by(self, job_id: int) -> str:
        row = await store.get_job(self.engine, job_id)
        return str(row.get("cancel_requested_by") or "the pipeline")

    async def _release(self, run: _Run) -> None:
        """Give a job back to the queue without counting the interrupted attempt."""
        c = jobs.c
        async with self.engine.begin() as conn:
            row = (
                (
                    await conn.execute(
                        update(jobs)
                        .where(
                            c.id == run.job_id,
                            c.lease_owner == self.worker_id,
                            c.state == str(JobState.RUNNING),
                        )
                        .values(
                            state=str(JobState.PENDING),
                            attempts=c.attempts - 1,
                            lease_owner=None,
                            lease_expires_at=None,
                            process_group=None,
                        )
                        .returning(*jobs.c)
                    )
                )
                .mappings()
                .first()
            )
        if row is not None:
            await store.emit(self.publish, row, str(JobState.RUNNING))

    # -- output ---------------------------------------------------------------------------

    async def _add_lines(self, run: _Run, lines: Sequence[str]) -> None:
        for line in lines:
            data = parse(line)
            if isinstance(data, Progress):
                run.progress, run.progress_dirty = data, True
            elif isinstance(data, Result):
                run.result = data
            if line.startswith(GUARD_KILL[0]) and line.endswith(GUARD_KILL[1]):
                run.fenced = True
            if not line.startswith("@@"):
                run.tail.append(line)
                if len(run.tail) > 4 * TAIL_LINES:
                    del run.tail[: 2 * TAIL_LINES]
            if run.stored + len(run.lines) >= self.config.max_log_lines:
                run.dropped += 1
                continue
            run.lines.append(line)
        if len(run.lines) >= MAX_LOG_LINES_PER_CALL:
            await self._flush(run)

    async def _flush_loop(self, run: _Run, ended: asyncio.Event) -> None:
        while not ended.is_set():
            try:
                await self._flush(run)
            except Exception:
                log.exception("job %s: storing its log failed; trying again", run.job_id)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.log_flush_s):
                    await ended.wait()

    async def _flush(self, run: _Run) -> None:
        while run.lines:
            batch = run.lines[:MAX_LOG_LINES_PER_CALL]
            await append_job_log(self.engine, run.job_id, batch, publish=self.publish)
            del run.lines[: len(batch)]
            run.stored += len(batch)
        if run.dropped and run.stored >= self.config.max_log_lines:
            limit = self.config.max_log_lines
            note = f"[queue] log limit of {limit} lines reached; {run.dropped} lines not stored"
            await append_job_log(self.engine, run.job_id, [note], publish=self.publish)
            run.stored += 1
            run.dropped = 0
        if run.progress_dirty and run.progress is not None:
            run.progress_dirty = False
            progress = run.progress
            await store.set_progress(
                self.engine,
                run.job_id,
                self.worker_id,
                progress.fraction,
                progress.message,
                publish=self.publish,
            )
