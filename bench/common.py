"""Shared bench helpers: timing loops and the ``name key=value`` output format."""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def time_async(func: Callable[[], Awaitable[Any]], repeat: int, warmup: int = 2) -> list[float]:
    """Wall-clock milliseconds of ``repeat`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        await func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await func()
        samples.append((time.perf_counter() - start) * 1000.0)
    return samples


def p50(samples: list[float]) -> float:
    return statistics.median(samples)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100.0 * (len(ordered) - 1))))
    return ordered[index]


def line(name: str, **figures: Any) -> str:
    """One parseable result line: ``name key=value ...`` (floats to 3 significant places)."""
    parts = [name]
    for key, value in figures.items():
        parts.append(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}")
    return " ".join(parts)
