"""Assembling the schema: types, roots, safety limits, error codes, the fast executor."""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from dsa110.auth.identity import Identity, anonymous
from dsa110.settings import Settings
from loaders import Loaders
from resolvers.context import GraphContext
from schema import files, qa
from schema.auth import AuthMutation, AuthQuery
from schema.budget import CostCache, cost_model
from schema.document_limits import alias_rule, depth_rule
from schema.ecosystem import EcosystemQuery
from schema.entity_types import WRAP
from schema.errors import ErrorCodes, tag_request_errors
from schema.execution import BreadthFirstExecutor
from schema.files_query import FilesMutation, FilesQuery
from schema.guards import GuardSettings, OperationGuards
from schema.in_flight import CostInFlight
from schema.jobs import JobsMutation
from schema.live import LiveMutation, LiveQuery, LiveSubscription
from schema.operations import OperationsMutation, OperationsQuery, register_graph_caches
from schema.ops import OpsQuery
from schema.permissions import MutationGate, undeclared_mutations
from schema.pipeline import PipelineQuery
from schema.products import ProductsMutation, ProductsQuery, ProductsSubscription
from schema.qa import QaMutation, QaQuery
from schema.query import CoreQuery
from schema.scalars import SCALAR_MAP
from schema.science import ScienceMutation, ScienceQuery
from schema.streaming import StreamingMutation, StreamingQuery
from schema.webhooks import WebhookMutation, WebhookQuery

# Each concern contributes its own part of the roots; add a part here to expose it.
# Every Mutation field must declare its role (schema.permissions.requires), or the build fails.
QUERY_PARTS: tuple[type, ...] = (
    CoreQuery,
    ScienceQuery,
    LiveQuery,
    AuthQuery,
    EcosystemQuery,
    WebhookQuery,
    FilesQuery,
    QaQuery,
    ProductsQuery,
    OpsQuery,
    StreamingQuery,
    PipelineQuery,
    OperationsQuery,
)
MUTATION_PARTS: tuple[type, ...] = (
    ScienceMutation,
    LiveMutation,
    JobsMutation,
    AuthMutation,
    WebhookMutation,
    FilesMutation,
    QaMutation,
    ProductsMutation,
    StreamingMutation,
    OperationsMutation,
)
SUBSCRIPTION_PARTS: tuple[type, ...] = (LiveSubscription, ProductsSubscription)

CACHE_SIZE = 512  # distinct documents kept parsed/validated; bounded so hostile traffic cannot grow it


class GraphSchema(strawberry.Schema):
    in_flight: CostInFlight
    """The queries and mutations this schema (this process) runs at once (``schema.in_flight``)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Client errors are answered, not logged; ErrorCodes logs the internal ones.
        tag_request_errors(errors)


def build_schema(settings: Settings, executor: Any = BreadthFirstExecutor) -> strawberry.Schema:
    register_graph_caches(CACHE_SIZE)  # their hit and miss counts answer `caches`
    # The limiters' validation rules are classes made when a limiter is constructed; built
    # per request they would be new classes each time, and the validation cache (keyed by the
    # rules) would never hit: every request re-validated its document. Made once here,
    # every request adds the same classes, and a known document is validated once.
    limit_rules = [
        depth_rule(settings.max_query_depth),
        alias_rule(settings.max_aliases),
    ]
    guards = GuardSettings(
        rules=tuple(limit_rules),
        max_tokens=settings.max_tokens,
        cache_size=CACHE_SIZE,
        max_cost=settings.max_query_cost,
        cost_model=cost_model(settings),
        costs=CostCache(CACHE_SIZE),  # one per schema: the limit and the model are the schema's
        # one per schema: one per process
        in_flight=CostInFlight(settings.max_cost_in_flight, settings.max_cost_in_flight_per_client),
    )
    extensions: list[Any] = [
        # First: its metrics read the outcome after every other extension is done; its cost
        # check runs once the document is valid, before ErrorCodes tags validation errors.
        lambda: OperationGuards(guards),
        ErrorCodes,
        MutationGate,
    ]
    schema = GraphSchema(
        query=merge_types("Query", QUERY_PARTS),
        mutation=merge_types("Mutation", MUTATION_PARTS) if MUTATION_PARTS else None,
        subscription=merge_types("Subscription", SUBSCRIPTION_PARTS) if SUBSCRIPTION_PARTS else None,
        types=[files.MeasurementSet, files.CalTable, qa.QaArtifact],
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP),
        execution_context_class=executor,
    )
    schema.in_flight = guards.in_flight
    if undeclared := undeclared_mutations(schema):
        raise RuntimeError(
            f"mutations without a declared role: {', '.join(undeclared)}; "
            "add `extensions=[requires(Role....)]` (schema.permissions)"
        )
    return schema


def make_context(
    engine: AsyncEngine,
    settings: Settings,
    bus: Any = None,
    request: Any = None,
    identity: Identity | None = None,
) -> GraphContext:
    """A fresh context (and fresh loaders) for one request or one subscription event.

    ``identity`` is the authenticated caller (the transports pass it); None: anonymous.
    """
    loaders = Loaders(engine, WRAP, max_page_size=settings.max_page_size)
    return GraphContext(
        engine=engine,
        settings=settings,
        loaders=loaders,
        bus=bus,
        request=request,
        identity=identity or anonymous(),
    )
