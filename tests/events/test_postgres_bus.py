"""PostgreSQL LISTEN/NOTIFY behaviour, against the real server in DSA110_TEST_POSTGRES_URL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
import pytest

from dsa110.events import (
    GROUP_STATE,
    JOB_LOG,
    JOB_STATE,
    MAX_EVENT_BYTES,
    Event,
    EventBusUnavailable,
    EventTooLarge,
    PostgresEventBus,
    create_event_bus,
    encode_event,
)
from dsa110.events.postgres_bus import asyncpg_dsn
from tests.databases import POSTGRES_URL
from tests.events.conftest import fresh_namespace, next_event, next_events

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="DSA110_TEST_POSTGRES_URL not set")


@pytest.fixture
async def raw() -> AsyncIterator[asyncpg.Connection]:
    """A plain connection: the stranger who can NOTIFY anything."""
    assert POSTGRES_URL
    connection = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL))
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def bus() -> AsyncIterator[PostgresEventBus]:
    assert POSTGRES_URL
    bus = create_event_bus(POSTGRES_URL, namespace=fresh_namespace())
    assert isinstance(bus, PostgresEventBus)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


def envelope(payload: dict[str, object], channel: str = GROUP_STATE) -> str:
    return encode_event(Event(channel, payload, datetime.now(UTC), "a-stranger"))


def test_sqlalchemy_style_urls_are_accepted() -> None:
    assert asyncpg_dsn("postgresql+asyncpg://u:p@h:5/db") == "postgresql://u:p@h:5/db"
    bus = create_event_bus("postgresql+asyncpg://u@h/db")
    assert isinstance(bus, PostgresEventBus)
    assert bus.dsn == "postgresql://u@h/db"


async def test_garbage_notified_on_the_channel_is_dropped_and_counted(
    bus: PostgresEventBus, raw: asyncpg.Connection
) -> None:
    wire = bus.wire_channel(GROUP_STATE)
    garbage = [
        "not json",
        "",
        "[1,2]",
        '{"channel":"group.state"}',
        "{" * 7000,
        "\u2603 is not JSON",
        envelope({"n": 0}, channel=JOB_STATE),
    ]
    async with bus.subscribe(GROUP_STATE) as events:
        for data in garbage:
            await raw.execute("SELECT pg_notify($1, $2)", wire, data)
        await raw.execute("SELECT pg_notify($1, $2)", wire, envelope({"n": 1}))
        assert (await next_event(events)).payload == {"n": 1}
        assert events.pending == 0
    assert bus.stats.malformed == len(garbage)
    assert bus.running


async def test_oversized_events_are_refused_before_postgres_sees_them(bus: PostgresEventBus) -> None:
    async with bus.subscribe(JOB_LOG) as events:
        with pytest.raises(EventTooLarge, match=r"encodes to \d+ bytes; the limit is 7999"):
            await bus.publish(JOB_LOG, {"text": "x" * MAX_EVENT_BYTES})
        # The largest event that fits goes through NOTIFY unharmed.
        overhead = len(encode_event(Event(JOB_LOG, {"text": ""}, datetime.now(UTC), bus.origin)))
        text = "y" * (MAX_EVENT_BYTES - overhead)
        await bus.publish(JOB_LOG, {"text": text})
        assert (await next_event(events)).payload == {"text": text}


async def test_the_listener_reconnects_and_relistens_after_its_backend_is_terminated(
    bus: PostgresEventBus, raw: asyncpg.Connection
) -> None:
    assert POSTGRES_URL
    publisher = create_event_bus(POSTGRES_URL, namespace=bus.namespace)
    await publisher.start()
    try:
        async with bus.subscribe(GROUP_STATE) as groups, bus.subscribe(JOB_STATE) as jobs:
            await publisher.publish(GROUP_STATE, {"n": 1})
            assert (await next_event(groups)).payload == {"n": 1}

            old_pid = bus.listener_backend_pid
            assert old_pid is not None
            assert await raw.fetchval("SELECT pg_terminate_backend($1)", old_pid)

            # Every local subscriber hears that events may have been lost ...
            for subscription, channel in ((groups, GROUP_STATE), (jobs, JOB_STATE)):
                resync = await next_event(subscription)
                assert resync.resync and resync.channel == channel
            # ... and only once the new connection LISTENs again, so no event can slip by.
            assert bus.listener_backend_pid not in (None, old_pid)
            await publisher.publish(GROUP_STATE, {"n": 2})
            await publisher.publish(JOB_STATE, {"n": 3})
            assert (await next_event(groups)).payload == {"n": 2}
            assert (await next_event(jobs)).payload == {"n": 3}
        assert bus.stats.reconnects == 1
    finally:
        await publisher.close()


async def test_a_channel_subscribed_while_reconnecting_is_listened_to_afterwards(
    bus: PostgresEventBus, raw: asyncpg.Connection
) -> None:
    async with bus.subscribe(GROUP_STATE) as groups:
        pid = bus.listener_backend_pid
        await raw.fetchval("SELECT pg_terminate_backend($1)", pid)
        async with bus.subscribe(JOB_STATE) as jobs:
            assert (await next_event(groups)).resync
            # Subscribed before or after the reconnect: either way JOB_STATE is live now.
            await bus.publish(JOB_STATE, {"n": 1})
            received = await next_events(jobs, 1)
            if received[0].resync:
                received = await next_events(jobs, 1)
            assert received[0].payload == {"n": 1}


async def test_notify_is_not_sent_by_publishers_in_other_namespaces(bus: PostgresEventBus) -> None:
    assert POSTGRES_URL
    stranger = create_event_bus(POSTGRES_URL, namespace=fresh_namespace())
    await stranger.start()
    try:
        async with bus.subscribe(GROUP_STATE) as events:
            await stranger.publish(GROUP_STATE, {"from": "elsewhere"})
            await bus.publish(GROUP_STATE, {"from": "here"})
            assert (await next_event(events)).payload == {"from": "here"}
            assert events.pending == 0
    finally:
        await stranger.close()


async def test_an_unreachable_postgres_fails_start_clearly() -> None:
    bus = create_event_bus("postgresql://postgres@127.0.0.1:1/postgres", namespace=fresh_namespace())
    with pytest.raises(EventBusUnavailable, match="cannot reach PostgreSQL"):
        await bus.start()
    assert not bus.running
