"""Rendered plots kept by what they show: the same data and size are rendered once.

The key is a digest of the plot's inputs (its data as fetched plus the canvas), so a new
measurement or a candidate's change is a new key: nothing needs invalidating, and the
digest doubles as the HTTP ``ETag``. Bounded in entries and bytes, least recently used out.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from typing import Any

from dsa110.ops.caches import CacheStats


def digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class PlotCache:
    def __init__(self, max_entries: int = 256, max_bytes: int = 64 << 20) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return found

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(
                "plots",
                "Rendered plots (PNG/SVG) by the digest of their data and size, least recently used out.",
                self.hits,
                self.misses,
                len(self._items),
                self.max_entries,
                self._bytes,
                self.max_bytes,
            )

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._items[key] = value
            self._bytes += len(value)
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                _, dropped = self._items.popitem(last=False)
                self._bytes -= len(dropped)
