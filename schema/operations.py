"""The operations pages in the graph: the dead-letter queue, circuit breakers, caches.

The dead-letter queue is failed work that can be retried (``dsa110.ops.dlq``): failed
jobs and webhook deliveries. Breakers and caches are this server process's
(``dsa110.ops.breakers``, ``dsa110.ops.caches``). Every mutation here is the operator's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import strawberry
from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache
from strawberry.scalars import JSON

from dsa110.auth.identity import Role
from dsa110.errors import NotFoundError
from dsa110.ops import breakers, caches, dlq
from resolvers.errors import BadUserInput
from schema.base import GraphInfo
from schema.permissions import requires

NOTE_HELP: Final = "What was done or found (at most 2,000 characters)."


@strawberry.type(description="Failed work kept for an operator: a failed job or webhook delivery.")
class DeadLetter:
    item_id: str = strawberry.field(description="`job-<id>` or `webhook-<id>`.")
    component: str = strawberry.field(description="`jobs` or `webhooks`.")
    operation: str = strawberry.field(description="The job kind, or `deliver <event kind>`.")
    error_type: str = strawberry.field(description="`exit_code_<n>`, `job_lost`, `http_<status>`, ...")
    error_message: str | None
    context: JSON = strawberry.field(description="What the work was: job id and parameters, or delivery id.")
    created_at: datetime = strawberry.field(description="When the work failed.")
    retry_count: int = strawberry.field(description="Retries asked from the dead-letter queue.")
    status: str = strawberry.field(description="`pending`, `retrying`, `resolved` or `failed` (given up).")
    resolved_at: datetime | None
    resolution_note: str | None


def _letter(item: dlq.DlqItem) -> DeadLetter:
    raw: Any = item.context
    context: JSON = raw
    return DeadLetter(
        item_id=item.key,
        component=item.component,
        operation=item.operation,
        error_type=item.error_type,
        error_message=item.error_message,
        context=context,
        created_at=item.created_at,
        retry_count=item.retry_count,
        status=item.status,
        resolved_at=item.resolved_at,
        resolution_note=item.resolution_note,
    )


@strawberry.type(description="Items of the dead-letter queue by status.")
class DeadLetterCounts:
    total: int
    pending: int
    retrying: int
    resolved: int
    failed: int


@strawberry.type(description="A circuit breaker of one dependency (this server process's view).")
class CircuitBreaker:
    name: str
    kind: str = strawberry.field(description="`database`, `event_bus` or `external_catalog`.")
    state: str = strawberry.field(description="`closed`, `open` or `half_open`.")
    failure_count: int = strawberry.field(description="Failures in a row.")
    threshold: int = strawberry.field(description="Failures in a row that open it.")
    recovery_timeout_s: float = strawberry.field(description="How long it stays open before a trial call.")
    last_failure_at: datetime | None
    last_error: str | None
    last_success_at: datetime | None
    calls: int
    failures: int
    refused: int = strawberry.field(description="Calls refused while open.")
    guarding: bool = strawberry.field(description="Refuses calls when open (false: it only watches).")


def _breaker(b: breakers.CircuitBreaker) -> CircuitBreaker:
    s = b.snapshot()
    return CircuitBreaker(
        name=s.name,
        kind=s.kind,
        state=s.state,
        failure_count=s.failure_count,
        threshold=s.threshold,
        recovery_timeout_s=s.recovery_timeout_s,
        last_failure_at=s.last_failure_at,
        last_error=s.last_error,
        last_success_at=s.last_success_at,
        calls=s.calls,
        failures=s.failures,
        refused=s.refused,
        guarding=s.guarding,
    )


@strawberry.type(description="A cache of this server process, with its hit and miss counters since start.")
class CacheInfo:
    name: str
    description: str
    hits: int
    misses: int
    hit_rate: float | None
    entries: int
    max_entries: int | None
    size_bytes: int | None
    max_bytes: int | None


@strawberry.type(description="A cache emptied by `clearCaches`.")
class CacheCleared:
    name: str
    removed: int = strawberry.field(description="Entries removed.")
    clearable: bool = strawberry.field(description="False: this cache cannot be emptied by hand.")


MAX_CACHE_NAMES: Final = 32


def register_graph_caches(size: int) -> None:
    """The parsed- and validated-document caches of the schema (the subscriptions' parse cache
    registers itself in server.live_transport.operations)."""
    caches.register(
        "graphql_parse",
        caches.lru_reporter("graphql_parse", "Parsed documents (LRU).", _get_parse_cache(size)),
        clear=caches.lru_clearer(_get_parse_cache(size)),
    )
    caches.register(
        "graphql_validation",
        caches.lru_reporter(
            "graphql_validation",
            "Validation results by schema and document (LRU).",
            _get_validate_cache(size),
        ),
        clear=caches.lru_clearer(_get_validate_cache(size)),
    )


def _external_report() -> caches.CacheStats:
    from dsa110.science.external import CACHE_COUNTER

    return caches.CacheStats(
        "external_catalogs",
        "SIMBAD, NED and Gaia answers kept in the database for 30 days (entries not counted here).",
        CACHE_COUNTER.hits,
        CACHE_COUNTER.misses,
        0,
        None,
    )


async def _external_clear(engine: Any) -> int:
    from dsa110.science.external import clear_cache

    return await clear_cache(engine)


caches.register("external_catalogs", _external_report, clear=_external_clear)


def _publish(info: GraphInfo) -> Any:
    bus = info.context.bus
    return bus.publish if bus is not None else None


@strawberry.type
class OperationsQuery:
    @strawberry.field(description="The dead-letter queue, newest first: failed jobs and webhook deliveries.")
    async def dead_letters(
        self,
        info: GraphInfo,
        component: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeadLetter]:
        found = await dlq.items(
            info.context.engine, component=component, status=status, limit=limit, offset=offset
        )
        return [_letter(i) for i in found]

    @strawberry.field(description="One dead-letter item by id (`job-<id>`, `webhook-<id>`).")
    async def dead_letter(self, info: GraphInfo, item_id: str) -> DeadLetter:
        return _letter(await dlq.get(info.context.engine, item_id[:40]))

    @strawberry.field(description="Dead-letter items by status.")
    async def dead_letter_counts(self, info: GraphInfo, component: str | None = None) -> DeadLetterCounts:
        return DeadLetterCounts(**await dlq.counts(info.context.engine, component))

    @strawberry.field(description="Breakers of the database, the event bus and the external catalogs.")
    def circuit_breakers(self, name: str | None = None) -> list[CircuitBreaker]:
        chosen = breakers.all_breakers() if name is None else [_find(name)]
        return [_breaker(b) for b in chosen]

    @strawberry.field(description="The caches of the server process that answers, with hit and miss counts.")
    def caches(self) -> list[CacheInfo]:
        return [
            CacheInfo(
                name=s.name,
                description=s.description,
                hits=s.hits,
                misses=s.misses,
                hit_rate=s.hit_rate,
                entries=s.entries,
                max_entries=s.max_entries,
                size_bytes=s.size_bytes,
                max_bytes=s.max_bytes,
            )
            for s in caches.snapshot()
        ]


def _find(name: str) -> breakers.CircuitBreaker:
    found = breakers.find(name[:64])
    if found is None:
        known = ", ".join(b.name for b in breakers.all_breakers())
        raise NotFoundError(f"no circuit breaker {name[:64]!r}; known: {known}", name=name[:64])
    return found


@strawberry.type
class OperationsMutation:
    @strawberry.mutation(
        description="Retry a `pending` or `failed` dead-letter item: a job is queued again (as "
        "`retryJob`), a delivery is attempted again (operator). Its outcome settles it. Other "
        "statuses are `CONFLICT`.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def retry_dead_letter(self, info: GraphInfo, item_id: str) -> DeadLetter:
        ctx = info.context
        return _letter(await dlq.retry(ctx.engine, item_id[:40], ctx.identity.name[:255], _publish(info)))

    @strawberry.mutation(
        description="Mark a `pending` dead-letter item resolved, with a note (operator). A `retrying` "
        "item is settled by its retry, a settled one stays settled: `CONFLICT`.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def resolve_dead_letter(self, info: GraphInfo, item_id: str, note: str | None = None) -> DeadLetter:
        ctx = info.context
        return _letter(await dlq.settle(ctx.engine, item_id[:40], "resolved", note, ctx.identity.name[:255]))

    @strawberry.mutation(
        description="Give up on a `pending` dead-letter item (status `failed`; it may still be retried), "
        "with a note (operator). Other statuses are `CONFLICT`.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def fail_dead_letter(self, info: GraphInfo, item_id: str, note: str | None = None) -> DeadLetter:
        ctx = info.context
        return _letter(await dlq.settle(ctx.engine, item_id[:40], "failed", note, ctx.identity.name[:255]))

    @strawberry.mutation(
        description="Empty caches (all, or those named): this server process's in-memory caches and the "
        "stored external-catalog answers shared by all (operator). Counters of LRU caches restart at zero.",
        extensions=[requires(Role.OPERATOR)],
    )
    async def clear_caches(self, info: GraphInfo, names: list[str] | None = None) -> list[CacheCleared]:
        if names is not None and not 1 <= len(names) <= MAX_CACHE_NAMES:
            raise BadUserInput(f"names: between 1 and {MAX_CACHE_NAMES} cache names", field="names")
        try:
            cleared = await caches.clear_caches(info.context.engine, [n[:64] for n in names or []] or None)
        except caches.UnknownCache as exc:
            raise NotFoundError(str(exc), name=exc.name) from None
        return [CacheCleared(name=n, removed=r, clearable=caches.clearable(n)) for n, r in cleared]

    @strawberry.mutation(
        description="Close a circuit breaker by hand (this server process's) (operator).",
        extensions=[requires(Role.OPERATOR)],
    )
    def reset_circuit_breaker(self, name: str) -> CircuitBreaker:
        found = _find(name)
        found.reset()
        return _breaker(found)
