"""Shared subscriptions: identical subscriptions computed once per event, for every subscriber.

``SharedSubscriptions`` sits between the transports (graphql-transport-ws, graphql-ws,
SSE) and the schema. Strawberry runs one generator per subscriber
(docs/reference/graphql-servers.md §3.3), so N identical subscriptions would execute N times
per event. Here identical subscriptions - same document, operation name and variables -
share ONE producer task that executes the subscription once per event and hands the
result to every subscriber (``fanout.fan_out``); the work per event grows with distinct
subscriptions, not with clients. A producer is reference counted and stops when its last
subscriber leaves.

Joining is race-free without replay: a subscriber first attaches its queue to the
producer, waits until the producer's resolver is listening on the bus, then runs the
document once in *snapshot* phase for itself (the current state: status tiles, the log
so far). Events committed before the snapshot are in it; events after it arrive through
the queue. An event that lands while the snapshot runs may be seen twice - state results
are idempotent, and log lines carry ids for the client to skip repeats.

Only root fields registered as phase-aware (``shared_fields``: the fields declared with
``schema.live_fields.shared_subscription``) are shared; anything else runs as strawberry
would, but still with a fresh context per operation. The phases themselves
(``LivePhase``, ``event_batches``) are the resolvers' side: ``resolvers.live``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Collection, Coroutine, Iterable
from types import TracebackType
from typing import Any, Final

from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from resolvers.context import GraphContext
from resolvers.live import COMPLETE_KEY, ON_LISTENING_KEY, PHASE_KEY, LivePhase
from server.live_transport.fanout import SUBSCRIBER_QUEUE_SIZE, DirectRoute, SharedResult, Subscriber, fan_out
from server.live_transport.operations import (
    OperationKey,
    canonical,
    ends_stream,
    error_result,
    parsed,
    single,
    single_error,
    subscription_root_fields,
    syntax_error,
)

logger = logging.getLogger("dsa110.live")

MAX_PRODUCERS: Final = 10_000
"""Distinct live subscriptions per process; beyond this, new distinct ones are refused."""

ContextFactory = Callable[[Any], GraphContext]


class SharedStream(AsyncGenerator[Any, None]):
    """What ``SharedSubscriptions.stream`` returns for a shared subscription.

    An async generator (the transports iterate and close it as strawberry's own), plus
    ``deliver_directly``: a WebSocket transport that can write a result to its client
    without awaiting hands that writer over here, and the producer uses it.
    """

    def __init__(self, subscriber: Subscriber, results: AsyncGenerator[Any, None]) -> None:
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
        self.subscribers: set[Subscriber] = set()
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
                    if ends_stream(result):
                        # The resolver raised: this error is the last result. What each
                        # subscription holds goes back before the error reaches its client,
                        # whose next subscription, sent the moment it arrives, may need it.
                        for subscriber in self.subscribers:
                            subscriber.left()
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
        # A snapshot first: /healthz reads this from the front door's thread (server.health),
        # and iterating the live dict there could meet the loop adding a producer.
        return sum(len(p.subscribers) for p in tuple(self._producers.values()))

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
            return single_error("variables must be a JSON object")
        if operation_name is not None and not isinstance(operation_name, str):
            return single_error("operationName must be a string")
        if isinstance(query, str) and parsed(query) is None and (syntax := syntax_error(query)) is not None:
            # Answered here: strawberry's stream lets a parser-cache syntax error escape
            # as an exception; as a pre-execution error the transports answer it properly
            # (graphql-transport-ws closes with 4400 and the parser's message).
            return single(PreExecutionError(data=None, errors=[syntax]))
        allowed = set(allowed_operation_types) if allowed_operation_types is not None else None
        if (
            isinstance(query, str)
            and (allowed is None or OperationType.SUBSCRIPTION in allowed)
            and self._is_shared(query, operation_name)
        ):
            key = OperationKey(query, operation_name, canonical(variable_values))
            subscriber = Subscriber()
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
        fields = subscription_root_fields(query, operation_name)
        return bool(fields) and fields <= self.shared_fields

    async def _shared_stream(
        self,
        key: OperationKey,
        subscriber: Subscriber,
        variables: dict[str, Any] | None,
        request: Any,
        extensions: dict[str, Any] | None,
    ) -> AsyncGenerator[Any, None]:
        if self._closed:
            yield error_result("the server is shutting down")
            return
        producer = self._producers.get(key)
        if producer is None:
            if len(self._producers) >= MAX_PRODUCERS:
                yield error_result("too many distinct live subscriptions on this server; try again later")
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
                    if ends_stream(first):
                        # Refused, or its resolver raised: no event can follow (strawberry
                        # ends such a stream too). Leave first, so that what it held is back
                        # before the client reads the error and sends its next subscription.
                        self._leave(producer, subscriber)
                        yield first
                        return
                    yield first
            if ctx.extras.get(COMPLETE_KEY):
                return
            # The snapshot has been taken by the transport: later results may go direct.
            subscriber.live = True
            async for result in subscriber.items():
                yield result
            if subscriber.overflowed:
                yield error_result(
                    f"this subscription fell more than {SUBSCRIBER_QUEUE_SIZE} results behind and was "
                    "stopped; subscribe again",
                )
        finally:
            self._leave(producer, subscriber)

    def _leave(self, producer: _Producer, subscriber: Subscriber) -> None:
        """``subscriber`` leaves ``producer``; the producer stops with its last subscriber.

        Idempotent: a subscription that ends on an error leaves before sending it, and
        again (a no-op) when its generator closes.
        """
        subscriber.end()
        subscriber.left()
        if subscriber not in producer.subscribers:
            return
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
