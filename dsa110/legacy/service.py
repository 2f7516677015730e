"""The in-server follower (``serve --follow-legacy DIR``): the legacy import as a background task.

One process per host follows (a :class:`~dsa110.ops.lease.HostLease` in the data
directory, as the metrics sampler is elected): with ``serve --workers N`` the others
stand by and take over if it dies. The follower publishes on the server's bus, so every
process's subscribers hear the pipeline's writes. A state file that is missing at start
or becomes unreadable is retried; the server keeps serving whatever was imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.events import EventBus
from dsa110.legacy.files import LegacyFileError, locate
from dsa110.legacy.runner import LegacyImporter
from dsa110.ops.lease import HostLease

log = logging.getLogger("dsa110.legacy")

RETRY_S: Final = 5.0


class LegacyFollower:
    def __init__(
        self,
        engine: AsyncEngine,
        bus: EventBus,
        paths: Sequence[Path],
        *,
        poll_s: float,
        lease: HostLease | None = None,
    ) -> None:
        self.engine, self.bus, self.paths, self.poll_s, self.lease = engine, bus, tuple(paths), poll_s, lease
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.importer: LegacyImporter | None = None

    @property
    def following(self) -> bool:
        return self.importer is not None

    async def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self._run(), name="legacy-follower")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.lease is not None:
            self.lease.release()

    async def _wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; True when asked to stop meanwhile."""
        try:
            async with asyncio.timeout(seconds):  # in this task: wait_for would spawn one
                await self._stop.wait()
            return True
        except TimeoutError:
            return False

    async def _run(self) -> None:
        while not self._stop.is_set():
            if self.lease is not None and not self.lease.try_acquire():
                if await self._wait(RETRY_S):
                    return
                continue
            try:
                files = locate(self.paths)
            except LegacyFileError as exc:
                log.warning("legacy follower: %s; retrying in %.0f s", exc, RETRY_S)
                if await self._wait(RETRY_S):
                    return
                continue
            self.importer = LegacyImporter(self.engine, files, publish=self.bus.publish)
            try:
                await self.importer.follow(self._stop, poll_s=self.poll_s)
            except Exception:
                log.exception("legacy follower stopped; restarting in %.0f s", RETRY_S)
                if await self._wait(RETRY_S):
                    return
            finally:
                self.importer.close()
                self.importer = None
