"""``dsa110-graph``: serve, build the demo, migrate, manage API keys, export the SDL, ingest catalogs."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from dsa110.settings import Settings

UVICORN_WS_IMPLEMENTATION: Final = "server.ws_protocol:DirectSendWebSocketProtocol"
"""uvicorn's websockets sans-I/O protocol (no reader task or write lock per connection; of
uvicorn's three implementations the cheapest per sent message in bench/fanout.py) with
our direct-send extension, which lets a shared subscription write to 1,000 clients
without waking 1,000 tasks."""
UVICORN_WS_PER_MESSAGE_DEFLATE: Final = False
"""Off: permessage-deflate compresses every message separately for every client, CPU spent
per subscriber per event on messages of a few hundred bytes. The dashboard talks to the
server over the observatory LAN, where the bytes saved are worth less than the CPU."""

UVICORN_HTTP_IMPLEMENTATION: Final = "server.http_protocol:GuardedHttpToolsProtocol"
"""uvicorn's httptools protocol with connection caps per client and in total, and a deadline
for request headers (``server.http_protocol``)."""

UVICORN_LOOP: Final = "server.front_door:new_event_loop"
"""uvloop (as uvicorn's ``auto``) whose servers have a front door: a thread that accepts,
reads request heads under the header deadline and answers ``/healthz`` while the event
loop is busy (``server.front_door``)."""


def uvicorn_protocol_flags() -> list[str]:
    """The same HTTP and WebSocket protocols as ``uvicorn`` command-line flags (test and bench servers)."""
    from server.connections import listen_backlog

    return [
        "--loop",
        UVICORN_LOOP,
        "--backlog",
        str(listen_backlog()),
        "--http",
        UVICORN_HTTP_IMPLEMENTATION,
        "--ws",
        UVICORN_WS_IMPLEMENTATION,
        "--ws-per-message-deflate",
        str(UVICORN_WS_PER_MESSAGE_DEFLATE).lower(),
    ]


def _settings(args: argparse.Namespace) -> Settings:
    data_dir = Path(args.data_dir).resolve() if getattr(args, "data_dir", None) else None
    follow = getattr(args, "follow_legacy", None)
    return Settings.from_env(
        data_dir=data_dir,
        database_url=getattr(args, "database_url", None),
        events_url=getattr(args, "events_url", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        job_slots=getattr(args, "job_slots", None),
        streaming_supervise=getattr(args, "streaming_supervise", None),
        legacy_follow=tuple(Path(p).resolve() for p in follow) if follow else None,
        legacy_poll_s=getattr(args, "legacy_poll", None),
    )


def _serve(args: argparse.Namespace) -> None:
    import uvicorn

    from server.app import create_app
    from server.connections import listen_backlog
    from server.workers import (
        FACTORY,
        SharedBusRequired,
        check_workers,
        export_settings,
        freeze_startup_objects,
        prepare_metrics_directory,
    )

    settings = _settings(args)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": args.log_level,
        "loop": UVICORN_LOOP,
        "http": UVICORN_HTTP_IMPLEMENTATION,
        "backlog": listen_backlog(),
        "ws": UVICORN_WS_IMPLEMENTATION,
        "ws_per_message_deflate": UVICORN_WS_PER_MESSAGE_DEFLATE,
    }
    try:
        check_workers(settings, args.workers)
    except SharedBusRequired as exc:
        print(f"dsa110-graph serve: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.workers == 1:
        app = create_app(settings)
        freeze_startup_objects()
        uvicorn.run(app, **options)
        return
    _migrate_now(settings)  # once, before N processes start
    export_settings(settings)
    prepare_metrics_directory(settings)
    uvicorn.run(FACTORY, factory=True, workers=args.workers, **options)


def _migrate_now(settings: Settings) -> None:
    from dsa110.db.engine import create_engine
    from dsa110.db.migrate import upgrade

    async def run() -> None:
        engine = create_engine(settings.resolved_database_url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _migrate(args: argparse.Namespace) -> None:
    from dsa110.db.engine import create_engine
    from dsa110.db.migrate import current_revision, upgrade

    async def run() -> None:
        engine = create_engine(_settings(args).resolved_database_url)
        await upgrade(engine)
        print(f"database at revision {await current_revision(engine)}")
        await engine.dispose()

    asyncio.run(run())


def _keys(args: argparse.Namespace) -> None:
    from dsa110.auth.cli import keys_main

    keys_main(args, _settings(args))


def _export_schema(args: argparse.Namespace) -> None:
    from schema.schema import build_schema

    sys.stdout.write(build_schema(_settings(args)).as_str() + "\n")


def _catalog(args: argparse.Namespace) -> None:
    from dsa110.science.catalogs import ingest_catalog_main

    raise SystemExit(ingest_catalog_main(args.rest))


def _import_legacy(args: argparse.Namespace) -> None:
    from dsa110.legacy.cli import run_import

    settings = _settings(args)
    events = args.events_url or (settings.events_url if settings.events_shared else None)
    raise SystemExit(
        asyncio.run(run_import(args, settings.resolved_database_url, events, settings.events_namespace))
    )


def _demo(args: argparse.Namespace) -> None:
    from dsa110.demo.cli import run_demo

    asyncio.run(run_demo(args))


def _worker(args: argparse.Namespace) -> None:
    import logging

    from dsa110.ops.queue.service import ExecutorChoice, run_worker
    from dsa110.ops.queue.worker import WorkerConfig

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env(
        data_dir=Path(args.data_dir).resolve() if args.data_dir else None,
        database_url=args.database_url,
        events_url=args.events_url,
        job_lease_s=args.lease_s,
        job_poll_s=args.poll_s,
        job_executor=args.executor,
        dask_scheduler=args.scheduler,
    )
    config = WorkerConfig(
        slots=args.slots,
        lease_s=settings.job_lease_s,
        poll_s=settings.job_poll_s,
        kinds=tuple(k.strip() for k in args.kinds.split(",") if k.strip()) if args.kinds else None,
    )
    choice = ExecutorChoice(settings.job_executor, settings.dask_scheduler)
    asyncio.run(run_worker(settings, config, choice))


def _stream(args: argparse.Namespace) -> None:
    from dsa110.ops.streaming.__main__ import main as stream_main

    rest = list(args.rest)
    for flag in ("data_dir", "database_url", "events_url"):
        value = getattr(args, flag, None)
        if value:
            rest += [f"--{flag.replace('_', '-')}", value]
    raise SystemExit(stream_main(rest))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dsa110-graph", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", help="data directory (env DSA110_DATA_DIR, default ./data)")
        p.add_argument(
            "--database-url", help="SQLAlchemy URL (env DSA110_DATABASE_URL; default SQLite in data dir)"
        )

    serve = sub.add_parser("serve", help="run the GraphQL server")
    common(serve)
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--events-url", help="event bus URL: memory://, redis://..., postgresql://...")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes over one database and bus (N > 1 needs a redis:// or postgresql:// bus)",
    )
    serve.add_argument(
        "--job-slots",
        type=int,
        default=int(os.environ.get("DSA110_JOB_SLOTS", "2")),
        help="jobs the server's own worker pool runs at once (env DSA110_JOB_SLOTS, default 2; 0: none)",
    )
    serve.add_argument(
        "--no-streaming-supervisor",
        dest="streaming_supervise",
        action="store_const",
        const=False,
        default=os.environ.get("DSA110_STREAMING_SUPERVISE", "true").strip().lower()
        not in ("0", "false", "no", "off"),
        help="do not supervise the streaming service from this server (env DSA110_STREAMING_SUPERVISE)",
    )
    serve.add_argument(
        "--follow-legacy",
        action="append",
        metavar="DIR",
        help="follow the legacy pipeline's state directory, importing what it writes (repeatable)",
    )
    serve.add_argument("--legacy-poll", type=float, help="seconds between polls of the legacy files (0.25)")
    serve.set_defaults(func=_serve)

    worker = sub.add_parser("worker", help="run queued jobs (each in its own process group) until stopped")
    common(worker)
    worker.add_argument(
        "--events-url", help="event bus URL; a shared bus (redis, postgresql) wakes the worker at once"
    )
    worker.add_argument("--slots", type=int, default=2, help="jobs run at once (default 2)")
    worker.add_argument("--kinds", help="comma-separated job kinds to run (default: every registered kind)")
    worker.add_argument(
        "--lease-s", type=float, help="job lease in seconds (env DSA110_JOB_LEASE_S, default 30)"
    )
    worker.add_argument(
        "--poll-s", type=float, help="idle poll interval (env DSA110_JOB_POLL_S, default 0.5)"
    )
    worker.add_argument(
        "--executor", choices=["local", "dask"], help="where jobs run (env DSA110_JOB_EXECUTOR)"
    )
    worker.add_argument(
        "--scheduler", help="Dask scheduler address for --executor dask (env DSA110_DASK_SCHEDULER)"
    )
    worker.add_argument("--log-level", default="info")
    worker.set_defaults(func=_worker)

    stream = sub.add_parser(
        "stream", help="the streaming service: watch the incoming directory and queue convert jobs"
    )
    common(stream)
    stream.add_argument("--events-url", help="a shared bus (redis, postgresql) carries its group events")
    stream.add_argument("rest", nargs=argparse.REMAINDER, help="--generation N, --log-level L")
    stream.set_defaults(func=_stream)

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema in place")
    common(migrate)
    migrate.set_defaults(func=_migrate)

    keys = sub.add_parser(
        "keys", help="API keys: `keys create --name N --role R`, `keys list`, `keys revoke --name N`"
    )
    common(keys)
    from dsa110.auth.cli import add_keys_arguments

    add_keys_arguments(keys)
    keys.set_defaults(func=_keys)

    export = sub.add_parser("export-schema", help="print the GraphQL SDL")
    export.set_defaults(func=_export_schema)

    catalog = sub.add_parser("catalog", help="catalog tools: `catalog ingest FILE --catalog nvss`")
    catalog.add_argument("action", choices=["ingest"])
    catalog.add_argument("rest", nargs=argparse.REMAINDER)
    catalog.set_defaults(func=_catalog)

    legacy = sub.add_parser(
        "import-legacy", help="import (and with --follow, keep importing) the legacy pipeline's state files"
    )
    common(legacy)
    from dsa110.legacy.cli import add_arguments as add_legacy_arguments

    add_legacy_arguments(legacy)
    legacy.set_defaults(func=_import_legacy)

    demo = sub.add_parser("demo", help="build the realistic demo data set")
    from dsa110.demo.cli import add_demo_arguments

    add_demo_arguments(demo)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
