"""Request budgets: counted per key, refused past the limit, shared between processes through Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from dsa110.auth.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, create_rate_limiter
from tests.databases import REDIS_URL
from tests.waiting import eventually

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="DSA110_TEST_REDIS_URL not set")


async def _spend(limiter: RateLimiter, key: str, n: int, limit: int) -> list[bool]:
    return [(await limiter.hit(key, limit)).allowed for _ in range(n)]


async def test_memory_budget_is_per_key_and_says_when_to_retry() -> None:
    limiter = MemoryRateLimiter(window_s=3600)
    assert await _spend(limiter, "key:a", 4, limit=3) == [True, True, True, False]
    refused = await limiter.hit("key:a", 3)
    assert not refused.allowed and 1 <= refused.retry_after_s <= 3600 and refused.count == 5
    assert await _spend(limiter, "addr:10.0.0.1", 3, limit=3) == [True] * 3  # others are untouched


async def test_the_budget_is_whole_again_in_the_next_window() -> None:
    limiter = MemoryRateLimiter(window_s=0.5)
    assert await _spend(limiter, "k", 2, limit=1) == [True, False]

    async def renewed() -> bool:
        return (await limiter.hit("k", 1)).allowed

    await eventually(renewed)


@needs_redis
async def test_processes_sharing_redis_share_one_budget() -> None:
    assert REDIS_URL is not None
    namespace = f"t{uuid.uuid4().hex[:10]}"
    # Two limiters with their own connections stand for two server processes.
    first, second = RedisRateLimiter(REDIS_URL, namespace), RedisRateLimiter(REDIS_URL, namespace)
    apart = RedisRateLimiter(REDIS_URL, f"{namespace}-other")
    try:
        results = await asyncio.gather(*(limiter.hit("key:ops", 10) for limiter in [first, second] * 6))
        assert sorted(r.count for r in results) == list(range(1, 13))  # atomic: no count lost or repeated
        assert sum(r.allowed for r in results) == 10
        refused = next(r for r in results if not r.allowed)
        assert 1 <= refused.retry_after_s <= 60
        assert (await apart.hit("key:ops", 10)).allowed  # another deployment's namespace
    finally:
        for limiter in (first, second, apart):
            await limiter.close()


async def test_an_unreachable_redis_lets_requests_through() -> None:
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", "t")
    try:
        verdict = await limiter.hit("k", 1)
        assert verdict.allowed
    finally:
        await limiter.close()


def test_the_backend_follows_the_event_bus() -> None:
    assert isinstance(create_rate_limiter("memory://", "n"), MemoryRateLimiter)
    assert isinstance(create_rate_limiter("postgresql://u@h/d", "n"), MemoryRateLimiter)
    assert isinstance(create_rate_limiter("redis://127.0.0.1:6379/0", "n"), RedisRateLimiter)
