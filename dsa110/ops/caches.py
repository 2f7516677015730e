"""The caches this server process keeps, each with its real hit and miss counters.

A cache registers a function that reports on it (``register``); ``snapshot`` asks them all.
Counters are per server process and start at zero with it (with ``serve --workers N``,
each process answers for its own caches). Caches that are not shared across requests (the
DataLoaders, made per request) are not listed: they hold nothing between requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CacheStats:
    name: str
    description: str
    hits: int
    misses: int
    entries: int
    max_entries: int | None
    size_bytes: int | None = None
    max_bytes: int | None = None

    @property
    def hit_rate(self) -> float | None:
        asked = self.hits + self.misses
        return self.hits / asked if asked else None


Reporter = Callable[[], CacheStats]
_REPORTERS: dict[str, Reporter] = {}
_LOCK = threading.Lock()


def register(name: str, reporter: Reporter) -> None:
    """Report on cache ``name`` with ``reporter`` (a later registration of the name wins)."""
    with _LOCK:
        _REPORTERS[name] = reporter


def snapshot() -> list[CacheStats]:
    with _LOCK:
        reporters = list(_REPORTERS.values())
    return sorted((report() for report in reporters), key=lambda s: s.name)


def lru_reporter(name: str, description: str, cached: Any) -> Reporter:
    """A reporter for a ``functools.lru_cache``-wrapped function (its ``cache_info()``)."""

    def report() -> CacheStats:
        info = cached.cache_info()
        return CacheStats(name, description, info.hits, info.misses, info.currsize, info.maxsize)

    return report


class Counter:
    """Hits and misses of a cache that keeps its entries elsewhere (a table, a file)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    def hit(self) -> None:
        self.hits += 1

    def miss(self) -> None:
        self.misses += 1
