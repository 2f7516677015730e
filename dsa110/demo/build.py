"""Build the demo data set: catalog, schedule, tiles, measurements and records, in bulk.

The order is the pipeline's: sky and schedule are drawn from the seed, tiles are made
and measured (so every measurement comes from pixels), variability metrics are computed
from those measurements, and everything is written with chunked executemany in one
transaction per table family. ``--large`` replaces pixels by analytic photometry
(:mod:`dsa110.demo.measure`) to reach 10^7 measurements for benchmarks.

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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tqdm import tqdm

from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.db.enums import GroupState, JobState, JobType, MosaicStatus, ProductType
from dsa110.db.migrate import upgrade
from dsa110.demo import operations as ops
from dsa110.demo.bulk import count_rows, insert_returning_ids, insert_rows, reset_schema
from dsa110.demo.catalog import Catalog, make_catalog
from dsa110.demo.files import DemoContext, add_real_files, remove_real_files
from dsa110.demo.images import ensure_dir
from dsa110.demo.instrument import (
    BANDWIDTH_MHZ,
    FREQ_HZ,
    INTEGRATION_SEC,
    N_SUBBANDS,
    TILE_CELL_ARCSEC,
    TILE_NPIX,
)
from dsa110.demo.measure import Measured, collect, pair_fluxes, run_tiles, synthesise, tile_specs
from dsa110.demo.mosaic_files import write_mosaic_files
from dsa110.demo.observe import Schedule, make_schedule
from dsa110.demo.plan import TilePlan, plan_tiles
from dsa110.demo.variability import InjectedVariability, choose_variables
from dsa110.ops.ingest import detect_ese
from dsa110.science.healpix import healpix_index
from dsa110.science.variability import source_row, states_by_source
from dsa110.settings import Settings

DEFAULT_SOURCES = 2000
DEFAULT_DAYS = 30.0
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


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


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
        writer = _Writer(
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


def source_metric_columns(
    measured: Measured, image_mjd: NDArray[np.float64], n_sources: int
) -> list[dict[str, Any]]:
    """The sources table's running sums and metrics, from the measurements.

    :func:`dsa110.science.variability.states_by_source` (the running sums, two-epoch
    maxima and first-detection state of every source at once), written by the same
    :func:`~dsa110.science.variability.source_row` the ingest path uses.
    """
    mjd = image_mjd[measured.image]
    states = states_by_source(measured.source, mjd, measured.peak_jy, measured.rms_jy, n_sources)
    return [source_row(state) for state in states]


class _Writer:
    """Writes every table in dependency order, keeping the ids each later table needs."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        root: Path,
        catalog: Catalog,
        schedule: Schedule,
        plan: TilePlan,
        measured: Measured,
        injected: list[InjectedVariability],
        rng: np.random.Generator,
        end: datetime,
        progress: bool,
    ) -> None:
        self.engine, self.root, self.catalog, self.schedule = engine, root, catalog, schedule
        self.plan, self.measured, self.injected, self.rng = plan, measured, injected, rng
        self.now = end.astimezone(UTC)
        self.progress = progress
        self.image_groups = plan.group_index.tolist()
        self.image_mjd = schedule.mid_mjd[plan.group_index]

    async def write_all(self) -> dict[str, int]:
        total = len(self.catalog) * 2 + len(self.schedule) * (N_SUBBANDS + 4) + self.measured.image.shape[0]
        with tqdm(
            total=total, desc="database", unit="row", file=sys.stderr, disable=not self.progress
        ) as bar:
            self.bar = bar
            async with self.engine.begin() as conn:
                source_pk = await self._sky(conn)
                group_pk, ms_pk = await self._observations(conn)
                image_pk = await self._images(conn, group_pk, ms_pk)
                await self._measurements(conn, source_pk, image_pk)
                mosaics = await self._mosaics(conn, image_pk)
                products = await self._products(conn, ms_pk, image_pk, mosaics)
                await add_real_files(conn, self._files_context(mosaics), products)
                await self._jobs(conn, group_pk=group_pk, ms_pk=ms_pk, mosaics=mosaics, products=products)
            async with self.engine.connect() as conn:
                return {table.name: await count_rows(conn, table) for table in t.metadata.sorted_tables}

    async def _sky(self, conn: AsyncConnection) -> NDArray[np.int64]:
        c = self.catalog
        metrics = source_metric_columns(self.measured, self.image_mjd, len(c))
        rows = [
            {
                "source_id": c.names[i],
                "ra_deg": float(c.ra_deg[i]),
                "dec_deg": float(c.dec_deg[i]),
                "healpix": int(c.healpix[i]),
                "catalog_flux_jy": float(c.flux_jy[i]),
                **metrics[i],
            }
            for i in range(len(c))
        ]
        ids = np.asarray(await insert_returning_ids(conn, t.sources, rows), dtype=np.int64)
        self.bar.update(len(rows))
        await insert_rows(
            conn,
            t.catalog_sources,
            (
                {
                    "catalog": "nvss",
                    "name": c.names[i],
                    "ra_deg": float(c.ra_deg[i]),
                    "dec_deg": float(c.dec_deg[i]),
                    "healpix": int(c.healpix[i]),
                    "flux_jy": float(c.flux_jy[i]),
                    "flux_err_jy": float(c.flux_err_jy[i]),
                    "major_arcsec": None,
                    "minor_arcsec": None,
                    "pa_deg": None,
                }
                for i in range(len(c))
            ),
            on_chunk=self.bar.update,
        )
        return ids

    async def _observations(self, conn: AsyncConnection) -> tuple[list[int], dict[int, int]]:
        s, root = self.schedule, self.root
        group_rows = [
            {
                "group_id": s.group_ids[i],
                "state": s.states[i],
                "received_at": s.received_at[i],
                "updated_at": s.updated_at[i],
                "mid_mjd": float(s.mid_mjd[i]),
                "expected_subbands": N_SUBBANDS,
                "retry_count": int(s.retry_count[i]),
                "error": s.errors[i],
                "has_calibrator": bool(s.calibrators[i]),
                "calibrators": s.calibrators[i] or None,
            }
            for i in range(len(s))
        ]
        group_pk = await insert_returning_ids(conn, t.groups, group_rows)
        self.bar.update(len(group_rows))

        incoming = root / "incoming"

        def subbands() -> Any:
            for i, pk in enumerate(group_pk):
                present: list[int] = list(range(N_SUBBANDS))
                if s.n_subbands[i] < N_SUBBANDS:
                    present = sorted(
                        self.rng.choice(N_SUBBANDS, int(s.n_subbands[i]), replace=False).tolist()
                    )
                for sb in present:
                    yield {
                        "group_pk": pk,
                        "subband_idx": sb,
                        "path": f"{incoming}/{s.group_ids[i]}_sb{sb:02d}.hdf5",
                    }

        await insert_rows(conn, t.subband_files, subbands(), on_chunk=self.bar.update)
        await insert_rows(
            conn,
            t.pointing_history,
            (
                {"mjd": float(s.mid_mjd[i]), "ra_deg": float(s.pointing_ra_deg[i]), "dec_deg": s.dec_deg}
                for i in range(len(s))
            ),
            on_chunk=self.bar.update,
        )
        failed = [i for i, st in enumerate(s.states) if st == GroupState.FAILED]
        self.failed_with_ms = set(failed[::2])
        ms_groups = [i for i, st in enumerate(s.states) if ops.has_ms(st, i, self.failed_with_ms)]
        ms_ids = await insert_returning_ids(
            conn, t.measurement_sets, [ops.ms_row(s, i, group_pk[i], root) for i in ms_groups]
        )
        ms_pk = dict(zip(ms_groups, ms_ids, strict=True))
        self.bar.update(len(ms_groups))
        self.cal_groups = ops.calibration_groups(s)
        self.failed_cal = self.cal_groups[len(self.cal_groups) // 2] if len(self.cal_groups) >= 3 else None
        await insert_rows(
            conn, t.cal_tables, ops.cal_table_rows(s, self.cal_groups, ms_pk, root, self.failed_cal)
        )
        return group_pk, ms_pk

    async def _images(self, conn: AsyncConnection, group_pk: list[int], ms_pk: dict[int, int]) -> list[int]:
        s, p, m = self.schedule, self.plan, self.measured
        n_meas = np.bincount(m.image, minlength=p.n_images)
        centre_hp = healpix_index(s.pointing_ra_deg[p.group_index], np.full(p.n_images, s.dec_deg))
        self.image_created = [s.updated_at[g] for g in self.image_groups]
        rows = []
        for i, g in enumerate(self.image_groups):
            noise = float(m.image_noise_jy[i])
            rows.append(
                {
                    "path": ops.image_path(self.root, s.group_ids[g]),
                    "type": "5min",
                    "group_pk": group_pk[g],
                    "ms_pk": ms_pk[g],
                    "created_at": self.image_created[i],
                    "mid_mjd": float(s.mid_mjd[g]),
                    "beam_major_arcsec": float(p.beam_major_arcsec[i]),
                    "beam_minor_arcsec": float(p.beam_minor_arcsec[i]),
                    "beam_pa_deg": float(p.beam_pa_deg[i]),
                    "noise_jy": noise,
                    "dynamic_range": float(m.image_peak_jy[i]) / noise if noise > 0 else None,
                    "center_ra_deg": float(s.pointing_ra_deg[g]),
                    "center_dec_deg": s.dec_deg,
                    "healpix": int(centre_hp[i]),
                    "imsize_x": TILE_NPIX,
                    "imsize_y": TILE_NPIX,
                    "cellsize_arcsec": TILE_CELL_ARCSEC,
                    "freq_ghz": FREQ_HZ / 1e9,
                    "bandwidth_mhz": BANDWIDTH_MHZ,
                    "integration_sec": INTEGRATION_SEC,
                    "pbcor": True,
                    "n_measurements": int(n_meas[i]),
                }
            )
        ids = await insert_returning_ids(conn, t.images, rows)
        self.bar.update(len(rows))
        return ids

    async def _measurements(
        self, conn: AsyncConnection, source_pk: NDArray[np.int64], image_pk: list[int]
    ) -> None:
        m, c = self.measured, self.catalog
        image_ids = np.asarray(image_pk, dtype=np.int64)
        columns = (
            source_pk[m.source].tolist(),
            image_ids[m.image].tolist(),
            self.image_mjd[m.image].tolist(),
            c.ra_deg[m.source].tolist(),
            c.dec_deg[m.source].tolist(),
            m.peak_jy.tolist(),
            m.rms_jy.tolist(),
            m.snr.tolist(),
        )
        rows = (
            {
                "source_pk": sp,
                "image_pk": ip,
                "mjd": mjd,
                "ra_deg": ra,
                "dec_deg": dec,
                "peak_flux_jy": f,
                "peak_flux_err_jy": e,
                "int_flux_jy": f,
                "int_flux_err_jy": e,
                "local_rms_jy": e,
                "snr": snr,
                "forced": True,
            }
            for sp, ip, mjd, ra, dec, f, e, snr in zip(*columns, strict=True)
        )
        await insert_rows(conn, t.measurements, rows, size=50_000, on_chunk=self.bar.update)

    async def _mosaics(self, conn: AsyncConnection, image_pk: list[int]) -> list[tuple[int, ops.MosaicPlan]]:
        s, p, m = self.schedule, self.plan, self.measured
        plans = ops.plan_mosaics(
            [s.group_ids[g] for g in self.image_groups],
            self.image_mjd,
            self.image_created,
            float(s.mid_mjd[-1]),
            self.root,
        )
        sources_per_image = np.split(m.source, np.searchsorted(m.image, np.arange(1, p.n_images)))
        rows = []
        for mp in plans:
            members = np.asarray(mp.members)
            ra = np.radians(s.pointing_ra_deg[p.group_index[members]])
            centre_ra = float(np.degrees(np.arctan2(np.sin(ra).mean(), np.cos(ra).mean())) % 360.0)
            rows.append(
                {
                    "name": mp.name,
                    "path": mp.path,
                    "status": str(mp.status),
                    "created_at": mp.created_at,
                    "start_mjd": mp.start_mjd,
                    "end_mjd": mp.end_mjd,
                    # Averaging n tiles of similar noise lowers it by sqrt(n).
                    "noise_jy": float(np.median(m.image_noise_jy[members]) / np.sqrt(members.size)),
                    "beam_major_arcsec": float(np.median(p.beam_major_arcsec[members])),
                    "beam_minor_arcsec": float(np.median(p.beam_minor_arcsec[members])),
                    "beam_pa_deg": float(np.median(p.beam_pa_deg[members])),
                    "center_ra_deg": centre_ra,
                    "center_dec_deg": s.dec_deg,
                    "n_images": int(members.size),
                    "n_sources": int(
                        np.unique(np.concatenate([sources_per_image[k] for k in mp.members])).size
                    ),
                }
            )
        ids = await insert_returning_ids(conn, t.mosaics, rows)
        await insert_rows(
            conn,
            t.mosaic_images,
            (
                {"mosaic_pk": pk, "image_pk": image_pk[k]}
                for pk, mp in zip(ids, plans, strict=True)
                for k in mp.members
            ),
        )
        return list(zip(ids, plans, strict=True))

    async def _products(
        self,
        conn: AsyncConnection,
        ms_pk: dict[int, int],
        image_pk: list[int],
        mosaics: list[tuple[int, ops.MosaicPlan]],
    ) -> dict[str, int]:
        s, root, rng, now = self.schedule, self.root, self.rng, self.now
        rows = []
        for g, pk in ms_pk.items():
            path = ops.ms_path(root, s.group_ids[g])
            rows.append(
                ops.product_row(
                    rng,
                    data_id=path,
                    data_type=ProductType.MS,
                    stage_path=path,
                    created=s.received_at[g] + timedelta(seconds=45),
                    now=now,
                    data_dir=root,
                    metadata={"group_id": s.group_ids[g], "mid_mjd": float(s.mid_mjd[g])},
                    ms_pk=pk,
                )
            )
        for i, g in enumerate(self.image_groups):
            path = ops.image_path(root, s.group_ids[g])
            rows.append(
                ops.product_row(
                    rng,
                    data_id=path,
                    data_type=ProductType.IMAGE,
                    stage_path=path,
                    created=self.image_created[i],
                    now=now,
                    data_dir=root,
                    metadata={
                        "group_id": s.group_ids[g],
                        "type": "5min",
                        "noise_jy": float(self.measured.image_noise_jy[i]),
                    },
                    image_pk=image_pk[i],
                )
            )
        for pk, mp in mosaics:
            rows.append(
                ops.product_row(
                    rng,
                    data_id=mp.data_id,
                    data_type=ProductType.MOSAIC,
                    stage_path=mp.path,
                    created=mp.created_at,
                    now=now,
                    data_dir=root,
                    metadata={"name": mp.name, "n_images": len(mp.members)},
                    mosaic_pk=pk,
                )
            )
        ids = await insert_returning_ids(conn, t.data_products, rows)
        product_pk = {r["data_id"]: pk for r, pk in zip(rows, ids, strict=True)}

        def edges() -> Any:
            for g in self.image_groups:
                parent = product_pk[ops.ms_path(root, s.group_ids[g])]
                yield {
                    "parent_pk": parent,
                    "child_pk": product_pk[ops.image_path(root, s.group_ids[g])],
                    "relationship": "derived_from",
                }
            for _, mp in mosaics:
                child = product_pk[mp.data_id]
                for k in mp.members:
                    parent = product_pk[ops.image_path(root, s.group_ids[self.image_groups[k]])]
                    yield {"parent_pk": parent, "child_pk": child, "relationship": "derived_from"}

        await insert_rows(conn, t.data_lineage, edges())
        return product_pk

    def _files_context(self, mosaics: list[tuple[int, ops.MosaicPlan]]) -> DemoContext:
        return DemoContext(
            root=self.root,
            schedule=self.schedule,
            catalog=self.catalog,
            image_groups=self.image_groups,
            cal_groups=self.cal_groups,
            mosaics=mosaics,
            measured_source=self.measured.source,
            measured_image=self.measured.image,
            measured_peak=self.measured.peak_jy,
        )

    async def _jobs(
        self,
        conn: AsyncConnection,
        *,
        group_pk: list[int],
        ms_pk: dict[int, int],
        mosaics: list[tuple[int, ops.MosaicPlan]],
        products: dict[str, int],
    ) -> None:
        drafts = self._job_drafts(group_pk, ms_pk, mosaics)
        drafts.sort(key=lambda d: d.row["created_at"])
        ids = await insert_returning_ids(conn, t.jobs, [d.row for d in drafts])

        def logs() -> Any:
            for pk, d in zip(ids, drafts, strict=True):
                start = d.row["started_at"] or d.row["created_at"]
                stop = d.row["finished_at"] or start + timedelta(seconds=30)
                for k, line in enumerate(d.logs):
                    at = start + (stop - start) * (k / max(1, len(d.logs) - 1))
                    yield {"job_pk": pk, "logged_at": at, "line": line}

        def links() -> Any:
            for pk, d in zip(ids, drafts, strict=True):
                for role, data_ids in (("input", d.inputs), ("output", d.outputs)):
                    for data_id in dict.fromkeys(data_ids):
                        if data_id in products:
                            yield {"job_pk": pk, "product_pk": products[data_id], "role": role}

        await insert_rows(conn, t.job_logs, logs())
        await insert_rows(conn, t.job_products, links())

    def _job_drafts(
        self, group_pk: list[int], ms_pk: dict[int, int], mosaics: list[tuple[int, ops.MosaicPlan]]
    ) -> list[ops.JobDraft]:
        s, root, rng = self.schedule, self.root, self.rng
        drafts: list[ops.JobDraft] = []
        recent = set(range(max(0, len(s) - ops.JOB_WINDOW_GROUPS), len(s)))
        failed = {i for i, st in enumerate(s.states) if st == GroupState.FAILED}
        cal_tables = {
            g: [str(root / "ms" / f"{s.group_ids[g]}_{suffix}") for _, _, suffix in ops.CAL_TABLE_TYPES]
            for g in self.cal_groups
        }
        for i in sorted(recent | failed):
            state, gid = s.states[i], s.group_ids[i]
            if state == GroupState.COLLECTING:
                continue
            ms, img = ops.ms_path(root, gid), ops.image_path(root, gid)
            base = s.received_at[i]
            convert_params = {
                "group_id": gid,
                "input_dir": str(root / "incoming"),
                "output_dir": str(root / "ms"),
                "writer": "parallel-subband",
                "expected_subbands": N_SUBBANDS,
            }
            convert_state = {
                GroupState.PENDING: JobState.PENDING,
                GroupState.IN_PROGRESS: JobState.RUNNING,
            }.get(GroupState(state), JobState.DONE)
            if state == GroupState.FAILED and i not in self.failed_with_ms:
                convert_state = JobState.FAILED
            drafts.append(
                ops.job(
                    rng,
                    JobType.CONVERT,
                    convert_state,
                    base + timedelta(seconds=5),
                    convert_params,
                    group_pk=group_pk[i],
                    ms=ms,
                    seconds=40,
                    error=s.errors[i],
                    outputs=[ms],
                )
            )
            if state == GroupState.COMPLETED or i in self.failed_with_ms:
                applied = [c for g, c in cal_tables.items() if g <= i]
                drafts.append(
                    ops.job(
                        rng,
                        JobType.APPLY,
                        JobState.DONE,
                        base + timedelta(seconds=50),
                        {"ms_path": ms, "gaintables": applied[-1] if applied else []},
                        group_pk=group_pk[i],
                        ms=ms,
                        seconds=25,
                        inputs=[ms],
                    )
                )
                image_state = JobState.DONE if state == GroupState.COMPLETED else JobState.FAILED
                drafts.append(
                    ops.job(
                        rng,
                        JobType.IMAGE,
                        image_state,
                        base + timedelta(seconds=80),
                        {
                            "ms_path": ms,
                            "imsize": TILE_NPIX,
                            "cell_arcsec": TILE_CELL_ARCSEC,
                            "backend": "wsclean",
                            "niter": 1000,
                            "pbcor": True,
                        },
                        group_pk=group_pk[i],
                        ms=ms,
                        seconds=100,
                        error=s.errors[i],
                        inputs=[ms],
                        outputs=[img],
                    )
                )
        for g in self.cal_groups:
            ms = ops.ms_path(root, s.group_ids[g])
            state = JobState.FAILED if g == self.failed_cal else JobState.DONE
            drafts.append(
                ops.job(
                    rng,
                    JobType.CALIBRATE,
                    state,
                    s.updated_at[g] - timedelta(seconds=90),
                    {
                        "ms_path": ms,
                        "field": s.calibrators[g][0]["name"],
                        "refant": ops.REFANT,
                        "solve_delay": True,
                        "solve_bandpass": True,
                        "solve_gains": True,
                    },
                    group_pk=group_pk[g],
                    ms=ms,
                    seconds=70,
                    error="bandpass solve: insufficient unflagged data",
                    inputs=[ms],
                )
            )
        recent_mosaics = [
            (pk, mp) for pk, mp in mosaics if mp.end_mjd >= float(s.mid_mjd[-1]) - ops.JOB_WINDOW_DAYS
        ]
        for _pk, mp in recent_mosaics:
            members = [ops.image_path(root, s.group_ids[self.image_groups[k]]) for k in mp.members]
            state = JobState.RUNNING if mp.status == MosaicStatus.BUILDING else JobState.DONE
            drafts.append(
                ops.job(
                    rng,
                    JobType.MOSAIC,
                    state,
                    mp.created_at - timedelta(minutes=3),
                    {
                        "name": mp.name,
                        "start_mjd": mp.start_mjd,
                        "end_mjd": mp.end_mjd,
                        "method": "pbweighted",
                    },
                    seconds=150,
                    inputs=members,
                    outputs=[mp.data_id],
                )
            )
        day0 = s.start[0].replace(hour=0, minute=10, second=0)
        day = day0 + timedelta(days=1)
        while day < self.now:
            drafts.append(
                ops.job(
                    rng,
                    JobType.ESE_DETECT,
                    JobState.DONE,
                    day,
                    {"min_sigma": 5.0, "recompute": True, "source_ids": "all_sources"},
                    seconds=40,
                )
            )
            day += timedelta(days=1)
        drafts.append(
            ops.job(
                rng,
                JobType.ESE_DETECT,
                JobState.PENDING,
                self.now - timedelta(seconds=30),
                {"min_sigma": 5.0, "recompute": True, "source_ids": "all_sources"},
            )
        )
        # Two operator cancellations, so every job state is represented.
        last_done = [i for i in sorted(recent) if s.states[i] == GroupState.COMPLETED][-2:]
        for i in last_done:
            ms = ops.ms_path(root, s.group_ids[i])
            drafts.append(
                ops.job(
                    rng,
                    JobType.IMAGE,
                    JobState.CANCELLED,
                    s.updated_at[i] + timedelta(minutes=2),
                    {
                        "ms_path": ms,
                        "imsize": 2048,
                        "cell_arcsec": 3.0,
                        "backend": "wsclean",
                        "niter": 20000,
                        "pbcor": True,
                        "note": "deep re-image requested by operator",
                    },
                    group_pk=group_pk[i],
                    ms=ms,
                )
            )
        return drafts


async def _finish_science(engine: AsyncEngine, detect: bool, injected_eses: list[str]) -> str:
    """Final step after loading: the database-level science of :mod:`dsa110.ops.ingest`.

    The sources' metrics were written with the sources (running sums, two-epoch maxima:
    :func:`source_metric_columns`). Here ``detect_ese`` runs over every source with enough
    epochs and writes ``ese_candidates`` and ``alerts`` (~12 ms a source; ``flagged_at``
    is the wall clock, so those two tables are the only part that differs between runs).
    The summary says how many of the injected ESEs were flagged: the detector only claims
    a dip it can tell from red noise, and ESEs last weeks, so a 30-day demo shows some of
    them (longer ``--days``, more).
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
