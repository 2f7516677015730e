"""``create_app(settings)``: the composition root of the service."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route, WebSocketRoute

from compat_rest.app import compat_app
from compat_rest.exports import export_routes
from compat_rest.graph import GraphRunner
from compat_rest.live_channels import SSE_PATH as LEGACY_SSE_PATH
from compat_rest.live_channels import LegacyStatusHub
from compat_rest.live_channels import routes as legacy_live_routes
from compat_rest.live_status import LegacyStatusParts
from compat_rest.plots import plot_routes
from compat_rest.routing import IGNORED_HEADER
from compat_rest.vo import vo_routes
from dsa110.auth import audit
from dsa110.auth.authenticator import Authenticator
from dsa110.auth.key_events import KeyChangeListener
from dsa110.auth.ratelimit import create_rate_limiter
from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade
from dsa110.db.work import track_work
from dsa110.events import EventBus, create_event_bus
from dsa110.events.log import EventRecorder
from dsa110.legacy.service import LegacyFollower
from dsa110.ops import caches
from dsa110.ops.lease import HostLease
from dsa110.ops.metrics import MetricsSampler
from dsa110.ops.queue import kinds
from dsa110.plots.cache import PlotCache
from dsa110.settings import Settings
from dsa110.webhooks.dispatcher import Dispatcher, DispatchSettings
from dsa110.webhooks.targets import Allowlist
from schema.schema import build_schema
from server.budget import BudgetMiddleware
from server.concurrency import ConcurrencyLimitMiddleware, InFlight
from server.connections import existing_process_slots
from server.credential_streams import CredentialStreams
from server.deadline import DeadlineMiddleware
from server.event_streams import EventStreamPaths
from server.fallback import WebSocketPaths
from server.fallback import install as install_fallback
from server.files import ROUTES as FILE_ROUTES
from server.graphiql import graphiql_static_app
from server.graphql_view import GRAPHQL_PATH, STATIC_PREFIX, GraphView
from server.health import HealthReport, database_state, watch_database
from server.health import install as install_health
from server.home import home
from server.job_logs import PATH as JOB_LOGS_PATH
from server.job_logs import routes as job_log_routes
from server.job_pool import JobPool, StreamingPool
from server.limits import BodyLimitMiddleware
from server.metrics import METRICS_PATH, MetricsMiddleware, ProcessGauges, metrics_endpoint
from server.response_cap import ResponseCapMiddleware
from server.trust import TrustMiddleware

log = logging.getLogger("dsa110.server")


def metrics_sampler(settings: Settings, engine: AsyncEngine, bus: EventBus) -> MetricsSampler:
    """The system-metrics sampler; one per host when processes share a bus.

    With a shared bus, every process's subscribers get the samples of whichever process
    takes them, so processes on one host (one data directory) share a lease and one
    samples. With the in-process bus each process is on its own and samples itself.
    """
    lease = (
        HostLease(settings.data_dir / f".metrics-sampler.{socket.gethostname()}.lock")
        if settings.events_shared
        else None
    )
    return MetricsSampler(
        engine,
        bus,
        interval_s=settings.metrics_interval_s,
        retention=settings.metrics_retention,
        lease=lease,
    )


def webhook_dispatcher(settings: Settings, engine: AsyncEngine, bus: EventBus) -> Dispatcher | None:
    """The alert-delivery loop of this process (every process runs one; they share the outbox)."""
    if settings.webhook_poll_s <= 0:
        return None
    stale = settings.webhook_streaming_stale_minutes
    return Dispatcher(
        engine,
        bus,
        DispatchSettings(
            poll_s=settings.webhook_poll_s,
            timeout_s=settings.webhook_timeout_s,
            max_attempts=settings.webhook_max_attempts,
            retry_base_s=settings.webhook_retry_base_s,
            stale_streaming=timedelta(minutes=stale) if stale > 0 else None,
            public_url=settings.public_url,
        ),
        Allowlist(settings.webhook_allow_hosts),
    )


def legacy_follower(settings: Settings, engine: AsyncEngine, bus: EventBus) -> LegacyFollower | None:
    """The follower of the legacy pipeline's state files (``--follow-legacy``); one per host."""
    if not settings.legacy_follow:
        return None
    lease = HostLease(settings.data_dir / f".legacy-follower.{socket.gethostname()}.lock")
    return LegacyFollower(engine, bus, settings.legacy_follow, poll_s=settings.legacy_poll_s, lease=lease)


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> Starlette:
    settings = settings or Settings.from_env()
    engine = track_work(  # requests can stop their SQL
        create_engine(settings.resolved_database_url, write_lock_timeout_s=settings.write_lock_timeout_s)
    )
    schema = build_schema(settings)
    bus = create_event_bus(settings.events_url, namespace=settings.events_namespace)
    authenticator = Authenticator(engine, settings)
    key_changes = KeyChangeListener(authenticator, bus)  # revocations from other processes
    limiter = create_rate_limiter(settings.events_url, settings.events_namespace)
    graphql = GraphView(schema, engine, settings, bus, authenticator)
    sampler = metrics_sampler(settings, engine, bus) if settings.metrics_interval_s > 0 else None
    runner = GraphRunner(schema, engine, settings, bus)  # the routes that answer from the graph
    legacy_hub = LegacyStatusHub(LegacyStatusParts(runner), bus)
    plot_cache = PlotCache()
    caches.register("plots", plot_cache.stats, clear=plot_cache.clear)
    recorder = EventRecorder(engine, bus)  # the recent-events log (`/api/events/*`)
    dispatcher = webhook_dispatcher(settings, engine, bus)
    job_pool = JobPool(settings, engine, bus) if settings.job_slots > 0 else None
    streaming = StreamingPool(settings, engine, bus) if settings.streaming_supervise else None
    in_flight = InFlight(settings.max_concurrent_requests_per_client)
    follower = legacy_follower(settings, engine, bus)

    def health_parts() -> dict[str, Any]:
        # Read from the front door's thread too (server.health): attributes and sizes only.
        streams = graphql.streams
        live = {
            "producers": streams.producer_count,
            "subscribers": streams.subscriber_count,
            "deliveries_direct": streams.deliveries_direct,
            "deliveries_queued": streams.deliveries_queued,
        }
        if sampler is None or not sampler.running:
            sampling = "off"
        else:
            sampling = "sampling" if sampler.sampling else "standby"  # another process samples
        parts: dict[str, Any] = {
            "live": live,
            "metrics_sampler": sampling,
            "job_pool": job_pool.state if job_pool is not None else "off",
            "streaming_supervisor": streaming.state if streaming is not None else "off",
        }
        if (slots := existing_process_slots()) is not None:  # under server.http_protocol
            parts["connections"] = slots.stats()
        return parts

    report = HealthReport(health_parts, stall_s=settings.health_stall_s)

    async def healthz(_: Request) -> JSONResponse:
        # The route checks the database now; the front door answers from the watch instead.
        status, body = report.answer(await database_state(engine))
        return JSONResponse(body, status_code=status)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        if migrate:
            await upgrade(engine)
        await bus.start()
        await key_changes.start()
        await recorder.start()
        if sampler is not None:
            await sampler.start()
        await process_gauges.start()
        database_watch = await watch_database(engine, report)
        install_health(report)
        if dispatcher is not None:
            await dispatcher.start()
        # The job kinds (light modules): an API-only process (no job slots; workers run
        # elsewhere) queues and checks every kind too, not only the built-in ones.
        kinds.load_plugins()
        if job_pool is not None:
            await job_pool.start()
        if streaming is not None:
            await streaming.start()
        if follower is not None:
            await follower.start()
        try:
            yield {}
        finally:
            if follower is not None:
                await follower.stop()
            if streaming is not None:
                await streaming.stop()
            if job_pool is not None:
                await job_pool.stop()
            if dispatcher is not None:
                await dispatcher.stop()
            install_health(None)
            database_watch.cancel()
            await process_gauges.stop()
            if sampler is not None:
                await sampler.stop()
            await legacy_hub.stop()
            await recorder.stop()
            await key_changes.stop()
            await graphql.streams.close()
            await bus.close()
            await limiter.close()
            await audit.drain(audit.record_timeout_s(engine))  # the records of cancelled mutations
            await engine.dispose()

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 404)
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "BAD_REQUEST")
        detail = getattr(exc, "detail", "Not Found")
        return JSONResponse(
            {"errors": [{"message": detail, "extensions": {"code": code}}]}, status_code=status
        )

    app = Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/healthz", healthz),
            Route(METRICS_PATH, metrics_endpoint(settings), methods=["GET"]),
            Mount(STATIC_PREFIX, graphiql_static_app(), name="graphiql-static"),
            Route(GRAPHQL_PATH, graphql, methods=["GET", "POST"]),
            WebSocketRoute(GRAPHQL_PATH, graphql),
            *FILE_ROUTES,
            *export_routes(runner, settings.export_max_rows),
            *vo_routes(runner, settings.vo_max_records),
            *plot_routes(runner, plot_cache),
            *legacy_live_routes(legacy_hub),
            *job_log_routes(graphql.streams),
            # Last: the compat layer answers every /api path (unknown ones with a 404 envelope).
            Mount("/api", app=compat_app(schema, engine, settings, bus), name="compat-rest"),
        ],
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
    install_fallback(app.router)  # slash redirects that do not echo the client's Host
    # Innermost, so that they know the caller: bounds on the work of each request.
    # Event streams (meant to last): the legacy status channel and a job's log always (each
    # answers by SSE whatever the client accepts); /graphql when asked for as
    # text/event-stream. No deadline, not counted per client.
    streams = EventStreamPaths(always=(LEGACY_SSE_PATH, JOB_LOGS_PATH), negotiated=(GRAPHQL_PATH,))
    app.add_middleware(WebSocketPaths, routes=app.routes)  # a handshake nothing takes: a coded 404
    # The budget is charged once a request is let in to run: a refusal of the request limit
    # outside it costs a client nothing of it (server.budget).
    app.add_middleware(BudgetMiddleware, settings=settings, limiter=limiter)
    app.add_middleware(DeadlineMiddleware, deadline_s=settings.request_deadline_s, streams=streams)
    app.add_middleware(ResponseCapMiddleware, max_bytes=settings.max_response_bytes)
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        in_flight=in_flight,
        exempt_paths=("/healthz", METRICS_PATH),
        exempt_prefixes=(f"{STATIC_PREFIX}/",),
        streams=streams,
    )
    # Just inside the trust check, which names the key: a revoked key's open WebSockets and
    # event streams are ended (the same stream rule as the deadline's).
    app.add_middleware(CredentialStreams, streams=authenticator.streams, event_streams=streams)
    app.add_middleware(
        TrustMiddleware,
        settings=settings,
        authenticator=authenticator,
        limiter=limiter,
        # /metrics decides for itself (allowed addresses, or an operator key).
        open_paths=("/", "/healthz", METRICS_PATH, "/api/docs", "/api/openapi.json"),
        open_prefixes=(f"{STATIC_PREFIX}/", "/api/docs/"),
        sse_paths=(LEGACY_SSE_PATH,),
        ws_init_paths=(GRAPHQL_PATH,),
        ide_path=GRAPHQL_PATH,
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:  # outermost: preflight requests are answered before any check
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
            # What a browser page may read beside the safelisted headers: when to retry a
            # refusal, and which of its parameters a route did not read.
            expose_headers=["Retry-After", IGNORED_HEADER],
            max_age=600,
        )
    app.add_middleware(MetricsMiddleware)  # outermost: counts every answer, refusals included
    process_gauges = ProcessGauges(app.state)
    app.state.settings = settings
    app.state.engine = engine
    app.state.schema = schema
    app.state.bus = bus
    app.state.graphql_view = graphql
    app.state.live = graphql.streams
    app.state.legacy_status = legacy_hub
    app.state.metrics_sampler = sampler
    app.state.authenticator = authenticator
    app.state.key_changes = key_changes
    app.state.rate_limiter = limiter
    app.state.plot_cache = plot_cache
    app.state.event_recorder = recorder
    app.state.process_gauges = process_gauges
    app.state.webhooks = dispatcher
    app.state.job_pool = job_pool
    app.state.streaming = streaming
    app.state.in_flight = in_flight
    app.state.legacy_follower = follower
    app.state.health = report
    return app
