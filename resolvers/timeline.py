"""The observing timeline: observation groups split into segments where the epochs jump.

The rule is the legacy one (legacy-pipeline-facts §3.10, on the groups we know rather than
a directory walk): groups in ``group_id`` order, a new segment wherever a group's epoch is
more than the gap threshold after the previous group's. It was computed in Python over
every group read page by page (17,280 groups in 60 days: about a second of CPU a request);
here the database computes it in one statement with window functions (SQLite >= 3.25 and
PostgreSQL alike), and only one row per segment comes back.

Each group is flagged as the first of its segment (its epoch minus the previous group's is
not within the threshold, or it has no previous group) and as the last (the same test
against the next group); a running sum of the first-flags numbers the segments; each
segment's row is an aggregate over its groups. The epochs of a segment are those of its
first and last groups in ``group_id`` order (not the smallest and largest), as the legacy
rule had them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Float, Select, bindparam, case, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import read_connection
from dsa110.db.tables import groups, subband_files

MAX_GROUPS: Final = 50_000
"""Groups a timeline covers at most (about 170 days of 5-minute groups): the first ones by
``group_id``; past them the timeline says ``truncated``."""
MAX_GAP_HOURS: Final = 8760.0


@dataclass(frozen=True, slots=True)
class Segment:
    first_group_id: str
    start_mjd: float
    end_mjd: float
    group_count: int
    subband_file_count: int


@dataclass(frozen=True, slots=True)
class Timeline:
    segments: tuple[Segment, ...]
    group_count: int
    subband_file_count: int
    truncated: bool


def _segments_statement() -> Select[Any, Any, Any, int, Any]:
    ordered = (
        select(groups.c.id, groups.c.group_id, groups.c.mid_mjd)
        .order_by(groups.c.group_id)
        .limit(bindparam("max_groups"))
        .subquery("ordered")
    )
    gap_days = bindparam("gap_days", type_=Float)
    epoch, in_order = ordered.c.mid_mjd, ordered.c.group_id
    files = (
        select(func.count())
        .select_from(subband_files)
        .where(subband_files.c.group_pk == ordered.c.id)
        .scalar_subquery()
    )
    # NULL (no neighbour) is not within the threshold: the else branch.
    after_previous = epoch - func.lag(epoch).over(order_by=in_order)
    before_next = func.lead(epoch).over(order_by=in_order) - epoch
    flagged = select(
        in_order.label("group_id"),
        epoch.label("mid_mjd"),
        files.label("files"),
        case((after_previous <= gap_days, 0), else_=1).label("first"),
        case((before_next <= gap_days, 0), else_=1).label("last"),
    ).subquery("flagged")
    numbered = select(
        flagged,
        func.sum(flagged.c.first).over(order_by=flagged.c.group_id, rows=(None, 0)).label("segment"),
    ).subquery("numbered")
    starts, ends = numbered.c.first == 1, numbered.c.last == 1
    return (
        select(
            func.min(case((starts, numbered.c.group_id))),
            func.min(case((starts, numbered.c.mid_mjd))),
            func.min(case((ends, numbered.c.mid_mjd))),
            func.count(),
            func.sum(numbered.c.files),
        )
        .group_by(numbered.c.segment)
        .order_by(numbered.c.segment)
    )


# Built once: a statement object reused is neither rebuilt nor re-keyed for the compiled cache.
_SEGMENTS: Final = _segments_statement()
_GROUP_COUNT: Final = select(func.count()).select_from(groups)


async def observation_timeline(
    engine: AsyncEngine, gap_threshold_hours: float, max_groups: int = MAX_GROUPS
) -> Timeline:
    """The segments of the first ``max_groups`` groups (by ``group_id``), split at gaps of
    more than ``gap_threshold_hours`` between consecutive epochs."""
    params = {"gap_days": gap_threshold_hours / 24.0, "max_groups": max_groups}
    async with read_connection(engine) as conn:
        rows = (await conn.execute(_SEGMENTS, params)).all()
        total = int((await conn.execute(_GROUP_COUNT)).scalar_one())
    segments = tuple(
        Segment(
            first_group_id=str(group_id),
            start_mjd=float(start),
            end_mjd=float(end),
            group_count=int(count),
            subband_file_count=int(files or 0),
        )
        for group_id, start, end, count, files in rows
    )
    covered = sum(s.group_count for s in segments)
    return Timeline(
        segments=segments,
        group_count=covered,
        subband_file_count=sum(s.subband_file_count for s in segments),
        truncated=covered >= max_groups and total > covered,
    )
