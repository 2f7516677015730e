"""``dsa110-graph import-legacy --from DIR [--follow]``: the admin's door to the legacy import.

An admin operation by construction: it needs the database URL and read access to the
pipeline's state files, i.e. a shell on the server. ``--follow`` keeps running and
importing what the pipeline writes; with a shared event bus (``--events-url redis://...``
or ``postgresql://...``) the servers' subscribers hear of every change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any

from dsa110.legacy.files import LegacyFileError, locate, parse_named
from dsa110.legacy.runner import DEFAULT_POLL_S, LegacyImporter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="sources",
        action="append",
        required=True,
        metavar="DIR|FILE",
        help="the state directory, or one state file (repeatable; role=path names a file's role)",
    )
    parser.add_argument("--follow", action="store_true", help="keep importing what the pipeline writes")
    parser.add_argument(
        "--poll", type=float, default=DEFAULT_POLL_S, help="seconds between polls when following"
    )
    parser.add_argument(
        "--root", help="the pipeline's working directory (relative paths); default: the state dir's parent"
    )
    parser.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="where a legacy path prefix is on this machine, for reading FITS headers (repeatable)",
    )
    parser.add_argument("--no-files", action="store_true", help="do not read FITS headers or file sizes")
    parser.add_argument("--events-url", help="event bus to publish on (default: the settings' bus)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _files(values: list[str]) -> dict[str, Path]:
    named: dict[str, Path] = {}
    bare: list[Path] = []
    for value in values:
        role, path = parse_named(value)
        if role is None:
            bare.append(path)
        else:
            named[role] = path
    return {**(locate(bare) if bare else {}), **named}


async def run_import(
    args: argparse.Namespace, database_url: str, events_url: str | None, events_namespace: str
) -> int:
    from tqdm import tqdm

    from dsa110.db.engine import create_engine
    from dsa110.db.migrate import upgrade
    from dsa110.events import create_event_bus

    try:
        files = _files(args.sources)
    except LegacyFileError as exc:
        print(f"import-legacy: {exc}", file=sys.stderr)
        return 2
    path_map = tuple(tuple(item.split("=", 1)) for item in args.path_map if "=" in item)
    engine = create_engine(database_url)
    # The servers' namespace: on a bus shared by several deployments they hear only theirs.
    bus = (
        create_event_bus(events_url, namespace=events_namespace)
        if events_url and not events_url.startswith("memory")
        else None
    )
    bars: dict[str, Any] = {}

    def progress(table: str, n: int) -> None:
        if args.quiet:
            return
        if table not in bars:
            bars[table] = tqdm(desc=table, unit="row", file=sys.stderr, leave=False)
        bars[table].update(n)

    importer = LegacyImporter(
        engine,
        files,
        root=Path(args.root) if args.root else None,
        path_map=path_map,
        publish=bus.publish if bus is not None else None,
        progress=progress,
        read_files=not args.no_files,
    )
    started = time.monotonic()
    try:
        await upgrade(engine)
        if bus is not None:
            await bus.start()
        for role, path in sorted(files.items()):
            print(f"{role}: {path}", file=sys.stderr)
        if args.follow:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, stop.set)
            await importer.follow(stop, poll_s=args.poll)
        else:
            await importer.run_pass()
    finally:
        for bar in bars.values():
            bar.close()
        importer.close()
        if bus is not None:
            await bus.close()
        await engine.dispose()
    report = importer.report
    for line in report.lines():
        print(line)
    elapsed = time.monotonic() - started
    print(f"rows read {report.rows_read}, written {report.rows_written} in {elapsed:.1f} s")
    return 1 if report.errors else 0
