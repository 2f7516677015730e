"""The /graphql endpoint: strawberry's ASGI view with our context, IDE, limits and live updates.

Transports: HTTP (GET/POST), graphql-transport-ws and legacy graphql-ws on the same path,
and GraphQL over SSE (``Accept: text/event-stream``, one operation per response).
Queries and mutations get the request deadline on every transport (``server.deadline``);
subscriptions, meant to last, do not.
Every operation gets a fresh context - strawberry makes one per WebSocket connection,
whose DataLoaders would otherwise cache across operations - and subscriptions go through
``SharedSubscriptions``, so identical ones share one producer.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from json import JSONDecodeError
from typing import Any, Final, cast

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from starlette.websockets import WebSocketDisconnected as SocketClosed
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.exceptions import NonJsonMessageReceived, NonTextMessageReceived, WebSocketDisconnected
from strawberry.http.types import QueryParams
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType

from dsa110 import json_text
from dsa110.auth.authenticator import Authenticator
from dsa110.auth.identity import identity_in
from dsa110.settings import Settings
from resolvers.context import GraphContext
from schema.live_fields import shared_subscription_fields
from schema.schema import make_context
from server.deadline import DEADLINE_EXCEEDED, within_deadline
from server.graphiql import graphiql_html
from server.graphql_http import (
    GRAPHQL_RESPONSE,
    Refused,
    busy_answer,
    decode,
    decode_parameter,
    error_response,
    is_request_error,
    operation_body,
    refusal_for,
    subscription_needs_stream,
    too_deep,
    wants_graphql_response,
)
from server.live_transport import DirectRoute, JsonEncoder, SharedResult, SharedStream, SharedSubscriptions
from server.live_transport.operations import is_subscription
from server.subscription_budget import BudgetedStreams
from server.trust import challenge, refusal_status
from server.ws_auth import authenticate_connection
from server.ws_limits import MAX_OPERATION_ID_CHARS, LegacyInitDeadline, over_limit, subscription_limit_error
from server.ws_protocol import DIRECT_SEND, text_frame

log = logging.getLogger("dsa110.server")

GRAPHQL_PATH = "/graphql"
STATIC_PREFIX = "/graphql/static"
MAX_OPERATIONS_PER_CONNECTION: Final = 50
"""Operations in flight on one WebSocket; more are answered with an error (``server.ws_limits``)."""
KEEP_ALIVE_S: Final = 15.0
"""graphql-ws ``ka`` interval; graphql-transport-ws relies on WebSocket pings (uvicorn)."""
MESSAGE_TOO_BIG: Final = 1009


@dataclass(frozen=True)
class Unparseable:
    """What ``LimitedWebSocketAdapter.iter_json`` yields for a message it refuses, when asked to
    read on past it (the legacy protocol): why, as the code and message of the ``error``."""

    code: str
    message: str


NOT_JSON: Final = Unparseable(json_text.INVALID_JSON, "Message must be JSON-parseable (no NaN or Infinity)")
"""A message that is not JSON (the legacy server's words); one too deep or holding a lone
surrogate carries the refusal's own code and message."""
LEGACY_CLIENT_TYPES: Final = frozenset({"connection_init", "connection_terminate", "start", "stop"})
"""The messages a graphql-ws (subscriptions-transport-ws) client sends."""


def _unparseable(refusal: JSONDecodeError | Refused) -> Unparseable:
    if isinstance(refusal, Refused) and refusal.code != json_text.INVALID_JSON:
        return Unparseable(refusal.code, refusal.reason)  # too deep, or a lone surrogate
    return NOT_JSON


class LimitedWebSocketAdapter(ASGIWebSocketAdapter):
    """Strawberry's adapter, plus a size limit: a message over it closes the socket (1009)."""

    async def iter_json(self, *, ignore_parsing_errors: bool = False) -> AsyncGenerator[object, None]:
        view = cast("GraphView", self.view)
        try:
            while self.ws.application_state != WebSocketState.DISCONNECTED:
                try:
                    text = await self.ws.receive_text()
                    if len(text) > view.max_message_chars:
                        await self.close(
                            MESSAGE_TOO_BIG, f"message larger than {view.max_message_chars} characters"
                        )
                        return
                    yield view.decode_json(text)
                except (JSONDecodeError, Refused) as exc:
                    if not ignore_parsing_errors:
                        raise NonJsonMessageReceived from exc
                    # The legacy protocol's handler reads on past a bad message: it gets why,
                    # and answers it with an ``error`` (strawberry said nothing).
                    yield _unparseable(exc)
        except KeyError as exc:  # a binary frame has no "text"
            raise NonTextMessageReceived from exc
        except WebSocketDisconnect:
            pass

    async def send_json(self, message: Mapping[str, object]) -> None:
        # Once the socket is closed (a close sent, or a send that found the client gone),
        # starlette refuses a send with its own ``WebSocketDisconnected`` (a RuntimeError),
        # which strawberry does not map: the same event as ``WebSocketDisconnect``.
        try:
            await super().send_json(message)
        except SocketClosed as exc:
            raise WebSocketDisconnected from exc

    async def send_text(self, text: str) -> None:
        """Send an already-encoded message (a shared result spliced into its envelope)."""
        try:
            await self.ws.send_text(text)
        except (WebSocketDisconnect, SocketClosed) as exc:
            raise WebSocketDisconnected from exc


def message_head(envelope: dict[str, str], encode: JsonEncoder) -> str:
    """``envelope`` encoded, without its closing brace: the part of a message before ``"payload"``."""
    head = encode(envelope)
    if isinstance(head, bytes):
        head = head.decode()
    return head[:-1]


def shared_message(head: str, result: SharedResult, encode: JsonEncoder) -> str:
    """``head`` (from ``message_head``) plus the result's payload JSON, encoded once for all subscribers.

    Same text as encoding ``{**envelope, "payload": {...}}`` whole (compact separators,
    keys in this order), without re-encoding the payload per subscriber.
    """
    return f'{head},"payload":{result.payload_json(encode)}}}'


def direct_route(adapter: LimitedWebSocketAdapter, head: str, encode: JsonEncoder) -> DirectRoute | None:
    """This operation's route for ``SharedStream.deliver_directly``: whole frames, written inline.

    Operations with the same message head (same id and type) share encoded frames. None
    when the server offers no direct send (``server.ws_protocol``), e.g. under a test
    client; the results then take the ASGI path.
    """
    write: Callable[[bytes], bool] | None = adapter.ws.scope.get("extensions", {}).get(DIRECT_SEND)
    if write is None:
        return None
    return DirectRoute(head, lambda result: text_frame(shared_message(head, result, encode)), write)


class TransportWSHandler(BaseGraphQLTransportWSHandler[GraphContext, None]):
    """graphql-transport-ws through the shared producers; malformed messages close with 4400."""

    def __init__(self, *, view: Any, schema: Any, **kwargs: Any) -> None:
        super().__init__(view=view, schema=view.streams, **kwargs)
        self.shared_streams: dict[str, SharedStream] = {}

    async def handle_message(self, message: Any) -> None:
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self.handle_invalid_message("Failed to parse message")
            return
        if message["type"] == "subscribe" and not _valid_subscribe(message.get("id"), message.get("payload")):
            await self.handle_invalid_message("Invalid subscribe message")
            return
        await super().handle_message(cast(Any, message))  # its shape was checked above

    async def handle_subscribe(self, message: Any) -> None:
        # strawberry's own check, answered with a code (it sends a bare message).
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and message["id"] not in self.operations
            and over_limit(len(self.operations), limit)
        ):
            error = subscription_limit_error(limit or 0)
            await self.websocket.send_json({"id": message["id"], "type": "error", "payload": [error]})
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[GraphContext, None]) -> None:
        # A query or mutation gets the HTTP request deadline (server.deadline); a subscription
        # is a stream, meant to last. On expiry the operation is stopped and answered with an
        # `error` for its id; the connection and its other operations go on.
        deadline_s = cast("GraphView", self.view).settings.request_deadline_s
        if deadline_s <= 0 or is_subscription(operation.query, operation.operation_name):
            await super().run_operation(operation)
            return
        reason = operation_deadline_reason(deadline_s)
        if await within_deadline(deadline_s, self._run_unless_ended(operation), reason):
            return
        error = deadline_error(reason)
        with contextlib.suppress(WebSocketDisconnected):  # the client may be gone by now
            await operation.send_operation_message(
                {"id": operation.id, "type": "error", "payload": [error.formatted]}
            )

    async def _run_unless_ended(self, operation: Operation[GraphContext, None]) -> None:
        # The deadline's task runs the operation. Its first step is queued when this
        # operation's task starts it, and may run after the operation was ended (the client's
        # `complete`, or the socket gone) in between, before the cancellation reaches it:
        # then there is nothing to do (strawberry would answer an id it has forgotten).
        if not operation.completed:
            await super().run_operation(operation)

    async def handle_task_exception(self, error: Exception) -> None:
        # A send that found the client gone ends that operation (strawberry forgets its id
        # and closes its results, giving back what it held); the connection's own loop ends
        # the rest when it reads the disconnect. Nothing failed: not an error to log.
        if isinstance(error, WebSocketDisconnected):
            log.debug("graphql-transport-ws: an operation's client went away")
            return
        await super().handle_task_exception(error)

    async def _send_result_stream(self, operation: Operation[GraphContext, None], result_source: Any) -> None:
        # strawberry's loop, with two changes: a shared result goes out as its pre-encoded
        # payload spliced into this operation's `next` message, and a shared stream is
        # offered the direct route (written by the producer without waking this task).
        head = message_head({"id": operation.id, "type": "next"}, self.view.encode_json)
        if isinstance(result_source, SharedStream):
            self.shared_streams[operation.id] = result_source
            route = direct_route(_adapter(self), head, self.view.encode_json)
            if route is not None:
                result_source.deliver_directly(route)
        try:
            await self._send_results(operation, result_source, head)
        finally:
            # An id may be reused once its operation is over: forget only our own stream.
            if self.shared_streams.get(operation.id) is result_source:
                del self.shared_streams[operation.id]

    async def cleanup_operation(self, operation_id: str) -> None:
        # The client's `complete`, or the socket gone: stop deliveries now, before the task
        # is cancelled, and send nothing more for this operation. A cancellation lands at the
        # task's next step, and a step already queued (a result, a deadline task's first run)
        # comes first; without the mark it would answer the id strawberry has just forgotten
        # (a KeyError in `forget_id`, or the registration of a new operation reusing the id
        # deleted) or write to a closed socket.
        if (stream := self.shared_streams.pop(operation_id, None)) is not None:
            stream.stop()
        if (operation := self.operations.get(operation_id)) is not None:
            operation.completed = True
        await super().cleanup_operation(operation_id)

    async def _send_results(
        self, operation: Operation[GraphContext, None], result_source: Any, head: str
    ) -> None:
        is_first_result = True
        async for result in result_source:
            if isinstance(result, SharedResult):
                if operation.completed:
                    return
                await _adapter(self).send_text(shared_message(head, result, self.view.encode_json))
            elif is_first_result and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            elif not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            else:
                await operation.send_next(result)
            is_first_result = False


