"""The audit log: one row per mutation attempted - who, what, with what, when, from where, outcome.

Refused attempts are logged too (outcome ``UNAUTHENTICATED`` or ``FORBIDDEN``), so the log
shows probing as well as changes. So are mutations stopped half-way (outcome ``CANCELLED``
when their client ended them, ``DEADLINE_EXCEEDED``): their write may have committed just
before the stop, so the record is written whatever became of the request (see ``record``).

Arguments are kept as a bounded summary, not verbatim: an ingest of 10^4 measurements is
recorded as ``"[10000 items]"``, long text is cut.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Final

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Identity
from dsa110.db.tables import audit_log
from dsa110.db.work import run_within
from dsa110.db.writes import lock_budget_s, write_transaction

logger = logging.getLogger("dsa110.audit")

MAX_TEXT: Final = 200
MAX_LIST: Final = 10
MAX_DEPTH: Final = 4
MAX_KEYS: Final = 30
OK: Final = "OK"
RECORD_MARGIN_S: Final = 2.0
"""How much longer than a writer's wait for the write lock a record may take before it is stopped."""

_recording: set[asyncio.Task[None]] = set()  # records being written (a pending task is only weakly held)


@dataclass(frozen=True)
class AuditRecord:
    identity: Identity
    operation: str
    operation_name: str | None
    arguments: dict[str, Any]
    outcome: str


def summarise(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, bounded picture of an argument value."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        # JSON has no NaN or Infinity (PostgreSQL's json type refuses them, and the whole
        # record with them), yet a request body may hold them; keep them as text.
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Enum):
        return summarise(value.value, depth)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else f"{value[:MAX_TEXT]}... ({len(value)} characters)"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            return f"[{len(value)} items]"
        return [summarise(v, depth + 1) for v in value]
    fields = value if isinstance(value, dict) else getattr(value, "__dict__", None)
    if isinstance(fields, dict):
        items = list(fields.items())
        out = {str(k)[:64]: summarise(v, depth + 1) for k, v in items[:MAX_KEYS]}
        if len(items) > MAX_KEYS:
            out["..."] = f"{len(items) - MAX_KEYS} more"
        return out
    return summarise(str(value), depth)


def record_timeout_s(engine: AsyncEngine) -> float:
    """How long writing a record may take: the engine's wait for the write lock, and a margin."""
    return lock_budget_s(engine) + RECORD_MARGIN_S


def start_record(engine: AsyncEngine, entry: AuditRecord) -> asyncio.Task[None]:
    """Start storing ``entry`` and return the task; a failure to store is logged, never raised.

    The record is written however the mutation ended, stopped half-way included: the request's
    ``Work`` (``dsa110.db.work``) then refuses every statement, and its task is being cancelled.
    So the record is written in a task of its own, as a ``Work`` of its own, held until done
    (:func:`drain` waits for the ones still running at shutdown). The write is bounded by
    ``record_timeout_s``: past it, it is stopped (its SQL ended) and logged.
    """
    task = asyncio.create_task(_record_within(engine, entry, record_timeout_s(engine)))
    _recording.add(task)
    task.add_done_callback(_recording.discard)
    return task


async def record(engine: AsyncEngine, entry: AuditRecord) -> None:
    """Store ``entry`` and wait until it is stored (:func:`start_record`), shielded from the
    caller's cancellation: cancelled, the caller stops waiting and the record is still written."""
    await asyncio.shield(start_record(engine, entry))


async def drain(timeout_s: float) -> None:
    """Wait (at most ``timeout_s``) for the records still being written: at shutdown, before
    the engine goes, so that the mutations a stopping server cancelled keep their records."""
    if _recording:
        await asyncio.wait(set(_recording), timeout=timeout_s)


async def _record_within(engine: AsyncEngine, entry: AuditRecord, timeout_s: float) -> None:
    # A Work of its own (dsa110.db.work.run_within): the request's work, if any, may have
    # been stopped, and must not stop this write; past its limit this one is stopped alone.
    store, _ = await run_within(
        timeout_s, _store(engine, entry), f"the audit record took longer than {timeout_s:g} s"
    )
    who = entry.identity
    if store.cancelled():
        logger.error(
            "audit: could not record %s by %s (%s) within %g s",
            entry.operation,
            who.name,
            entry.outcome,
            timeout_s,
        )
    elif (error := store.exception()) is not None:
        logger.error(
            "audit: could not record %s by %s (%s)", entry.operation, who.name, entry.outcome, exc_info=error
        )


async def _store(engine: AsyncEngine, entry: AuditRecord) -> None:
    who = entry.identity
    async with write_transaction(engine) as conn:
        await conn.execute(
            insert(audit_log).values(
                at=datetime.now(UTC),
                actor=who.name[:255],
                actor_kind=who.kind,
                role=who.role.value if who.role is not None else None,
                operation=entry.operation[:128],
                operation_name=(entry.operation_name or None) and str(entry.operation_name)[:128],
                arguments=summarise(entry.arguments),
                address=(who.address or None) and str(who.address)[:64],
                outcome=entry.outcome[:64],
            )
        )
