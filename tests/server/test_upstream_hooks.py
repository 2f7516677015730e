"""The private hooks of graphql-core, strawberry and uvicorn that this project overrides or calls.

``schema/execution.py`` (the breadth-first executor) subclasses graphql-core's executor
through strawberry's; ``server/graphql_view.py`` subclasses strawberry's view, WebSocket
adapter and both WebSocket protocol handlers; ``server/ws_protocol.py`` subclasses
uvicorn's WebSocket protocol. None of these hooks is public API, so an upgrade may rename
or reshape one without notice: an override would then silently stop being called, or a
call would fail on the first request. Each hook is pinned here by name and parameters, so
such an upgrade fails this test, naming the hook, instead of failing in production.

When this test fails after an upgrade: read the upstream change, adapt the override in
the module named by the failing row, then update the row.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest
from graphql import GraphQLObjectType, GraphQLSchema
from graphql.execution import values
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types import Info
from strawberry.types.field import StrawberryField
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from dsa110.settings import Settings
from schema.execution import STRAWBERRY_FIELD, BreadthFirstExecutor
from schema.schema import build_schema, make_context
from server.graphql_view import LegacyWSHandler, LimitedWebSocketAdapter, TransportWSHandler

# (owner, name, parameters): the hook must exist on ``owner`` with exactly these parameters.
HOOKS: list[tuple[Any, str, list[str]]] = [
    # schema/execution.py: graphql-core's executor, as strawberry subclasses it
    (
        StrawberryGraphQLCoreExecutionContext,
        "execute_collected_root_fields",
        ["self", "root_type", "root_value", "grouped_field_set", "serially", "new_defer_usages"],
    ),
    (
        StrawberryGraphQLCoreExecutionContext,
        "build_resolve_info",
        ["self", "field_def", "field_nodes", "parent_type", "path"],
    ),
    (
        StrawberryGraphQLCoreExecutionContext,
        "ensure_valid_runtime_type",
        ["self", "runtime_type_name", "return_type", "field_details_list", "info", "result"],
    ),
    (
        StrawberryGraphQLCoreExecutionContext,
        "collect_subfields",
        ["self", "return_type", "field_details_list"],
    ),
    (StrawberryGraphQLCoreExecutionContext, "is_awaitable", ["value"]),
    (
        values,
        "get_argument_values",
        ["type_def", "node", "variable_values", "fragment_variable_values", "hide_suggestions"],
    ),
    (Info, "__init__", ["self", "_raw_info", "_field"]),
    # server/graphql_view.py: graphql-transport-ws (the view builds handlers with these keywords)
    (
        BaseGraphQLTransportWSHandler,
        "__init__",
        [
            "self",
            "view",
            "websocket",
            "context",
            "root_value",
            "schema",
            "connection_init_wait_timeout",
            "max_subscriptions_per_connection",
        ],
    ),
    (BaseGraphQLTransportWSHandler, "handle_message", ["self", "message"]),
    (BaseGraphQLTransportWSHandler, "handle_invalid_message", ["self", "error_message"]),
    (BaseGraphQLTransportWSHandler, "_send_result_stream", ["self", "operation", "result_source"]),
    (BaseGraphQLTransportWSHandler, "_handle_pre_execution_error", ["self", "operation", "result"]),
    (BaseGraphQLTransportWSHandler, "_reject_incremental_delivery", ["self", "operation"]),
    (BaseGraphQLTransportWSHandler, "cleanup_operation", ["self", "operation_id"]),
    (Operation, "send_next", ["self", "execution_result"]),
    # server/graphql_view.py: legacy graphql-ws
    (
        BaseGraphQLWSHandler,
        "__init__",
        [
            "self",
            "view",
            "websocket",
            "context",
            "root_value",
            "schema",
            "keep_alive",
            "keep_alive_interval",
            "max_subscriptions_per_connection",
        ],
    ),
    (BaseGraphQLWSHandler, "handle_message", ["self", "message"]),
    (
        BaseGraphQLWSHandler,
        "handle_async_results",
        ["self", "operation_id", "query", "operation_name", "variables"],
    ),
    (BaseGraphQLWSHandler, "send_data_message", ["self", "execution_result", "operation_id"]),
    (BaseGraphQLWSHandler, "cleanup_operation", ["self", "operation_id"]),
    # server/graphql_view.py: the view and its WebSocket adapter
    (
        GraphQL,
        "execute_operation",
        ["self", "request", "request_adapter", "request_data", "context", "root_value", "sub_response"],
    ),
    (GraphQL, "_get_stream_transport", ["self", "protocol"]),
    (GraphQL, "decode_json", ["self", "data"]),
    (GraphQL, "encode_json", ["self", "data"]),
    (GraphQL, "render_graphql_ide", ["self", "request"]),
    (GraphQL, "on_ws_connect", ["self", "context"]),
    (GraphQL, "get_context", ["self", "request", "response"]),
    (ASGIWebSocketAdapter, "__init__", ["self", "view", "request", "response"]),
    (ASGIWebSocketAdapter, "iter_json", ["self", "ignore_parsing_errors"]),
    (ASGIWebSocketAdapter, "close", ["self", "code", "reason"]),
    # server/ws_protocol.py: uvicorn's sans-I/O WebSocket protocol
    (WebSocketsSansIOProtocol, "handle_connect", ["self", "event"]),
    (WebSocketsSansIOProtocol, "send", ["self", "message"]),  # and its `handshake_complete`
    (WebSocketsSansIOProtocol, "pause_writing", ["self"]),
    (WebSocketsSansIOProtocol, "resume_writing", ["self"]),
]

# Class attributes strawberry's view reads to build its WebSocket side, and what we put there.
VIEW_CLASS_ATTRIBUTES = [
    ("graphql_transport_ws_handler_class", TransportWSHandler),
    ("graphql_ws_handler_class", LegacyWSHandler),
    ("websocket_adapter_class", LimitedWebSocketAdapter),
]


@pytest.mark.parametrize(
    ("owner", "name", "parameters"), HOOKS, ids=[f"{getattr(o, '__name__', o)}.{n}" for o, n, _ in HOOKS]
)
def test_hook_is_still_there_with_the_same_parameters(owner: Any, name: str, parameters: list[str]) -> None:
    hook = inspect.getattr_static(owner, name, None)
    assert hook is not None, f"{owner!r} has no `{name}` any more"
    assert list(inspect.signature(getattr(owner, name)).parameters) == parameters


@pytest.mark.parametrize(("name", "ours"), VIEW_CLASS_ATTRIBUTES)
def test_the_view_still_reads_its_websocket_classes_from_class_attributes(name: str, ours: type) -> None:
    upstream = inspect.getattr_static(GraphQL, name, None)
    assert upstream is not None, f"strawberry's view has no `{name}` any more"
    assert issubclass(ours, typing.get_origin(upstream) or upstream)


async def test_the_executor_still_sees_the_attributes_it_reads() -> None:
    """What the executor reads from graphql-core's executor instance and from the schema."""
    seen: dict[str, bool] = {}

    class Probe(BreadthFirstExecutor):
        def execute_collected_root_fields(self, *args: Any) -> Any:
            for attr in (
                "schema",
                "operation",
                "variable_values",
                "hide_suggestions",
                "field_resolver",
                "type_resolver",
                "collected_errors",
            ):
                seen[attr] = hasattr(self, attr)
            seen["collected_errors.add"] = callable(getattr(self.collected_errors, "add", None))
            seen["schema.get_field"] = callable(getattr(self.schema, "get_field", None))
            return super().execute_collected_root_fields(*args)

    settings = Settings()
    schema = build_schema(settings, Probe)
    result = await schema.execute("{ __typename }", context_value=make_context(None, settings))
    assert result.errors is None
    assert seen and all(seen.values()), seen