def operation_deadline_reason(deadline_s: float) -> str:
    return f"the operation took longer than its {deadline_s:g} s deadline"


def deadline_error(reason: str) -> GraphQLError:
    """The error an operation stopped at its deadline is answered with (WebSocket and SSE)."""
    return GraphQLError(f"{reason} and was stopped", extensions={"code": DEADLINE_EXCEEDED})


async def results_within_deadline(
    source: AsyncGenerator[Any, None], deadline_s: float
) -> AsyncGenerator[Any, None]:
    """A query or mutation over SSE: its results, all produced within ``deadline_s``.

    The source runs to its end inside ``within_deadline`` (its SQL interrupted or
    cancelled, its tasks cancelled, when the deadline passes), then its results go out;
    stopped, it is answered with one result whose error has the code ``DEADLINE_EXCEEDED``
    (the stream's headers are sent by then, so there is no 504 to give), then ``complete``.
    """
    results: list[Any] = []

    async def drain() -> None:
        async with contextlib.aclosing(source):
            async for result in source:
                results.append(result)

    reason = operation_deadline_reason(deadline_s)
    if not await within_deadline(deadline_s, drain(), reason):
        results = [ExecutionResult(data=None, errors=[deadline_error(reason)])]
    for result in results:
        yield result


_PARSED_BODY: ContextVar[tuple[bytes | str, Any]] = ContextVar("graphql_parsed_body")
# Does this HTTP request's client accept application/graphql-response+json (set per request)?
_GRAPHQL_RESPONSE: ContextVar[bool] = ContextVar("graphql_response_media", default=False)
"""The POST body this task already parsed and checked, and its value (see ``parse_http_body``)."""


