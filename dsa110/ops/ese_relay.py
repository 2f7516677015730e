"""``ese.candidate`` events of a detection job, relayed by the server that ran it.

With the default in-process ``memory://`` bus, the ``ese-detect`` job's subprocess cannot
reach the server's subscribers (GraphQL ``eseCandidates``, the legacy ``/api/ws/status`` and
``/api/sse/status`` channels). So the job keeps a compact record of each event it would
have published, ``[candidate_pk, event, from_phase, alert_pk]``, in its ``@@result``
(``RELAY_KEY``), and the server's job pool, on the job's ``done`` state, rebuilds the
payloads from the candidate rows and publishes them on its own bus (``server.job_pool``).
With a shared bus (Redis, PostgreSQL) the job publishes itself and keeps nothing.

The record is compact because a job's result travels on one output line, which the queue
cuts at ``dsa110.ops.queue.protocol.MAX_LINE_CHARS`` (10,000 characters): at most
``MAX_RELAYED_EVENTS`` are kept, the rest counted (``relay_dropped``). The legacy channels
need one event to resend the candidate list; a GraphQL subscriber misses the events past
the cap of one job (a first pass over a backlog); the ``alerts`` rows hold every one.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import ese_candidates, jobs, sources
from dsa110.events.channels import ESE_CANDIDATE, EseCandidateColumns

Publish = Callable[[str, dict[str, Any]], Awaitable[Any]]

RELAY_KEY: Final = "relay_events"
MAX_RELAYED_EVENTS: Final = 150
PAYLOAD_COLUMNS: Final = tuple(EseCandidateColumns.__annotations__)
"""The candidate's columns a relayed event carries: those the job publishes itself."""


class Keeper:
    """A ``publish`` for the job process that keeps the events instead (``result()``)."""

    def __init__(self) -> None:
        self.kept: list[list[Any]] = []
        self.dropped = 0

    async def __call__(self, channel: str, payload: dict[str, Any]) -> None:
        if channel != ESE_CANDIDATE:
            return
        if len(self.kept) >= MAX_RELAYED_EVENTS:
            self.dropped += 1
            return
        self.kept.append(
            [payload["candidate_pk"], payload["event"], payload.get("from_phase"), payload.get("alert_pk")]
        )

    def result(self) -> dict[str, Any]:
        return {RELAY_KEY: self.kept, "relay_dropped": self.dropped}


def _finite(value: Any) -> Any:
    """A column's value for JSON: a non-finite float (a NaN PostgreSQL would store) as None,
    as the job publishes it (the bus refuses NaN, and the event would be lost)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


async def relay_events(engine: AsyncEngine, job_id: int, publish: Publish) -> int:
    """Publish the events job ``job_id`` kept (``Keeper``); returns how many.

    Each payload is rebuilt from the candidate's row as it is now (its fields, the
    source's name) plus the kept event, previous phase and alert; a candidate deleted
    since is skipped. A job that kept nothing (another kind, a shared bus) publishes none.
    """
    async with engine.connect() as conn:
        job = (await conn.execute(select(jobs.c.type, jobs.c.result).where(jobs.c.id == job_id))).first()
        kept = job[1].get(RELAY_KEY) if job is not None and isinstance(job[1], dict) else None
        if job is None or job[0] != "ese-detect" or not isinstance(kept, list):
            return 0
        records = [r for r in kept if isinstance(r, list) and len(r) == 4 and isinstance(r[0], int)]
        if not records:
            return 0
        rows = (
            await conn.execute(
                select(ese_candidates, sources.c.source_id.label("source_name"))
                .join(sources, sources.c.id == ese_candidates.c.source_pk)
                .where(ese_candidates.c.id.in_({r[0] for r in records}))
            )
        ).mappings()
        by_pk = {int(r["id"]): r for r in rows}
    sent = 0
    for candidate_pk, event, from_phase, alert_pk in records:
        row = by_pk.get(candidate_pk)
        if row is None:
            continue
        payload: dict[str, Any] = {
            "event": str(event),
            "candidate_pk": candidate_pk,
            "alert_pk": alert_pk,
            "source_pk": row["source_pk"],
            "source_id": row["source_name"],
            "status": row["status"],
            "from_phase": from_phase,
            **{c: _finite(row[c]) for c in PAYLOAD_COLUMNS},
        }
        await ESE_CANDIDATE.publish(publish, payload)  # type: ignore[arg-type]
        sent += 1
    return sent
