"""Where image science runs: a bounded pool of worker threads, never the event loop.

Fits, profiles, region statistics and FITS decoding are numpy/scipy work of tens of
milliseconds to seconds. On the event loop they would stall every other client; in the
default executor they would queue the small blocking calls every request makes (path
checks, file stats) behind them. A pool of their own, sized to the cores, keeps both
apart: numpy releases the GIL in its inner loops, so the loop keeps serving meanwhile.
A thread cannot be cancelled: work whose request has gone (deadline, disconnect) runs
to its end, and the pool's bound is what limits how much of it there can be.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

T = TypeVar("T")

SCIENCE_THREADS = max(2, os.cpu_count() or 2)
_POOL = ThreadPoolExecutor(max_workers=SCIENCE_THREADS, thread_name_prefix="science")


async def in_science_thread(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in the science pool."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, partial(func, *args, **kwargs))
