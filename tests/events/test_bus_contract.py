"""The behaviour every backend shares, run on memory, Redis and PostgreSQL alike.

For Redis and PostgreSQL the publisher and the listener are two separate bus instances with
their own connections, as two server processes would have them.
"""

from __future__ import annotations

import asyncio

import pytest

from dsa110.events import (
    ESE_CANDIDATE,
    GROUP_STATE,
    JOB_LOG,
    JOB_STATE,
    MAX_EVENT_BYTES,
    EventBus,
    EventBusError,
    EventTooLarge,
    InvalidEvent,
    create_event_bus,
)
from tests.events.conftest import background_tasks, bus_url, fresh_namespace, next_event, next_events

Pair = tuple[EventBus, EventBus]


async def test_an_event_published_on_one_bus_reaches_a_subscriber_on_the_other(bus_pair: Pair) -> None:
    publisher, listener = bus_pair
    async with listener.subscribe(GROUP_STATE) as events:
        sent = await publisher.publish(GROUP_STATE, {"group_id": "2025-10-24T14:00:00", "state": "completed"})
        received = await next_event(events)
    assert received == sent
    assert received.origin == publisher.origin
    assert received.published_at.tzinfo is not None
    assert not received.resync


async def test_events_arrive_in_publication_order(bus_pair: Pair) -> None:
    publisher, listener = bus_pair
    async with listener.subscribe(JOB_LOG, queue_size=500) as events:
        for line in range(300):
            await publisher.publish(JOB_LOG, {"job_id": 7, "line": line})
        received = await next_events(events, 300)
    assert [e.payload["line"] for e in received] == list(range(300))


async def test_every_local_subscriber_gets_every_event(bus_pair: Pair) -> None:
    publisher, listener = bus_pair
    subscriptions = [listener.subscribe(ESE_CANDIDATE) for _ in range(50)]
    for subscription in subscriptions:
        await subscription.__aenter__()
    try:
        for n in range(5):
            await publisher.publish(ESE_CANDIDATE, {"source_id": f"NVSS J{n}"})
        for subscription in subscriptions:
            received = await next_events(subscription, 5)
            assert [e.payload["source_id"] for e in received] == [f"NVSS J{n}" for n in range(5)]
    finally:
        for subscription in subscriptions:
            await subscription.aclose()
    assert listener.subscriber_count(ESE_CANDIDATE) == 0


async def test_a_subscriber_only_hears_its_channels_and_can_hear_several(bus_pair: Pair) -> None:
    publisher, listener = bus_pair
    async with (
        listener.subscribe(GROUP_STATE, JOB_STATE) as both,
        listener.subscribe(JOB_STATE) as jobs_only,
    ):
        await publisher.publish(ESE_CANDIDATE, {"ignored": True})
        await publisher.publish(GROUP_STATE, {"n": 1})
        await publisher.publish(JOB_STATE, {"n": 2})
        assert [(e.channel, e.payload["n"]) for e in await next_events(both, 2)] == [
            (GROUP_STATE, 1),
            (JOB_STATE, 2),
        ]
        assert (await next_event(jobs_only)).payload == {"n": 2}
        assert jobs_only.pending == 0


async def test_a_slow_subscriber_loses_the_oldest_events_and_counts_them(bus_pair: Pair) -> None:
    publisher, listener = bus_pair
    async with (
        listener.subscribe(JOB_LOG, queue_size=4) as slow,
        listener.subscribe(JOB_LOG, queue_size=100) as fast,
    ):
        for line in range(10):
            await publisher.publish(JOB_LOG, {"line": line})
        # Once the roomy subscriber has all ten, the slow one has been offered all ten too.
        await next_events(fast, 10)
        assert slow.pending == 4
        assert slow.dropped == 6
        assert [e.payload["line"] for e in await next_events(slow, 4)] == [6, 7, 8, 9]
    assert listener.stats.dropped >= 6


async def test_events_published_before_subscribing_are_not_delivered(bus_pair: Pair) -> None:
    publisher, listener = bus_pair
    async with listener.subscribe(GROUP_STATE) as first:
        await publisher.publish(GROUP_STATE, {"n": 1})
        await next_event(first)
        async with listener.subscribe(GROUP_STATE) as late:
            await publisher.publish(GROUP_STATE, {"n": 2})
            assert (await next_event(late)).payload == {"n": 2}
            assert (await next_event(first)).payload == {"n": 2}


