"""Waiting for something that happens asynchronously, without asserting on timing."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

POLL_S = 0.01


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 30.0, poll_s: float = POLL_S
) -> None:
    """Return once ``condition()`` (a function or a coroutine function) holds.

    The bound only guards against a hang, so it is generous: a passing test never waits
    for it, and CI's two workers beside subprocesses (CASA, the streaming service) can
    slow a step several-fold. It is a deadline, not a count of polls, so a slow condition
    (an HTTP request; pass a longer ``poll_s`` for those) does not stretch it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if loop.time() >= deadline:
            raise AssertionError(f"condition never held in {timeout_s:g} s")
        await asyncio.sleep(poll_s)
