"""Waiting for something that happens asynchronously, without asserting on timing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

POLL_S = 0.01


async def eventually(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Return once ``condition()`` holds; the bound only guards against a hang."""
    for _ in range(int(timeout_s / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError("condition never held")