async def test_oversized_and_invalid_payloads_are_refused_before_sending(bus_pair: Pair) -> None:
    publisher, listener = bus_pair
    async with listener.subscribe(GROUP_STATE) as events:
        with pytest.raises(EventTooLarge, match="PostgreSQL NOTIFY"):
            await publisher.publish(GROUP_STATE, {"rows": ["x" * 100] * (MAX_EVENT_BYTES // 100)})
        with pytest.raises(InvalidEvent):
            await publisher.publish(GROUP_STATE, {"when": object()})
        with pytest.raises(InvalidEvent):
            await publisher.publish(GROUP_STATE, ["not", "an", "object"])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="invalid event channel"):
            await publisher.publish("Group State", {})
        await publisher.publish(GROUP_STATE, {"after": "errors"})
        assert (await next_event(events)).payload == {"after": "errors"}
    assert publisher.stats.published == 1


async def test_closing_the_bus_ends_iteration_after_queued_events(bus_backend: str) -> None:
    bus = create_event_bus(bus_url(bus_backend), namespace=fresh_namespace())
    await bus.start()
    async with bus.subscribe(GROUP_STATE) as events, bus.subscribe(GROUP_STATE) as witness:
        await bus.publish(GROUP_STATE, {"n": 1})
        await next_event(witness)  # the event made its round trip: it is queued in `events` too
        await bus.close()
        assert [e.payload async for e in events] == [{"n": 1}]
    with pytest.raises(EventBusError, match="closed"):
        await bus.publish(GROUP_STATE, {})


async def test_no_task_is_left_behind_by_subscribers_or_the_bus(bus_backend: str) -> None:
    before = background_tasks()
    bus = create_event_bus(bus_url(bus_backend), namespace=fresh_namespace())
    await bus.start()
    subscriptions, consumers = [], []
    for _ in range(20):
        subscription = bus.subscribe(GROUP_STATE, JOB_STATE)
        await subscription.__aenter__()
        subscriptions.append(subscription)
        consumers.append(asyncio.create_task(anext(subscription)))
    await bus.publish(JOB_STATE, {"job_id": 1})
    assert [(await c).payload for c in consumers] == [{"job_id": 1}] * 20
    for subscription in subscriptions[:10]:
        await subscription.aclose()
    # Subscribers own no task: only the backend's reader/supervisor (if any) runs.
    assert len(background_tasks() - before) == (0 if bus_backend == "memory" else 1)
    await bus.close()
    assert background_tasks() - before == set()


async def test_leaving_subscribers_leave_no_task_and_stop_listening(bus_backend: str) -> None:
    before = background_tasks()
    bus = create_event_bus(bus_url(bus_backend), namespace=fresh_namespace())
    await bus.start()
    with_bus_only = background_tasks()
    for _ in range(3):
        async with bus.subscribe(GROUP_STATE) as events:
            waiter = asyncio.create_task(anext(events))
            await bus.publish(GROUP_STATE, {"x": 1})
            assert (await waiter).payload == {"x": 1}
        assert bus.subscriber_count(GROUP_STATE) == 0
        assert background_tasks() - with_bus_only == set()
    await bus.close()
    assert background_tasks() - before == set()


async def test_a_consumer_blocked_in_iteration_is_released_by_close(bus_backend: str) -> None:
    before = background_tasks()
    bus = create_event_bus(bus_url(bus_backend), namespace=fresh_namespace())
    await bus.start()
    async with bus.subscribe(GROUP_STATE) as events:
        consumer = asyncio.create_task(anext(events, None))
        await asyncio.sleep(0)
        await bus.close()
        assert await consumer is None
    assert background_tasks() - before == set()


async def test_misuse_gives_clear_errors(bus_backend: str) -> None:
    bus = create_event_bus(bus_url(bus_backend), namespace=fresh_namespace())
    with pytest.raises(EventBusError, match="start"):
        await bus.publish(GROUP_STATE, {})
    with pytest.raises(EventBusError, match="start"):
        async with bus.subscribe(GROUP_STATE):
            pass
    with pytest.raises(ValueError, match="at least one channel"):
        bus.subscribe()
    with pytest.raises(ValueError, match="queue size"):
        bus.subscribe(GROUP_STATE, queue_size=-1)
    await bus.start()
    try:
        subscription = bus.subscribe(GROUP_STATE)
        with pytest.raises(RuntimeError, match="async with"):
            subscription.__aiter__()
        async with subscription:
            with pytest.raises(RuntimeError, match="only once"):
                await subscription.__aenter__()
        await subscription.aclose()  # idempotent
    finally:
        await bus.close()
        await bus.close()  # idempotent
    with pytest.raises(EventBusError, match="restarted"):
        await bus.start()
