"""The demo's real files: a few observation groups get their raw UVH5 subbands, a real
Measurement Set and (for the day's calibrator group) real calibration tables, written
small with :mod:`dsa110.demo.radio_files` at the paths the database already names. The
groups whose convert job the demo leaves pending, running or failed
(:func:`dsa110.demo.job_drafts.unconverted_groups`) get their raw subbands too (and no
MS), and those whose MS a failed or cancelled job reads
(:func:`dsa110.demo.job_drafts.retried_ms_groups`) their MS, so those jobs run, or run when
retried.

Also written and registered, so the data registry shows a whole lineage
(raw -> MS -> calibration tables -> image -> mosaic -> catalog): ``raw`` products for the
subband files (never auto-published: raw data stays in ``incoming``), ``caltable``
products, and a ``catalog`` product - a CSV of the sources measured on the newest complete
mosaic. The strip's calibrators are entered as the ``vla`` catalog, the list calibrator
matching reads.

Everything else in the demo stays a record without a file (the default 60 days of MS would be ~36 TB).
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dsa110.db import tables as t
from dsa110.db.enums import GroupState, ProductStatus, ProductType
from dsa110.demo import operations as ops
from dsa110.demo.catalog import Catalog
from dsa110.demo.instrument import N_SUBBANDS
from dsa110.demo.observe import Schedule
from dsa110.demo.radio_files import MsSpec, UvhSpec, write_caltable, write_ms, write_uvh5

GROUPS_WITH_FILES = 2  # the newest imaged groups, besides the newest calibrator group
MS_FIELDS = 24  # a real group: 24 fields of 12.88 s
CAL_KINDS = {"K": "K", "BP": "B", "GP": "G"}
VLA_CATALOG = "vla"


@dataclass(frozen=True)
class WrittenFiles:
    groups: list[int]
    ms: dict[int, Path]
    caltables: dict[str, Path]  # table type -> path
    uvh5: dict[int, list[Path]]
    catalog: Path | None


def _base_rows(data_id: str, data_type: str, stage_path: str, created: datetime) -> dict[str, Any]:
    return {
        "data_id": data_id,
        "data_type": data_type,
        "status": ProductStatus.STAGING,
        "stage_path": stage_path,
        "published_path": None,
        "created_at": created,
        "staged_at": created,
        "published_at": None,
        "publish_mode": None,
        "qa_status": "pending",
        "validation_status": "pending",
        "finalization_status": "pending",
        "auto_publish": True,
        "publish_attempts": 0,
        "publish_error": None,
        "metadata": {},
        "image_pk": None,
        "mosaic_pk": None,
        "ms_pk": None,
        "caltable_pk": None,
    }


def pick_groups(schedule: Schedule, candidates: Sequence[int], cal_groups: Sequence[int]) -> list[int]:
    """The newest calibrator group and the newest completed of ``candidates`` (oldest first)."""
    newest = [g for g in candidates if schedule.states[g] == GroupState.COMPLETED][-GROUPS_WITH_FILES:]
    chosen = set(newest)
    if cal_groups:
        chosen.add(cal_groups[-1])
    return sorted(chosen)


def write_subbands(root: Path, schedule: Schedule, i: int, seed: int) -> list[Path]:
    """Group ``i``'s 16 UVH5 subband files in ``incoming``, at the paths its rows name."""
    gid, start = schedule.group_ids[i], float(schedule.start_mjd[i])
    return [
        write_uvh5(
            root / "incoming" / f"{gid}_sb{sb:02d}.hdf5",
            UvhSpec(start_mjd=start, dec_deg=schedule.dec_deg, subband=sb, seed=seed + i * 100 + sb),
        )
        for sb in range(N_SUBBANDS)
    ]


