"""The server's supervisor of the streaming service: a real process, started, stopped, restarted.

Every ``poll_s`` (and at once when woken) it compares the ``services`` row with the
process it runs:

* desired ``running`` and no process: start ``python -m dsa110.ops.streaming`` in its own
  process group (after the back-off, if it crashed);
* the process exited by itself (a crash): record the exit status and the last lines it
  printed, count the restart, start again after 1, 2, 4 ... 60 s (the count resets once a
  run has lasted a minute);
* alive but silent (no heartbeat for three intervals): a hung process, killed and restarted;
* the generation moved on (a restart, or a changed config): stop it and start it again;
* desired ``stopped``: SIGTERM to its group, SIGKILL after ``stop_grace_s``.

The process's ``@@event`` lines (group changes, when no shared bus carries them) are
published on the server's bus, so ``groupUpdates`` subscribers see them live; its other
lines go to the server's log.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import services
from dsa110.ops.streaming import service
from dsa110.ops.streaming.watcher import EVENT_PREFIX
from dsa110.settings import Settings

log = logging.getLogger("dsa110.stream.supervisor")

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]
MAX_BACKOFF_S: Final = 60.0
STABLE_S: Final = 60.0
TAIL: Final = 40


class StreamSupervisor:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        publish: Publish | None,
        env: Mapping[str, str],
        poll_s: float = 1.0,
        stop_grace_s: float = 10.0,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.publish = publish
        self.env = dict(env)
        self.poll_s = poll_s
        self.stop_grace_s = stop_grace_s
        self.process: asyncio.subprocess.Process | None = None
        self.generation: int | None = None
        self.started_at = 0.0
        self.crashes = 0
        self.next_start = 0.0
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL)
        self._reader: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._next_beat = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stream-supervisor")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Server shutdown: stop the process (it is started again by the next server)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._stop_process()

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self._reconcile()
            except Exception:
                log.exception("streaming supervisor: a step failed; trying again")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()

    async def _row(self) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (
                (await conn.execute(select(services).where(services.c.name == service.NAME)))
                .mappings()
                .first()
            )
        return dict(row) if row is not None else None

    async def _reconcile(self) -> None:
        if time.monotonic() >= self._next_beat:
            if not self._next_beat:
                await service.get_service(self.engine, self.settings)  # the row exists from now on
            self._next_beat = time.monotonic() + service.SUPERVISOR_BEAT_S
            await service.record(self.engine, supervisor_at=datetime.now(UTC))
        row = await self._row()
        wanted = row is not None and row["desired"] == service.RUNNING
        process = self.process
        if process is not None and process.returncode is not None:
            await self._crashed(process.returncode)
            process = None
        if not wanted:
            if process is not None:
                log.info("streaming service: stopping (asked)")
                await self._stop_process()
                await service.record(self.engine, pid=None, heartbeat_at=None)
            self.crashes = 0
            return
        assert row is not None
        if process is not None and row["generation"] != self.generation:
            log.info("streaming service: restarting for generation %s", row["generation"])
            await self._stop_process()
            process = None
        elif process is not None and self._hung(row):
            log.warning("streaming service: no heartbeat; killing the hung process")
            await self._stop_process(grace_s=0.0)
            await self._crashed(-1, "no heartbeat (hung)")
            process = None
        if process is None and time.monotonic() >= self.next_start:
            await self._spawn(int(row["generation"]))

    def _hung(self, row: dict[str, Any]) -> bool:
        ran_s = time.monotonic() - self.started_at
        if ran_s < 30.0:
            return False
        return not service.alive(row) or row.get("pid") != (self.process.pid if self.process else None)

    async def _spawn(self, generation: int) -> None:
        command = [
            sys.executable,
            "-m",
            "dsa110.ops.streaming",
            "--data-dir",
            str(self.settings.data_dir),
            "--database-url",
            self.settings.resolved_database_url,
            "--generation",
            str(generation),
        ]
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        self.process, self.generation, self.started_at = process, generation, time.monotonic()
        self.tail.clear()
        self._reader = asyncio.create_task(self._read(process), name="stream-output")
        await service.record(
            self.engine,
            pid=process.pid,
            host=socket.gethostname(),
            started_at=datetime.now(UTC),
            heartbeat_at=None,
            running_generation=None,
        )
        log.info("streaming service started: pid %s, generation %s", process.pid, generation)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while raw := await process.stdout.readline():
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith(EVENT_PREFIX):
                await self._relay(line[len(EVENT_PREFIX) :])
                continue
            self.tail.append(line[:2000])
            log.info("stream: %s", line[:2000])

    async def _relay(self, text: str) -> None:
        if self.publish is None:
            return
        try:
            event = json.loads(text)
            await self.publish(str(event["channel"]), dict(event["payload"]))
        except Exception:
            log.warning("streaming service: could not relay an event", exc_info=True)

    async def _crashed(self, status: int, why: str | None = None) -> None:
        ran_s = time.monotonic() - self.started_at
        self.crashes = 1 if ran_s >= STABLE_S else self.crashes + 1
        delay = min(MAX_BACKOFF_S, 2.0 ** (self.crashes - 1))
        self.next_start = time.monotonic() + delay
        await self._drain()
        self.process = None
        error = why or "\n".join(list(self.tail)[-10:]) or None
        log.warning("streaming service exited (status %s); starting again in %.0f s", status, delay)
        row = await self._row()
        restarts = int(row["restarts"]) + 1 if row is not None else 1
        await service.record(
            self.engine,
            pid=None,
            last_exit_code=status,
            last_exit_at=datetime.now(UTC),
            last_error=error,
            restarts=restarts,
        )

    async def _drain(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, timeout=5.0)
            self._reader = None

    async def _stop_process(self, grace_s: float | None = None) -> None:
        process = self.process
        if process is None:
            return
        grace = self.stop_grace_s if grace_s is None else grace_s
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
            try:
                await asyncio.wait_for(process.wait(), timeout=grace if grace > 0 else 5.0)
            except TimeoutError:
                log.warning("streaming service: no exit %.0f s after SIGTERM; SIGKILL", grace)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        await self._drain()
        self.process = None
