"""Live-update transport: shared subscription producers and their fan-out to clients.

* ``shared``: ``SharedSubscriptions`` (one producer per distinct subscription) and the
  ``SharedStream`` each transport iterates;
* ``fanout``: ``SharedResult`` (encoded once), ``DirectRoute`` (a transport's inline
  writer), the per-client ``Subscriber`` mailbox and ``fan_out``;
* ``operations``: an operation's sharing key and root fields, and the small results
  answered without executing.

The resolvers' side (``event_batches``, ``LivePhase``) is ``resolvers.live``; the
transports themselves are ``server.graphql_view`` and ``server.ws_protocol``.
"""

from server.live_transport.fanout import DirectRoute, JsonEncoder, SharedResult, Subscriber, fan_out
from server.live_transport.shared import SharedStream, SharedSubscriptions

__all__ = [
    "DirectRoute",
    "JsonEncoder",
    "SharedResult",
    "SharedStream",
    "SharedSubscriptions",
    "Subscriber",
    "fan_out",
]