def write_files(
    root: Path,
    schedule: Schedule,
    groups: Sequence[int],
    cal_group: int | None,
    seed: int,
    raw_only: Sequence[int] = (),
    ms_only: Sequence[int] = (),
) -> WrittenFiles:
    """MS and subbands of ``groups``, calibration tables of ``cal_group``, the subbands
    alone of ``raw_only`` (groups not converted yet) and the MS alone of ``ms_only``."""
    ms: dict[int, Path] = {}
    uvh5: dict[int, list[Path]] = {}
    caltables: dict[str, Path] = {}
    for i in groups:
        gid = schedule.group_ids[i]
        start = float(schedule.start_mjd[i])
        path = Path(ops.ms_path(root, gid))
        if not path.exists():
            spec = MsSpec(start_mjd=start, dec_deg=schedule.dec_deg, n_times=MS_FIELDS, seed=seed + i)
            write_ms(path, spec)
        ms[i] = path
        uvh5[i] = write_subbands(root, schedule, i, seed)
    for i in raw_only:
        if i not in uvh5:
            uvh5[i] = write_subbands(root, schedule, i, seed)
    for i in ms_only:
        path = Path(ops.ms_path(root, schedule.group_ids[i]))
        if i not in ms and not path.exists():
            write_ms(
                path, MsSpec(float(schedule.start_mjd[i]), schedule.dec_deg, n_times=MS_FIELDS, seed=seed + i)
            )
    if cal_group is not None and cal_group in ms:
        gid = schedule.group_ids[cal_group]
        for table_type, order_suffix in ((k, s) for k, _, s in ops.CAL_TABLE_TYPES):
            target = root / "ms" / f"{gid}_{order_suffix}"
            if not target.exists():
                write_caltable(
                    target, ms[cal_group], CAL_KINDS[table_type], refant=int(ops.REFANT), seed=seed
                )
            caltables[table_type] = target
    return WrittenFiles(groups=list(groups), ms=ms, caltables=caltables, uvh5=uvh5, catalog=None)


