"""The /graphql endpoint: strawberry's ASGI view with our context, IDE and limits."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from dsa110.settings import Settings
from resolvers.context import GraphContext
from schema.schema import make_context
from server.graphiql import graphiql_html

GRAPHQL_PATH = "/graphql"
STATIC_PREFIX = "/graphql/static"


class GraphView(GraphQL[GraphContext, None]):
    def __init__(self, schema: Any, engine: AsyncEngine, settings: Settings, bus: Any = None) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            keep_alive=True,
            keep_alive_interval=15,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        )
        self.engine = engine
        self.settings = settings
        self.bus = bus

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GraphContext:
        context = make_context(self.engine, self.settings, self.bus, request)
        context.response = response
        return context

    def decode_json(self, data: str | bytes) -> object:
        # A body that is not UTF-8 is a malformed request (400), not a server error.
        try:
            return super().decode_json(data)
        except UnicodeDecodeError as exc:
            raise json.JSONDecodeError("request body is not UTF-8", "", 0) from exc

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        # Our own page and vendored assets: GraphiQL must work with the network cut.
        return HTMLResponse(graphiql_html(GRAPHQL_PATH, STATIC_PREFIX))
