"""Choose the event-bus backend from a URL (``Settings.events_url``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from dsa110.events.bus import DEFAULT_NAMESPACE, DEFAULT_QUEUE_SIZE, EventBus
from dsa110.events.memory import MemoryEventBus
from dsa110.events.postgres_bus import PostgresEventBus
from dsa110.events.redis_bus import RedisEventBus

_REDIS_SCHEMES = {"redis", "rediss", "unix"}
_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}


def create_event_bus(
    url: str = "memory://",
    *,
    namespace: str = DEFAULT_NAMESPACE,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    origin: str | None = None,
) -> EventBus:
    """An unstarted bus for ``url``: ``memory://``, ``redis://host:port/db`` or ``postgresql://...``.

    ``namespace`` prefixes every wire channel so deployments (or test runs) sharing one
    Redis or PostgreSQL server do not hear each other. ``queue_size`` bounds each local
    subscriber's queue (overflow drops the oldest event and counts it).
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryEventBus(namespace=namespace, queue_size=queue_size, origin=origin)
    if scheme in _REDIS_SCHEMES:
        return RedisEventBus(url, namespace=namespace, queue_size=queue_size, origin=origin)
    if scheme in _POSTGRES_SCHEMES:
        return PostgresEventBus(url, namespace=namespace, queue_size=queue_size, origin=origin)
    raise ValueError(
        f"unsupported event bus URL scheme {scheme!r}: use memory://, redis://host:port/db "
        "or postgresql://user@host/db"
    )
