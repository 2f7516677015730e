"""Two real OS processes: an event published in a child process reaches this one."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from dsa110.events import ESE_CANDIDATE, create_event_bus
from tests.events.conftest import WAIT_S, bus_url, fresh_namespace, next_events

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("backend", ["redis", "postgresql"])
async def test_events_cross_an_os_process_boundary_in_order(backend: str) -> None:
    url = bus_url(backend)
    namespace = fresh_namespace()
    bus = create_event_bus(url, namespace=namespace)
    await bus.start()
    try:
        async with bus.subscribe(ESE_CANDIDATE) as events:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.events.publisher_process",
                url,
                namespace,
                ESE_CANDIDATE,
                "25",
                cwd=REPO_ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            received = await next_events(events, 25)
            stdout, stderr = await asyncio.wait_for(child.communicate(), WAIT_S)
        assert child.returncode == 0, stderr.decode()
        child_origin = stdout.decode().strip()
        assert child_origin != bus.origin
        assert {e.origin for e in received} == {child_origin}
        assert [e.payload["seq"] for e in received] == list(range(25))
        assert {e.payload["pid"] for e in received} == {child.pid}
        assert f":{child.pid}:" in child_origin
    finally:
        await bus.close()
