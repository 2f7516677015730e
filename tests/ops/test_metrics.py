"""System metrics: sampling against the OS, storage with bounded retention, the sampler task."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil  # type: ignore[import-untyped]
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.engine import create_engine
from dsa110.events import METRICS_SAMPLE, EventBus, create_event_bus
from dsa110.ops.lease import HostLease
from dsa110.ops.metrics import (
    DiskUsage,
    MetricsSampler,
    SystemMetricsSample,
    count_samples,
    latest_metrics,
    metrics_history,
    metrics_hosts,
    real_mounts,
    sample_system_metrics,
    store_sample,
)
from tests.waiting import eventually

T0 = datetime(2025, 10, 24, 14, 30, tzinfo=UTC)
WAIT_S = 20.0


def make_sample(
    minute: int, cpu: float = 10.0, disks: tuple[DiskUsage, ...] = (), host: str = "corr01"
) -> SystemMetricsSample:
    return SystemMetricsSample(
        sampled_at=T0 + timedelta(minutes=minute),
        cpu_percent=cpu,
        memory_total_bytes=64 * 2**30,
        memory_used_bytes=16 * 2**30,
        memory_percent=25.0,
        disks=disks,
        load_1=1.5,
        load_5=1.25,
        load_15=1.0,
        host=host,
    )


def background_tasks() -> set[asyncio.Task[object]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    bus = create_event_bus("memory://")
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


# -- sampling -----------------------------------------------------------------------------


def test_a_sample_describes_this_host() -> None:
    sample = sample_system_metrics(cpu_interval_s=0.05)
    assert 0.0 <= sample.cpu_percent <= 100.0
    assert sample.memory_total_bytes == psutil.virtual_memory().total
    assert 0 < sample.memory_used_bytes <= sample.memory_total_bytes
    assert 0.0 <= sample.memory_percent <= 100.0
    assert sample.sampled_at.tzinfo is UTC
    if hasattr(os, "getloadavg"):
        assert sample.load_1 is not None and sample.load_1 >= 0.0
        assert sample.load_15 is not None and sample.load_15 >= 0.0


def test_disk_figures_match_statvfs_computed_by_hand() -> None:
    mounts = real_mounts()
    assert mounts, "a host has at least one block-device mount"
    sample = sample_system_metrics(cpu_interval_s=0.0)
    assert [d.mount for d in sample.disks] == mounts
    for disk in sample.disks:
        stats = os.statvfs(disk.mount)
        assert disk.total == stats.f_blocks * stats.f_frsize
        assert 0 <= disk.free <= disk.total and 0 <= disk.used <= disk.total
        # psutil's percent is used / (used + free available to users), rounded to 0.1.
        assert disk.percent == pytest.approx(100.0 * disk.used / (disk.used + disk.free), abs=0.1)


def test_explicit_mounts_are_used_and_unreadable_ones_skipped(tmp_path: Path) -> None:
    sample = sample_system_metrics(cpu_interval_s=0.0, mounts=[str(tmp_path), str(tmp_path / "missing")])
    assert [d.mount for d in sample.disks] == [str(tmp_path)]


def test_real_mounts_lists_each_device_once() -> None:
    devices = {p.mountpoint: p.device for p in psutil.disk_partitions(all=False)}
    mounts = real_mounts()
    assert len({devices[m] for m in mounts}) == len(mounts)


# -- storage ------------------------------------------------------------------------------


async def test_an_empty_history_has_no_latest_sample(engine: AsyncEngine) -> None:
    assert await latest_metrics(engine) is None
    assert await metrics_history(engine) == []


async def test_samples_round_trip_through_the_database(engine: AsyncEngine) -> None:
    disks = (DiskUsage("/stage", 5_000_000_000_000, 3_200_000_000_000, 1_800_000_000_000, 64.0),)
    samples = [make_sample(minute, cpu=float(minute), disks=disks) for minute in range(3)]
    ids = [await store_sample(engine, sample, retention=100) for sample in samples]
    assert ids == sorted(ids)
    assert await latest_metrics(engine) == replace(samples[2], id=ids[2])
    assert await metrics_history(engine) == [replace(s, id=i) for s, i in zip(samples, ids, strict=True)]


async def test_history_is_the_newest_samples_oldest_first(engine: AsyncEngine) -> None:
    for minute in (3, 1, 4, 0, 2):  # stored out of order: history follows sampled_at
        await store_sample(engine, make_sample(minute, cpu=float(minute)), retention=100)
    history = await metrics_history(engine, limit=3)
    assert [s.cpu_percent for s in history] == [2.0, 3.0, 4.0]
    assert all(s.sampled_at.tzinfo is not None for s in history)
    assert [s.cpu_percent for s in await metrics_history(engine, limit=100)] == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_retention_keeps_only_the_newest_rows(engine: AsyncEngine) -> None:
    for minute in range(10):
        await store_sample(engine, make_sample(minute, cpu=float(minute)), retention=4)
        assert await count_samples(engine) == min(minute + 1, 4)
    assert [s.cpu_percent for s in await metrics_history(engine, limit=10)] == [6.0, 7.0, 8.0, 9.0]


async def test_each_host_keeps_its_own_series_and_retention(engine: AsyncEngine) -> None:
    # Interleaved samples of two hosts, 3 kept per host: one busy host must not push the
    # other's samples out of the window.
    for minute in range(6):
        await store_sample(engine, make_sample(minute, cpu=float(minute), host="corr01"), retention=3)
        await store_sample(engine, make_sample(minute, cpu=100.0 + minute, host="corr02"), retention=3)
    assert await count_samples(engine) == 6
    assert await metrics_hosts(engine) == ["corr01", "corr02"]
    first = [s.cpu_percent for s in await metrics_history(engine, limit=10, host="corr01")]
    assert first == [3.0, 4.0, 5.0]
    latest = await latest_metrics(engine, host="corr01")
    assert latest is not None and latest.cpu_percent == 5.0 and latest.host == "corr01"
    # Without a host: the newest of any host (same minute: the later insert wins the tie).
    latest_any = await latest_metrics(engine)
    assert latest_any is not None and latest_any.host == "corr02"
    assert await latest_metrics(engine, host="nobody") is None


def test_a_sample_names_this_host() -> None:
    assert sample_system_metrics(cpu_interval_s=0.0).host == socket.gethostname()


async def test_retention_breaks_timestamp_ties_by_insertion_order(engine: AsyncEngine) -> None:
    for cpu in range(5):
        await store_sample(engine, make_sample(0, cpu=float(cpu)), retention=2)
    assert [s.cpu_percent for s in await metrics_history(engine, limit=10)] == [3.0, 4.0]


async def test_a_sample_older_than_the_retained_window_is_not_kept(engine: AsyncEngine) -> None:
    # A clock stepped back: the late sample is the oldest, so retention drops it at once.
    for minute in (10, 11):
        await store_sample(engine, make_sample(minute, cpu=float(minute)), retention=2)
    await store_sample(engine, make_sample(1, cpu=1.0), retention=2)
    assert [s.cpu_percent for s in await metrics_history(engine, limit=10)] == [10.0, 11.0]


async def test_bad_limits_are_refused(engine: AsyncEngine) -> None:
    with pytest.raises(ValueError, match="retention"):
        await store_sample(engine, make_sample(0), retention=0)
    with pytest.raises(ValueError, match="limit"):
        await metrics_history(engine, limit=0)
    assert await count_samples(engine) == 0
    with pytest.raises(ValueError, match="interval"):
        MetricsSampler(engine, interval_s=0)
    with pytest.raises(ValueError, match="retention"):
        MetricsSampler(engine, retention=0)


async def test_a_naive_timestamp_is_refused_by_the_column(engine: AsyncEngine) -> None:
    naive = SystemMetricsSample(datetime(2025, 10, 24, 14, 30), 1.0, 1, 1, 1.0)
    with pytest.raises(Exception, match="timezone-aware"):
        await store_sample(engine, naive, retention=10)
    assert await count_samples(engine) == 0


# -- the sampler --------------------------------------------------------------------------


async def test_the_sampler_stores_and_publishes_samples_and_stops_cleanly(
    engine: AsyncEngine, bus: EventBus
) -> None:
    before_tasks = background_tasks()
    sampler = MetricsSampler(engine, bus, interval_s=0.05, retention=2)
    async with bus.subscribe(METRICS_SAMPLE) as events:
        await sampler.start()
        await sampler.start()  # idempotent
        assert sampler.running
        payloads = [(await asyncio.wait_for(anext(events), WAIT_S)).payload for _ in range(4)]
        await sampler.stop()
        await sampler.stop()  # idempotent
    assert not sampler.running
    assert background_tasks() - before_tasks == set()
    assert not [t for t in threading.enumerate() if t.name.startswith("metrics-sampler")]
    # Retention held while sampling; every published payload named its stored row.
    assert await count_samples(engine) == 2
    assert [p["id"] for p in payloads] == sorted(p["id"] for p in payloads)
    latest = await latest_metrics(engine)
    assert latest is not None and sampler.last_sample is not None
    assert latest == sampler.last_sample
    assert latest.id is not None and latest.id >= payloads[-1]["id"]
    assert sampler.errors == 0


async def test_the_published_payload_is_the_stored_row(engine: AsyncEngine, bus: EventBus) -> None:
    sampler = MetricsSampler(engine, bus)
    async with bus.subscribe(METRICS_SAMPLE) as events:
        sample = await sampler.sample_once()
        event = await asyncio.wait_for(anext(events), WAIT_S)
    await sampler.stop()
    stored = await latest_metrics(engine)
    assert stored == sample
    assert event.payload == sample.to_payload()
    assert event.payload["sampled_at"].endswith("Z")


async def test_many_mounts_publish_a_signal_without_the_disk_list(
    engine: AsyncEngine, bus: EventBus, tmp_path: Path
) -> None:
    sampler = MetricsSampler(engine, bus, mounts=[str(tmp_path)] * 120)
    async with bus.subscribe(METRICS_SAMPLE) as events:
        sample = await sampler.sample_once()
        event = await asyncio.wait_for(anext(events), WAIT_S)
    await sampler.stop()
    assert len(sample.disks) == 120
    assert event.payload["disks"] is None and event.payload["disks_omitted"] is True
    assert event.payload["id"] == sample.id
    stored = await latest_metrics(engine)
    assert stored is not None and len(stored.disks) == 120


async def test_a_failing_store_is_counted_and_sampling_continues(tmp_path: Path, bus: EventBus) -> None:
    # A database without the system_metrics table: every store fails.
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'unmigrated.sqlite3'}")
    before_tasks = background_tasks()
    sampler = MetricsSampler(broken, bus, interval_s=0.01)
    try:
        await sampler.start()
        await eventually(lambda: sampler.errors >= 3, WAIT_S)
        assert sampler.running
        assert sampler.samples_stored == 0
    finally:
        await sampler.stop()
        await broken.dispose()
    assert background_tasks() - before_tasks == set()


# -- one sampler per host -----------------------------------------------------------------


async def test_a_process_without_the_host_lease_stands_by_then_takes_over(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    lock = tmp_path / "sampler.lock"
    holder = HostLease(lock)  # another process's sampler, as far as the kernel can tell
    assert holder.try_acquire()
    sampler = MetricsSampler(engine, interval_s=0.01, lease=HostLease(lock))
    try:
        await sampler.start()
        await eventually(lambda: sampler.standby_ticks >= 3, WAIT_S)
        assert not sampler.sampling
        assert await count_samples(engine) == 0
        holder.release()  # the holder exits
        await eventually(lambda: sampler.samples_stored >= 2, WAIT_S)
        assert sampler.sampling
        assert not holder.try_acquire()  # the lease is the sampler's now
    finally:
        await sampler.stop()
    assert holder.try_acquire()  # stopping gives the lease back
    holder.release()
