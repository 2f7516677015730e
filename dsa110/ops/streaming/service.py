"""The streaming service's record: what operators asked for, and what the process last reported.

One ``services`` row named ``streaming``. Operators change the *desired* side (``running``
or ``stopped``, the config, a restart ``generation``); the supervisor in the server makes
the process match; the process itself writes its heartbeats (pid, host, metrics, the
generation it runs). Any server process may take a request, so the row, not a process's
memory, is the truth (and the config survives restarts: it is persisted).

Config names are the legacy ``StreamingConfigRequest``'s (legacy-pipeline-facts §2.2) plus
``late_subband_wait_s`` (how long an incomplete group waits for its late subbands) and
``min_subbands`` (fewest subbands a group may be converted with once the wait is over;
fewer and it fails). Directories must lie under the data roots.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.functions import insert_or_skip
from dsa110.db.tables import groups, services
from dsa110.db.writes import write_transaction
from dsa110.errors import InputError
from dsa110.names import resolve_under
from dsa110.settings import Settings

NAME: Final = "streaming"
RUNNING: Final = "running"
STOPPED: Final = "stopped"

_NUMBERS: Final[dict[str, tuple[float, float, float]]] = {
    # name: (default, lowest, highest)
    "chunk_duration": (5.0, 0.1, 1440.0),
    "monitor_interval": (60.0, 1.0, 3600.0),
    "poll_interval": (5.0, 0.05, 600.0),
    "worker_poll_interval": (5.0, 0.05, 600.0),
    "late_subband_wait_s": (300.0, 0.0, 86_400.0),
}
_INTEGERS: Final[dict[str, tuple[int, int, int]]] = {
    "expected_subbands": (16, 1, 32),
    "min_subbands": (16, 1, 32),
    "max_workers": (4, 1, 64),
    "batch_size": (10, 1, 1000),
}
_FLAGS: Final = {"use_subprocess": True, "monitoring": True, "stage_to_tmpfs": False}
_TEXTS: Final = {"log_level": "INFO", "tmpfs_path": "/dev/shm", "queue_db": None, "registry_db": None}
_DIRS: Final = ("input_dir", "output_dir", "scratch_dir")
LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def default_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "input_dir": str(settings.incoming_dir),
        "output_dir": str(settings.ms_dir),
        "scratch_dir": str(settings.data_dir),
    }
    config.update({k: v[0] for k, v in _NUMBERS.items()})
    config.update({k: v[0] for k, v in _INTEGERS.items()})
    config.update(_FLAGS)
    config.update(_TEXTS)
    return config


def _bad(message: str, field: str) -> InputError:
    return InputError(message, code="BAD_STREAMING_CONFIG", field=field)


def checked_config(settings: Settings, given: Any, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``given`` (a partial config) over ``base`` (the current one), checked; unknown names refused."""
    if not isinstance(given, Mapping):
        raise _bad("the streaming config must be a JSON object", "config")
    known = set(_NUMBERS) | set(_INTEGERS) | set(_FLAGS) | set(_TEXTS) | set(_DIRS)
    for name in given:
        if name not in known:
            raise _bad(
                f"unknown streaming setting {str(name)[:64]!r}; known: {', '.join(sorted(known))}",
                str(name)[:64],
            )
    config = {**default_config(settings), **(base or {})}
    for name, value in given.items():
        if value is None and name in _TEXTS:
            config[name] = None
        elif name in _NUMBERS:
            lo, hi = _NUMBERS[name][1:]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise _bad(f"`{name}` must be a number", name)
            if not lo <= value <= hi:
                raise _bad(f"`{name}` must be between {lo:g} and {hi:g}", name)
            config[name] = float(value)
        elif name in _INTEGERS:
            lo_i, hi_i = _INTEGERS[name][1:]
            if isinstance(value, bool) or not isinstance(value, int) or not lo_i <= value <= hi_i:
                raise _bad(f"`{name}` must be an integer between {lo_i} and {hi_i}", name)
            config[name] = value
        elif name in _FLAGS:
            if not isinstance(value, bool):
                raise _bad(f"`{name}` must be true or false", name)
            config[name] = value
        elif name in _DIRS:
            config[name] = str(resolve_under(value, settings.file_roots, field=name))
        else:
            if not isinstance(value, str) or len(value) > 256:
                raise _bad(f"`{name}` must be text of at most 256 characters", name)
            config[name] = value
    if str(config["log_level"]).upper() not in LOG_LEVELS:
        raise _bad(f"`log_level` must be one of {', '.join(LOG_LEVELS)}", "log_level")
    config["log_level"] = str(config["log_level"]).upper()
    config["min_subbands"] = min(config["min_subbands"], config["expected_subbands"])
    return config


async def get_service(engine: AsyncEngine, settings: Settings) -> dict[str, Any]:
    """The streaming service's row (created stopped, with the default config, on first use).

    Read first: the row exists after the first use, and a reader (the status query, a
    request waiting for the service) must not take SQLite's write lock on every call,
    queueing behind an ingest and failing when it holds the lock past the busy timeout."""
    async with engine.connect() as conn:
        found = (await conn.execute(select(services).where(services.c.name == NAME))).mappings().first()
    if found is not None:
        return dict(found)
    async with write_transaction(engine) as conn:
        return await _ensure_row(conn, settings)


