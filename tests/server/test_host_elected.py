"""One job pool and one stream supervisor per host: the processes sharing a bus elect one.

``serve --workers 4`` on a shared bus (Redis, PostgreSQL) must not run four job pools (each
would claim jobs and run their subprocesses) nor four stream supervisors (each would start
the converter). The processes of one host share a file lease; the standby takes over when
the holder stops. The lease is an ``flock`` on an open file, so two services of one process
contend for it as two processes do.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from dsa110.events.memory import MemoryEventBus
from dsa110.settings import Settings
from server import job_pool
from server.job_pool import _HostElected


class _Service(_HostElected):
    def __init__(self, settings: Settings) -> None:
        # Neither is used by this service: the lease is what is under test.
        engine = create_async_engine("sqlite+aiosqlite://")
        super().__init__(settings, engine, MemoryEventBus(), name="test-service")
        self.serving = asyncio.Event()

    async def _serve(self) -> None:
        self.serving.set()
        await self._stop.wait()


async def _eventually(event: asyncio.Event) -> None:
    async with asyncio.timeout(10):
        await event.wait()


async def test_one_process_of_a_host_serves_and_a_standby_takes_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(job_pool, "LEASE_RETRY_S", 0.05)
    shared = Settings(data_dir=tmp_path, events_url="redis://127.0.0.1:6379/0")
    first, second = _Service(shared), _Service(shared)
    await first.start()
    await _eventually(first.serving)
    await second.start()
    await asyncio.sleep(0.3)  # many lease retries: the holder is alive, the standby waits
    assert not second.serving.is_set()
    await first.stop()
    await _eventually(second.serving)
    await second.stop()


async def test_a_standby_stops_without_ever_serving(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_pool, "LEASE_RETRY_S", 0.05)
    shared = Settings(data_dir=tmp_path, events_url="redis://127.0.0.1:6379/0")
    holder, standby = _Service(shared), _Service(shared)
    await holder.start()
    await _eventually(holder.serving)
    await standby.start()
    async with asyncio.timeout(10):
        await standby.stop()
    assert not standby.serving.is_set()
    await holder.stop()


async def test_an_in_process_bus_needs_no_lease(tmp_path: Path) -> None:
    alone = Settings(data_dir=tmp_path, events_url="memory://")
    first, second = _Service(alone), _Service(alone)
    await first.start()
    await second.start()
    await _eventually(first.serving)
    await _eventually(second.serving)  # one process per bus: nobody to elect
    await first.stop()
    await second.stop()
    assert not _lock_files(tmp_path)


def _lock_files(data_dir: Path) -> list[Path]:
    return list(data_dir.glob(".test-service.*.lock"))
