"""``dsa110-graph demo``: the arguments and the command, for the server CLI to mount."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dsa110.demo.build import (
    DEFAULT_DAYS,
    DEFAULT_SEED,
    DEFAULT_SOURCES,
    LARGE_DAYS,
    LARGE_SOURCES,
    DemoExistsError,
    DemoSummary,
    build_demo,
)
from dsa110.settings import Settings

GROUP_CADENCE = timedelta(minutes=5)


def floor_to_cadence(moment: datetime) -> datetime:
    """The last 5-minute group boundary at or before ``moment`` (UTC): group ids stay round."""
    utc = moment.astimezone(UTC)
    midnight = utc.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight + ((utc - midnight) // GROUP_CADENCE) * GROUP_CADENCE


def _end_time(text: str) -> datetime:
    if text == "now":
        return floor_to_cadence(datetime.now(UTC))
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not value > 0:
        raise argparse.ArgumentTypeError("must be positive")
    return value


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``dsa110-graph demo``."""
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="data directory (default: DSA110_DATA_DIR or ./data)"
    )
    parser.add_argument(
        "--database-url", default=None, help="database URL (default: SQLite in the data directory)"
    )
    parser.add_argument(
        "--sources",
        type=_positive_int,
        default=None,
        help=f"catalog size (default {DEFAULT_SOURCES}; --large: {LARGE_SOURCES})",
    )
    parser.add_argument(
        "--days",
        type=_positive_float,
        default=None,
        help=f"days of observations (default {DEFAULT_DAYS:g}; --large: {LARGE_DAYS:g})",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--end",
        type=_end_time,
        # Ending now keeps every "last 7 days" view of a fresh `make run` full; the seed fixes
        # everything but this time origin. Give a time for a byte-identical rebuild.
        default="now",
        help="time of the newest group, ISO 8601 or 'now' (default: now, at a 5-minute boundary)",
    )
    parser.add_argument(
        "--no-images", action="store_true", help="measure tiles in memory but write no FITS files"
    )
    parser.add_argument(
        "--large", action="store_true", help="10^5 sources and ~10^7 measurements, database only (benchmarks)"
    )
    parser.add_argument("--force", action="store_true", help="drop existing data and rebuild")
    parser.add_argument("--workers", type=_positive_int, default=None, help="processes for tile synthesis")
    parser.add_argument("--no-detect", action="store_true", help="skip ESE detection after loading")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def format_summary(summary: DemoSummary) -> str:
    end = summary.end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = [
        f"demo data set built in {summary.elapsed_s:.1f} s: {summary.database_url}",
        f"  data dir {summary.data_dir}",
        f"  images   {summary.images_written} FITS files, {summary.bytes_on_disk / 1e6:.1f} MB",
        f"  truth    {summary.truth_path}",
        f"  science  {summary.science}",
        # The pointings follow the sidereal time of `end`: the same data set on another
        # backend (or later) needs the same --end as well as the same seed, sources and days.
        f"  end      {end} (pass --end {end} to build this data set again, on any backend)",
    ]
    lines += [f"  {name:<24} {count:>10,d}" for name, count in summary.row_counts.items() if count]
    return "\n".join(lines)


async def run_demo(args: argparse.Namespace) -> None:
    """Build the demo from parsed arguments; if data exists and ``--force`` is not given,
    say so and leave it (so ``make run`` can always call this)."""
    overrides: dict[str, object] = {"data_dir": args.data_dir.resolve() if args.data_dir else None}
    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    settings = Settings.from_env(**overrides)
    large = bool(args.large)
    try:
        summary = await build_demo(
            settings,
            settings.data_dir,
            sources=args.sources or (LARGE_SOURCES if large else DEFAULT_SOURCES),
            days=args.days or (LARGE_DAYS if large else DEFAULT_DAYS),
            seed=args.seed,
            images=not args.no_images,
            progress=not getattr(args, "quiet", False),
            large=large,
            force=bool(args.force),
            end=args.end,
            workers=args.workers,
            detect=not getattr(args, "no_detect", False),
        )
    except DemoExistsError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return
    print(format_summary(summary))
    if not large:
        await _raw_data(settings.resolved_database_url, summary.data_dir)


async def _raw_data(url: str, data_dir: Path) -> None:
    """Visibilities simulated from the demo's sky for the groups with subband files: the newest
    converted groups and those whose convert job is pending, running or failed (pipeline-ready)."""
    import time

    from dsa110.db.engine import create_engine
    from dsa110.demo.raw import add_raw_data

    clock = time.perf_counter()
    engine = create_engine(url)
    try:
        group_ids, n_files = await add_raw_data(engine)
    finally:
        await engine.dispose()
    took = time.perf_counter() - clock
    print(
        f"  raw data {n_files} UVH5 files of {len(group_ids)} groups simulated from the sky in {took:.1f} s"
    )
    hint = workflow_groups(data_dir, group_ids)
    if hint is not None:
        group_id, calibrator = hint
        print(
            "  try      mutation { submitJob(kind: WORKFLOW, params: "
            f'{{group_id: "{group_id}", calibrator_group_id: "{calibrator}"}}) {{ jobId }} }}'
        )


def workflow_groups(data_dir: Path, group_ids: list[str]) -> tuple[str, str] | None:
    """A group for the suggested workflow and its calibrator group, among ``group_ids``: the
    newest converted group (its MS on disk; no queued convert job races the workflow's) and
    the group with calibration tables beside its MS."""
    ms = data_dir / "ms"
    converted = sorted(g for g in group_ids if (ms / f"{g}.ms").is_dir())
    calibrators = [g for g in converted if (ms / f"{g}_bpcal").is_dir()]
    others = [g for g in converted if g not in calibrators]
    if not calibrators or not others:
        return None
    return others[-1], calibrators[-1]


def main(argv: list[str] | None = None) -> None:
    """Stand-alone entry (``python -m dsa110.demo.cli``) until the server CLI mounts it."""
    import asyncio

    parser = argparse.ArgumentParser(prog="dsa110-graph demo", description="build the demo data set")
    add_demo_arguments(parser)
    asyncio.run(run_demo(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
