"""``/metrics`` for Prometheus: requests, latency, errors, connections, the bus, jobs, the pool.

Three sources, one exposition:

* counted as things happen (``dsa110.telemetry``): HTTP requests and latency by route
  template (``MetricsMiddleware``), GraphQL operations by name (``schema.observability``),
  errors by code, open WebSocket/SSE connections, ingest and detection, webhook deliveries;
* refreshed from this process's own counters (``ProcessGauges``, on each scrape and every
  few seconds so other workers' values stay current): subscriptions, shared producers,
  events published and delivered, subscription results, database pool use;
* read from the database at scrape time (``dsa110.ops.gauges``): jobs by type and state
  (queue depth), job run times, groups by state, measurement rows, the webhook outbox.

With several processes (``serve --workers N``) ``PROMETHEUS_MULTIPROC_DIR`` is set and
the answer sums every live process (prometheus-client's multiprocess mode).

Who may read it: clients whose address is in ``DSA110_METRICS_ALLOW`` (default the
loopback addresses, where a local Prometheus or a node exporter runs), or any caller
with an operator or admin key. Everyone else gets 403: the numbers tell an outsider how
busy and how large the pipeline is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dsa110 import telemetry
from dsa110.auth.identity import Role, identity_in
from dsa110.ops.gauges import JOB_BUCKETS, PipelineGauges, read_gauges
from dsa110.settings import Settings
from dsa110.webhooks.outbox import outbox_counts

METRICS_PATH: Final = "/metrics"
REFRESH_S: Final = 5.0
MAX_ERROR_BODY: Final = 65_536
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


# --- requests ---------------------------------------------------------------------------------


def route_label(scope: Scope) -> str:
    """The matched route's template (``/api/sources/{source_id}``), never the raw path."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return "unmatched"
    prefix = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
    return f"{prefix}{template}" or "/"


def _error_code(body: bytes, status: int) -> str:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return f"HTTP_{status}"
    if isinstance(payload, dict):
        if isinstance(payload.get("code"), str):
            return str(payload["code"])[:64]
        errors = payload.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = (errors[0].get("extensions") or {}).get("code")
            if isinstance(code, str):
                return code[:64]
    return f"HTTP_{status}"


