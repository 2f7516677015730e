"""Redis-specific behaviour, against the real server in DSA110_TEST_REDIS_URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from dsa110.events import (
    GROUP_STATE,
    JOB_STATE,
    MAX_EVENT_BYTES,
    Event,
    EventBusUnavailable,
    RedisEventBus,
    create_event_bus,
    encode_event,
)
from tests.databases import REDIS_URL
from tests.events.conftest import fresh_namespace, next_event

pytestmark = pytest.mark.skipif(not REDIS_URL, reason="DSA110_TEST_REDIS_URL not set")


@pytest.fixture
async def raw() -> AsyncIterator[aioredis.Redis]:
    """A plain Redis client: the stranger on the channel."""
    assert REDIS_URL
    client = aioredis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def bus() -> AsyncIterator[RedisEventBus]:
    assert REDIS_URL
    bus = create_event_bus(REDIS_URL, namespace=fresh_namespace())
    assert isinstance(bus, RedisEventBus)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


def envelope(payload: dict[str, object]) -> str:
    return encode_event(Event(GROUP_STATE, payload, datetime.now(UTC), "a-stranger"))


async def test_garbage_published_on_the_channel_is_dropped_and_counted(
    bus: RedisEventBus, raw: aioredis.Redis
) -> None:
    wire = bus.wire_channel(GROUP_STATE)
    garbage = [
        b"not json",
        b"\xff\xfe",
        b"[1,2]",
        b'{"channel":"group.state"}',
        b"{" * 100_000,
        b" " * (MAX_EVENT_BYTES * 50),
        envelope({"n": 0}).replace("group.state", "job.state").encode(),
    ]
    async with bus.subscribe(GROUP_STATE) as events:
        for data in garbage:
            await raw.publish(wire, data)
        # A valid envelope sent after the garbage on the same connection arrives after it.
        await raw.publish(wire, envelope({"n": 1}))
        assert (await next_event(events)).payload == {"n": 1}
        assert events.pending == 0
    assert bus.stats.malformed == len(garbage)
    assert bus.running


async def test_one_redis_subscription_per_channel_per_process(
    bus: RedisEventBus, raw: aioredis.Redis
) -> None:
    wire_group, wire_job = bus.wire_channel(GROUP_STATE), bus.wire_channel(JOB_STATE)
    subscriptions = [bus.subscribe(GROUP_STATE, JOB_STATE) for _ in range(25)]
    for subscription in subscriptions:
        await subscription.__aenter__()
    assert await raw.pubsub_numsub(wire_group, wire_job) == [(wire_group.encode(), 1), (wire_job.encode(), 1)]
    for subscription in subscriptions:
        await subscription.aclose()
    # UNSUBSCRIBE is not awaited to confirmation; a later SUBSCRIBE on the same connection
    # is confirmed only after Redis has processed it.
    async with bus.subscribe(JOB_STATE) as witness:
        await bus.publish(JOB_STATE, {})
        await next_event(witness)
    assert await raw.pubsub_numsub(wire_group) == [(wire_group.encode(), 0)]


async def test_the_listener_resubscribes_after_its_connection_is_killed(
    bus: RedisEventBus, raw: aioredis.Redis
) -> None:
    assert REDIS_URL
    publisher = create_event_bus(REDIS_URL, namespace=bus.namespace)
    await publisher.start()
    try:
        async with bus.subscribe(GROUP_STATE) as events:
            await publisher.publish(GROUP_STATE, {"n": 1})
            assert (await next_event(events)).payload == {"n": 1}

            clients = await raw.client_list(_type="pubsub")
            mine = [c for c in clients if c.get("name") == bus.client_name]
            assert len(mine) == 1
            await raw.client_kill_filter(_id=mine[0]["id"])

            resync = await next_event(events)
            assert resync.resync and resync.channel == GROUP_STATE and resync.payload == {}
            await publisher.publish(GROUP_STATE, {"n": 2})
            assert (await next_event(events)).payload == {"n": 2}
        assert bus.stats.reconnects == 1
    finally:
        await publisher.close()


async def test_an_unreachable_redis_fails_start_clearly() -> None:
    bus = create_event_bus("redis://127.0.0.1:1/0", namespace=fresh_namespace())
    with pytest.raises(EventBusUnavailable, match="cannot reach Redis"):
        await bus.start()
    assert not bus.running
