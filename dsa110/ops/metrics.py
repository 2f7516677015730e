"""System metrics: a psutil sample, its history in ``system_metrics``, and the sampler task.

The legacy server sampled only when ``/api/metrics/system`` was called and kept history
in an in-process deque (legacy-pipeline-facts §2.3); here a background sampler stores a
sample every ``interval_s`` seconds with bounded retention and publishes it on the bus
(``metrics.sample``), so history survives restarts and subscribers need no polling.

Definitions (psutil): ``cpu_percent`` is system-wide busy time over the measuring window
(since the previous sample, for the sampler); memory ``used``/``percent`` are psutil's
``virtual_memory()`` values (percent = (total - available) / total); disks are the real
(block-device) mounts, one per device, or the mounts asked for; load is the 1/5/15-minute
load average (None where the OS has none).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import psutil
from sqlalchemy import Select, and_, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import system_metrics
from dsa110.db.writes import write_transaction
from dsa110.events import METRICS_SAMPLE, EventBus, EventTooLarge
from dsa110.events.channels import DiskPayload, MetricsSamplePayload
from dsa110.events.envelope import format_utc
from dsa110.ops.lease import HostLease

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S: Final = 10.0
DEFAULT_RETENTION: Final = 8640
"""Rows kept: one day at the default 10 s interval."""
DEFAULT_HISTORY_LIMIT: Final = 60
FIRST_SAMPLE_CPU_WINDOW_S: Final = 0.2
"""CPU measuring window of a sample that has no previous sample to measure from."""
_IMAGE_FILESYSTEMS: Final = frozenset({"squashfs", "iso9660", "udf"})
"""Read-only images (snap packages, DVDs): always 100 % full, never interesting."""


@dataclass(frozen=True, slots=True)
class DiskUsage:
    """Usage of one mounted filesystem, in bytes."""

    mount: str
    total: int
    used: int
    free: int
    percent: float

    def to_dict(self) -> DiskPayload:
        return {
            "mount": self.mount,
            "total": self.total,
            "used": self.used,
            "free": self.free,
            "percent": self.percent,
        }


@dataclass(frozen=True, slots=True)
class SystemMetricsSample:
    """One sample of the host. ``id`` is the ``system_metrics`` row id once stored."""

    sampled_at: datetime
    cpu_percent: float
    memory_total_bytes: int
    memory_used_bytes: int
    memory_percent: float
    disks: tuple[DiskUsage, ...] = field(default=())
    load_1: float | None = None
    load_5: float | None = None
    load_15: float | None = None
    host: str = ""
    """The machine sampled (its hostname): processes on several hosts share one history."""
    id: int | None = None

    def to_payload(self) -> MetricsSamplePayload:
        """The JSON form (bus payload; also what a REST or GraphQL layer reshapes)."""
        return {
            "id": self.id,
            "sampled_at": format_utc(self.sampled_at),
            "cpu_percent": self.cpu_percent,
            "memory_total_bytes": self.memory_total_bytes,
            "memory_used_bytes": self.memory_used_bytes,
            "memory_percent": self.memory_percent,
            "disks": [disk.to_dict() for disk in self.disks],
            "load_1": self.load_1,
            "load_5": self.load_5,
            "load_15": self.load_15,
            "host": self.host,
        }


# -- sampling ---------------------------------------------------------------------------


def real_mounts() -> list[str]:
    """Mount points of block-device filesystems, one per device (bind mounts repeat one)."""
    mounts: list[str] = []
    seen_devices: set[str] = set()
    for partition in psutil.disk_partitions(all=False):
        if partition.fstype in _IMAGE_FILESYSTEMS or partition.device in seen_devices:
            continue
        if not os.path.isdir(partition.mountpoint):  # file bind mounts (/etc/hosts in containers)
            continue
        seen_devices.add(partition.device)
        mounts.append(partition.mountpoint)
    return mounts


def disk_usage(mounts: Sequence[str]) -> tuple[DiskUsage, ...]:
    """Usage of each of ``mounts``; mounts that cannot be read (gone, no permission) are skipped."""
    usages = []
    for mount in mounts:
        try:
            usage = psutil.disk_usage(mount)
        except OSError as exc:
            logger.info("metrics: skipping %s: %s", mount, exc)
            continue
        usages.append(DiskUsage(mount, usage.total, usage.used, usage.free, usage.percent))
    return tuple(usages)


def load_average() -> tuple[float | None, float | None, float | None]:
    try:
        load_1, load_5, load_15 = psutil.getloadavg()
    except (AttributeError, OSError):
        return None, None, None
    return load_1, load_5, load_15


def sample_system_metrics(
    *,
    cpu_interval_s: float | None = FIRST_SAMPLE_CPU_WINDOW_S,
    mounts: Sequence[str] | None = None,
) -> SystemMetricsSample:
    """Sample the host now. Blocking (for ``cpu_interval_s`` when it is a number).

    ``cpu_interval_s=None`` measures CPU since the previous call *in the same thread*
    (psutil keeps that state per thread); the sampler uses it from its own thread so each
    sample covers the whole interval. ``mounts=None`` means ``real_mounts()``.
    """
    cpu = psutil.cpu_percent(interval=cpu_interval_s)
    memory = psutil.virtual_memory()
    load_1, load_5, load_15 = load_average()
    return SystemMetricsSample(
        sampled_at=datetime.now(UTC),
        cpu_percent=float(cpu),
        memory_total_bytes=int(memory.total),
        memory_used_bytes=int(memory.used),
        memory_percent=float(memory.percent),
        disks=disk_usage(real_mounts() if mounts is None else mounts),
        load_1=load_1,
        load_5=load_5,
        load_15=load_15,
        host=socket.gethostname(),
    )


# -- storage ----------------------------------------------------------------------------


def _row_to_sample(row: Any) -> SystemMetricsSample:
    disks = tuple(
        DiskUsage(str(d["mount"]), int(d["total"]), int(d["used"]), int(d["free"]), float(d["percent"]))
        for d in row.disks or ()
    )
    return SystemMetricsSample(
        sampled_at=row.sampled_at,
        cpu_percent=row.cpu_percent,
        memory_total_bytes=row.memory_total_bytes,
        memory_used_bytes=row.memory_used_bytes,
        memory_percent=row.memory_percent,
        disks=disks,
        load_1=row.load_1,
        load_5=row.load_5,
        load_15=row.load_15,
        host=row.host,
        id=row.id,
    )


_NEWEST_FIRST = (system_metrics.c.sampled_at.desc(), system_metrics.c.id.desc())


async def store_sample(engine: AsyncEngine, sample: SystemMetricsSample, retention: int) -> int:
    """Insert ``sample`` and delete all but the newest ``retention`` rows of its host; return the row id.

    "Newest" orders by ``sampled_at`` then ``id``. Insert and pruning share one transaction,
    so readers never see more than ``retention`` rows of one host.
    """
    if retention < 1:
        raise ValueError("metrics retention must keep at least one sample")
    same_host = system_metrics.c.host == sample.host
    async with write_transaction(engine) as connection:
        result = await connection.execute(
            insert(system_metrics)
            .values(
                sampled_at=sample.sampled_at,
                cpu_percent=sample.cpu_percent,
                memory_percent=sample.memory_percent,
                memory_total_bytes=sample.memory_total_bytes,
                memory_used_bytes=sample.memory_used_bytes,
                load_1=sample.load_1,
                load_5=sample.load_5,
                load_15=sample.load_15,
                disks=[disk.to_dict() for disk in sample.disks],
                host=sample.host,
            )
            .returning(system_metrics.c.id)
        )
        row_id = int(result.scalar_one())
        # The first row past the retention window; it and everything older goes.
        boundary = (
            await connection.execute(
                select(system_metrics.c.sampled_at, system_metrics.c.id)
                .where(same_host)
                .order_by(*_NEWEST_FIRST)
                .offset(retention)
                .limit(1)
            )
        ).first()
        if boundary is not None:
            await connection.execute(
                delete(system_metrics).where(
                    same_host,
                    or_(
                        system_metrics.c.sampled_at < boundary.sampled_at,
                        and_(
                            system_metrics.c.sampled_at == boundary.sampled_at,
                            system_metrics.c.id <= boundary.id,
                        ),
                    ),
                )
            )
    return row_id


def _newest(host: str | None) -> Select[Any]:
    """Samples newest first: every host's, or one host's."""
    query = select(system_metrics).order_by(*_NEWEST_FIRST)
    return query if host is None else query.where(system_metrics.c.host == host)


async def latest_metrics(engine: AsyncEngine, host: str | None = None) -> SystemMetricsSample | None:
    """The newest stored sample (of ``host``, or of any host), or None before the first one."""
    async with engine.connect() as connection:
        row = (await connection.execute(_newest(host).limit(1))).first()
    return None if row is None else _row_to_sample(row)


async def fresh_sample(
    stored: SystemMetricsSample | None, max_age_s: float, *, now: datetime | None = None
) -> SystemMetricsSample:
    """``stored`` if it is at most ``max_age_s`` old, else a sample of this host taken now.

    The legacy ``/api/metrics/system`` sampled on every call; here the background sampler
    stores samples, and when it is off or stalled a reader still gets current figures
    instead of a stale row. The on-request sample is not stored (a read does not write);
    psutil runs in a worker thread for its short CPU window.
    """
    moment = now or datetime.now(UTC)
    if stored is not None and (moment - stored.sampled_at).total_seconds() <= max_age_s:
        return stored
    return await asyncio.to_thread(sample_system_metrics, cpu_interval_s=FIRST_SAMPLE_CPU_WINDOW_S)


async def metrics_history(
    engine: AsyncEngine, limit: int = DEFAULT_HISTORY_LIMIT, host: str | None = None
) -> list[SystemMetricsSample]:
    """The newest ``limit`` samples (of ``host``, or of any host), oldest first (ready to plot)."""
    if limit < 1:
        raise ValueError("metrics history limit must be at least 1")
    async with engine.connect() as connection:
        rows = (await connection.execute(_newest(host).limit(limit))).all()
    return [_row_to_sample(row) for row in reversed(rows)]


async def metrics_hosts(engine: AsyncEngine) -> list[str]:
    """The hosts with stored samples, by name."""
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(system_metrics.c.host).distinct().order_by(system_metrics.c.host)
        )
        return [str(host) for host in rows.scalars()]


async def count_samples(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(system_metrics))).scalar_one())


# -- the background sampler -----------------------------------------------------------


class MetricsSampler:
    """Every ``interval_s``: sample the host, store it (bounded), publish ``metrics.sample``.

    Psutil runs in one dedicated worker thread, so sampling never blocks the event loop
    and each CPU figure covers the time since the previous sample. A failing sample,
    store or publish is logged and counted (``errors``); the next tick tries again.
    ``stop()`` cancels the task and joins the thread: nothing is left running.

    With a ``lease`` (processes on one host sharing a bus), only the lease holder samples;
    the others try to take the lease at every tick and stand by meanwhile, so when the
    holder exits one of them carries on within one interval.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        bus: EventBus | None = None,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        retention: int = DEFAULT_RETENTION,
        mounts: Sequence[str] | None = None,
        lease: HostLease | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("metrics interval must be positive")
        if retention < 1:
            raise ValueError("metrics retention must keep at least one sample")
        self.engine = engine
        self.bus = bus
        self.interval_s = interval_s
        self.retention = retention
        self.mounts = tuple(mounts) if mounts is not None else None
        self.lease = lease
        self.standby_ticks = 0
        """Ticks skipped because another process holds the lease."""
        self.samples_stored = 0
        self.errors = 0
        self.last_sample: SystemMetricsSample | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._has_cpu_baseline = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def sampling(self) -> bool:
        """Running and this process is the one that samples (holds the lease, if any)."""
        return self.running and (self.lease is None or self.lease.held)

    async def start(self) -> None:
        """Start sampling now and then every ``interval_s``; idempotent."""
        if self.running:
            return
        self._task = asyncio.create_task(self._run(), name="metrics-sampler")

    async def stop(self) -> None:
        """Stop the task and the worker thread; idempotent."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True)
        self._has_cpu_baseline = False
        if self.lease is not None:
            self.lease.release()

    async def sample_once(self) -> SystemMetricsSample:
        """Sample, store and publish one sample now; return it (with its row id)."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-sampler")
        cpu_window = None if self._has_cpu_baseline else FIRST_SAMPLE_CPU_WINDOW_S
        loop = asyncio.get_running_loop()
        sample = await loop.run_in_executor(
            self._executor, lambda: sample_system_metrics(cpu_interval_s=cpu_window, mounts=self.mounts)
        )
        self._has_cpu_baseline = True
        row_id = await store_sample(self.engine, sample, self.retention)
        sample = replace(sample, id=row_id)
        self.samples_stored += 1
        self.last_sample = sample
        if self.bus is not None:
            await self._publish(self.bus, sample)
        return sample

    async def _publish(self, bus: EventBus, sample: SystemMetricsSample) -> None:
        payload = sample.to_payload()
        try:
            await METRICS_SAMPLE.publish(bus.publish, payload)
        except EventTooLarge:
            # Dozens of mounts: send the signal without the disk list; readers query the row.
            payload["disks"] = None
            payload["disks_omitted"] = True
            await METRICS_SAMPLE.publish(bus.publish, payload)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            try:
                if self.lease is None or self.lease.try_acquire():
                    await self.sample_once()
                else:
                    self.standby_ticks += 1
            except Exception:
                self.errors += 1
                logger.exception("metrics: sampling failed; retrying at the next tick")
            # Fixed-rate schedule: a slow sample does not push every later one back.
            next_tick += self.interval_s
            now = loop.time()
            next_tick = max(next_tick, now)
            await asyncio.sleep(next_tick - now)