async def _ensure_row(conn: AsyncConnection, settings: Settings, *, lock: bool = False) -> dict[str, Any]:
    """Create the row when missing, then read it (row-locked with ``lock`` on PostgreSQL)."""
    await conn.execute(
        insert_or_skip(conn.dialect.name, services).values(
            name=NAME, desired=STOPPED, config=default_config(settings), updated_at=datetime.now(UTC)
        )
    )
    query = select(services).where(services.c.name == NAME)
    return dict((await conn.execute(query.with_for_update() if lock else query)).mappings().one())


async def request(
    engine: AsyncEngine,
    settings: Settings,
    *,
    desired: str | None = None,
    config: Any = None,
    restart: bool = False,
    by: str | None = None,
) -> dict[str, Any]:
    """Record an operator's request; a config change or a restart bumps the generation (the
    supervisor then restarts a running process). Returns the row.

    A config change is a partial config merged over the stored one, so the stored one is
    read under the write lock (``write_transaction``, the row locked): two operators
    changing different settings at once, from any server processes, both keep theirs.
    Read outside the lock, each merged over the same old config and the last write lost
    the other's change (and whether the config changed, hence the restart, was judged on
    the stale copy too)."""
    if desired is not None and desired not in (RUNNING, STOPPED):
        raise InputError("desired must be running or stopped")
    async with write_transaction(engine) as conn:
        current = await _ensure_row(conn, settings, lock=True)
        values: dict[str, Any] = {"updated_at": datetime.now(UTC), "updated_by": by}
        bump = restart
        if config is not None:
            checked = checked_config(settings, config, current["config"])
            if checked != current["config"]:
                values["config"] = checked
                values["config_version"] = services.c.config_version + 1
                bump = True
        if desired is not None:
            values["desired"] = desired
        if bump:
            values["generation"] = services.c.generation + 1
        await conn.execute(update(services).where(services.c.name == NAME).values(**values))
        row = (await conn.execute(select(services).where(services.c.name == NAME))).mappings().one()
    return dict(row)


async def record(engine: AsyncEngine, **values: Any) -> None:
    """What the supervisor or the process reports (pid, heartbeat, metrics, exits)."""
    async with engine.begin() as conn:
        await conn.execute(update(services).where(services.c.name == NAME).values(**values))


def alive(row: Mapping[str, Any], now: datetime | None = None) -> bool:
    """The process reported within three monitor intervals (at least 15 s)."""
    beat = row.get("heartbeat_at")
    if beat is None or row.get("pid") is None:
        return False
    interval = float(row["config"].get("poll_interval", 5.0)) if isinstance(row.get("config"), dict) else 5.0
    grace = timedelta(seconds=max(15.0, 3 * min(interval, 60.0)))
    return bool((now or datetime.now(UTC)) - beat <= grace)


async def wait_for(
    engine: AsyncEngine,
    settings: Settings,
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float,
    poll_s: float = 0.1,
) -> dict[str, Any]:
    """The row once ``done(row)`` holds; as it is after ``timeout_s``, or at once when no server
    supervises the service (nothing would happen by waiting)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        row = await get_service(engine, settings)
        if done(row) or not supervised(row) or asyncio.get_running_loop().time() >= deadline:
            return row
        await asyncio.sleep(poll_s)


SUPERVISOR_BEAT_S: Final = 2.0


def supervised(row: Mapping[str, Any], now: datetime | None = None) -> bool:
    """A server supervises the service now (it reported within three of its beats)."""
    beat = row.get("supervisor_at")
    return beat is not None and (now or datetime.now(UTC)) - beat <= timedelta(seconds=3 * SUPERVISOR_BEAT_S)


def serving(generation: int) -> Callable[[dict[str, Any]], bool]:
    """The process of ``generation`` is up and reporting."""
    return lambda row: alive(row) and row.get("running_generation") == generation


def stopped(row: dict[str, Any]) -> bool:
    return row.get("pid") is None


@dataclass(frozen=True)
class GroupCounts:
    total: int
    collecting: int
    pending: int
    in_progress: int
    completed: int
    failed: int
    completed_last_hour: int


async def group_counts(engine: AsyncEngine) -> GroupCounts:
    g = groups.c
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    async with engine.connect() as conn:
        by_state = {
            str(s): int(n)
            for s, n in (await conn.execute(select(g.state, func.count()).group_by(g.state))).all()
        }
        recent = (
            await conn.execute(select(func.count()).where(g.state == "completed", g.updated_at >= hour_ago))
        ).scalar_one()
    return GroupCounts(
        total=sum(by_state.values()),
        collecting=by_state.get("collecting", 0),
        pending=by_state.get("pending", 0),
        in_progress=by_state.get("in_progress", 0),
        completed=by_state.get("completed", 0),
        failed=by_state.get("failed", 0),
        completed_last_hour=int(recent),
    )