class _LegacyOperation:
    """A graphql-ws operation as its own task knows it: its id, and the result source it opened."""

    __slots__ = ("id", "source")

    def __init__(self, operation_id: str) -> None:
        self.id = operation_id
        self.source: AsyncGenerator[Any, None] | None = None


_LEGACY_OPERATION: ContextVar[_LegacyOperation] = ContextVar("legacy_graphql_ws_operation")
"""The graphql-ws operation, set in the operation's own task (see ``LegacyWSHandler``)."""


class _RoutedStreams:
    """The legacy handler's schema: ``SharedSubscriptions`` that offers each shared stream
    the direct route of the operation subscribing (strawberry's legacy handler passes
    the schema no operation id, so the id comes from the operation task's context)."""

    def __init__(self, handler: LegacyWSHandler) -> None:
        self.handler = handler

    async def subscribe(self, *args: Any, **kwargs: Any) -> Any:
        handler = self.handler
        view = cast("GraphView", handler.view)
        stream = await view.streams.subscribe(*args, **kwargs)
        operation = _LEGACY_OPERATION.get(None)
        if operation is not None:
            operation.source = stream
        if isinstance(stream, SharedStream) and operation is not None:
            head = message_head({"type": "data", "id": operation.id}, view.encode_json)
            route = direct_route(_adapter(handler), head, view.encode_json)
            if route is not None:
                stream.deliver_directly(route)
        return stream


