"""The demo's database writer: every table in dependency order, in bulk, in one transaction.

``DemoWriter(engine, ...).write_all()`` writes the sky (sources with their metrics, the
NVSS catalog), the observations (groups, subband files, pointing, Measurement Sets,
calibration tables), images, measurements, mosaics, data products with their lineage,
the real files (``dsa110.demo.files``) and the job history (``dsa110.demo.job_drafts``),
keeping the ids each later table needs. ``dsa110.demo.build`` prepares what it writes.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from tqdm import tqdm

from dsa110.db import tables as t
from dsa110.db.enums import GroupState, ProductType
from dsa110.demo import operations as ops
from dsa110.demo.bulk import count_rows, insert_returning_ids, insert_rows
from dsa110.demo.catalog import Catalog
from dsa110.demo.files import DemoContext, add_real_files
from dsa110.demo.instrument import (
    BANDWIDTH_MHZ,
    FREQ_HZ,
    INTEGRATION_SEC,
    N_SUBBANDS,
    TILE_CELL_ARCSEC,
    TILE_NPIX,
)
from dsa110.demo.job_drafts import JobHistory, retried_ms_groups, unconverted_groups
from dsa110.demo.measure import Measured
from dsa110.demo.observe import Schedule
from dsa110.demo.plan import TilePlan
from dsa110.demo.variability import InjectedVariability
from dsa110.science.healpix import healpix_index
from dsa110.science.variability import source_row, states_by_source


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


class DemoWriter:
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
            unconverted=tuple(unconverted_groups(self.schedule, self.failed_with_ms)),
            retried_ms=tuple(retried_ms_groups(self.schedule, self.failed_with_ms, self.failed_cal)),
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
        drafts = JobHistory(
            schedule=self.schedule,
            root=self.root,
            rng=self.rng,
            now=self.now,
            group_pk=group_pk,
            mosaics=mosaics,
            image_groups=self.image_groups,
            cal_groups=self.cal_groups,
            failed_with_ms=self.failed_with_ms,
            failed_cal=self.failed_cal,
        ).drafts()
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
