"""Several server processes over one database and one event bus (``serve --workers N``).

uvicorn's supervisor binds the socket once and starts N processes that accept on it,
each importing ``worker_app`` (a factory: every process builds its own app, engine and
bus connection). What keeps them one service:

* the event bus must reach every process (Redis or PostgreSQL): a write made through
  one process then reaches subscribers on all of them. With the in-process ``memory://``
  bus each process would hear only its own writes, so ``serve`` refuses N > 1 with it;
* the database is migrated once, by the supervisor, before any worker starts;
* the metrics sampler is elected by a lease file in the data directory: one process per
  host samples, the others stand by (``/healthz`` says which);
* ``/metrics`` sums the workers' values (prometheus-client's multiprocess mode, files in
  ``PROMETHEUS_MULTIPROC_DIR``, by default ``<data dir>/.prometheus/<host>_<port>``);
* rate limits are counted in Redis when the bus is Redis, so a client's budget does not
  grow with N (with a PostgreSQL bus each process counts its own).

Settings reach the workers through the environment (``DSA110_*``), which the supervisor
sets from its command line before starting them.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from starlette.applications import Starlette

from dsa110.settings import Settings

FACTORY = "server.workers:worker_app"


class SharedBusRequired(ValueError):
    pass


def check_workers(settings: Settings, workers: int) -> None:
    if workers < 1:
        raise SharedBusRequired("--workers must be at least 1")
    if workers > 1 and not settings.events_shared:
        raise SharedBusRequired(
            f"--workers {workers} needs an event bus shared between processes: set "
            "DSA110_EVENTS_URL (or --events-url) to redis://host:port/db or postgresql://user@host/db; "
            "with memory:// a subscriber would only hear writes made through its own process"
        )


def settings_environment(settings: Settings) -> Mapping[str, str]:
    """The ``DSA110_*`` variables that make ``Settings.from_env()`` in a worker match ``settings``."""
    env = {
        "DSA110_DATA_DIR": str(settings.data_dir),
        "DSA110_EVENTS_URL": settings.events_url,
        "DSA110_EVENTS_NAMESPACE": settings.events_namespace,
        "DSA110_HOST": settings.host,
        "DSA110_PORT": str(settings.port),
        "DSA110_JOB_SLOTS": str(settings.job_slots),
        "DSA110_STREAMING_SUPERVISE": str(settings.streaming_supervise).lower(),
    }
    if settings.database_url:
        env["DSA110_DATABASE_URL"] = settings.database_url
    if settings.legacy_follow:
        env["DSA110_LEGACY_FOLLOW"] = os.pathsep.join(str(p) for p in settings.legacy_follow)
        env["DSA110_LEGACY_POLL_S"] = str(settings.legacy_poll_s)
    return env


METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_directory(settings: Settings) -> Path:
    """An empty directory for prometheus-client's multiprocess mode, named in the environment.

    Each worker writes its metric values there and ``/metrics`` sums them; values left by
    an earlier run would be summed too, so the directory is emptied first. Set before the
    workers start: prometheus-client chooses its storage when it is first imported.
    """
    given = os.environ.get(METRICS_DIR_ENV)
    directory = (
        Path(given) if given else settings.data_dir / ".prometheus" / f"{settings.host}_{settings.port}"
    )
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    os.environ[METRICS_DIR_ENV] = str(directory)
    return directory


def export_settings(settings: Settings) -> None:
    os.environ.update(settings_environment(settings))


GC_YOUNG_THRESHOLD: Final = 10_000
"""Allocations (less deallocations) between young collections; CPython's default is 700."""


def freeze_startup_objects() -> None:
    """Keep everything built at start-up out of the cyclic collector's full passes, and run
    the collector less often.

    The process lives as long as those objects (astropy, SQLAlchemy, the schema: about
    10^6 of them), and walking them during large responses dominates their latency.

    Under load a request's objects live for its whole duration, far longer than the
    ~700 allocations between young collections at CPython's default, so they are
    promoted and walked again and again, and a full pass walks every request in flight
    while every thread waits (the front door's too: ``server.front_door``). Measured
    under bench/abuse (50 readers and a connection flood, SQLite), the collector took
    24 % of the server's CPU with the default threshold and 13 % with a young generation
    of 10,000 (full passes 6 -> 2 in 20 s), with the same longest pause; garbage waits a
    little longer, a young generation holds at most 10,000 objects.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def worker_app() -> Starlette:
    """One worker's app (uvicorn ``--factory``); the supervisor has migrated already."""
    from server.app import create_app

    app = create_app(Settings.from_env(), migrate=False)
    freeze_startup_objects()
    return app