class LegacyWSHandler(BaseGraphQLWSHandler[GraphContext, None]):
    """Legacy graphql-ws through the shared producers; malformed messages get an ``error``."""

    def __init__(self, *, view: Any, schema: Any, **kwargs: Any) -> None:
        super().__init__(view=view, schema=cast(Any, _RoutedStreams(self)), **kwargs)
        self.init_deadline = LegacyInitDeadline(
            view.connection_init_wait_timeout,
            self.websocket.send_json,
            self.websocket.close,
        )

    async def handle(self) -> None:
        # The legacy protocol has no init deadline in strawberry: the same as graphql-transport-ws.
        self.init_deadline.start()
        try:
            await super().handle()
        finally:
            self.init_deadline.cancel()

    async def handle_connection_init(self, message: Any) -> None:
        self.init_deadline.received()
        await super().handle_connection_init(message)

    async def handle_start(self, message: Any) -> None:
        limit = self.max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and message["id"] not in self.tasks
            and over_limit(len(self.tasks), limit)
        ):
            error = subscription_limit_error(limit or 0)
            await self.websocket.send_json({"type": "error", "id": message["id"], "payload": error})
            return
        await super().handle_start(message)

    async def handle_message(self, message: Any) -> None:
        if isinstance(message, Unparseable):
            await self._error(message.message, code=message.code)
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            await self._error("Failed to parse message")
            return
        if message["type"] not in LEGACY_CLIENT_TYPES:
            await self._error(f"Invalid message type {message['type'][:32]!r}")
            return
        if message["type"] in ("start", "stop") and not isinstance(message.get("id"), str):
            await self._error("Message needs a string id")
            return
        if message["type"] == "start" and len(message["id"]) > MAX_OPERATION_ID_CHARS:
            await self._error(f"Message id longer than {MAX_OPERATION_ID_CHARS} characters")
            return
        if message["type"] == "start" and not _valid_subscribe(message["id"], message.get("payload")):
            await self._error("Invalid start payload", message["id"])
            return
        await super().handle_message(cast(Any, message))  # its shape was checked above

    async def _error(self, text: str, operation_id: str | None = None, code: str = "BAD_REQUEST") -> None:
        message: dict[str, object] = {
            "type": "error",
            "payload": {"message": text, "extensions": {"code": code}},
        }
        if operation_id is not None:
            message["id"] = operation_id
        await self.websocket.send_json(message)

    async def handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: dict[str, object] | None
    ) -> None:
        # Runs as the operation's own task: the context variable is this operation's alone.
        operation = _LegacyOperation(operation_id)
        _LEGACY_OPERATION.set(operation)
        try:
            await super().handle_async_results(operation_id, query, operation_name, variables)
        except WebSocketDisconnected:
            pass  # the client is gone: the connection's loop ends the rest when it reads that
        finally:
            # strawberry leaves the source open when the first result is an error (it returns
            # from inside the loop) or a send fails: what the operation holds (its charge to the
            # connection's subscription budget, its place among a producer's subscribers, its
            # snapshot run) came back only when the abandoned generator was finalized, after the
            # answer: the client's next subscription, sent at once, could be refused for it.
            if operation.source is not None:
                with contextlib.suppress(RuntimeError):  # closed already, or closing
                    await operation.source.aclose()

    async def send_data_message(self, execution_result: ExecutionResult, operation_id: str) -> None:
        if isinstance(execution_result, SharedResult):
            head = message_head({"type": "data", "id": operation_id}, self.view.encode_json)
            await _adapter(self).send_text(shared_message(head, execution_result, self.view.encode_json))
            return
        await super().send_data_message(execution_result, operation_id)

    async def cleanup_operation(self, operation_id: str) -> None:
        # The client's `stop`: stop deliveries now, before the task is cancelled.
        if isinstance(stream := self.subscriptions.get(operation_id), SharedStream):
            stream.stop()
        await super().cleanup_operation(operation_id)


