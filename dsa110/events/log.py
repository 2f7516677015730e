"""The recent-events log: a capped, queryable table of what went over the event bus.

Every server process runs one ``EventRecorder``: it subscribes to every channel the project
publishes on, and writes what it hears in batches to ``event_log``. With a shared bus
(Redis, PostgreSQL) each process hears every event, so each would write it: the row's
``event_key`` (a digest of origin, publication time, channel and payload) is unique and
inserts skip a key already present, so an event is one row however many processes record
it. After each batch the table is cut back to the newest ``cap`` rows (one indexed delete
by id), so its size and the cost of reading it are bounded. Recording is best-effort like
the bus itself (at-most-once): a batch the database refuses is dropped and logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.functions import insert_or_skip
from dsa110.db.ops_tables import event_log
from dsa110.db.writes import write_transaction
from dsa110.events import channels as ch
from dsa110.events.bus import EventBus, cancel_and_wait
from dsa110.events.envelope import Event

log = logging.getLogger(__name__)

DEFAULT_CAP: Final = 10_000
"""Rows kept: the newest events, whatever their channel."""
MAX_BATCH: Final = 500
MAX_QUERY: Final = 1000
FLUSH_S: Final = 0.25

CHANNEL_DESCRIPTIONS: Final[dict[str, str]] = {
    ch.GROUP_STATE: "An observation group changed state (queue state, calibration, imaging).",
    ch.IMAGE_ADDED: "A new image row exists.",
    ch.MEASUREMENTS_ADDED: "Measurements were ingested for one image.",
    ch.ESE_CANDIDATE: "An ESE candidate was created or changed.",
    ch.JOB_STATE: "A job changed state.",
    ch.JOB_LOG: "A job wrote log lines.",
    ch.METRICS_SAMPLE: "The system-metrics sampler stored a sample.",
    ch.PRODUCT_STATUS: "A data product changed status.",
}
RECORDED: Final[tuple[str, ...]] = tuple(CHANNEL_DESCRIPTIONS)


def event_key(event: Event) -> str:
    """Names one event across processes: the same publication gives the same key everywhere."""
    text = json.dumps(
        [event.origin, event.published_at.isoformat(), event.channel, event.payload],
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


async def record(engine: AsyncEngine, events: Sequence[Event], cap: int = DEFAULT_CAP) -> int:
    """Write ``events`` (each once, whoever else wrote it) and keep the newest ``cap`` rows."""
    rows = [
        {
            "event_key": event_key(e),
            "channel": e.channel,
            "origin": e.origin[:128],
            "published_at": e.published_at,
            "payload": e.payload,
        }
        for e in events
        if not e.resync
    ]
    if not rows:
        return 0
    async with write_transaction(engine) as conn:
        statement = insert_or_skip(conn.dialect.name, event_log)
        added = 0
        for row in rows:  # one by one: a driver's executemany may not count rows (asyncpg)
            added += (await conn.execute(statement.values(**row))).rowcount or 0
        newest = (await conn.execute(select(func.max(event_log.c.id)))).scalar()
        if newest is not None and newest > cap:
            await conn.execute(delete(event_log).where(event_log.c.id <= newest - cap))
    return added


@dataclass(frozen=True)
class LoggedEvent:
    id: int
    channel: str
    origin: str
    published_at: datetime
    payload: dict[str, Any]


async def recent(
    engine: AsyncEngine,
    *,
    channels: Sequence[str] | None = None,
    since: datetime | None = None,
    limit: int = 100,
) -> list[LoggedEvent]:
    """The newest logged events (at most ``MAX_QUERY``), newest first."""
    c = event_log.c
    statement = select(c.id, c.channel, c.origin, c.published_at, c.payload).order_by(c.id.desc())
    if channels:
        statement = statement.where(c.channel.in_(list(channels)))
    if since is not None:
        statement = statement.where(c.published_at >= since)
    async with engine.connect() as conn:
        rows = (await conn.execute(statement.limit(max(1, min(limit, MAX_QUERY))))).all()
    return [LoggedEvent(int(r[0]), str(r[1]), str(r[2]), r[3], dict(r[4] or {})) for r in rows]


@dataclass(frozen=True)
class ChannelCount:
    channel: str
    count: int
    last_at: datetime | None


async def counts(engine: AsyncEngine, since: datetime | None = None) -> list[ChannelCount]:
    """Logged events per channel (since a time), with the newest one's time; every channel listed."""
    c = event_log.c
    statement = select(c.channel, func.count(), func.max(c.published_at)).group_by(c.channel)
    if since is not None:
        statement = statement.where(c.published_at >= since)
    async with engine.connect() as conn:
        found = {str(r[0]): (int(r[1]), r[2]) for r in (await conn.execute(statement)).all()}
    names = list(RECORDED) + sorted(set(found) - set(RECORDED))
    return [ChannelCount(n, found.get(n, (0, None))[0], found.get(n, (0, None))[1]) for n in names]


async def oldest(engine: AsyncEngine) -> datetime | None:
    async with engine.connect() as conn:
        value: datetime | None = (await conn.execute(select(func.min(event_log.c.published_at)))).scalar()
    return value


class EventRecorder:
    """Writes what this process hears on the bus into ``event_log`` (one task; see the module)."""

    def __init__(self, engine: AsyncEngine, bus: EventBus, cap: int = DEFAULT_CAP) -> None:
        self.engine = engine
        self.bus = bus
        self.cap = cap
        self.recorded = 0
        self.failed_batches = 0
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-recorder")
        await self._ready.wait()  # subscribed: events published from now on are recorded

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def _run(self) -> None:
        try:
            async with self.bus.subscribe(*RECORDED, queue_size=4 * MAX_BATCH) as events:
                self._ready.set()
                while True:
                    batch = [await events.__anext__()]
                    await asyncio.sleep(FLUSH_S)
                    while events.pending and len(batch) < MAX_BATCH:
                        batch.append(await events.__anext__())
                    try:
                        self.recorded += await record(self.engine, batch, self.cap)
                    except Exception:
                        self.failed_batches += 1
                        log.warning(
                            "event log: a batch of %d events was not recorded", len(batch), exc_info=True
                        )
        except StopAsyncIteration:
            return
        finally:
            self._ready.set()
