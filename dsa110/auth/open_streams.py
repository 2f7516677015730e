"""The connections of one process that outlive a request, by the API key they run as.

A WebSocket or an event stream is authenticated once, when it opens; from then on nothing
reads its key again. Dropping a revoked key from the key cache (``Authenticator.forget``)
therefore refused the key's next request but left its open subscriptions streaming for as
long as their clients liked. This registry lets the revocation reach them: each open
connection that runs as a key is registered under the key's public prefix, and
:meth:`OpenStreams.revoked` ends every one of them (the server closes a WebSocket with
4403, ends an event stream; ``server.credential_streams``).

Bounds: one entry per open connection (the server bounds those), dropped when the
connection ends; the sets hold their members weakly, so an entry whose connection is gone
without unregistering disappears with it. Revoked prefixes are remembered (revocation is
for good, never undone) up to ``REMEMBERED_REVOCATIONS``, oldest first forgotten: a
connection whose key was verified just before its revocation and that registers just after
(its ``connection_init`` awaited the key's row while the revocation went by) is ended as
it registers, instead of missing the event that went before it.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Final, Protocol

REMEMBERED_REVOCATIONS: Final = 4096


class Revocable(Protocol):
    """An open connection: ``end()`` closes it because its credential no longer counts
    (called from the event loop; it must not block, and may be called more than once)."""

    def end(self) -> None: ...


class OpenStreams:
    """The open connections of this process by key prefix (one instance per ``Authenticator``)."""

    def __init__(self) -> None:
        self._by_prefix: dict[str, weakref.WeakSet[Revocable]] = {}
        self._revoked: OrderedDict[str, None] = OrderedDict()
        self.ended = 0
        """Connections ended by a revocation, for tests and the curious."""

    def add(self, prefix: str, stream: Revocable) -> None:
        """Register ``stream`` as running as the key ``prefix``; if that key was revoked
        already, it is ended at once."""
        if prefix in self._revoked:
            self.ended += 1
            stream.end()
            return
        self._by_prefix.setdefault(prefix, weakref.WeakSet()).add(stream)

    def discard(self, prefix: str, stream: Revocable) -> None:
        """``stream`` is over, or runs as another credential now."""
        streams = self._by_prefix.get(prefix)
        if streams is None:
            return
        streams.discard(stream)
        if not streams:
            del self._by_prefix[prefix]

    def revoked(self, prefix: str) -> int:
        """The key ``prefix`` was revoked: end its open connections; returns how many."""
        self._revoked[prefix] = None
        self._revoked.move_to_end(prefix)
        while len(self._revoked) > REMEMBERED_REVOCATIONS:
            self._revoked.popitem(last=False)
        streams = list(self._by_prefix.pop(prefix, ()))
        for stream in streams:
            stream.end()
        self.ended += len(streams)
        return len(streams)

    def prefixes(self) -> list[str]:
        """The keys with open connections (to check again after missed events)."""
        return [prefix for prefix, streams in self._by_prefix.items() if streams]

    def __len__(self) -> int:
        return sum(len(streams) for streams in self._by_prefix.values())
