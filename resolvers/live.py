"""Live updates: bus events -> subscription results, computed once per distinct subscription.

Two pieces.

``event_batches(ctx, channels, ...)`` is what a subscription resolver iterates: an
initial (snapshot) tick, then one tick per bus event (or per coalesced burst), each with
fresh DataLoaders on the context - a subscription's context lives as long as the
subscription, and loaders that cached across events would serve stale rows.

``SharedSubscriptions`` sits between the transports (graphql-transport-ws, graphql-ws,
SSE) and the schema. Strawberry runs one generator per subscriber
(reference/graphql-servers.md §3.3), so N identical subscriptions would execute N times
per event. Here identical subscriptions - same document, operation name and variables -
share ONE producer task that executes the subscription once per event and hands the
result to every subscriber's bounded queue; the work per event grows with distinct
subscriptions, not with clients. A producer is reference counted and stops when its last
subscriber leaves.

Joining is race-free without replay: a subscriber first attaches its queue to the
producer, waits until the producer's resolver is listening on the bus, then runs the
document once in *snapshot* phase for itself (the current state: status tiles, the log
so far). Events committed before the snapshot are in it; events after it arrive through
the queue. An event that lands while the snapshot runs may be seen twice - state results
are idempotent, and log lines carry ids for the client to skip repeats.

Only root fields registered as phase-aware (``shared_fields``) are shared; anything else
runs as strawberry would, but still with a fresh context per operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Coroutine, Iterable
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from types import TracebackType
from typing import Any, Final

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    parse,
)
from graphql import (
    OperationType as CoreOperationType,
)
from graphql.error import GraphQLSyntaxError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from dsa110.events import Event
from dsa110.events.mailbox import Mailbox
from loaders import Loaders
from loaders.registry import ENTITY_TABLES
from resolvers.context import GraphContext
from resolvers.errors import Unavailable

logger = logging.getLogger("dsa110.live")

PHASE_KEY: Final = "live.phase"
ON_LISTENING_KEY: Final = "live.on_listening"
COMPLETE_KEY: Final = "live.complete"
SUBSCRIBER_QUEUE_SIZE: Final = 256
"""Results a subscriber may fall behind before it is cut off (memory stays bounded)."""
PARSE_CACHE_SIZE: Final = 256
MAX_PRODUCERS: Final = 10_000
"""Distinct live subscriptions per process; beyond this, new distinct ones are refused."""


class LivePhase(Enum):
    BOTH = "both"
    """Snapshot then events: a subscription run directly (tests, non-shared transports)."""
    SNAPSHOT = "snapshot"
    """Only the initial state, then end: what each joining subscriber runs for itself."""
    EVENTS = "events"
    """Only event-driven results: what a shared producer runs."""


def live_phase(ctx: GraphContext) -> LivePhase:
    phase = ctx.extras.get(PHASE_KEY, LivePhase.BOTH)
    return phase if isinstance(phase, LivePhase) else LivePhase.BOTH


def renew_loaders(ctx: GraphContext) -> None:
    """Give the context fresh (empty) DataLoaders, wrapping rows exactly as before."""
    old = ctx.loaders
    ctx.loaders = Loaders(
        old.engine, {e: old.wrap(e) for e in ENTITY_TABLES}, max_page_size=old.max_page_size
    )


def mark_complete(ctx: GraphContext) -> None:
    """Say that nothing will follow the snapshot (a finished job's log): the subscriber ends."""
    ctx.extras[COMPLETE_KEY] = True


def _listening(ctx: GraphContext) -> None:
    callback = ctx.extras.get(ON_LISTENING_KEY)
    if callable(callback):
        callback()


async def event_batches(
    ctx: GraphContext,
    channels: Iterable[str],
    *,
    snapshot: bool = True,
    coalesce_s: float = 0.0,
    accept: Callable[[Event], bool] | None = None,
) -> AsyncIterator[list[Event]]:
    """Ticks for a subscription resolver, each with fresh loaders on ``ctx``.

    Yields ``[]`` once first when ``snapshot`` (the resolver then sends current state),
    then a list of the accepted events per tick. ``resync`` events (the bus reconnected and
    may have lost events) are always accepted. With ``coalesce_s`` an isolated event
    ticks at once and a burst ticks at most once per ``coalesce_s`` (leading and trailing
    edge), so a flood of writes costs one recomputation per window.
    """
    phase = live_phase(ctx)
    if snapshot and phase is not LivePhase.EVENTS:
        renew_loaders(ctx)
        yield []
    if phase is LivePhase.SNAPSHOT:
        return
    bus = ctx.bus
    if bus is None:
        raise Unavailable("live updates are unavailable: the server has no event bus")

    def wanted(event: Event) -> bool:
        return event.resync or accept is None or accept(event)

    loop = asyncio.get_running_loop()
    last_tick = float("-inf")
    async with bus.subscribe(*channels) as events:
        _listening(ctx)
        stream = aiter(events)
        while True:
            try:
                event = await anext(stream)
            except StopAsyncIteration:
                return
            if not wanted(event):
                continue
            batch = [event]
            quiet_until = last_tick + coalesce_s
            while (remaining := quiet_until - loop.time()) > 0:
                try:
                    more = await next_within(stream, remaining)
                except TimeoutError:
                    break
                except StopAsyncIteration:
                    return
                if wanted(more):
                    batch.append(more)
            renew_loaders(ctx)
            yield batch
            last_tick = loop.time()


async def next_within(stream: AsyncIterator[Event], seconds: float) -> Event:
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
    # that races with the item arriving, and a cancelled producer must stop.
    async with asyncio.timeout(seconds):
        return await anext(stream)


# -- shared producers -------------------------------------------------------------------

Result = ExecutionResult
ContextFactory = Callable[[Any], GraphContext]
JsonEncoder = Callable[[object], str | bytes]


@dataclass(eq=False)
class SharedResult(ExecutionResult):
    """A producer's result: the one object every subscriber of that producer receives.

    Its wire payload (``{"data", "errors", "extensions"}``, the same shape in
    graphql-transport-ws ``next``, graphql-ws ``data`` and SSE) is encoded once, on first
    use, and reused for every subscriber - at 1,000 subscribers, re-encoding the same dict
    per client was a large share of the fan-out cost. The transports splice the cached
    text into each operation's message (server/graphql_view.py).
    """

    on_encode: Callable[[], None] | None = field(default=None, repr=False)
    _payload_json: str | None = field(default=None, init=False, repr=False)

    def payload_json(self, encode: JsonEncoder) -> str:
        """The payload as JSON text, encoded by ``encode`` the first time only."""
        if self._payload_json is None:
            payload: dict[str, object] = {"data": self.data}
            if self.errors:
                payload["errors"] = [error.formatted for error in self.errors]
            if self.extensions:
                payload["extensions"] = self.extensions
            encoded = encode(payload)
            self._payload_json = encoded.decode() if isinstance(encoded, bytes) else encoded
            if self.on_encode is not None:
                self.on_encode()
        return self._payload_json


@dataclass(frozen=True, slots=True)
class OperationKey:
    query: str
    operation_name: str | None
    variables: str
    """Canonical JSON of the variables (sorted keys)."""


@dataclass(frozen=True, slots=True)
class DirectRoute:
    """How a transport lets a producer write a result to its client without awaiting.

    ``write(frame)`` writes the bytes and returns True, or writes nothing and returns
    False when the client cannot take them now (back-pressure, closing). ``encode(result)``
    makes this client's bytes for a result; clients whose routes share a ``key`` get
    identical bytes, so a producer encodes once per key, not once per client.
    """

    key: str
    encode: Callable[[SharedResult], bytes]
    write: Callable[[bytes], bool]


class _Subscriber(Mailbox[Result]):
    """One client's bounded queue of shared results, and optionally a direct route.

    The direct route is the fast path at fan-out: the producer writes the result to the
    client inline, waking no task. It is taken only once the client's snapshot has gone
    out (``live``) and while the queue is idle, so results never overtake each other; a
    client that refuses (back-pressure) gets the result queued and its own task sends it.
    """

    __slots__ = ("direct", "live", "on_leave")

    def __init__(self) -> None:
        super().__init__(SUBSCRIBER_QUEUE_SIZE)
        self.direct: DirectRoute | None = None
        self.live = False
        self.on_leave: list[Callable[[], None]] = []

    def left(self) -> None:
        """The subscription is over: run (once) what was to be run then."""
        callbacks, self.on_leave = self.on_leave, []
        for callback in callbacks:
            callback()


def fan_out(result: SharedResult, subscribers: Iterable[_Subscriber]) -> int:
    """Deliver ``result`` to every subscriber: written directly where possible, else queued.

    Returns how many were queued.

    This loop runs once per client per event - at 1,000 clients it is most of the
    server's CPU per event after the socket writes themselves - so the direct path is
    kept to a few attribute reads, one dictionary lookup and one call.
    """
    encoded: dict[str, bytes] = {}
    queued = 0
    for subscriber in subscribers:
        route = subscriber.direct
        if route is not None and subscriber.live and subscriber.idle:
            try:
                frame = encoded.get(route.key)
                if frame is None:
                    frame = encoded[route.key] = route.encode(result)
                if route.write(frame):
                    continue
            except Exception:
                # Not expected (a transport refuses rather than raises); the queued route
                # below then reports whatever is wrong on this client's own task.
                logger.exception("live: direct delivery failed; queueing instead")
        subscriber.push(result)
        queued += 1
    return queued


class SharedStream(AsyncGenerator[Any, None]):
    """What ``SharedSubscriptions.stream`` returns for a shared subscription.

    An async generator (the transports iterate and close it as strawberry's own), plus
    ``deliver_directly``: a WebSocket transport that can write a result to its client
    without awaiting hands that writer over here, and the producer uses it.
    """

    def __init__(self, subscriber: _Subscriber, results: AsyncGenerator[Any, None]) -> None:
        self._subscriber = subscriber
        self._results = results

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once this subscription is over: closed, or ended on its own."""
        self._subscriber.on_leave.append(callback)

    def deliver_directly(self, route: DirectRoute) -> None:
        self._subscriber.direct = route

    def stop(self) -> None:
        """Deliver nothing more, by any route, from now on (the client ended the operation).

        Closing the generator does the same, but only when the operation's task next runs;
        a producer may deliver before that, and the protocols forbid messages after a
        client's ``complete``/``stop``.
        """
        self._subscriber.direct = None
        self._subscriber.end()
        self._subscriber.left()

    def __anext__(self) -> Coroutine[Any, Any, Any]:
        return self._results.__anext__()

    def asend(self, value: None, /) -> Coroutine[Any, Any, Any]:
        return self._results.asend(value)

    def athrow(
        self, typ: Any, val: Any = None, tb: TracebackType | None = None, /
    ) -> Coroutine[Any, Any, Any]:
        return self._results.athrow(typ, val, tb)

    async def aclose(self) -> None:
        try:
            await self._results.aclose()
        finally:
            self._subscriber.left()  # also when the generator never started


class _Producer:
    def __init__(
        self, owner: SharedSubscriptions, key: OperationKey, variables: dict[str, Any] | None
    ) -> None:
        self.owner = owner
        self.key = key
        self.variables = variables
        self.subscribers: set[_Subscriber] = set()
        self.listening = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.results_produced = 0

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"live-producer:{self.key.operation_name or ''}")

    async def _run(self) -> None:
        ctx = self.owner.context_factory(None)
        ctx.extras[PHASE_KEY] = LivePhase.EVENTS
        ctx.extras[ON_LISTENING_KEY] = self.listening.set
        try:
            source = await self.owner.schema.stream(
                self.key.query,
                variable_values=self.variables,
                context_value=ctx,
                operation_name=self.key.operation_name,
                allowed_operation_types=(OperationType.SUBSCRIPTION,),
            )
            async with contextlib.aclosing(source):
                async for result in source:
                    if isinstance(result, PreExecutionError) or not isinstance(result, ExecutionResult):
                        break  # every joiner's own snapshot run reports the same error
                    self.results_produced += 1
                    shared = SharedResult(
                        result.data, result.errors, result.extensions, on_encode=self.owner._count_encoding
                    )
                    subscribers = list(self.subscribers)
                    queued = fan_out(shared, subscribers)
                    self.owner.deliveries_queued += queued
                    self.owner.deliveries_direct += len(subscribers) - queued
        except Exception:
            logger.exception("live: producer for %r failed", self.key.operation_name)
        finally:
            self.listening.set()
            for subscriber in self.subscribers:
                subscriber.end()
            self.owner._forget(self)


class SharedSubscriptions:
    """The per-process registry of shared subscription producers; a schema-like ``stream``.

    ``schema`` is the strawberry schema; ``context_factory(request)`` makes a fresh
    ``GraphContext``; ``shared_fields`` are the subscription root fields that understand
    ``LivePhase`` (built on ``event_batches``).
    """

    def __init__(self, schema: Any, context_factory: ContextFactory, shared_fields: Collection[str]) -> None:
        self.schema = schema
        self.context_factory = context_factory
        self.shared_fields = frozenset(shared_fields)
        self._producers: dict[OperationKey, _Producer] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._closed = False
        self.payload_encodings = 0
        self.deliveries_direct = 0
        """Results written to a client by its producer, inline (``DirectRoute``)."""
        self.deliveries_queued = 0
        """Results queued for a client's own task: no direct route, or back-pressure."""
        """Shared results whose payload was encoded (once each, however many subscribers)."""

    # -- introspection for health pages and tests ---------------------------------------

    @property
    def producer_count(self) -> int:
        return len(self._producers)

    @property
    def subscriber_count(self) -> int:
        return sum(len(p.subscribers) for p in self._producers.values())

    def tasks(self) -> list[asyncio.Task[None]]:
        """Producer tasks still alive (running or stopping)."""
        running = [p.task for p in self._producers.values() if p.task is not None and not p.task.done()]
        return running + [t for t in self._stopping if not t.done()]

    def results_produced(self) -> int:
        return sum(p.results_produced for p in self._producers.values())

    # -- the schema-like entry points the transports call -------------------------------

    async def stream(
        self,
        query: str | None,
        variable_values: Any = None,
        context_value: Any = None,
        root_value: Any = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> AsyncGenerator[Any, None]:
        request = getattr(context_value, "request", None)
        if variable_values is not None and not isinstance(variable_values, dict):
            return _single_error("variables must be a JSON object")
        if operation_name is not None and not isinstance(operation_name, str):
            return _single_error("operationName must be a string")
        if isinstance(query, str) and _parsed(query) is None and (syntax := _syntax_error(query)) is not None:
            # Answered here: strawberry's stream lets a parser-cache syntax error escape
            # as an exception; as a pre-execution error the transports answer it properly
            # (graphql-transport-ws closes with 4400 and the parser's message).
            return _single(PreExecutionError(data=None, errors=[syntax]))
        allowed = set(allowed_operation_types) if allowed_operation_types is not None else None
        if (
            isinstance(query, str)
            and (allowed is None or OperationType.SUBSCRIPTION in allowed)
            and self._is_shared(query, operation_name)
        ):
            key = OperationKey(query, operation_name, _canonical(variable_values))
            subscriber = _Subscriber()
            return SharedStream(
                subscriber,
                self._shared_stream(key, subscriber, variable_values, request, operation_extensions),
            )
        # Not shareable: run as strawberry would, but never on the connection's context
        # (strawberry builds one per WebSocket, whose loaders would cache across operations).
        result: AsyncGenerator[Any, None] = await self.schema.stream(
            query,
            variable_values=variable_values,
            context_value=self.context_factory(request),
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
            allowed_operation_types=allowed_operation_types,
        )
        return result

    async def subscribe(
        self,
        query: str | None,
        variable_values: Any = None,
        context_value: Any = None,
        root_value: Any = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> AsyncGenerator[Any, None]:
        return await self.stream(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            operation_extensions,
            allowed_operation_types=(OperationType.SUBSCRIPTION,),
        )

    async def close(self) -> None:
        """Stop every producer and wait for them (server shutdown)."""
        self._closed = True
        producers = list(self._producers.values())
        self._producers.clear()
        tasks = [p.task for p in producers if p.task is not None] + list(self._stopping)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- internals ----------------------------------------------------------------------

    def _is_shared(self, query: str, operation_name: str | None) -> bool:
        fields = _subscription_root_fields(query, operation_name)
        return bool(fields) and fields <= self.shared_fields

    async def _shared_stream(
        self,
        key: OperationKey,
        subscriber: _Subscriber,
        variables: dict[str, Any] | None,
        request: Any,
        extensions: dict[str, Any] | None,
    ) -> AsyncGenerator[Any, None]:
        if self._closed:
            yield _error_result("the server is shutting down")
            return
        producer = self._producers.get(key)
        if producer is None:
            if len(self._producers) >= MAX_PRODUCERS:
                yield _error_result("too many distinct live subscriptions on this server; try again later")
                return
            producer = self._producers[key] = _Producer(self, key, variables)
            producer.start()
        producer.subscribers.add(subscriber)
        try:
            await producer.listening.wait()
            ctx = self.context_factory(request)
            ctx.extras[PHASE_KEY] = LivePhase.SNAPSHOT
            snapshot = await self.schema.stream(
                key.query,
                variable_values=variables,
                context_value=ctx,
                operation_name=key.operation_name,
                operation_extensions=extensions,
                allowed_operation_types=(OperationType.SUBSCRIPTION,),
            )
            async with contextlib.aclosing(snapshot):
                async for first in snapshot:
                    yield first
                    if isinstance(first, PreExecutionError):
                        return
            if ctx.extras.get(COMPLETE_KEY):
                return
            # The snapshot has been taken by the transport: later results may go direct.
            subscriber.live = True
            async for result in subscriber.items():
                yield result
            if subscriber.overflowed:
                yield _error_result(
                    f"this subscription fell more than {SUBSCRIBER_QUEUE_SIZE} results behind and was "
                    "stopped; subscribe again",
                )
        finally:
            self._leave(producer, subscriber)

    def _leave(self, producer: _Producer, subscriber: _Subscriber) -> None:
        subscriber.end()
        subscriber.left()
        producer.subscribers.discard(subscriber)
        if producer.subscribers:
            return
        if self._producers.get(producer.key) is producer:
            del self._producers[producer.key]
        task = producer.task
        if task is not None and not task.done():
            task.cancel()
            self._stopping.add(task)
            task.add_done_callback(self._stopping.discard)

    def _count_encoding(self) -> None:
        self.payload_encodings += 1

    def _forget(self, producer: _Producer) -> None:
        if self._producers.get(producer.key) is producer:
            del self._producers[producer.key]


def _canonical(variables: dict[str, Any] | None) -> str:
    try:
        return json.dumps(variables or {}, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        return repr(variables)


@lru_cache(maxsize=PARSE_CACHE_SIZE)
def _parsed(query: str) -> DocumentNode | None:
    try:
        return parse(query, max_tokens=10_000)
    except (GraphQLSyntaxError, GraphQLError):
        return None


def _subscription_root_fields(query: str, operation_name: str | None) -> frozenset[str]:
    """Root field names of the selected operation if it is a subscription, else empty.

    Fragments at the root make the operation unshared (rare for subscriptions, and the
    field set is then not obvious without validation).
    """
    document = _parsed(query)
    if document is None:
        return frozenset()
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        chosen = operations[0] if len(operations) == 1 else None
    else:
        chosen = next((o for o in operations if o.name is not None and o.name.value == operation_name), None)
    if chosen is None or chosen.operation is not CoreOperationType.SUBSCRIPTION:
        return frozenset()
    selections = chosen.selection_set.selections
    if not all(isinstance(s, FieldNode) for s in selections):
        return frozenset()
    return frozenset(s.name.value for s in selections if isinstance(s, FieldNode))


def _error_result(message: str, code: str = "UNAVAILABLE") -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])


def _syntax_error(query: str) -> GraphQLSyntaxError | None:
    try:
        parse(query, max_tokens=10_000)
    except GraphQLSyntaxError as error:
        error.extensions = {"code": "GRAPHQL_PARSE_FAILED"}
        return error
    except GraphQLError:
        return None
    return None


async def _single(result: Any) -> AsyncGenerator[Any, None]:
    yield result


def _single_error(message: str) -> AsyncGenerator[Any, None]:
    return _single(
        PreExecutionError(data=None, errors=[GraphQLError(message, extensions={"code": "BAD_USER_INPUT"})])
    )
