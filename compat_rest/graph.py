"""Executing GraphQL documents in-process for the compat routes.

A compat route never touches the database: it runs a document against the same schema
the /graphql endpoint serves, with a fresh context (fresh DataLoaders) per request, so
REST answers and graph answers cannot disagree.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from graphql import GraphQLSchema, OperationDefinitionNode, parse, validate
from sqlalchemy.ext.asyncio import AsyncEngine

from compat_rest.errors import from_graph_errors
from dsa110 import telemetry
from dsa110.auth.identity import Identity, identity_in
from dsa110.settings import Settings
from schema.schema import make_context

GraphCall = Callable[[str, dict[str, Any]], Awaitable[Any]]
"""Run one document with variables for the current request; answers ``data``."""


class GraphRunner:
    def __init__(self, schema: Any, engine: AsyncEngine, settings: Settings, bus: Any = None) -> None:
        self.schema = schema
        self.engine = engine
        self.settings = settings
        self.bus = bus

    @functools.cached_property
    def _type_system(self) -> str:
        """The digest of the schema's text: equal for schemas of the same type system."""
        return hashlib.sha256(str(self.schema).encode()).hexdigest()

    def problems(self, document: str) -> list[str]:
        """Why ``document`` does not run against this schema (empty when it does).

        Routes are checked once at start-up (``routing.check_routes``): any message here
        stops the compat layer from being built.
        """
        graphql_schema: GraphQLSchema = self.schema._schema
        key = (self._type_system, document)
        if key not in _CHECKED:
            _CHECKED[key] = tuple(error.message for error in validate(graphql_schema, parse(document)))
        return list(_CHECKED[key])

    async def __call__(
        self,
        document: str,
        variables: dict[str, Any] | None = None,
        request: Any = None,
        *,
        identity: Identity | None = None,
    ) -> Any:
        """Run ``document`` as the request's caller (or ``identity`` when there is no request)."""
        # Writes publish their events on the app's bus once the app runs (its lifespan starts
        # the bus); an app driven without its lifespan (some tests) writes without events.
        bus = self.bus if self.bus is not None and self.bus.running else None
        # The caller's identity rides along: the schema checks roles and audits mutations.
        if request is not None:
            identity = identity_in(request.scope)
        context = make_context(self.engine, self.settings, bus, request, identity)
        reserve_documents((document,))  # the server's own text: its name is always labelled
        result = await self.schema.execute(document, variable_values=variables, context_value=context)
        if result.errors:
            raise from_graph_errors(result.errors)
        return result.data


# Validating the ~170 route documents costs ~0.3 s of CPU, paid by every app a process builds
# (the test processes build hundreds). The answer depends on the type system alone, so it is
# kept per type system (the printed schema's digest) and document; both are the code's, so
# the entries are few.
_CHECKED: dict[tuple[str, str], tuple[str, ...]] = {}


def reserve_documents(documents: Iterable[str]) -> None:
    """Reserve the operation names of the server's own ``documents`` as metric labels
    (``dsa110.telemetry.reserve_operation_names``): the REST, export, VO and plot routes run
    them as their caller, mostly anonymous, and their names must not share the slots an
    anonymous flood of names could fill first. The documents are the code's, so finite."""
    telemetry.reserve_operation_names(
        operation.name.value
        for document in documents
        if (operation := document_operation(document)) is not None and operation.name is not None
    )


@functools.lru_cache(maxsize=1024)
def document_operation(document: str) -> OperationDefinitionNode | None:
    """The first operation of one of the server's own documents (each parsed once)."""
    return next((d for d in parse(document).definitions if isinstance(d, OperationDefinitionNode)), None)
