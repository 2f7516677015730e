"""Legacy import throughput and follow lag (issue 13), on SQLite and optionally PostgreSQL.

``import``: a legacy fixture of ``--sources`` monitored sources measured on
``--epochs`` days (one photometry row per source per day: 10^5 x 100 = 10^7 rows, plus
the queue, subband files, MS, images, catalog and the rest) is imported into an empty
database with :class:`dsa110.legacy.runner.LegacyImporter`, metric recompute included.
``rows`` counts every legacy row read; ``rows_per_s`` is rows over the wall-clock time;
``cpu_s`` is the process's CPU time meanwhile (all threads: SQLite runs in aiosqlite's),
which a loaded machine does not inflate as it does the wall-clock time.

``follow``: the imported database is then followed (poll ``--poll`` s) while a writer
process (:mod:`tests.legacy.writer`) adds ``--follow-groups`` observation groups, one
every ``--interval`` s, each moving through the queue and measured. For every commit
the writer reports, the lag is the time until the follower published an event carrying
that change (or a later one of the same group): ``lag_p50_ms`` and ``lag_p99_ms``.

Prints ``fixture rows=.. build_s=..``, then per backend
``import backend=.. rows=.. rows_per_s=.. elapsed_s=.. cpu_s=..`` and
``follow backend=.. lag_p50_ms=.. lag_p99_ms=.. samples=..``.

    .venv/bin/python -m bench.legacy_import [--sources 100000 --epochs 100]
        [--postgres postgresql+asyncpg://postgres@127.0.0.1/postgres] [--postgres-scale 0.1]
        [--fixture DIR]   # reuse (or keep) the built fixture
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import line, p50, percentile
from dsa110.db.engine import create_engine
from dsa110.db.migrate import upgrade
from dsa110.events import GROUP_STATE, MEASUREMENTS_ADDED
from dsa110.legacy.files import locate
from dsa110.legacy.runner import LegacyImporter
from tests import databases
from tests.legacy.fixture import FixtureSpec, build_fixture

STATES = ("collecting", "pending", "in_progress", "completed")
REPO = Path(__file__).resolve().parents[1]


def fixture_rows(state_dir: Path) -> int:
    import sqlite3

    total = 0
    for path in state_dir.rglob("*.sqlite3"):
        with sqlite3.connect(path) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            total += sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
    return total


@dataclass
class Follow:
    """Event arrival times, and the writer's commit times, to pair into lags."""

    group_events: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    image_events: dict[int, float] = field(default_factory=dict)
    commits: list[tuple[str, str, float]] = field(default_factory=list)

    async def publish(self, channel: str, payload: dict[str, Any]) -> None:
        now = time.time()
        if channel == GROUP_STATE and payload.get("state") in STATES:
            index = STATES.index(payload["state"])
            self.group_events.setdefault(str(payload["group_id"]), []).append((now, index))
        elif channel == MEASUREMENTS_ADDED:
            self.image_events.setdefault(int(payload["image_pk"]), now)

    def lags_ms(self, image_pk_of: dict[str, int]) -> list[float]:
        lags = []
        for what, key, at in self.commits:
            if what == "group" or what.startswith("state:"):
                index = 0 if what == "group" else STATES.index(what.split(":", 1)[1])
                seen = [t for t, i in self.group_events.get(key, []) if i >= index and t >= at]
                if seen:
                    lags.append((min(seen) - at) * 1000.0)
            elif what == "photometry" and key in image_pk_of and image_pk_of[key] in self.image_events:
                lags.append((self.image_events[image_pk_of[key]] - at) * 1000.0)
        return lags


async def run_import(url: str, state_dir: Path) -> tuple[int, float, float]:
    engine = create_engine(url)
    await upgrade(engine)
    importer = LegacyImporter(engine, locate([state_dir]), read_files=False)
    started, cpu = time.perf_counter(), time.process_time()
    try:
        report = await importer.run_pass()
    finally:
        importer.close()
        await engine.dispose()
    if report.errors:
        raise RuntimeError(report.errors)
    return report.rows_read, time.perf_counter() - started, time.process_time() - cpu


