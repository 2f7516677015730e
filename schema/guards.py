"""The per-operation limits, caches and metrics that keep no state of their own, as one extension.

Strawberry makes every extension anew for each operation and, for each of its four phases
(operation, parsing, validation, execution), enters a context manager that walks them all
for their hooks. Six of the eight the schema had (metrics, added validation rules, the token
limit, the parse and validation caches, the cost limit) share nothing between requests but
their configuration; as one extension they cost one object and one hook per phase (an empty
``{ __typename }`` 0.2 -> 0.1 ms). Their order is kept: the metrics read the outcome last
(after ``ErrorCodes``, listed next, has coded and masked the errors); the cost is checked once
the document is known valid, before ``ErrorCodes`` tags validation errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import ASTValidationRule
from strawberry.extensions import SchemaExtension
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache
from strawberry.types.graphql import OperationType

from schema.budget import CostCache, check_cost
from schema.cost import CostModel
from schema.errors import require_operation_name
from schema.in_flight import SERVER_ITSELF, CostInFlight, server_busy
from schema.observability import record_operation


@dataclass(frozen=True)
class GuardSettings:
    """What the guards check against: fixed for a schema."""

    rules: tuple[type[ASTValidationRule], ...]  # made once: the validation cache keys on them
    max_tokens: int
    cache_size: int  # documents kept parsed and validated (the same LRU caches `caches` reports)
    max_cost: int
    cost_model: CostModel
    costs: CostCache
    in_flight: CostInFlight  # the process's queries and mutations running at once (shared)


class OperationGuards(SchemaExtension):
    def __init__(self, settings: GuardSettings) -> None:
        self.settings = settings
        self._parse: Any = _get_parse_cache(settings.cache_size)
        self._validate: Any = _get_validate_cache(settings.cache_size)
        self._admitted: tuple[int, str] | None = None  # (cost, client) this operation holds in ``in_flight``
        self._validated = False  # parsed and passed the schema's validation (the metrics' ``valid``)

    def on_operation(self) -> Iterator[None]:
        start = time.perf_counter()
        context = self.execution_context
        context.validation_rules = context.validation_rules + self.settings.rules
        context.parse_options["max_tokens"] = self.settings.max_tokens
        try:
            yield
        finally:  # ended, failed or cancelled (a deadline, a client gone): the budget comes back
            if self._admitted is not None:
                self.settings.in_flight.release(*self._admitted)
                self._admitted = None
        record_operation(context, start, validated=self._validated)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = self._parse(context.query, **context.parse_options)
        # The name the client gave: ``context.operation_name`` falls back to the first operation's.
        require_operation_name(context.graphql_document, context._provided_operation_name)
        yield

    def on_validate(self) -> Iterator[None]:
        # Before the yield: strawberry decides whether to execute inside the validation step.
        context = self.execution_context
        context.pre_execution_errors = self._validate(
            context.schema._schema, context.graphql_document, context.validation_rules
        )
        self._validated = not context.pre_execution_errors  # before cost and admission refuse it
        guards = self.settings
        in_flight = guards.in_flight
        # Either bound alone is a reason to count: a client's share holds with no process budget.
        measure = in_flight.limit > 0 or in_flight.client_limit > 0
        cost = check_cost(context, guards.max_cost, guards.cost_model, guards.costs, measure=measure)
        if measure and cost is not None and _counted(context):
            client = _client(context)
            if in_flight.admit(cost, client):
                self._admitted = (cost, client)
            else:
                context.pre_execution_errors = [server_busy(cost, client, in_flight)]
        yield


def _client(context: Any) -> str:
    """Whose share an operation spends: the rate limits' key (identity, or anonymous address)."""
    identity = getattr(context.context, "identity", None)
    return identity.rate_key if identity is not None else "?"


def _counted(context: Any) -> bool:
    """Does this valid operation count in the process's work in flight? Clients' queries and
    mutations do; the server's own (one run per event for all listeners) are never refused."""
    if getattr(getattr(context.context, "identity", None), "kind", None) == SERVER_ITSELF:
        return False
    try:
        return context.operation_type is not OperationType.SUBSCRIPTION
    except RuntimeError:  # no such operation: strawberry refuses it before executing
        return False
