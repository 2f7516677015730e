"""Refusing operations that cost too much, before anything executes.

``check_cost`` runs after validation: the document is known to be well formed (no
fragment cycles, no unknown fields), the variables are at hand, and no resolver, no SQL
has run yet. An operation whose estimated cost (``schema.cost``) exceeds
``Settings.max_query_cost`` gets one error, ``QUERY_TOO_COSTLY``, carrying the
computed cost and the limit, so a client can see how far over it is and page instead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

from graphql import DocumentNode, GraphQLError, GraphQLSchema
from graphql.validation import validate as validate_document

from dsa110.settings import Settings
from schema.cost import CostModel, operation_cost, operation_cost_and_reads

QUERY_TOO_COSTLY: Final = "QUERY_TOO_COSTLY"
VALUES_PER_DOCUMENT: Final = 32
_ABSENT: Final = object()


def cost_model(settings: Settings) -> CostModel:
    return CostModel(max_page_size=settings.max_page_size)


def too_costly(cost: int, limit: int, what: str = "this operation") -> GraphQLError:
    return GraphQLError(
        f"{what} would cost {cost}, over the limit of {limit}: ask for smaller pages "
        "(`first`/`last`), fewer nested lists or fewer computed fields",
        extensions={"code": QUERY_TOO_COSTLY, "cost": cost, "limit": limit},
    )


def cost_of(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Any,
    model: CostModel,
) -> int:
    given: Mapping[str, Any] = variables if isinstance(variables, dict) else {}
    return operation_cost(schema, document, operation_name, given, model)


class CostCache:
    """Costs already computed, by document text, operation name and the values of the
    variables the costing read (``schema.cost.operation_cost_and_reads``): the same text with
    the same values for those costs the same, so a known document is costed once, not per
    request. Bounded (least recently used out) so that hostile traffic cannot grow it."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[str, str | None], tuple[frozenset[str], dict[Any, int]]] = (
            OrderedDict()
        )

    def cost(
        self,
        schema: GraphQLSchema,
        query: str | None,
        document: DocumentNode,
        operation_name: str | None,
        variables: Any,
        model: CostModel,
    ) -> int:
        given: Mapping[str, Any] = variables if isinstance(variables, dict) else {}
        if query is None:
            return operation_cost(schema, document, operation_name, given, model)
        key = (query, operation_name)
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
            values = _values(entry[0], given)
            if values is not None and (known := entry[1].get(values)) is not None:
                return known
        cost, reads = operation_cost_and_reads(schema, document, operation_name, given, model)
        values = _values(reads, given)
        if values is not None:
            if entry is None or entry[0] != reads:
                entry = self._entries[key] = (reads, {})
                if len(self._entries) > self.maxsize:
                    self._entries.popitem(last=False)
            if len(entry[1]) >= VALUES_PER_DOCUMENT:
                entry[1].clear()
            entry[1][values] = cost
        return cost


def _values(names: frozenset[str], given: Mapping[str, Any]) -> Any:
    """The values of ``names`` in ``given`` as a hashable key (None when one is not hashable)."""
    values = tuple((name, given.get(name, _ABSENT)) for name in sorted(names))
    try:
        hash(values)
    except TypeError:
        return None
    return values


def check_cost(
    context: Any, limit: int, model: CostModel, cache: CostCache, *, measure: bool = False
) -> int | None:
    """Refuse the operation (``QUERY_TOO_COSTLY`` as its only error) if its estimated cost is
    over ``limit``; run in the validation step, before strawberry decides whether to execute.

    The document must be valid first (validated already, or here) for its cost to mean anything.
    Returns the cost of an operation that may run (computed also with no limit when
    ``measure``), else None.
    """
    document = context.graphql_document
    if document is None or (limit <= 0 and not measure):
        return None
    if context.pre_execution_errors is None:
        context.pre_execution_errors = validate_document(
            context.schema._schema, document, context.validation_rules
        )
    if context.pre_execution_errors:
        return None
    cost = cache.cost(
        context.schema._schema, context.query, document, context.operation_name, context.variables, model
    )
    if limit > 0 and cost > limit:
        context.pre_execution_errors = [too_costly(cost, limit)]
        return None
    return cost
