"""Finding what to announce, in the tables where it is already recorded durably.

Each source is read from a cursor (the newest time already read) minus ``LOOKBACK``:
rows committed late with an earlier timestamp (concurrent writers, clock skew between
processes) are still seen, and reading one twice is harmless because the outbox enqueues
an event key once. So an event is never lost to a crash: if the server dies after a
candidate's alert was committed and before its delivery was enqueued, the next scan
finds the alert again.

* ``ese_candidate`` / ``ese_confirmed`` / ``ese_rejected`` (``outbox.ESE_KINDS``): rows
  of ``alerts`` of those types (what the detector writes), with the candidate's
  significance (for the subscriber's minimum) and its window.
* ``job_failed``: jobs in state ``failed``, keyed by job and finish time (a job retried
  and failing again is a new event).
* ``streaming_down``: no observation group received for ``stale`` minutes; one event per
  silence, keyed by the last group received.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.functions import insert_or_skip
from dsa110.db.tables import alerts, ese_candidates, groups, jobs, sources, webhook_cursors
from dsa110.db.writes import write_transaction
from dsa110.webhooks.outbox import ESE_KINDS, Event

LOOKBACK: Final = timedelta(minutes=10)
SCAN_LIMIT: Final = 1000
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _since(conn: AsyncConnection, source: str, not_before: datetime) -> datetime:
    """Where to read ``source`` from: its cursor, or the first subscriber's birth, less ``LOOKBACK``."""
    found = (
        await conn.execute(select(webhook_cursors.c.position_at).where(webhook_cursors.c.source == source))
    ).scalar()
    return max(found if found is not None else EPOCH, not_before) - LOOKBACK


async def _advance(engine: AsyncEngine, source: str, position: datetime) -> None:
    c = webhook_cursors.c
    async with write_transaction(engine) as conn:
        await conn.execute(
            insert_or_skip(conn.dialect.name, webhook_cursors).values(source=source, position_at=position)
        )
        await conn.execute(
            update(webhook_cursors)
            .where(c.source == source, c.position_at < position)
            .values(position_at=position)
        )


def _links(base_url: str | None, source_id: str | None) -> dict[str, str]:
    if not base_url or not source_id:
        return {}
    quoted = quote(source_id, safe="")
    return {
        "light curve plot": f"{base_url}/plots/sources/{quoted}/lightcurve.png",
        "light curve table": f"{base_url}/exports/sources/{quoted}/lightcurve.votable",
    }


async def candidate_events(
    engine: AsyncEngine, base_url: str | None = None, not_before: datetime = EPOCH
) -> list[Event]:
    a, c, s = alerts.c, ese_candidates.c, sources.c
    async with engine.connect() as conn:
        since = await _since(conn, "alerts", not_before)
        rows = (
            (
                await conn.execute(
                    select(
                        a.id,
                        a.alert_type,
                        a.severity,
                        a.message,
                        a.triggered_at,
                        c.id.label("candidate_id"),
                        c.significance,
                        c.depth,
                        c.start_mjd,
                        c.end_mjd,
                        c.baseline_flux_jy,
                        c.score,
                        c.false_alarm_probability,
                        s.source_id,
                        s.ra_deg,
                        s.dec_deg,
                    )
                    .select_from(
                        alerts.outerjoin(ese_candidates, c.id == a.candidate_pk).outerjoin(
                            sources, s.id == a.source_pk
                        )
                    )
                    .where(a.alert_type.in_(ESE_KINDS), a.triggered_at >= since)
                    .order_by(a.triggered_at, a.id)
                    .limit(SCAN_LIMIT)
                )
            )
            .mappings()
            .all()
        )
    events = [
        Event(
            kind=str(r["alert_type"]),
            key=f"alert:{r['id']}",
            occurred_at=r["triggered_at"],
            significance=r["significance"],
            false_alarm_probability=r["false_alarm_probability"],
            data={
                "alert_id": r["id"],
                "candidate_id": r["candidate_id"],
                "source_id": r["source_id"],
                "ra_deg": r["ra_deg"],
                "dec_deg": r["dec_deg"],
                "severity": r["severity"],
                "message": r["message"],
                "significance": r["significance"],
                "score": r["score"],
                "false_alarm_probability": r["false_alarm_probability"],
                "depth": r["depth"],
                "start_mjd": r["start_mjd"],
                "end_mjd": r["end_mjd"],
                "baseline_flux_jy": r["baseline_flux_jy"],
                "triggered_at": _iso(r["triggered_at"]),
                "links": _links(base_url, r["source_id"]),
            },
        )
        for r in rows
    ]
    if rows:
        await _advance(engine, "alerts", max(r["triggered_at"] for r in rows))
    return events


async def job_failure_events(engine: AsyncEngine, not_before: datetime = EPOCH) -> list[Event]:
    j = jobs.c
    async with engine.connect() as conn:
        since = await _since(conn, "failed_jobs", not_before)
        rows = (
            (
                await conn.execute(
                    select(j.id, j.type, j.finished_at, j.error, j.created_at)
                    .where(j.state == "failed", j.finished_at.is_not(None), j.finished_at >= since)
                    .order_by(j.finished_at, j.id)
                    .limit(SCAN_LIMIT)
                )
            )
            .mappings()
            .all()
        )
    events = [
        Event(
            kind="job_failed",
            key=f"job:{r['id']}:failed:{_iso(r['finished_at'])}",
            occurred_at=r["finished_at"],
            data={
                "job_id": r["id"],
                "job_type": r["type"],
                "finished_at": _iso(r["finished_at"]),
                "error": (r["error"] or "")[:2000],
                "message": f"job {r['id']} ({r['type']}) failed: {(r['error'] or 'no error recorded')[:300]}",
            },
        )
        for r in rows
    ]
    if rows:
        await _advance(engine, "failed_jobs", max(r["finished_at"] for r in rows))
    return events


async def streaming_events(engine: AsyncEngine, stale: timedelta, now: datetime | None = None) -> list[Event]:
    g = groups.c
    now = now or datetime.now(UTC)
    async with engine.connect() as conn:
        latest = (
            await conn.execute(
                select(g.group_id, g.received_at).order_by(g.received_at.desc(), g.id.desc()).limit(1)
            )
        ).first()
    if latest is None or now - latest.received_at < stale:
        return []
    silent = (now - latest.received_at).total_seconds() / 60.0
    return [
        Event(
            kind="streaming_down",
            key=f"streaming_down:{latest.group_id}",
            occurred_at=now,  # while the silence lasts: a subscriber added meanwhile hears of it too
            data={
                "last_group_id": latest.group_id,
                "last_received_at": _iso(latest.received_at),
                "silent_minutes": silent,
                "message": f"no observation group received for {silent:.0f} minutes (last {latest.group_id})",
            },
        )
    ]


async def find_events(
    engine: AsyncEngine, stale: timedelta | None, base_url: str | None = None, not_before: datetime = EPOCH
) -> list[Event]:
    """Every event since the cursors. ``not_before``: the oldest subscriber's creation (older
    events would reach nobody, so a first subscriber does not start the scan at the epoch)."""
    found = [
        *await candidate_events(engine, base_url, not_before),
        *await job_failure_events(engine, not_before),
    ]
    if stale is not None:
        found += await streaming_events(engine, stale)
    return found


def test_event(name: str) -> Event:
    now = datetime.now(UTC)
    return Event(
        kind="test",
        key=f"test:{name}:{now.strftime('%Y%m%dT%H%M%S.%f')}",
        occurred_at=now,
        data={"message": f"test delivery to webhook {name!r}"},
    )