def _adapter(handler: TransportWSHandler | LegacyWSHandler) -> LimitedWebSocketAdapter:
    return cast("LimitedWebSocketAdapter", handler.websocket)


def _asks_for_subscription(request_data: GraphQLRequestData | list[GraphQLRequestData]) -> bool:
    """Is this one operation, asked for over plain HTTP, a subscription?"""
    if not isinstance(request_data, GraphQLRequestData) or not isinstance(request_data.query, str):
        return False
    # The keyword first: most documents are then not parsed a second time.
    query = request_data.query
    return "subscription" in query and is_subscription(query, request_data.operation_name)


def _valid_subscribe(operation_id: Any, payload: Any) -> bool:
    return (
        isinstance(operation_id, str)
        and len(operation_id) <= MAX_OPERATION_ID_CHARS
        and isinstance(payload, dict)
        and isinstance(payload.get("query"), str)
        and isinstance(payload.get("variables"), dict | None)
        and isinstance(payload.get("operationName"), str | None)
    )


class GraphView(GraphQL[GraphContext, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    websocket_adapter_class = LimitedWebSocketAdapter

    def __init__(
        self,
        schema: Any,
        engine: AsyncEngine,
        settings: Settings,
        bus: Any = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            keep_alive=True,
            keep_alive_interval=KEEP_ALIVE_S,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL, GRAPHQL_SSE_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_s),
            max_subscriptions_per_connection=MAX_OPERATIONS_PER_CONNECTION,
            allowed_origins=settings.cors_origins,  # strawberry's own Origin check, as server.trust's
        )
        self.engine = engine
        self.settings = settings
        self.bus = bus
        self.max_message_chars = settings.max_body_bytes
        self.authenticator = authenticator or Authenticator(engine, settings)
        shared = SharedSubscriptions(
            schema,
            lambda request: make_context(
                engine, settings, bus, request, identity_in(request.scope) if request is not None else None
            ),
            shared_subscription_fields(schema),
        )
        self.streams = BudgetedStreams(shared, schema._schema, settings)  # each connection's cost budget

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GraphContext:
        context = make_context(self.engine, self.settings, self.bus, request, identity_in(request.scope))
        context.response = response
        context.authenticator = self.authenticator
        return context

    async def on_ws_connect(self, context: GraphContext) -> Any:
        await authenticate_connection(context, self.authenticator, self.settings)
        return await super().on_ws_connect(context)

    async def execute_operation(
        self,
        request: Request,
        request_adapter: Any,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: GraphContext,
        root_value: None,
        sub_response: Response,
    ) -> Any:
        transport = (
            self._get_stream_transport(request_data.protocol)
            if isinstance(request_data, GraphQLRequestData)
            else None
        )
        if transport is None or not isinstance(request_data, GraphQLRequestData):
            if _asks_for_subscription(request_data):
                raise subscription_needs_stream()  # strawberry would run it as a query: a null root
            try:
                result = await super().execute_operation(
                    request, request_adapter, request_data, context, root_value, sub_response
                )
            except RecursionError:  # a document nested too deep for the parser
                raise too_deep() from None
            if (status := refusal_status(result)) is not None:
                sub_response.status_code = status  # a refused operation: 401 or 403, as REST
                sub_response.headers.update(challenge(status))
            if status is None and _GRAPHQL_RESPONSE.get() and is_request_error(result):
                sub_response.status_code = 400  # nothing executed (server.graphql_http)
            busy_status, retry_headers = busy_answer(result)
            if busy_status is not None:
                sub_response.status_code = busy_status  # BUSY: nothing written, retry later
            sub_response.headers.update(retry_headers)
            return result
        # SSE: the same shared producers as the WebSocket transports.
        allowed = OperationType.from_http(request_adapter.method)
        if request_adapter.method == "GET":
            allowed = allowed - {OperationType.MUTATION}
        source = await self.streams.stream(
            request_data.query,
            variable_values=request_data.variables,
            context_value=context,
            operation_name=request_data.operation_name,
            operation_extensions=request_data.extensions,
            allowed_operation_types=transport.allowed_operation_types(allowed),
        )
        # The deadline middleware lets every event stream through (a subscription is meant
        # to last); a query or mutation over SSE gets the request deadline here instead.
        deadline_s = self.settings.request_deadline_s
        query = request_data.query
        if deadline_s <= 0 or (
            isinstance(query, str) and is_subscription(query, request_data.operation_name)
        ):
            return source
        return results_within_deadline(source, deadline_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        token = _GRAPHQL_RESPONSE.set(wants_graphql_response(request.headers.get("accept")))
        try:
            response: Response = await self.run(request)
        except HTTPException as error:
            refused = refusal_for(error)  # a GraphQL error body with a code, not plain text
            response = error_response(refused.status_code, refused.code, refused.reason, refused.headers)
        finally:
            _GRAPHQL_RESPONSE.reset(token)
        await response(scope, receive, send)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if is_request_error(result):
            response.pop("data", None)  # nothing was executed: no data entry, not a null one
        return response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        if _GRAPHQL_RESPONSE.get():
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
        return response

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        # POSTed JSON is checked here (one object, bounded nesting, real text) before
        # strawberry reads its fields; the parsed body is handed on, not parsed twice.
        content_type = (request.content_type or "").split(";", 1)[0].strip().lower()
        if request.method != "POST":
            return await super().parse_http_body(request)
        if content_type != "application/json":
            raise Refused(415, "UNSUPPORTED_MEDIA_TYPE", "send the operation as `application/json`")
        body = await request.get_body()
        parsed = self.parse_json(body)
        operation_body(parsed)
        token = _PARSED_BODY.set((body, parsed))
        try:
            return await super().parse_http_body(request)
        finally:
            _PARSED_BODY.reset(token)

    def parse_query_params(self, params: QueryParams) -> dict[str, Any]:
        # strawberry's, with a refusal that names the parameter (its message spoke of a body).
        parsed: dict[str, Any] = dict(params)
        for name in ("variables", "extensions"):
            if parsed.get(name):
                parsed[name] = decode_parameter(name, parsed[name])
        return parsed

    def parse_json(self, data: str | bytes) -> Any:
        parsed = _PARSED_BODY.get(None)
        if parsed is not None and parsed[0] is data:
            return parsed[1]
        return self.decode_json(data)

    def decode_json(self, data: str | bytes) -> object:
        # Malformed, too deep or not text: a coded 400 (a closed socket on WebSocket), never a 500.
        return decode(data)

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        # Our own page and vendored assets: GraphiQL must work with the network cut.
        return HTMLResponse(graphiql_html(GRAPHQL_PATH, STATIC_PREFIX))