def test_strawberry_still_hands_its_field_definitions_to_graphql_core() -> None:
    """The executor plans each field from ``field.extensions["strawberry-definition"]``."""
    graphql_schema: GraphQLSchema = build_schema(Settings())._schema
    query = graphql_schema.query_type
    assert isinstance(query, GraphQLObjectType)
    definition = query.fields["source"].extensions[STRAWBERRY_FIELD]
    assert isinstance(definition, StrawberryField)
    for attr in ("base_resolver", "python_name", "extensions", "permission_classes"):
        assert hasattr(definition, attr), attr
    resolver = definition.base_resolver
    assert resolver is not None
    for attr in ("wrapped_func", "info_parameter", "self_parameter"):
        assert hasattr(resolver, attr), attr


def test_the_websocket_handlers_still_keep_what_the_overrides_read() -> None:
    legacy = BaseGraphQLWSHandler(
        view=None,
        websocket=None,
        context=None,
        root_value=None,
        schema=None,
        keep_alive=False,
        keep_alive_interval=None,
        max_subscriptions_per_connection=None,
    )
    assert legacy.subscriptions == {} and hasattr(legacy, "websocket") and hasattr(legacy, "view")
    operation = Operation(handler=None, id="1", query="{ a }", variables=None, operation_name=None)
    assert operation.id == "1" and operation.completed is False
