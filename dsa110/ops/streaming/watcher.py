"""``dsa110-graph stream``: watch the incoming directory, form observation groups, queue their conversion.

The correlator writes one file per subband, ``<group timestamp>_sbNN.hdf5``
(legacy-pipeline-facts §1.1). Every ``poll_interval`` the watcher lists the directory;
each new subband file joins its group (created ``collecting`` at the first one). A group
with all ``expected_subbands`` becomes ``pending`` and a ``convert`` job is queued for it
with its files. A group still incomplete ``late_subband_wait_s`` after its first subband
is converted with what it has if that is at least ``min_subbands``, else it fails with the
missing subbands named. Each change is a ``group.state`` event: through the shared bus
when there is one, else as ``@@event`` lines on stdout that the supervising server relays.

The process reports a heartbeat (pid, host, the generation it runs, metrics) to the
``services`` row every few seconds, holds a file lease so that one watcher runs per data
directory, and stops cleanly on SIGTERM.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psutil
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.db.enums import GroupState
from dsa110.db.functions import insert_or_skip
from dsa110.db.tables import groups, subband_files
from dsa110.db.writes import write_transaction
from dsa110.events import GROUP_STATE, create_event_bus
from dsa110.events.channels import GroupStatePayload
from dsa110.ops.lease import HostLease
from dsa110.ops.streaming import service
from dsa110.ops.streaming.conversion import queue_convert, subband_paths
from dsa110.settings import Settings
from dsa110.times import datetime_to_mjd

log = logging.getLogger("dsa110.stream")

FILE_RE: Final = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})_sb(\d{2})\.hdf5")
EVENT_PREFIX: Final = "@@event "
MAX_SEEN: Final = 200_000
HEARTBEAT_S: Final = 2.0

Emit = Callable[[str, dict[str, Any]], Awaitable[Any]]


def stdout_emit(channel: str, payload: dict[str, Any]) -> Awaitable[None]:
    """An event as a line for the supervisor to relay (when no bus is shared)."""
    sys.stdout.write(EVENT_PREFIX + json.dumps({"channel": channel, "payload": payload}) + "\n")
    sys.stdout.flush()
    return asyncio.sleep(0)


class Watcher:
    def __init__(self, engine: AsyncEngine, config: dict[str, Any], emit: Emit) -> None:
        self.engine = engine
        self.config = config
        self.emit = emit
        self.input_dir = Path(config["input_dir"])
        self.seen: set[str] = set()
        self.started = time.monotonic()
        self.metrics: dict[str, Any] = {
            "files_seen": 0,
            "groups_created": 0,
            "groups_pending": 0,
            "groups_failed": 0,
            "convert_jobs_queued": 0,
            "last_file_at": None,
            "scans": 0,
        }

    # -- one scan -----------------------------------------------------------------------

    def _list(self) -> list[tuple[str, int, str]]:
        found = []
        try:
            names = os.listdir(self.input_dir)
        except FileNotFoundError:
            return []
        for name in sorted(names):
            if name in self.seen:
                continue
            match = FILE_RE.fullmatch(name)
            if match is not None:
                found.append((match.group(1), int(match.group(2)), str(self.input_dir / name)))
        return found

    async def scan(self) -> None:
        if len(self.seen) > MAX_SEEN:
            self.seen.clear()  # the database remembers; this only saves it work
        for group_id, subband, path in await asyncio.to_thread(self._list):
            await self._add(group_id, subband, path)
            self.seen.add(Path(path).name)
        await self._expire_late()
        self.metrics["scans"] += 1

    async def _add(self, group_id: str, subband: int, path: str) -> None:
        now = datetime.now(UTC)
        try:
            start = datetime.fromisoformat(group_id).replace(tzinfo=UTC)
        except ValueError:
            log.warning("skipping %s: %r is not a timestamp", path, group_id)
            return
        chunk = timedelta(minutes=float(self.config["chunk_duration"]))
        g = groups.c
        async with self.engine.begin() as conn:
            created = await conn.execute(
                insert_or_skip(conn.dialect.name, groups).values(
                    group_id=group_id,
                    state=str(GroupState.COLLECTING),
                    received_at=now,
                    updated_at=now,
                    mid_mjd=datetime_to_mjd(start + chunk / 2),
                    expected_subbands=int(self.config["expected_subbands"]),
                    retry_count=0,
                )
            )
            row = dict((await conn.execute(select(groups).where(g.group_id == group_id))).mappings().one())
            added = await conn.execute(
                insert_or_skip(conn.dialect.name, subband_files).values(
                    group_pk=row["id"], subband_idx=subband, path=path
                )
            )
            count = (
                await conn.execute(select(func.count()).where(subband_files.c.group_pk == row["id"]))
            ).scalar_one()
            if added.rowcount:
                await conn.execute(update(groups).where(g.id == row["id"]).values(updated_at=now))
        if created.rowcount:
            self.metrics["groups_created"] += 1
        if not added.rowcount:
            return
        self.metrics["files_seen"] += 1
        self.metrics["last_file_at"] = now.isoformat().replace("+00:00", "Z")
        if row["state"] != str(GroupState.COLLECTING):
            log.warning(
                "late subband %02d of %s (already %s): recorded, not converted again",
                subband,
                group_id,
                row["state"],
            )
            return
        await self._announce(row, None, subbands=int(count))
        if count >= int(row["expected_subbands"]):
            await self._complete(row, missing=[])

    async def _complete(self, row: dict[str, Any], missing: list[int]) -> None:
        """collecting -> pending (one writer wins) and the group's conversion queued, in one
        transaction: a group is never left ``pending`` without its convert job. (Two
        transactions did that when the job's insert failed, or the process died between
        them; nothing queues a pending group's job later, so it waited forever.)"""
        g = groups.c
        error = f"converted without subbands {', '.join(f'sb{i:02d}' for i in missing)}" if missing else None
        async with write_transaction(self.engine) as conn:
            won = await conn.execute(
                update(groups)
                .where(g.id == row["id"], g.state == str(GroupState.COLLECTING))
                .values(state=str(GroupState.PENDING), updated_at=datetime.now(UTC), error=error)
            )
            if not won.rowcount:
                return
            job = await queue_convert(conn, row, self.config, created_by="streaming", missing=missing)
        self.metrics["groups_pending"] += 1
        self.metrics["convert_jobs_queued"] += 1
        log.info(
            "group %s complete (%d subbands): convert job %s queued",
            row["group_id"],
            len(job["params"]["uvh5_paths"]),
            job["id"],
        )
        await self._announce(
            row, str(GroupState.COLLECTING), state=str(GroupState.PENDING), job_id=int(job["id"])
        )

    async def _expire_late(self) -> None:
        wait = timedelta(seconds=float(self.config["late_subband_wait_s"]))
        cutoff = datetime.now(UTC) - wait
        g = groups.c
        async with self.engine.connect() as conn:
            late = (
                (
                    await conn.execute(
                        select(groups)
                        .where(g.state == str(GroupState.COLLECTING), g.received_at < cutoff)
                        .limit(100)
                    )
                )
                .mappings()
                .all()
            )
        for row in late:
            async with self.engine.connect() as conn:
                present = await subband_paths(conn, int(row["id"]))
            missing = [i for i in range(int(row["expected_subbands"])) if i not in present]
            if len(present) >= int(self.config["min_subbands"]):
                await self._complete(dict(row), missing)
                continue
            expected, waited = row["expected_subbands"], wait.total_seconds()
            error = f"only {len(present)} of {expected} subbands arrived within {waited:g} s"
            async with self.engine.begin() as conn:
                failed = await conn.execute(
                    update(groups)
                    .where(g.id == row["id"], g.state == str(GroupState.COLLECTING))
                    .values(state=str(GroupState.FAILED), updated_at=datetime.now(UTC), error=error)
                )
            if failed.rowcount:
                self.metrics["groups_failed"] += 1
                log.warning("group %s failed: %s", row["group_id"], error)
                await self._announce(dict(row), str(GroupState.COLLECTING), state=str(GroupState.FAILED))

    async def _announce(
        self,
        row: dict[str, Any],
        from_state: str | None,
        *,
        state: str | None = None,
        subbands: int | None = None,
        job_id: int | None = None,
    ) -> None:
        payload: GroupStatePayload = {
            "group_pk": int(row["id"]),
            "group_id": row["group_id"],
            "state": row["state"] if state is None else state,
            "from_state": from_state,
            "retry_count": int(row.get("retry_count") or 0),
        }
        if subbands is not None:
            payload["subbands"] = subbands
        if job_id is not None:
            payload["job_id"] = job_id
        try:
            await GROUP_STATE.publish(self.emit, payload)
        except Exception:
            log.warning("group %s: the event was not published", row["group_id"], exc_info=True)

    def report(self) -> dict[str, Any]:
        me = psutil.Process()
        return {
            **self.metrics,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "cpu_percent": me.cpu_percent(None),
            "memory_mb": round(me.memory_info().rss / 2**20, 1),
        }


async def run_stream(settings: Settings, generation: int | None = None) -> int:
    """The process: one watcher per data directory, until SIGTERM. Returns the exit status."""
    lease = HostLease(settings.data_dir / ".streaming.lock")
    if not lease.try_acquire():
        log.error("another streaming service runs on %s; exiting", settings.data_dir)
        return 3
    engine = create_engine(settings.resolved_database_url)
    bus = create_event_bus(settings.events_url, namespace=settings.events_namespace)
    shared = settings.events_shared
    if shared:
        await bus.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        row = await service.get_service(engine, settings)
        config = service.checked_config(settings, {}, row["config"])
        running_generation = int(row["generation"]) if generation is None else generation
        watcher = Watcher(engine, config, bus.publish if shared else stdout_emit)
        await asyncio.to_thread(Path(config["input_dir"]).mkdir, parents=True, exist_ok=True)
        log.info("watching %s (generation %s)", config["input_dir"], running_generation)
        next_beat = 0.0
        host = socket.gethostname()
        while not stop.is_set():
            try:
                await watcher.scan()
            except Exception:
                log.exception("scan failed; trying again")
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + HEARTBEAT_S
                try:
                    await service.record(
                        engine,
                        pid=os.getpid(),
                        host=host,
                        heartbeat_at=datetime.now(UTC),
                        running_generation=running_generation,
                        metrics=watcher.report(),
                    )
                except Exception:
                    log.exception("heartbeat failed")
            try:
                async with asyncio.timeout(float(config["poll_interval"])):
                    await stop.wait()
            except TimeoutError:
                pass
        return 0
    finally:
        if shared:
            await bus.close()
        await engine.dispose()
        lease.release()
