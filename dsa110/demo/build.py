"""Build the demo data set: catalog, schedule, tiles, measurements and records, in bulk.

The order is the pipeline's: sky and schedule are drawn from the seed, tiles are made
and measured (so every measurement comes from pixels), variability metrics are computed
from those measurements, and everything is written with chunked executemany in one
transaction per table family. ``--large`` replaces pixels by analytic photometry
(:mod:`dsa110.demo.measure`) to reach 10^7 measurements for benchmarks.

This module prepares (schema, sky, schedule, tiles, measurements) and finishes (ESE
detection, the truth file); ``dsa110.demo.writer`` writes the tables and
``dsa110.demo.job_drafts`` makes the job history.

Determinism: one ``numpy.random.SeedSequence(seed)`` spawns an independent stream per
stage, tiles are seeded by (seed, tile index), and ``end`` defaults to a fixed moment,
so the same arguments give the same database and the same files.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from tqdm import tqdm

from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.db.enums import GroupState
from dsa110.db.migrate import upgrade
from dsa110.db.stats import analyze
from dsa110.demo import operations as ops
from dsa110.demo.bulk import count_rows, reset_schema
from dsa110.demo.catalog import Catalog, make_catalog
from dsa110.demo.files import remove_real_files
from dsa110.demo.images import ensure_dir
from dsa110.demo.measure import collect, pair_fluxes, run_tiles, synthesise, tile_specs
from dsa110.demo.mosaic_files import write_mosaic_files
from dsa110.demo.observe import Schedule, make_schedule
from dsa110.demo.plan import plan_tiles
from dsa110.demo.variability import InjectedVariability, choose_variables
from dsa110.demo.writer import DemoWriter
from dsa110.ops.ingest import detect_ese
from dsa110.settings import Settings

DEFAULT_SOURCES = 2000
# Long enough for the injected ESEs (FWHM 14-21 d) to show a baseline on both sides, which
# the detector's red-noise test needs to tell a dip from a wander (30 days: 1 of 5 claimed).
DEFAULT_DAYS = 60.0
DEFAULT_SEED = 110
# A fixed "now" keeps the data set identical from run to run; pass ``end`` for another.
DEFAULT_END = datetime(2025, 11, 13, 12, 0, tzinfo=UTC)
LARGE_SOURCES = 100_000
LARGE_DAYS = 43.0  # ~2.35 epochs per source per day -> ~1.0e7 measurements
TRUTH_FILE = "demo_truth.json"
MAX_SOURCES = 1_000_000
MAX_DAYS = 3660.0


class DemoExistsError(RuntimeError):
    """The database already holds data: pass ``force=True`` (``--force``) to rebuild."""


@dataclass(frozen=True)
class DemoSummary:
    data_dir: Path
    database_url: str
    seed: int
    sources: int
    days: float
    images_written: int
    bytes_on_disk: int
    row_counts: dict[str, int]
    elapsed_s: float
    truth_path: Path
    science: str
    stage_seconds: dict[str, float] = field(default_factory=dict)
    end: datetime = DEFAULT_END
    """The time origin: with seed, sources and days it fixes the data set on every backend."""


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


SkyPlan = tuple[list[np.random.Generator], Catalog, Schedule, list[InjectedVariability], NDArray[np.intp]]


def plan_sky(seed: int, sources: int, end: datetime, days: float) -> SkyPlan:
    """The seeded start of every build: (random streams, catalog, schedule, injected
    variables, indices of the completed groups that get images), in the streams' fixed
    order (catalog, schedule, variables; then tiles, synthesis, writer)."""
    streams = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(seed).spawn(8)]
    catalog = make_catalog(streams[0], sources)
    schedule = make_schedule(streams[1], end, days, catalog)
    injected = choose_variables(
        streams[2],
        catalog.true_flux_jy,
        catalog.calibrators,
        float(schedule.start_mjd[0]),
        float(schedule.mid_mjd[-1]),
    )
    image_groups = np.asarray(
        [i for i, st in enumerate(schedule.states) if st == GroupState.COMPLETED], dtype=np.intp
    )
    return streams, catalog, schedule, injected, image_groups


async def build_demo(
    settings_or_url: Settings | str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    sources: int = DEFAULT_SOURCES,
    days: float = DEFAULT_DAYS,
    seed: int = DEFAULT_SEED,
    images: bool = True,
    progress: bool = False,
    large: bool = False,
    force: bool = False,
    end: datetime | None = None,
    workers: int | None = None,
    detect: bool = True,
) -> DemoSummary:
    """Create the schema and fill it (and ``data_dir``) with the demo data set."""
    if isinstance(settings_or_url, Settings):
        url = settings_or_url.resolved_database_url
        root = Path(data_dir if data_dir is not None else settings_or_url.data_dir)
    else:
        url = str(settings_or_url)
        if data_dir is None:
            raise ValueError("data_dir is required when a database URL is given")
        root = Path(data_dir)
    if not 1 <= sources <= MAX_SOURCES:
        raise ValueError(f"sources must be between 1 and {MAX_SOURCES}")
    if not (0.05 <= days <= MAX_DAYS):
        raise ValueError(f"days must be between 0.05 and {MAX_DAYS}")
    end = end or DEFAULT_END
    if end.tzinfo is None:
        raise ValueError("end must be timezone-aware")
    root = root.resolve()
    images = images and not large
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    clock = time.perf_counter()
    stages: dict[str, float] = {}

    await _prepare_database(url, root, force)
    stages["schema"] = time.perf_counter() - clock

    # Sky, schedule and tiles are made before the engine exists: the tile pool forks, and
    # a fork must not copy a process holding database driver threads.
    root.mkdir(parents=True, exist_ok=True)
    streams, catalog, schedule, injected, image_groups = plan_sky(seed, sources, end, days)
    plan = plan_tiles(streams[3], catalog, schedule.pointing_ra_deg, image_groups, measured_only=large)
    image_mjd = schedule.mid_mjd[image_groups]
    centre_ra = schedule.pointing_ra_deg[image_groups]
    fluxes = pair_fluxes(plan, catalog, image_mjd, injected)
    stages["plan"] = time.perf_counter() - clock

    if large:
        measured = synthesise(streams[4], plan, catalog, centre_ra, fluxes)
    else:
        group_ids = [schedule.group_ids[g] for g in image_groups.tolist()]
        paths: list[str | None] = (
            [ops.image_path(root, gid) for gid in group_ids] if images else [None] * len(group_ids)
        )
        if images:
            ensure_dir(root / "images")
        date_obs = [schedule.start[g].strftime("%Y-%m-%dT%H:%M:%S") for g in image_groups.tolist()]
        specs = tile_specs(
            plan,
            catalog=catalog,
            centre_ra=centre_ra,
            image_mjd=image_mjd,
            group_ids=group_ids,
            date_obs=date_obs,
            paths=paths,
            fluxes=fluxes,
            seed=seed,
        )
        with tqdm(total=len(specs), desc="tiles", unit="img", file=sys.stderr, disable=not progress) as bar:
            results = run_tiles(specs, images, workers, bar.update)
        measured = collect(plan, results)
    stages["tiles"] = time.perf_counter() - clock

    engine = create_engine(url)
    try:
        writer = DemoWriter(
            engine,
            root=root,
            catalog=catalog,
            schedule=schedule,
            plan=plan,
            measured=measured,
            injected=injected,
            rng=streams[5],
            end=end,
            progress=progress,
        )
        counts = await writer.write_all()
        stages["database"] = time.perf_counter() - clock
        if images:  # every listed mosaic gets its (small) FITS file
            await write_mosaic_files(engine)
            stages["mosaic files"] = time.perf_counter() - clock
        injected_eses = [catalog.names[m.source_index] for m in injected if m.kind == "ese"]
        science = await _finish_science(engine, detect and not large, injected_eses)
        stages["science"] = time.perf_counter() - clock
        # A fresh `make run` plans with statistics, as after any bulk load (issue 11).
        await analyze(engine, sorted(t.metadata.tables), vacuum=True)
        stages["statistics"] = time.perf_counter() - clock
    finally:
        await engine.dispose()
    truth_path = _write_truth(
        root, seed=seed, sources=sources, days=days, end=end, catalog=catalog, injected=injected, large=large
    )

    written = len(image_groups) if images else 0
    disk = sum(f.stat().st_size for f in (root / "images").glob("*.fits")) if images else 0
    return DemoSummary(
        data_dir=root,
        database_url=_safe_url(url),
        seed=seed,
        sources=sources,
        days=days,
        images_written=written,
        bytes_on_disk=disk,
        row_counts=counts,
        elapsed_s=time.perf_counter() - clock,
        truth_path=truth_path,
        science=science,
        stage_seconds=stages,
        end=end,
    )


async def _prepare_database(url: str, root: Path, force: bool) -> None:
    """Migrate; refuse to touch existing data unless ``force``, then start from empty."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            existing = await count_rows(conn, t.sources) + await count_rows(conn, t.groups)
        if existing:
            if not force:
                raise DemoExistsError(f"{_safe_url(url)} already holds data; use --force to rebuild it")
            await reset_schema(engine)
            _remove_demo_files(root)
    finally:
        await engine.dispose()