def write_catalog(
    path: Path, names: Sequence[str], ra: Sequence[float], dec: Sequence[float], flux: Sequence[float]
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source_id", "ra_deg", "dec_deg", "flux_jy"])
        for row in zip(names, ra, dec, flux, strict=True):
            writer.writerow([row[0], f"{row[1]:.6f}", f"{row[2]:.6f}", f"{row[3]:.6g}"])
    return path


async def insert_vla_calibrators(conn: AsyncConnection, catalog: Catalog) -> None:
    """The strip's calibrators as the ``vla`` list (the demo's stand-in for the VLA
    calibrator manual: same names and positions as its NVSS entries, 20 cm flux)."""
    rows = [
        {
            "catalog": VLA_CATALOG,
            "name": catalog.names[i],
            "ra_deg": float(catalog.ra_deg[i]),
            "dec_deg": float(catalog.dec_deg[i]),
            "healpix": int(catalog.healpix[i]),
            "flux_jy": float(catalog.flux_jy[i]),
            "flux_err_jy": None,
            "major_arcsec": None,
            "minor_arcsec": None,
            "pa_deg": None,
        }
        for i in catalog.calibrators.tolist()
    ]
    if rows:
        await conn.execute(insert(t.catalog_sources), rows)


@dataclass(frozen=True)
class DemoContext:
    """What the demo writer already holds that the files step needs."""

    root: Path
    schedule: Schedule
    catalog: Catalog
    image_groups: list[int]  # group index of each image, in image order
    cal_groups: list[int]
    mosaics: list[tuple[int, ops.MosaicPlan]]
    measured_source: np.ndarray[Any, Any]
    measured_image: np.ndarray[Any, Any]
    measured_peak: np.ndarray[Any, Any]
    seed: int = 110
    unconverted: tuple[int, ...] = ()  # groups whose convert job is pending, running or failed
    retried_ms: tuple[int, ...] = ()  # groups whose MS a failed or cancelled job reads


async def add_real_files(conn: AsyncConnection, ctx: DemoContext, products: dict[str, int]) -> WrittenFiles:
    """Write the files, enter the calibrators, register the new products and their lineage."""
    s = ctx.schedule
    newest = newest_complete_mosaic(ctx.mosaics)
    # Groups imaged into the newest complete mosaic: their lineage runs to its catalog.
    members = [ctx.image_groups[k] for k in newest[1].members] if newest else ctx.image_groups
    groups = pick_groups(s, members, ctx.cal_groups)
    cal_group = ctx.cal_groups[-1] if ctx.cal_groups else None
    files = write_files(
        ctx.root, s, groups, cal_group, ctx.seed, raw_only=ctx.unconverted, ms_only=ctx.retried_ms
    )
    catalog_path = None
    if newest is not None:
        _, mosaic = newest
        sources, flux = catalog_rows(
            mosaic.members, ctx.measured_source, ctx.measured_image, ctx.measured_peak
        )
        catalog_path = write_catalog(
            ctx.root / "catalogs" / f"{mosaic.name}.csv",
            [ctx.catalog.names[k] for k in sources.tolist()],
            ctx.catalog.ra_deg[sources].tolist(),
            ctx.catalog.dec_deg[sources].tolist(),
            flux.tolist(),
        )
    files = WrittenFiles(files.groups, files.ms, files.caltables, files.uvh5, catalog_path)
    await insert_vla_calibrators(conn, ctx.catalog)
    paths = [str(p) for p in files.caltables.values()]
    caltable_pks = {
        row.path: row.id
        for row in await conn.execute(
            select(t.cal_tables.c.id, t.cal_tables.c.path).where(t.cal_tables.c.path.in_(paths))
        )
    }
    rows, edges = _product_rows(ctx, files, caltable_pks, newest)
    result = await conn.execute(
        insert(t.data_products).returning(t.data_products.c.id, t.data_products.c.data_id), rows
    )
    products.update({data_id: pk for pk, data_id in result.all()})
    links = [
        {"parent_pk": products[parent], "child_pk": products[child], "relationship": relationship}
        for parent, child, relationship in edges
        if parent in products and child in products
    ]
    if links:
        await conn.execute(insert(t.data_lineage), links)
    return files


def _product_rows(
    ctx: DemoContext,
    files: WrittenFiles,
    caltable_pks: dict[str, int],
    newest: tuple[int, ops.MosaicPlan] | None,
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    s = ctx.schedule
    rows: list[dict[str, Any]] = []
    edges: list[tuple[str, str, str]] = []
    imaged = set(ctx.image_groups)
    for i, paths in sorted(files.uvh5.items()):
        gid = s.group_ids[i]
        raw_id = f"raw_{gid}"
        row = _base_rows(raw_id, ProductType.RAW, str(paths[0]), s.received_at[i])
        row.update(
            auto_publish=False,
            metadata={"group_id": gid, "files": [str(p) for p in paths]},
            qa_status="passed",
            validation_status="validated",
            finalization_status="finalized",
        )
        rows.append(row)
        if i not in files.ms:
            continue  # not converted yet: its convert job links the MS when it runs
        edges.append((raw_id, str(files.ms[i]), "derived_from"))
        if i in imaged:
            image = ops.image_path(ctx.root, gid)
            edges.extend((str(path), image, "calibrated_with") for path in files.caltables.values())
    cal_group = ctx.cal_groups[-1] if ctx.cal_groups else None
    for table_type, path in files.caltables.items():
        assert cal_group is not None
        row = _base_rows(str(path), ProductType.CALTABLE, str(path), s.updated_at[cal_group])
        row.update(caltable_pk=caltable_pks.get(str(path)), metadata={"table_type": table_type})
        rows.append(row)
        edges.append((str(files.ms[cal_group]), str(path), "derived_from"))
    if files.catalog is not None and newest is not None:
        _, mosaic = newest
        catalog_id = f"catalog_{mosaic.name}"
        row = _base_rows(catalog_id, ProductType.CATALOG, str(files.catalog), catalog_created(mosaic))
        row.update(metadata={"mosaic": mosaic.name, "columns": ["source_id", "ra_deg", "dec_deg", "flux_jy"]})
        rows.append(row)
        edges.append((mosaic.data_id, catalog_id, "derived_from"))
    return rows, edges


def remove_real_files(root: Path) -> None:
    """Remove what :func:`add_real_files` wrote (and only that), plus derived QA files."""
    patterns = {
        "ms": ("*.ms", "*_kcal", "*_bpcal", "*_gpcal"),
        "incoming": ("*_sb??.hdf5",),
        "catalogs": ("mosaic_*.csv",),
    }
    for folder, globs in patterns.items():
        for pattern in globs:
            for path in (root / folder).glob(pattern):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    for derived in (root / ".cache", root / "qa" / "calibration"):
        if derived.is_dir():
            shutil.rmtree(derived)


def newest_complete_mosaic(
    mosaics: Sequence[tuple[int, ops.MosaicPlan]],
) -> tuple[int, ops.MosaicPlan] | None:
    complete = [(pk, mp) for pk, mp in mosaics if mp.status == "completed"]
    return complete[-1] if complete else None


def catalog_rows(
    members: Sequence[int],
    measured_source: np.ndarray[Any, Any],
    measured_image: np.ndarray[Any, Any],
    peaks: np.ndarray[Any, Any],
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Sources measured on the mosaic's member images and their mean peak flux there."""
    on = np.isin(measured_image, np.asarray(members))
    sources, inverse = np.unique(measured_source[on], return_inverse=True)
    flux = np.bincount(inverse, weights=peaks[on]) / np.bincount(inverse)
    return sources, flux


def catalog_created(mosaic: ops.MosaicPlan) -> datetime:
    return mosaic.created_at + timedelta(minutes=2)
