"""A cost budget per connection for the subscriptions open on it.

Every event runs each distinct subscription's document again: 50 heavy subscriptions
on one connection made one group event cost 50 executions. So each subscription's
estimated cost (``schema.cost``, the cost of one execution) is charged to its
connection while it is open; a subscription that would take the connection over
``Settings.subscription_cost_budget`` is refused with ``SUBSCRIPTION_BUDGET_EXCEEDED``
(its cost, what the connection already spends, the budget). One over
``Settings.max_query_cost`` on its own is ``QUERY_TOO_COSTLY``, as any operation. The
charge is returned when the operation ends, however it ends.

``BudgetedStreams`` stands in for ``SharedSubscriptions`` in front of the transports
(graphql-transport-ws, legacy graphql-ws, SSE): a connection is the context they pass
(strawberry makes one per WebSocket; an SSE request is its own connection).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any, Final

from graphql import GraphQLError, GraphQLSchema, OperationType, parse
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType as StrawberryOperation

from dsa110.settings import Settings
from schema.budget import cost_model, too_costly
from schema.cost import CostModel, operation_cost, select_operation
from server.live_transport import SharedStream, SharedSubscriptions
from server.live_transport.operations import ends_stream

SUBSCRIPTION_BUDGET_EXCEEDED: Final = "SUBSCRIPTION_BUDGET_EXCEEDED"
BUDGET_KEY: Final = "subscription_budget"


class ConnectionBudget:
    """What the open subscriptions of one connection cost per event."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def charge(self, cost: int) -> Callable[[], None]:
        self.spent += cost
        returned = False

        def give_back() -> None:
            nonlocal returned
            if not returned:
                returned = True
                self.spent -= cost

        return give_back


class BudgetedStreams:
    """``SharedSubscriptions`` with each connection's subscriptions charged to its budget."""

    def __init__(self, streams: SharedSubscriptions, schema: GraphQLSchema, settings: Settings) -> None:
        self.streams = streams
        self.schema = schema
        self.budget = settings.subscription_cost_budget
        self.max_cost = settings.max_query_cost
        self.max_tokens = settings.max_tokens
        self.model: CostModel = cost_model(settings)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.streams, name)  # counters, tasks, close...

    async def subscribe(self, query: str | None, *args: Any, **kwargs: Any) -> AsyncGenerator[Any, None]:
        kwargs["allowed_operation_types"] = (StrawberryOperation.SUBSCRIPTION,)
        return await self.stream(query, *args, **kwargs)

    async def stream(
        self,
        query: str | None,
        variable_values: Any = None,
        context_value: Any = None,
        root_value: Any = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Any = None,
    ) -> AsyncGenerator[Any, None]:
        cost = self._subscription_cost(query, operation_name, variable_values)
        give_back: Callable[[], None] | None = None
        if cost is not None and self.budget > 0:
            budget = _budget_of(context_value, self.budget)
            if cost > self.max_cost > 0:
                return _refused(too_costly(cost, self.max_cost, "this subscription"))
            if budget.spent + cost > budget.limit:
                return _refused(_over_budget(cost, budget))
            give_back = budget.charge(cost)
        source = await self.streams.stream(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
            allowed_operation_types=allowed_operation_types,
        )
        if give_back is None:
            return source
        if isinstance(source, SharedStream):
            source.on_close(give_back)  # the transports check for SharedStream: keep it one
            return source
        return _giving_back(source, give_back)

    def _subscription_cost(self, query: Any, operation_name: Any, variables: Any) -> int | None:
        """The cost of one execution of ``query`` if it is a subscription, else None."""
        if not isinstance(query, str) or not isinstance(operation_name, str | None):
            return None
        try:
            document = parse(query, max_tokens=self.max_tokens)
        except GraphQLError:
            return None  # the stream answers the syntax error
        operation = select_operation(document, operation_name)
        if operation is None or operation.operation != OperationType.SUBSCRIPTION:
            return None
        given = variables if isinstance(variables, dict) else None
        return operation_cost(self.schema, document, operation_name, given, self.model)


def _budget_of(connection: Any, limit: int) -> ConnectionBudget:
    extras: dict[str, Any] = getattr(connection, "extras", {})
    budget = extras.get(BUDGET_KEY)
    if not isinstance(budget, ConnectionBudget):
        budget = extras[BUDGET_KEY] = ConnectionBudget(limit)
    return budget


def _over_budget(cost: int, budget: ConnectionBudget) -> GraphQLError:
    return GraphQLError(
        f"this subscription would cost {cost} per event; the subscriptions open on this connection "
        f"already cost {budget.spent}, and the budget is {budget.limit}: end one first",
        extensions={
            "code": SUBSCRIPTION_BUDGET_EXCEEDED,
            "cost": cost,
            "spent": budget.spent,
            "limit": budget.limit,
        },
    )


async def _refused(error: GraphQLError) -> AsyncGenerator[Any, None]:
    yield PreExecutionError(data=None, errors=[error])


async def _giving_back(
    source: AsyncGenerator[Any, None], give_back: Callable[[], None]
) -> AsyncGenerator[Any, None]:
    try:
        async for result in source:
            if ends_stream(result):
                give_back()  # before the client reads the error and sends its next subscription
            yield result
    finally:
        give_back()
        await source.aclose()