class MetricsMiddleware:
    """Counts and times every HTTP request by route template; counts open WebSockets and SSE streams."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            gauge = telemetry.OPEN_CONNECTIONS.labels("websocket")
            gauge.inc()
            try:
                await self.app(scope, receive, send)
            finally:
                gauge.dec()
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "error_body": None, "sse": False}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = status = int(message["status"])
                headers = dict(message.get("headers") or [])
                content_type = headers.get(b"content-type", b"").decode("latin-1")
                if content_type.startswith("text/event-stream"):
                    state["sse"] = True
                    telemetry.OPEN_CONNECTIONS.labels("sse").inc()
                if status >= 400 and "json" in content_type:
                    state["error_body"] = bytearray()
            elif message["type"] == "http.response.body" and state["error_body"] is not None:
                body: bytearray = state["error_body"]
                if len(body) < MAX_ERROR_BODY:
                    body.extend(message.get("body", b"")[: MAX_ERROR_BODY - len(body)])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            status = state["status"]
            route, method = route_label(scope), scope["method"]
            telemetry.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            telemetry.HTTP_LATENCY.labels(route, method).observe(time.perf_counter() - start)
            if status >= 400:
                body = state["error_body"]
                code = _error_code(bytes(body), status) if body is not None else f"HTTP_{status}"
                telemetry.ERRORS.labels("http", code).inc()
            if state["sse"]:
                telemetry.OPEN_CONNECTIONS.labels("sse").dec()


# --- this process's own counters --------------------------------------------------------------


class ProcessGauges:
    """Copies the live-update and bus counters of one app into Prometheus metrics."""

    def __init__(self, app_state: Any) -> None:
        self.state = app_state
        self.published = telemetry.DeltaCounter(telemetry.BUS_EVENTS.labels("published"))
        self.delivered = telemetry.DeltaCounter(telemetry.BUS_EVENTS.labels("delivered"))
        self.dropped = telemetry.DeltaCounter(telemetry.BUS_EVENTS.labels("dropped"))
        self.direct = telemetry.DeltaCounter(telemetry.SUBSCRIPTION_RESULTS.labels("direct"))
        self.queued = telemetry.DeltaCounter(telemetry.SUBSCRIPTION_RESULTS.labels("queued"))
        self._task: asyncio.Task[None] | None = None

    def refresh(self) -> None:
        streams = self.state.live
        telemetry.SUBSCRIBERS.set(streams.subscriber_count)
        telemetry.PRODUCERS.set(streams.producer_count)
        self.direct.update(streams.deliveries_direct)
        self.queued.update(streams.deliveries_queued)
        stats = self.state.bus.stats
        self.published.update(stats.published)
        self.delivered.update(stats.delivered)
        self.dropped.update(stats.dropped)
        pool = self.state.engine.pool
        checked_out = _call(pool, "checkedout")
        telemetry.DB_POOL.labels("checked_out").set(checked_out)
        telemetry.DB_POOL.labels("idle").set(_call(pool, "checkedin"))
        telemetry.DB_POOL.labels("overflow").set(max(0, _call(pool, "overflow")))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="metrics-process-gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if multiprocess():
            mark_process_dead(os.getpid())  # this process's live gauges leave the sums

    async def _loop(self) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(REFRESH_S)


def _call(pool: Any, name: str) -> int:
    method = getattr(pool, name, None)
    try:
        return int(method()) if callable(method) else 0
    except Exception:  # a pool class without the statistic
        return 0


# --- read from the database at scrape time ------------------------------------------------------


class PipelineCollector:
    """A collector for one scrape: the database's numbers, read just before."""

    def __init__(self, gauges: PipelineGauges, outbox: dict[str, int]) -> None:
        self.gauges = gauges
        self.outbox = outbox

    def collect(self) -> Iterable[Metric]:
        g = self.gauges
        jobs = GaugeMetricFamily(
            "dsa110_jobs",
            "Jobs by type and state (the queue depth is state=pending)",
            labels=["type", "state"],
        )
        for (job_type, job_state), n in sorted(g.jobs.items()):
            jobs.add_metric([job_type, job_state], n)
        yield jobs
        durations = HistogramMetricFamily(
            "dsa110_job_duration_seconds",
            "Run time of finished jobs (finished_at - started_at), by type",
            labels=["type"],
        )
        for d in g.durations:
            buckets = [(repr(float(le)), float(n)) for le, n in zip(JOB_BUCKETS, d.cumulative, strict=True)]
            durations.add_metric([d.job_type], [*buckets, ("+Inf", float(d.count))], sum_value=d.total_s)
        yield durations
        groups = GaugeMetricFamily("dsa110_groups", "Observation groups by state", labels=["state"])
        for group_state, n in sorted(g.groups.items()):
            groups.add_metric([group_state], n)
        yield groups
        yield GaugeMetricFamily(
            "dsa110_measurement_rows", "Measurements stored (sum over images)", value=g.measurement_rows
        )
        outbox = GaugeMetricFamily("dsa110_webhook_outbox", "Webhook deliveries by state", labels=["state"])
        for outbox_state, n in sorted(self.outbox.items()):
            outbox.add_metric([outbox_state], n)
        yield outbox


def exposition(collector: PipelineCollector) -> bytes:
    scrape = CollectorRegistry()
    scrape.register(collector)
    if multiprocess():
        MultiProcessCollector(scrape)
        return generate_latest(scrape)
    return generate_latest(REGISTRY) + generate_latest(scrape)


# --- who may read it ------------------------------------------------------------------------------


def _networks(allow: Sequence[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(text, strict=False) for text in allow]


def may_read(request: Request, settings: Settings) -> bool:
    identity = identity_in(request.scope)
    if identity.role is not None and identity.role.includes(Role.OPERATOR):
        return True
    client = request.client
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client.host)
    except ValueError:  # a test client's made-up host, a Unix socket
        return False
    return any(address in network for network in _networks(settings.metrics_allow))


def metrics_endpoint(settings: Settings) -> Any:
    async def metrics(request: Request) -> Response:
        if not may_read(request, settings):
            return JSONResponse(
                {
                    "errors": [
                        {
                            "message": "metrics are readable from allowed addresses or with an operator key",
                            "extensions": {"code": "FORBIDDEN"},
                        }
                    ]
                },
                status_code=403,
            )
        state = request.app.state
        state.process_gauges.refresh()
        gauges = await read_gauges(state.engine)
        outbox = await outbox_counts(state.engine)
        body = await asyncio.to_thread(exposition, PipelineCollector(gauges, outbox))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


@contextlib.asynccontextmanager
async def process_gauges_running(gauges: ProcessGauges) -> AsyncIterator[None]:
    await gauges.start()
    try:
        yield
    finally:
        await gauges.stop()
