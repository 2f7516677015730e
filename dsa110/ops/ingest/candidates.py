"""The ESE candidate lifecycle: status transitions recorded with who, when and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.enums import ESE_CANDIDATE_STATUSES as STATUSES
from dsa110.db.tables import alerts, ese_candidates, ese_status_changes
from dsa110.db.writes import write_transaction
from dsa110.events.channels import ESE_CANDIDATE
from dsa110.ops.ingest.common import (
    TRANSITIONS,
    CandidateChangedError,
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

    Raises ``CandidateStatusError`` (``BAD_USER_INPUT``) for a bad value or a change the
    lifecycle refuses, ``NotFoundError``, and ``CandidateChangedError`` (``CONFLICT``) when
    another writer changed the candidate while this change was being made.
    """
    if status not in STATUSES:
        raise CandidateStatusError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    if not isinstance(changed_by, str) or not changed_by.strip():
        raise CandidateStatusError("changed_by is required")
    if len(changed_by) > 64:
        raise CandidateStatusError("changed_by must be at most 64 characters")
    if notes is not None and (not isinstance(notes, str) or len(notes) > 10_000):
        raise CandidateStatusError("notes must be text of at most 10000 characters")
    # Judged against the status as committed when the request came, outside the write lock:
    # a change the lifecycle refuses from there is the request's fault (BAD_USER_INPUT). The
    # update below applies only if the status is still that one; if another writer moved the
    # candidate meanwhile, this request lost a race (CONFLICT), whether or not its change
    # would be allowed from the new status: its author decided on what they saw.
    async with engine.connect() as conn:
        seen = (
            await conn.execute(select(ese_candidates.c.status).where(ese_candidates.c.id == candidate_pk))
        ).scalar_one_or_none()
    if seen is None:
        raise NotFoundError(f"ESE candidate {candidate_pk} does not exist")
    from_status = str(seen)
    if status not in TRANSITIONS.get(from_status, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(from_status, ()))) or "none (final state)"
        raise CandidateStatusError(f"cannot change status from {from_status} to {status}; allowed: {allowed}")
    now = datetime.now(UTC)
    async with write_transaction(engine) as conn:
        result = await conn.execute(
            update(ese_candidates)
            .where(ese_candidates.c.id == candidate_pk, ese_candidates.c.status == from_status)
            .values(status=status, updated_at=now, changed_by=changed_by, notes=notes)
        )
        if result.rowcount != 1:
            raise await _lost_race(conn, candidate_pk, from_status, status)
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


async def _lost_race(conn: AsyncConnection, candidate_pk: int, from_status: str, status: str) -> Exception:
    """The error for an update that found the candidate no longer ``from_status``."""
    current = (
        (
            await conn.execute(
                select(ese_candidates.c.status, ese_candidates.c.changed_by).where(
                    ese_candidates.c.id == candidate_pk
                )
            )
        )
        .mappings()
        .first()
    )
    if current is None:
        return NotFoundError(f"ESE candidate {candidate_pk} does not exist")
    by = f" by {current['changed_by']}" if current["changed_by"] else ""
    return CandidateChangedError(
        f"ESE candidate {candidate_pk} changed while this request was made: it was {from_status}, "
        f"it is now {current['status']}{by}; reload it and decide again (not changed to {status})",
        status=current["status"],
    )