async def run_follow(url: str, state_dir: Path, args: argparse.Namespace, groups_per_day: int) -> list[float]:
    from sqlalchemy import select

    from dsa110.db.tables import images

    engine = create_engine(url)
    follow = Follow()
    importer = LegacyImporter(engine, locate([state_dir]), publish=follow.publish, read_files=False)
    stop = asyncio.Event()
    await importer.run_pass()  # caught up before the writer starts
    task = asyncio.create_task(importer.follow(stop, poll_s=args.poll))
    writer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.legacy.writer",
        str(state_dir),
        "--groups",
        str(args.follow_groups),
        "--interval",
        str(args.interval),
        "--groups-per-day",
        str(groups_per_day),
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await writer.communicate()
    for text in out.decode().splitlines():
        what, key, at = text.split()
        if what != "done":
            follow.commits.append((what, key, float(at)))
    await asyncio.sleep(max(2.0, 10 * args.poll))  # the last changes arrive
    stop.set()
    await task
    importer.close()
    paths = sorted({key for what, key, _ in follow.commits if what == "photometry"})
    async with engine.connect() as conn:
        found = (await conn.execute(select(images.c.path, images.c.id).where(images.c.path.in_(paths)))).all()
    await engine.dispose()
    return follow.lags_ms({p: int(i) for p, i in found})


async def scenario(backend: str, url: str, state_dir: Path, args: argparse.Namespace, gpd: int) -> None:
    rows, elapsed, cpu = await run_import(url, state_dir)
    print(
        line("import", backend=backend, rows=rows, rows_per_s=rows / elapsed, elapsed_s=elapsed, cpu_s=cpu),
        flush=True,
    )
    lags = await run_follow(url, state_dir, args, gpd)
    print(
        line(
            "follow",
            backend=backend,
            lag_p50_ms=p50(lags),
            lag_p99_ms=percentile(lags, 99),
            samples=len(lags),
        ),
        flush=True,
    )


def build(target: Path, spec: FixtureSpec) -> Path:
    state = target / "state"
    if not (state / "products.sqlite3").exists():
        started = time.perf_counter()
        build_fixture(state, spec)
        print(line("fixture", rows=fixture_rows(state), build_s=time.perf_counter() - started), flush=True)
    return state


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="legacy-bench-"))
    keep = Path(args.fixture) if args.fixture else work / "fixture"
    try:
        spec = FixtureSpec(sources=args.sources, days=args.epochs, groups_per_day=args.groups_per_day)
        master = build(keep, spec)
        state = work / "sqlite-copy" / "state"
        shutil.copytree(master, state)  # the follow step writes to it
        await scenario(
            "sqlite", f"sqlite+aiosqlite:///{work / 'import.sqlite3'}", state, args, spec.groups_per_day
        )
        if args.postgres:
            scale = max(1, round(args.sources * args.postgres_scale))
            pg_spec = FixtureSpec(sources=scale, days=args.epochs, groups_per_day=args.groups_per_day)
            pg_master = build(work / "pg-fixture", pg_spec) if scale != args.sources else master
            pg_state = work / "pg-copy" / "state"
            shutil.copytree(pg_master, pg_state)
            databases.POSTGRES_URL = args.postgres
            async with databases.scratch_database("postgresql", work) as url:
                await scenario("postgresql", url, pg_state, args, spec.groups_per_day)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sources", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=100, help="days, one measurement per source per day")
    parser.add_argument("--groups-per-day", type=int, default=288)
    parser.add_argument("--postgres", help="also run on this PostgreSQL server (a scratch database)")
    parser.add_argument("--postgres-scale", type=float, default=0.1, help="PostgreSQL fixture size, relative")
    parser.add_argument("--fixture", help="directory to build the fixture in (and reuse on later runs)")
    parser.add_argument("--follow-groups", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between the writer's groups")
    parser.add_argument("--poll", type=float, default=0.25, help="the follower's poll interval")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
