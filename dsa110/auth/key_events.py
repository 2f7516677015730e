"""Key changes that take rights away, told to the key cache of every server process.

Each process trusts a verified key for ``DSA110_API_KEY_CACHE_S`` (``Authenticator``).
Without more, a revoked key kept working that long in every process, the revoking one
included. Now a revocation is published on ``auth.key`` (:func:`announce`), and every
process runs a :class:`KeyChangeListener` that drops the key from its cache when the event
arrives: the key is refused as soon as the bus delivers, and the WebSockets and event
streams open with it in that process are closed (``dsa110.auth.open_streams``). The
process that made the change also does both itself before it answers, as the bus hands
events to its own subscribers a turn of the loop later.

Events are at-most-once: one lost while the bus is down is not sent again. The cache's
lifetime is then the bound, as before, and after a reconnect (a ``resync`` event) the
listener drops every cached key, since changes may have been missed meanwhile; the
connections still open with a key are checked against the keys' rows then, and those of
keys revoked meanwhile are ended (they would not ask again, the cache notwithstanding).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from dsa110.auth.authenticator import Authenticator
from dsa110.auth.keys import KeyInfo, revoked_among
from dsa110.events.bus import EventBus, cancel_and_wait
from dsa110.events.channels import API_KEY, Send

log = logging.getLogger(__name__)

RETRY_S: Final = 1.0
"""Wait before subscribing again after the bus failed (keys are trusted for the cache's
lifetime meanwhile)."""


async def announce(authenticator: Authenticator | None, send: Send | None, info: KeyInfo) -> None:
    """Make the change to ``info``'s key (a revocation) count now: this process's cache
    first, then, through ``send`` (the bus), every other process's.

    A bus that cannot take the event does not undo the committed change: the other
    processes then stop trusting the key when their cache entry ages out.
    """
    if authenticator is not None:
        authenticator.revoked(info.prefix)
    if send is None:
        return
    try:
        await API_KEY.publish(send, {"event": "revoked", "prefix": info.prefix})
    except Exception:
        log.warning(
            "api keys: the revocation of %r was not published; other processes refuse it "
            "within DSA110_API_KEY_CACHE_S",
            info.name,
            exc_info=True,
        )


class KeyChangeListener:
    """Drops the keys named on ``auth.key`` from one process's key cache (one task)."""

    def __init__(self, authenticator: Authenticator, bus: EventBus) -> None:
        self.authenticator = authenticator
        self.bus = bus
        self.forgotten = 0
        self._task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()

    async def start(self) -> None:
        """Start listening; return once subscribed (or once the first attempt failed), so
        that a revocation published after the server is up reaches this process."""
        self._task = asyncio.create_task(self._run(), name="api-key-listener")
        await self._attempted.wait()

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                async with self.bus.subscribe(API_KEY) as events:
                    # Subscribed anew: what changed while not subscribed is unknown.
                    self.authenticator.forget_all()
                    self._attempted.set()
                    await self.recheck_open_streams()
                    async for event in events:
                        self._apply(event.resync, API_KEY.payload(event).get("prefix"))
                        if event.resync:
                            await self.recheck_open_streams()
                if not self.bus.running:
                    return  # the bus was closed: the server is stopping
                log.warning("api keys: bus subscription ended; subscribing again")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("api keys: bus subscription lost; cached keys age out instead", exc_info=True)
            finally:
                self._attempted.set()
            await asyncio.sleep(RETRY_S)

    async def recheck_open_streams(self) -> None:
        """Revocations may have been missed: end the open connections of keys revoked since."""
        prefixes = self.authenticator.streams.prefixes()
        if not prefixes:
            return
        try:
            revoked = await revoked_among(self.authenticator.engine, prefixes)
        except Exception:  # the database is down: the next resync checks again
            log.warning("api keys: open connections' keys not checked after a resync", exc_info=True)
            return
        for prefix in revoked:
            self.authenticator.revoked(prefix)

    def _apply(self, resync: bool, prefix: object) -> None:
        if resync:
            self.authenticator.forget_all()
        elif isinstance(prefix, str):  # events cross processes: check what is used
            self.authenticator.revoked(prefix)
        else:
            return
        self.forgotten += 1
