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
    """The summed estimated cost of the operations running in this process, against ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.running = 0
        self.cost = 0

    def admit(self, cost: int) -> bool:
        """Count ``cost`` in if it fits (or nothing runs); False, counting nothing, if not."""
        if self.limit > 0 and self.running > 0 and self.cost + cost > self.limit:
            return False
        self.running += 1
        self.cost += cost
        return True

    def release(self, cost: int) -> None:
        self.running -= 1
        self.cost -= cost


def server_busy(cost: int, in_flight: CostInFlight) -> GraphQLError:
    """The refusal of an operation that does not fit beside the work already running."""
    return GraphQLError(
        f"the server is running other work (estimated cost {in_flight.cost} of {in_flight.limit} "
        f"at once) and this operation (cost {cost}) does not fit beside it now; nothing was done, "
        f"retry in {RETRY_AFTER_S} s or ask for less",
        extensions={
            "code": BUSY,
            "details": {
                "cost": cost,
                "in_flight": in_flight.cost,
                "limit": in_flight.limit,
                "retry_after_s": RETRY_AFTER_S,
            },
        },
    )
