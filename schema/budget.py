"""Refusing operations that cost too much, before anything executes.

``CostLimit`` runs after validation: the document is known to be well formed (no
fragment cycles, no unknown fields), the variables are at hand, and no resolver, no SQL
has run yet. An operation whose estimated cost (``schema.cost``) exceeds
``Settings.max_query_cost`` gets one error, ``QUERY_TOO_COSTLY``, carrying the
computed cost and the limit, so a client can see how far over it is and page instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from graphql import DocumentNode, GraphQLError, GraphQLSchema
from graphql.validation import validate as validate_document
from strawberry.extensions import SchemaExtension

from dsa110.settings import Settings
from schema.cost import CostModel, operation_cost

QUERY_TOO_COSTLY: Final = "QUERY_TOO_COSTLY"


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


class CostLimit(SchemaExtension):
    """Refuse an operation whose estimated cost is over ``limit`` (``QUERY_TOO_COSTLY``)."""

    def __init__(self, *, limit: int, model: CostModel) -> None:
        self.limit = limit
        self.model = model

    def on_validate(self) -> Iterator[None]:
        # Before the yield: strawberry decides whether to execute inside the validation
        # step, before the extensions' code after the yield runs. The document must be
        # valid first (ValidationCache, listed earlier, has validated it; else do it here).
        ctx = self.execution_context
        document = ctx.graphql_document
        if document is not None and self.limit > 0:
            if ctx.pre_execution_errors is None:
                ctx.pre_execution_errors = validate_document(
                    ctx.schema._schema, document, ctx.validation_rules
                )
            if not ctx.pre_execution_errors:
                cost = cost_of(ctx.schema._schema, document, ctx.operation_name, ctx.variables, self.model)
                if cost > self.limit:
                    ctx.pre_execution_errors = [too_costly(cost, self.limit)]
        yield
