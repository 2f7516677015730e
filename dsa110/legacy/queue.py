"""``ingest.sqlite3``: the queue (``ingest_queue`` -> groups) and its ``subband_files``.

Legacy-pipeline-facts section 1.1. A group's id is its observation start
(``YYYY-MM-DDTHH:MM:SS``); its mid-MJD, which the legacy queue does not store, is the
start plus half its ``chunk_minutes`` (5 minutes when absent). ``error_message`` (added by
a later migration) is read when ``error`` is empty. ``calibrators`` is never written by
the pipeline at the commit the facts describe; it is imported when a row has it (a JSON
list), and otherwise left empty: ``has_calibrator`` alone is kept.

Every group that is new or whose state, counters or times changed publishes
``group.state`` as :func:`dsa110.ops.jobs.set_group_state` does, so ``pipelineStatus``,
``groupUpdates`` and the legacy WebSocket/SSE channels fire when the pipeline moves its
queue. A group gaining subband files publishes it too (its ``presentSubbands`` changed).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from sqlalchemy import select

from dsa110.db.enums import GroupState
from dsa110.db.tables import groups, subband_files
from dsa110.events import GROUP_STATE
from dsa110.legacy import store
from dsa110.legacy.context import Batch, ImportContext
from dsa110.legacy.table import Row, TableSpec
from dsa110.legacy.values import (
    as_float,
    epoch_time,
    flag,
    group_start,
    json_value,
    mjd_of,
    resolve_path,
    text,
)

DEFAULT_CHUNK_MINUTES: Final = 5.0
NAME: Final = "queue.ingest_queue"
STATES: Final = frozenset(s.value for s in GroupState)


def _group(ctx: ImportContext, row: Row) -> dict[str, Any] | None:
    gid = text(row.get("group_id"))
    if not gid or len(gid) > 32:
        ctx.report.skip(NAME, "group_id empty or longer than 32 characters")
        return None
    state = text(row.get("state"))
    if state not in STATES:
        ctx.report.skip(NAME, f"unknown state {state!r}")
        return None
    received = epoch_time(row.get("received_at"), ctx.odd, NAME, "received_at")
    updated = epoch_time(row.get("last_update"), ctx.odd, NAME, "last_update")
    start = group_start(gid)
    received = received or updated or start
    if received is None:
        ctx.report.skip(NAME, "no time: neither received_at, last_update nor a timestamp group_id")
        return None
    if start is None:
        ctx.odd.note(NAME, "group_id is not a timestamp: mid-MJD from received_at")
        start = received
    minutes = as_float(row.get("chunk_minutes")) or DEFAULT_CHUNK_MINUTES
    calibrators = json_value(row.get("calibrators"), ctx.odd, NAME, "calibrators")
    return {
        "group_id": gid,
        "state": state,
        "received_at": received,
        "updated_at": updated or received,
        "mid_mjd": mjd_of(start + timedelta(minutes=minutes / 2.0)),
        "expected_subbands": int(as_float(row.get("expected_subbands")) or 16),
        "retry_count": int(as_float(row.get("retry_count")) or 0),
        "error": text(row.get("error")) or text(row.get("error_message")),
        "has_calibrator": flag(row.get("has_calibrator")),
        "calibrators": calibrators if isinstance(calibrators, list) else None,
    }


async def write_groups(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    converted = {g["group_id"]: g for row in rows if (g := _group(ctx, row)) is not None}
    if not converted:
        return 0
    before = dict(
        (
            await b.conn.execute(
                select(groups.c.group_id, groups.c.state).where(groups.c.group_id.in_(list(converted)))
            )
        ).all()
    )
    changed = await store.upsert(
        b.conn, groups, list(converted.values()), ("group_id",), ("id", "group_id", "state", "retry_count")
    )
    for row in changed:
        b.found["group"][row["group_id"]] = int(row["id"])
        b.emit(
            GROUP_STATE.signal(
                {
                    "group_pk": int(row["id"]),
                    "group_id": row["group_id"],
                    "state": row["state"],
                    "from_state": before.get(row["group_id"]),
                    "retry_count": row["retry_count"],
                }
            )
        )
    return len(changed)


async def write_subbands(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    name = "queue.subband_files"
    pks = await ctx.lookup(b, "group", groups, "group_id", (text(r.get("group_id")) for r in rows))
    out: dict[tuple[int, int], dict[str, Any]] = {}
    for row in rows:
        pk = pks.get(text(row.get("group_id")) or "")
        index = as_float(row.get("subband_idx"))
        path = resolve_path(row.get("path"), ctx.root, ctx.odd, name)
        if pk is None:
            ctx.report.skip(name, "its group is not in the queue")
            continue
        if index is None or path is None:
            ctx.report.skip(name, "no subband index or path")
            continue
        out[(pk, int(index))] = {"group_pk": pk, "subband_idx": int(index), "path": path}
    changed = await store.upsert(
        b.conn, subband_files, list(out.values()), ("group_pk", "subband_idx"), ("group_pk",)
    )
    touched = sorted({int(r["group_pk"]) for r in changed})
    if touched:
        result = await b.conn.execute(
            select(groups.c.id, groups.c.group_id, groups.c.state, groups.c.retry_count).where(
                groups.c.id.in_(touched)
            )
        )
        for pk, gid, state, retries in result.all():
            b.emit(
                GROUP_STATE.signal(
                    {
                        "group_pk": pk,
                        "group_id": gid,
                        "state": state,
                        "from_state": state,
                        "retry_count": retries,
                    }
                )
            )
    return len(changed)


SPECS: Final = (
    TableSpec(
        "queue",
        "ingest_queue",
        write_groups,
        required=("group_id", "state"),
        mutable=True,
        changed=("last_update", "received_at"),
    ),
    TableSpec(
        "queue",
        "subband_files",
        write_subbands,
        required=("group_id", "subband_idx", "path"),
        batch_rows=20_000,
    ),
)
