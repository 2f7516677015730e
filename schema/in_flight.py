"""The work a process runs at once: a budget of estimated cost in flight, for every client together.

The cost limit (``schema.budget``) bounds one operation, the per-client limits
(``server.concurrency``) bound one client's HTTP requests; nothing bounded their sum. Fifty
clients (fifty addresses) each asking for 500 sources with 500 measurements (cost 250,000,
well under the limit) took the server's memory from 0.4 to 2.1 GB and timed out most of
them; one WebSocket running 40 such queries at once (the transport has no per-client
request limit) exhausted the database pool and got internal errors. Memory and database
work grow with the estimated cost, so the process admits queries and mutations while the
sum of the costs of those running stays within ``Settings.max_cost_in_flight``; one more
is refused at once with ``BUSY`` (HTTP 503 with ``Retry-After``, as a writer refused the
write lock: nothing was done, retry), not queued, so a refusal costs nothing. An
operation is always admitted when nothing else runs, so any operation under the
per-operation limit can run. Subscriptions have their own per-connection budget
(``server.subscription_budget``) and are not counted here, nor is the server's own work
(identity kind ``SERVER_ITSELF``: the legacy status channel's one run per event for all
its listeners, which a refusal would end for all of them).

Fair share: one client (its identity, or for anonymous callers its address: the rate
limits' key) may hold at most ``Settings.max_cost_in_flight_per_client`` of it. Without
that, one WebSocket connection (which has no per-client request limit) running 40 costly
queries held the whole budget and every other client got ``BUSY`` until it stopped. A
client's operation is admitted when nothing of that client's runs, so each client can run
any operation under the per-operation limit; one more beyond its share is refused with
``BUSY`` as well, its details saying whose work it did not fit beside.

One event loop per process and admission and release are synchronous: no lock.
"""

from __future__ import annotations

from typing import Final

from graphql import GraphQLError

BUSY: Final = "BUSY"
RETRY_AFTER_S: Final = 1
SERVER_ITSELF: Final = "system"
"""The identity kind of operations the server runs on its own behalf (never refused)."""


class CostInFlight:
    """The summed estimated cost of the operations running in this process, against ``limit``,
    and each client's part of it, against ``client_limit`` (0: no limit for either)."""

    def __init__(self, limit: int, client_limit: int = 0) -> None:
        self.limit = limit
        self.client_limit = client_limit
        self.running = 0
        self.cost = 0
        self.by_client: dict[str, tuple[int, int]] = {}  # client -> (running, cost); only those running

    def client_cost(self, client: str) -> int:
        return self.by_client.get(client, (0, 0))[1]

    def admit(self, cost: int, client: str) -> bool:
        """Count ``cost`` in for ``client`` if it fits in the process's budget (or nothing
        runs) and in the client's share (or nothing of the client's runs); False, counting
        nothing, if not."""
        if self.limit > 0 and self.running > 0 and self.cost + cost > self.limit:
            return False
        running, held = self.by_client.get(client, (0, 0))
        if self.client_limit > 0 and running > 0 and held + cost > self.client_limit:
            return False
        self.running += 1
        self.cost += cost
        self.by_client[client] = (running + 1, held + cost)
        return True

    def release(self, cost: int, client: str) -> None:
        self.running -= 1
        self.cost -= cost
        running, held = self.by_client[client]
        if running > 1:
            self.by_client[client] = (running - 1, held - cost)
        else:
            del self.by_client[client]


def server_busy(cost: int, client: str, in_flight: CostInFlight) -> GraphQLError:
    """The refusal of an operation that does not fit beside the work already running: the
    process's (``in_flight``/``limit``) or the same client's (``client_in_flight``/``client_limit``)."""
    held = in_flight.client_cost(client)
    if in_flight.limit > 0 and in_flight.cost + cost > in_flight.limit:
        whose = f"the server is running other work (estimated cost {in_flight.cost} of {in_flight.limit})"
    else:
        whose = f"your own operations running hold estimated cost {held} of {in_flight.client_limit}"
    return GraphQLError(
        f"{whose} and this operation (cost {cost}) does not fit beside it now; nothing was done, "
        f"retry in {RETRY_AFTER_S} s or ask for less",
        extensions={
            "code": BUSY,
            "details": {
                "cost": cost,
                "in_flight": in_flight.cost,
                "limit": in_flight.limit,
                "client_in_flight": held,
                "client_limit": in_flight.client_limit,
                "retry_after_s": RETRY_AFTER_S,
            },
        },
    )
