"""``python -m dsa110.ops.streaming``: the streaming service process (what the server supervises)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from dsa110.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dsa110-graph stream", description=__doc__)
    parser.add_argument("--data-dir")
    parser.add_argument("--database-url")
    parser.add_argument("--events-url")
    parser.add_argument(
        "--generation", type=int, help="the restart generation it runs (set by the supervisor)"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stdout, format="%(asctime)s %(levelname)s %(message)s"
    )
    from dsa110.ops.streaming.watcher import run_stream

    settings = Settings.from_env(
        data_dir=Path(args.data_dir).resolve() if args.data_dir else None,
        database_url=args.database_url,
        events_url=args.events_url,
    )
    return asyncio.run(run_stream(settings, args.generation))


if __name__ == "__main__":
    sys.exit(main())
