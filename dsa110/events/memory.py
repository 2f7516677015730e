"""``memory://``: the single-process bus (the embedded default).

Events still go through the wire encoding, so payload rules, the size limit and the
"each subscriber gets a decoded copy" behaviour are exactly those of the shared backends:
code that works on ``memory://`` works on Redis and PostgreSQL.
"""

from __future__ import annotations

from dsa110.events.bus import EventBus


class MemoryEventBus(EventBus):
    scheme = "memory"

    async def _start_transport(self) -> None:
        return None

    async def _close_transport(self) -> None:
        return None

    async def _send(self, wire_channel: str, data: str) -> None:
        self._deliver_raw(wire_channel, data)

    async def _listen(self, wire_channel: str) -> None:
        return None

    async def _unlisten(self, wire_channel: str) -> None:
        return None
