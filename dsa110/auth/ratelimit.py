"""Request budgets per identity: a fixed window of one minute, counted in-process or in Redis.

Each identity (or, without credentials, each client address) may make ``limit`` requests
per window; the one over gets a refusal with the seconds until the window turns. A fixed
window is the simplest counter that several processes can share with one atomic Redis
``INCR`` per request: with ``DSA110_EVENTS_URL`` a ``redis://`` URL, every server process
spends the same budget, so adding workers does not multiply a client's allowance. Its
known edge (up to twice the limit across a window boundary) is acceptable for abuse
control. If Redis cannot be reached, requests are let through and the failure logged:
a rate limiter must not take the service down with it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Final, Protocol
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger("dsa110.auth.ratelimit")

WINDOW_S: Final = 60.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    count: int
    retry_after_s: int
    """Seconds until the window turns (when refused; 0 when allowed)."""


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int) -> Verdict: ...

    async def close(self) -> None: ...


def _window(now: float, window_s: float) -> tuple[int, int]:
    """The window's index and the whole seconds left in it (at least 1)."""
    index = int(now // window_s)
    return index, max(1, math.ceil((index + 1) * window_s - now))


def _verdict(count: int, limit: int, left_s: int) -> Verdict:
    allowed = count <= limit
    return Verdict(allowed, count, 0 if allowed else left_s)


class MemoryRateLimiter:
    """One process's counters (the in-process bus: one process is the whole deployment)."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        self.window_s = window_s
        self._index = -1
        self._counts: dict[str, int] = {}

    async def hit(self, key: str, limit: int) -> Verdict:
        index, left_s = _window(time.time(), self.window_s)
        if index != self._index:  # a new window: every budget is whole again
            self._index = index
            self._counts = {}
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return _verdict(count, limit, left_s)

    async def close(self) -> None:
        self._counts = {}


class RedisRateLimiter:
    """Counters shared by every process pointed at one Redis (keys expire with their window)."""

    def __init__(self, url: str, namespace: str, window_s: float = WINDOW_S) -> None:
        self.client = aioredis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.prefix = f"{namespace}:ratelimit"
        self.window_s = window_s

    async def hit(self, key: str, limit: int) -> Verdict:
        index, left_s = _window(time.time(), self.window_s)
        name = f"{self.prefix}:{index}:{key}"
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, int(self.window_s) + 1)
                count, _ = await pipe.execute()
        except (RedisError, OSError) as exc:
            logger.warning("rate limiter: Redis unreachable, letting the request through: %s", exc)
            return Verdict(True, 0, 0)
        return _verdict(int(count), limit, left_s)

    async def close(self) -> None:
        await self.client.aclose()


def create_rate_limiter(events_url: str, namespace: str, window_s: float = WINDOW_S) -> RateLimiter:
    """Shared through Redis when the event bus is Redis; else this process's own counters."""
    if urlsplit(events_url).scheme.lower() in ("redis", "rediss", "unix"):
        return RedisRateLimiter(events_url, namespace, window_s)
    return MemoryRateLimiter(window_s)
