"""The ESE candidate lifecycle: status transitions recorded with who, when and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.enums import ESE_CANDIDATE_STATUSES as STATUSES
from dsa110.db.tables import alerts, ese_candidates, ese_status_changes
from dsa110.db.writes import write_transaction
from dsa110.events.channels import ESE_CANDIDATE
from dsa110.ops.ingest.common import (
    TRANSITIONS,
    CandidateStatusError,
    NotFoundError,
    Publish,
)


async def set_candidate_status(
    engine: AsyncEngine,
    candidate_pk: int,
    status: str,
    changed_by: str,
    notes: str | None = None,
    *,
    publish: Publish | None = None,
) -> dict[str, Any]:
    """Move a candidate along its lifecycle and record who, when and why.

    active -> investigated | false_positive | dismissed; investigated -> resolved |
    false_positive | dismissed; the three closing states are final. Closing a candidate
    marks its open alerts resolved. Returns the updated candidate row.
    """
    if status not in STATUSES:
        raise CandidateStatusError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    if not isinstance(changed_by, str) or not changed_by.strip():
        raise CandidateStatusError("changed_by is required")
    if len(changed_by) > 64:
        raise CandidateStatusError("changed_by must be at most 64 characters")
    if notes is not None and (not isinstance(notes, str) or len(notes) > 10_000):
        raise CandidateStatusError("notes must be text of at most 10000 characters")
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        current = (
            (
                await conn.execute(
                    select(ese_candidates).where(ese_candidates.c.id == candidate_pk).with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if current is None:
            raise NotFoundError(f"ESE candidate {candidate_pk} does not exist")
        from_status = current["status"]
        if status not in TRANSITIONS.get(from_status, frozenset()):
            allowed = ", ".join(sorted(TRANSITIONS.get(from_status, ()))) or "none (final state)"
            raise CandidateStatusError(
                f"cannot change status from {from_status} to {status}; allowed: {allowed}"
            )
        result = await conn.execute(
            update(ese_candidates)
            .where(ese_candidates.c.id == candidate_pk, ese_candidates.c.status == from_status)
            .values(status=status, updated_at=now, changed_by=changed_by, notes=notes)
        )
        if result.rowcount != 1:
            raise CandidateStatusError(f"candidate {candidate_pk} changed concurrently; retry")
        await conn.execute(
            insert(ese_status_changes).values(
                candidate_pk=candidate_pk,
                from_status=from_status,
                to_status=status,
                changed_by=changed_by,
                changed_at=now,
                notes=notes,
            )
        )
        if not TRANSITIONS[status]:
            await conn.execute(
                update(alerts)
                .where(alerts.c.candidate_pk == candidate_pk, alerts.c.resolved_at.is_(None))
                .values(resolved_at=now)
            )
        row = dict(
            (await conn.execute(select(ese_candidates).where(ese_candidates.c.id == candidate_pk)))
            .mappings()
            .one()
        )
    if publish is not None:
        await ESE_CANDIDATE.publish(
            publish,
            {
                "event": "status_changed",
                "candidate_pk": candidate_pk,
                "source_pk": row["source_pk"],
                "from_status": from_status,
                "status": status,
                "changed_by": changed_by,
            },
        )
    return row