def _remove_demo_files(root: Path) -> None:
    """Remove what a previous demo wrote (and only that)."""
    for name, pattern in (("images", "*.img-image-pb.fits"), ("mosaics", "mosaic_*.fits")):
        folder = root / name
        if folder.is_dir():
            for f in folder.glob(pattern):
                f.unlink()
    (root / TRUTH_FILE).unlink(missing_ok=True)
    remove_real_files(root)
    if (root / "images").is_dir() and not any((root / "images").iterdir()):
        shutil.rmtree(root / "images")


def _write_truth(
    root: Path,
    *,
    seed: int,
    sources: int,
    days: float,
    end: datetime,
    catalog: Catalog,
    injected: list[InjectedVariability],
    large: bool,
) -> Path:
    truth = {
        "generator": "dsa110.demo",
        "seed": seed,
        "sources": sources,
        "days": days,
        "end": end.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "large": large,
        "calibration_scatter": 0.03,
        "calibrators": [catalog.names[i] for i in catalog.calibrators.tolist()],
        "variables": [m.truth(catalog.names[m.source_index]) for m in injected],
    }
    path = root / TRUTH_FILE
    path.write_text(json.dumps(truth, indent=2) + "\n")
    return path


async def _finish_science(engine: AsyncEngine, detect: bool, injected_eses: list[str]) -> str:
    """Final step after loading: the database-level science of :mod:`dsa110.ops.ingest`.

    The sources' metrics were written with the sources (running sums, two-epoch maxima:
    :func:`dsa110.demo.writer.source_metric_columns`). Here ``detect_ese`` runs over every source with enough
    epochs and writes ``ese_candidates`` and ``alerts`` (~12 ms a source; ``flagged_at``
    is the wall clock, so those two tables are the only part that differs between runs).
    The summary says how many of the injected ESEs were flagged: the detector only claims
    a dip it can tell from red noise, which needs baseline on both sides of a weeks-long
    dip; the default 60 days (seed 110) show 3-4 of 5 (30 days showed 0-1 of 5).
    """
    if not detect:
        return "metrics from running sums; ESE detection skipped"
    result = await detect_ese(engine)
    async with engine.connect() as conn:
        flagged = set(
            (
                await conn.execute(
                    select(t.sources.c.source_id).join(
                        t.ese_candidates, t.ese_candidates.c.source_pk == t.sources.c.id
                    )
                )
            ).scalars()
        )
    recovered = len(flagged.intersection(injected_eses))
    return (
        f"metrics from running sums; detect_ese over {result.n_sources} sources: "
        f"{len(flagged)} candidates ({recovered} of {len(injected_eses)} injected ESEs, "
        f"{len(flagged) - recovered} other), {len(result.alert_pks)} alerts"
    )
