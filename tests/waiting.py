"""Waiting for something that happens asynchronously, without asserting on timing."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

POLL_S = 0.01


async def eventually(condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Return once ``condition()`` (a function or a coroutine function) holds.

    The bound only guards against a hang.
    """
    for _ in range(int(timeout_s / POLL_S)):
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError("condition never held")
