"""The event bus: small JSON signals on named channels, shared across server processes.

``bus = create_event_bus(settings.events_url); await bus.start()``;
``await GROUP_STATE.publish(bus.publish, {"group_id": ...})`` (each channel is typed by its
payload: ``dsa110.events.channels``);
``async with bus.subscribe(GROUP_STATE) as events: async for event in events: ...``;
``await bus.close()``. Backends: ``memory://`` (one process), ``redis://``, ``postgresql://``.
"""

from dsa110.events.bus import (
    DEFAULT_NAMESPACE,
    DEFAULT_QUEUE_SIZE,
    BusStats,
    EventBus,
    EventBusError,
    EventBusUnavailable,
)
from dsa110.events.channels import (
    ALL_CHANNELS,
    API_KEY,
    ESE_CANDIDATE,
    GROUP_STATE,
    IMAGE_ADDED,
    JOB_LOG,
    JOB_STATE,
    MEASUREMENTS_ADDED,
    METRICS_SAMPLE,
    PRODUCT_STATUS,
    WEBHOOK_OUTBOX,
    Channel,
    validate_channel,
)
from dsa110.events.envelope import (
    MAX_EVENT_BYTES,
    Event,
    EventTooLarge,
    InvalidEvent,
    MalformedEvent,
    decode_event,
    encode_event,
)
from dsa110.events.factory import create_event_bus
from dsa110.events.memory import MemoryEventBus
from dsa110.events.postgres_bus import PostgresEventBus
from dsa110.events.redis_bus import RedisEventBus
from dsa110.events.subscription import Subscription

__all__ = [
    "ALL_CHANNELS",
    "API_KEY",
    "DEFAULT_NAMESPACE",
    "DEFAULT_QUEUE_SIZE",
    "ESE_CANDIDATE",
    "GROUP_STATE",
    "IMAGE_ADDED",
    "JOB_LOG",
    "JOB_STATE",
    "MAX_EVENT_BYTES",
    "MEASUREMENTS_ADDED",
    "METRICS_SAMPLE",
    "PRODUCT_STATUS",
    "WEBHOOK_OUTBOX",
    "BusStats",
    "Channel",
    "Event",
    "EventBus",
    "EventBusError",
    "EventBusUnavailable",
    "EventTooLarge",
    "InvalidEvent",
    "MalformedEvent",
    "MemoryEventBus",
    "PostgresEventBus",
    "RedisEventBus",
    "Subscription",
    "create_event_bus",
    "decode_event",
    "encode_event",
    "validate_channel",
]
