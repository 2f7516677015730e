"""The caches this server process keeps, each with its real hit and miss counters.

A cache registers a function that reports on it (``register``); ``snapshot`` asks them all.
A cache may also register how to empty it (``clear=``); ``clear_caches`` empties some or all
of them (the operator's ``clearCaches``, ``DELETE /api/cache/clear``). Emptying an in-process
cache only costs the next requests a recomputation; nothing is lost.
Counters are per server process and start at zero with it (with ``serve --workers N``,
each process answers for its own caches). Caches that are not shared across requests (the
DataLoaders, made per request) are not listed: they hold nothing between requests.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine


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
Clearer = Callable[[AsyncEngine], Awaitable[int]]
"""Empties a cache; answers how many entries it removed."""
_REPORTERS: dict[str, Reporter] = {}
_CLEARERS: dict[str, Clearer] = {}
_LOCK = threading.Lock()


class UnknownCache(LookupError):
    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"no cache {name!r}; known: {', '.join(known)}")
        self.name = name


def register(name: str, reporter: Reporter, clear: Clearer | None = None) -> None:
    """Report on cache ``name`` with ``reporter`` (a later registration of the name wins);
    ``clear`` empties it (a cache registered without one is listed as not clearable)."""
    with _LOCK:
        _REPORTERS[name] = reporter
        if clear is None:
            _CLEARERS.pop(name, None)
        else:
            _CLEARERS[name] = clear


def names() -> list[str]:
    with _LOCK:
        return sorted(_REPORTERS)


def clearable(name: str) -> bool:
    with _LOCK:
        return name in _CLEARERS


async def clear_caches(engine: AsyncEngine, only: list[str] | None = None) -> list[tuple[str, int]]:
    """Empty the clearable caches (or those named in ``only``): (name, entries removed) each.

    A name that is not a cache raises ``UnknownCache`` before anything is emptied; a named
    cache that cannot be emptied is answered with 0 removed, as are unnamed ones not cleared.
    """
    with _LOCK:
        known = sorted(_REPORTERS)
        clearers = dict(_CLEARERS)
    chosen = known if only is None else list(dict.fromkeys(only))
    for name in chosen:
        if name not in known:
            raise UnknownCache(name, known)
    out = []
    for name in chosen:
        clear = clearers.get(name)
        out.append((name, await clear(engine) if clear is not None else 0))
    return out


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


def lru_clearer(cached: Any) -> Clearer:
    """Empties a ``functools.lru_cache``-wrapped function (this also zeroes its counters)."""

    async def clear(_engine: AsyncEngine) -> int:
        removed = int(cached.cache_info().currsize)
        cached.cache_clear()
        return removed

    return clear


class Counter:
    """Hits and misses of a cache that keeps its entries elsewhere (a table, a file)."""

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    def hit(self) -> None:
        self.hits += 1

    def miss(self) -> None:
        self.misses += 1
