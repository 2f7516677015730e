"""Live updates, the resolvers' side: bus events -> ticks of a subscription resolver.

``event_batches(ctx, channels, ...)`` is what a subscription resolver iterates: an
initial (snapshot) tick, then one tick per bus event (or per coalesced burst), each with
fresh DataLoaders on the context - a subscription's context lives as long as the
subscription, and loaders that cached across events would serve stale rows.

A resolver built on it is *phase-aware*: run by a shared producer it gives only the
event ticks (``LivePhase.EVENTS``), run for a joining subscriber only the snapshot
(``LivePhase.SNAPSHOT``). The producers, the fan-out to clients and the transports'
direct routes are the server's: ``server.live_transport``. A field is shared when it is
declared with ``schema.live_fields.shared_subscription``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from enum import Enum
from typing import Final

from dsa110.events import Event
from dsa110.events.subscription import next_within
from resolvers.context import GraphContext
from resolvers.errors import Unavailable

PHASE_KEY: Final = "live.phase"
ON_LISTENING_KEY: Final = "live.on_listening"
COMPLETE_KEY: Final = "live.complete"


class LivePhase(Enum):
    BOTH = "both"
    """Snapshot then events: a subscription run directly (tests, non-shared transports)."""
    SNAPSHOT = "snapshot"
    """Only the initial state, then end: what each joining subscriber runs for itself."""
    EVENTS = "events"
    """Only event-driven results: what a shared producer runs."""


def live_phase(ctx: GraphContext) -> LivePhase:
    phase = ctx.extras.get(PHASE_KEY, LivePhase.BOTH)
    return phase if isinstance(phase, LivePhase) else LivePhase.BOTH


def renew_loaders(ctx: GraphContext) -> None:
    """Give the context fresh (empty) DataLoaders, wrapping rows exactly as before."""
    ctx.loaders = ctx.loaders.renewed()


def mark_complete(ctx: GraphContext) -> None:
    """Say that nothing will follow the snapshot (a finished job's log): the subscriber ends."""
    ctx.extras[COMPLETE_KEY] = True


def _listening(ctx: GraphContext) -> None:
    callback = ctx.extras.get(ON_LISTENING_KEY)
    if callable(callback):
        callback()


async def event_batches(
    ctx: GraphContext,
    channels: Iterable[str],
    *,
    snapshot: bool = True,
    coalesce_s: float = 0.0,
    accept: Callable[[Event], bool] | None = None,
) -> AsyncIterator[list[Event]]:
    """Ticks for a subscription resolver, each with fresh loaders on ``ctx``.

    Yields ``[]`` once first when ``snapshot`` (the resolver then sends current state),
    then a list of the accepted events per tick. ``resync`` events (the bus reconnected and
    may have lost events) are always accepted. With ``coalesce_s`` an isolated event
    ticks at once and a burst ticks at most once per ``coalesce_s`` (leading and trailing
    edge), so a flood of writes costs one recomputation per window.
    """
    phase = live_phase(ctx)
    if snapshot and phase is not LivePhase.EVENTS:
        renew_loaders(ctx)
        yield []
    if phase is LivePhase.SNAPSHOT:
        return
    bus = ctx.bus
    if bus is None:
        raise Unavailable("live updates are unavailable: the server has no event bus")

    def wanted(event: Event) -> bool:
        return event.resync or accept is None or accept(event)

    loop = asyncio.get_running_loop()
    last_tick = float("-inf")
    async with bus.subscribe(*channels) as events:
        _listening(ctx)
        stream = aiter(events)
        while True:
            try:
                event = await anext(stream)
            except StopAsyncIteration:
                return
            if not wanted(event):
                continue
            batch = [event]
            quiet_until = last_tick + coalesce_s
            while (remaining := quiet_until - loop.time()) > 0:
                try:
                    more = await next_within(stream, remaining)
                except TimeoutError:
                    break
                except StopAsyncIteration:
                    return
                if wanted(more):
                    batch.append(more)
            renew_loaders(ctx)
            yield batch
            last_tick = loop.time()


__all__ = [
    "COMPLETE_KEY",
    "ON_LISTENING_KEY",
    "PHASE_KEY",
    "LivePhase",
    "event_batches",
    "live_phase",
    "mark_complete",
    "next_within",
    "renew_loaders",
]
