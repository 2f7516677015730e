"""Prometheus metrics of this process: what every layer counts, defined once.

The metric objects are process-wide (prometheus-client's design: one registry per
process); with several server processes (``serve --workers N``) prometheus-client's
multiprocess mode writes each process's values to files under
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` sums them (``server.metrics``). Gauges
therefore declare how processes combine (``livesum``: the sum over live processes).

Label values that come from clients (GraphQL operation names) are bounded: a name
must look like a GraphQL name, and after ``MAX_OPERATION_NAMES`` distinct ones the rest
count as ``other``, so a hostile client cannot grow the series without end. Nor can it
crowd the real names out (they would count as ``other`` until a restart): an
unauthenticated caller brings in a name only with an operation that validated against the
schema, and only ``MAX_ANONYMOUS_OPERATION_NAMES`` names in all, so the other
``MAX_OPERATION_NAMES - MAX_ANONYMOUS_OPERATION_NAMES`` slots stay for callers with a key
or token (a dashboard's; their failing operations are named too, as after a schema change
one would want). A name once labelled keeps its label, whoever sends it. The server's own
operations (the REST, export, VO and plot routes' documents, run as their caller, mostly
anonymous) are reserved as they run (``reserve_operation_names``, from
``compat_rest.graph.GraphRunner``): always labelled, in none of the slots, so no flood of
names that came first can push them into ``other``.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

from prometheus_client import Counter, Gauge, Histogram

T = TypeVar("T")

LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
WORK_BUCKETS: Final = (0.01, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

# --- requests -------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "dsa110_http_requests", "HTTP requests answered, by route template", ["route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "dsa110_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the body), by route template",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
GRAPHQL_OPERATIONS = Counter(
    "dsa110_graphql_operations", "GraphQL operations run, by operation name", ["operation", "type", "outcome"]
)
GRAPHQL_LATENCY = Histogram(
    "dsa110_graphql_operation_duration_seconds",
    "Time to run a GraphQL operation (parse, validate, execute), by operation name",
    ["operation", "type"],
    buckets=LATENCY_BUCKETS,
)
ERRORS = Counter(
    "dsa110_errors",
    "Errors answered, by stable error code and surface (graphql, rest, http)",
    ["surface", "code"],
)
OPEN_CONNECTIONS = Gauge(
    "dsa110_open_connections",
    "Long-lived connections open now (websocket, sse)",
    ["kind"],
    multiprocess_mode="livesum",
)

# --- live updates and the bus (refreshed from the process's own counters) --------------------

SUBSCRIBERS = Gauge(
    "dsa110_subscriptions_active", "GraphQL subscriptions open now", multiprocess_mode="livesum"
)
PRODUCERS = Gauge(
    "dsa110_subscription_producers",
    "Shared producers running now (one per distinct subscription)",
    multiprocess_mode="livesum",
)
BUS_EVENTS = Counter(
    "dsa110_bus_events",
    "Event-bus events: published by this process, delivered to its subscribers",
    ["stage"],
)
SUBSCRIPTION_RESULTS = Counter(
    "dsa110_subscription_results", "Subscription results sent to clients, by path (direct, queued)", ["path"]
)
DB_POOL = Gauge(
    "dsa110_db_pool_connections",
    "Database connections of the pool, by state (checked_out, idle, overflow)",
    ["state"],
    multiprocess_mode="livesum",
)

# --- pipeline work --------------------------------------------------------------------------

INGESTED_ROWS = Counter("dsa110_ingested_measurements", "Measurements ingested")
INGEST_LATENCY = Histogram(
    "dsa110_ingest_duration_seconds", "Time to ingest one batch of measurements", buckets=WORK_BUCKETS
)
DETECTION_LATENCY = Histogram(
    "dsa110_ese_detection_duration_seconds", "Time of one ESE detection run", buckets=WORK_BUCKETS
)
DETECTION_SOURCES = Counter("dsa110_ese_detection_sources", "Sources examined by ESE detection")

# --- alert delivery -------------------------------------------------------------------------

WEBHOOK_DELIVERIES = Counter(
    "dsa110_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, retry, failed)",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "dsa110_webhook_delivery_duration_seconds",
    "Time of one webhook delivery attempt",
    buckets=LATENCY_BUCKETS,
)

# --- bounded operation names -------------------------------------------------------------------

MAX_OPERATION_NAMES: Final = 200
MAX_ANONYMOUS_OPERATION_NAMES: Final = 150
"""Of ``MAX_OPERATION_NAMES``, how many unauthenticated callers may bring in (GraphiQL
users without a key, scripts; the REST layer's own names are reserved, in no slot)."""
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_reserved_names: set[str] = set()  # the server's own operations: always labelled, in no slot
_seen_names: set[str] = set()
_anonymous_names: set[str] = set()  # those of ``_seen_names`` an unauthenticated caller brought in
_names_lock = threading.Lock()


def reserve_operation_names(names: Iterable[str]) -> None:
    """Always label these names, beside the slots that clients' names fill: the server's own
    operations (the REST routes' documents, fixed by the code, so their number is bounded)."""
    with _names_lock:
        _reserved_names.update(name for name in names if _NAME.fullmatch(name))


def operation_label(name: str | None, *, valid: bool, authenticated: bool) -> str:
    """A client's operation name as a label value: ``anonymous``, the name, or ``other``.

    A reserved name (``reserve_operation_names``) is always its own label. Any other name not
    yet labelled gets its label from an unauthenticated caller only if the operation is
    ``valid`` (parsed and validated against the schema, however it then ran) and fewer than
    ``MAX_ANONYMOUS_OPERATION_NAMES`` came that way (see the module docstring).
    """
    if not name:
        return "anonymous"
    if not _NAME.fullmatch(name):
        return "other"
    with _names_lock:
        if name in _reserved_names or name in _seen_names:
            return name
        if len(_seen_names) >= MAX_OPERATION_NAMES:
            return "other"
        if not authenticated:
            if not valid or len(_anonymous_names) >= MAX_ANONYMOUS_OPERATION_NAMES:
                return "other"
            _anonymous_names.add(name)
        _seen_names.add(name)
        return name


@contextmanager
def timed(histogram: Histogram) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - start)


def observed(histogram: Histogram) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Decorate a coroutine function: its duration goes into ``histogram``."""

    def decorate(function: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        async def wrapper(*args: Any, **kwargs: Any) -> T:
            with timed(histogram):
                return await function(*args, **kwargs)

        return functools.wraps(function)(wrapper)

    return decorate


class DeltaCounter:
    """Feeds a Prometheus counter from a counter that some object keeps (``BusStats``).

    ``update(value)`` adds what grew since the last call, so the Prometheus counter is
    right in multiprocess mode too (each process adds its own growth).
    """

    def __init__(self, counter: Any) -> None:
        self.counter = counter
        self.last = 0

    def update(self, value: int) -> None:
        if value > self.last:
            self.counter.inc(value - self.last)
        self.last = max(self.last, value)
