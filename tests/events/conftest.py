"""Event-bus fixtures: each backend the environment offers, isolated by a fresh namespace."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from dsa110.events import Event, EventBus, Subscription, create_event_bus
from tests.databases import POSTGRES_URL, REDIS_URL

BUS_BACKENDS = ["memory", "redis", "postgresql"]
WAIT_S = 20.0
"""A hang guard for awaiting an event, never a speed assertion."""


def bus_url(backend: str) -> str:
    if backend == "memory":
        return "memory://"
    url = REDIS_URL if backend == "redis" else POSTGRES_URL
    if not url:
        pytest.skip(f"DSA110_TEST_{'REDIS' if backend == 'redis' else 'POSTGRES'}_URL not set")
    return url


def fresh_namespace() -> str:
    return "t" + uuid.uuid4().hex[:12]


def background_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def next_event(subscription: Subscription) -> Event:
    return await asyncio.wait_for(anext(subscription), WAIT_S)


async def next_events(subscription: Subscription, count: int) -> list[Event]:
    return [await next_event(subscription) for _ in range(count)]


@pytest.fixture(params=BUS_BACKENDS)
def bus_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def bus_pair(bus_backend: str) -> AsyncIterator[tuple[EventBus, EventBus]]:
    """(publisher, listener): two buses as two server processes would hold them.

    For ``memory://`` both are the same bus, since it only spans one process.
    """
    url = bus_url(bus_backend)
    namespace = fresh_namespace()
    publisher = create_event_bus(url, namespace=namespace)
    await publisher.start()
    listener = publisher if bus_backend == "memory" else create_event_bus(url, namespace=namespace)
    await listener.start()
    try:
        yield publisher, listener
    finally:
        await publisher.close()
        await listener.close()
