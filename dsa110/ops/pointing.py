"""The pointing monitor: where the telescope last pointed, and whether that record is fresh.

A pointing is what ``/api/pointing_history`` lists (legacy-pipeline-facts §3.11): an
observation group's mid-epoch and the phase centre of its Measurement Set, plus any rows of
``pointing_history`` (imported from the legacy converter). The newest one's age says whether
data are still arriving: a drift scan makes a group every 5 minutes, so a pointing older
than ``DEFAULT_STALE_AFTER_S`` (three groups) means the converter or the telescope stopped.
The processing record is the groups of the last day: how many arrived, completed, failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.enums import GroupState
from dsa110.db.tables import groups, measurement_sets, pointing_history
from dsa110.times import mjd_to_datetime

DEFAULT_STALE_AFTER_S: Final = 900.0
WINDOW: Final = timedelta(hours=24)


@dataclass(frozen=True)
class PointingMonitor:
    checked_at: datetime
    last_mjd: float | None
    last_ra_deg: float | None
    last_dec_deg: float | None
    age_s: float | None
    stale: bool
    stale_after_s: float
    groups_received: int
    groups_completed: int
    groups_failed: int
    last_received_at: datetime | None
    last_completed_at: datetime | None
    last_failed_at: datetime | None
    last_error: str | None
    issues: tuple[str, ...]

    @property
    def last_at(self) -> datetime | None:
        return None if self.last_mjd is None else mjd_to_datetime(self.last_mjd)


async def pointing_monitor(
    engine: AsyncEngine, stale_after_s: float = DEFAULT_STALE_AFTER_S, now: datetime | None = None
) -> PointingMonitor:
    now = now or datetime.now(UTC)
    g, ms, ph = groups.c, measurement_sets.c, pointing_history.c
    since = now - WINDOW
    async with engine.connect() as conn:
        from_ms = (
            await conn.execute(
                select(g.mid_mjd, ms.ra_deg, ms.dec_deg)
                .select_from(measurement_sets.join(groups, ms.group_pk == g.id))
                .where(ms.ra_deg.is_not(None), ms.dec_deg.is_not(None))
                .order_by(g.mid_mjd.desc())
                .limit(1)
            )
        ).first()
        from_table = (
            await conn.execute(select(ph.mjd, ph.ra_deg, ph.dec_deg).order_by(ph.mjd.desc()).limit(1))
        ).first()
        counted = select(g.state, func.count()).where(g.received_at >= since).group_by(g.state)
        by_state: dict[str, int] = {str(s): int(n) for s, n in (await conn.execute(counted)).all()}
        last_received = (await conn.execute(select(func.max(g.received_at)))).scalar()
        last_completed = (
            await conn.execute(select(func.max(g.updated_at)).where(g.state == str(GroupState.COMPLETED)))
        ).scalar()
        failed = (
            await conn.execute(
                select(g.updated_at, g.error)
                .where(g.state == str(GroupState.FAILED))
                .order_by(g.updated_at.desc())
                .limit(1)
            )
        ).first()
    candidates = [r for r in (from_ms, from_table) if r is not None]
    newest = max(candidates, key=lambda r: float(r[0])) if candidates else None
    age = None if newest is None else (now - mjd_to_datetime(float(newest[0]))).total_seconds()
    stale = age is None or age > stale_after_s
    received = sum(by_state.values())
    n_failed = int(by_state.get(str(GroupState.FAILED), 0))
    issues: list[str] = []
    if newest is None:
        issues.append("no pointing recorded yet")
    elif stale:
        issues.append(f"the newest pointing is {age:.0f} s old (stale after {stale_after_s:.0f} s)")
    if received and n_failed:
        issues.append(f"{n_failed} of {received} groups of the last 24 h failed")
    return PointingMonitor(
        checked_at=now,
        last_mjd=None if newest is None else float(newest[0]),
        last_ra_deg=None if newest is None else float(newest[1]),
        last_dec_deg=None if newest is None else float(newest[2]),
        age_s=age,
        stale=stale,
        stale_after_s=stale_after_s,
        groups_received=received,
        groups_completed=int(by_state.get(str(GroupState.COMPLETED), 0)),
        groups_failed=n_failed,
        last_received_at=last_received,
        last_completed_at=last_completed,
        last_failed_at=None if failed is None else failed[0],
        last_error=None if failed is None else failed[1],
        issues=tuple(issues),
    )
