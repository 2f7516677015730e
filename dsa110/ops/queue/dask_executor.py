"""The Dask executor: the same guarded job processes, run on the workers of a dask.distributed cluster.

The queue is unchanged: a queue worker claims the job, holds and renews its lease, and
settles it. Only the process runs elsewhere: one Dask task per attempt starts the guard
and the job command on whichever Dask worker the scheduler picks, and talks back through
the scheduler's named primitives, one set per attempt:

* a ``Queue`` carries the job's output (chunks of bytes) and finally its exit status;
* a ``Variable`` ``<name>-keepalive`` carries the lease renewals, which the task forwards
  to the guard (so a job whose queue worker died is killed by its guard, as locally; and a
  Dask worker that dies closes the guard's stdin, which kills the job too);
* a ``Variable`` ``<name>-signal`` carries ``TERM`` / ``KILL`` for cancellation, which the
  task sends to the job's process group.

So states, logs, progress, cancel and leases behave the same as with the local executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

from dsa110.ops.queue.local import JobProcess, guarded

# dask.distributed has no type hints: its objects are handled as Any, checked by the tests.
dd: Any = importlib.import_module("distributed")

POLL_S: Final = 0.1
STARTED_WAIT_S: Final = 30.0
CHUNK: Final = 65_536


def run_guarded_task(argv: list[str], env: dict[str, str], fence_s: float, name: str) -> int:
    """The Dask task: run the guarded job here, stream its output back, obey signals and renewals."""
    output = dd.Queue(name)
    keepalive = dd.Variable(f"{name}-keepalive")
    signals = dd.Variable(f"{name}-signal")
    process = subprocess.Popen(
        guarded(argv, fence_s),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    output.put(("start", socket.gethostname(), process.pid))
    done = threading.Event()

    def control() -> None:
        """Forward renewals to the guard and signals to the group until the job ends."""
        last_beat: Any = None
        sent: Any = None
        while not done.wait(POLL_S):
            with contextlib.suppress(Exception):
                beat = keepalive.get(timeout=1)
                if beat != last_beat and beat is not None and process.stdin is not None:
                    last_beat = beat
                    process.stdin.write(f"K {float(beat[1]):.3f}\n".encode())
                    process.stdin.flush()
            with contextlib.suppress(Exception):
                wanted = signals.get(timeout=1)
                if wanted in ("TERM", "KILL") and wanted != sent:
                    sent = wanted
                    os.killpg(process.pid, signal.SIGTERM if wanted == "TERM" else signal.SIGKILL)

    controller = threading.Thread(target=control, daemon=True)
    controller.start()
    assert process.stdout is not None
    while chunk := os.read(process.stdout.fileno(), CHUNK):
        output.put(("out", chunk))
    status = process.wait()
    done.set()
    controller.join(timeout=5)
    with contextlib.suppress(OSError):
        if process.stdin is not None:
            process.stdin.close()
    code = status if status >= 0 else 128 - status
    output.put(("exit", code))
    return code


class DaskProcess:
    def __init__(self, client: Any, name: str, future: Any, output: Any) -> None:
        self._client = client
        self._name = name
        self._future = future
        self._output = output
        self._keepalive = dd.Variable(f"{name}-keepalive", client=client)
        self._signals = dd.Variable(f"{name}-signal", client=client)
        self._beats = 0
        self._status: int | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self._early: list[Any] = []
        self.process_group: int | None = None
        self.host = "?"

    async def started(self, timeout_s: float) -> None:
        """Wait (bounded) for the task to start the job: its host and process group."""
        with contextlib.suppress(TimeoutError):
            message = await self._output.get(timeout=timeout_s)
            if message[0] == "start":
                self.host, self.process_group = str(message[1]), int(message[2])
            else:
                self._early.append(message)

    async def chunks(self) -> AsyncIterator[bytes]:
        while self._early:
            message = self._early.pop(0)
            if message[0] == "out":
                yield bytes(message[1])
            elif message[0] == "exit":
                self._status = int(message[1])
                return
        while True:
            try:
                message = await self._output.get(timeout=1)
            except TimeoutError:
                if self._future.done():
                    status = await self._future
                    self._status = int(status) if isinstance(status, int) else 1
                    return
                continue
            kind = message[0]
            if kind == "out":
                yield bytes(message[1])
            elif kind == "start":
                self.host, self.process_group = str(message[1]), int(message[2])
            elif kind == "exit":
                self._status = int(message[1])
                return

    def _later(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def keepalive(self, safe_for_s: float) -> None:
        self._beats += 1
        self._later(self._keepalive.set((self._beats, safe_for_s)))

    def terminate(self) -> None:
        self._later(self._signals.set("TERM"))

    def kill(self) -> None:
        self._later(self._signals.set("KILL"))
        self._later(self._client.cancel(self._future))

    async def wait(self) -> int:
        if self._status is None:
            try:
                result = await self._future
                self._status = int(result)
            except Exception:
                self._status = 137
        for task in list(self._pending):
            with contextlib.suppress(Exception):
                await task
        for variable in (self._keepalive, self._signals):
            with contextlib.suppress(Exception):
                await variable.delete()
        return self._status


class DaskExecutor:
    name = "dask"

    def __init__(self, scheduler: str) -> None:
        self.scheduler = scheduler
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def client(self) -> Any:
        async with self._lock:
            if self._client is None:
                self._client = await dd.Client(self.scheduler, asynchronous=True, set_as_default=False)
            return self._client

    async def start(
        self, job_id: int, argv: Sequence[str], env: Mapping[str, str], fence_s: float
    ) -> JobProcess:
        client = await self.client()
        name = f"dsa110-job-{job_id}-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        output = await dd.Queue(name, client=client)  # created before the task can write to it
        # The fence counts from the claim; what was spent reaching the cluster is deducted.
        future = client.submit(
            run_guarded_task,
            list(argv),
            dict(env),
            max(0.0, fence_s - (time.monotonic() - started)),
            name,
            key=name,
            pure=False,
        )
        process = DaskProcess(client, name, future, output)
        await process.started(STARTED_WAIT_S)
        return process

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
