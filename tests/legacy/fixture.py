"""Legacy-format state files with known contents: what the running pipeline would have written.

``build_fixture(state_dir, FixtureSpec(...))`` writes ``ingest.sqlite3``,
``cal_registry.sqlite3``, ``products.sqlite3`` and ``catalogs/master_sources.sqlite3``
with the column lists of legacy-pipeline-facts section 1 (:mod:`tests.legacy.legacy_schema`)
and rows shaped like the pipeline's:

- a drift scan at a fixed declination: ``groups_per_day`` 5-minute groups a day, each
  imaged once (when it completed), each source measured once a day on the image whose
  RA window holds it (so ``sources * days`` photometry rows, less the failed groups);
- the queue's state machine (completed, failed, and the newest groups still collecting,
  pending or in progress), 16 subband files per group, calibration sets registered per
  day (older ones retired), jobs with text logs, batches, mosaics, QA artifacts, the data
  registry with lineage, pointing history and the master catalog;
- the oddities the facts list, when ``oddities`` is set: photometry without ``source_id``
  (the batch job), rows without an error, ISO strings in a REAL column, duplicate image
  paths, relative paths, a Python-repr batch ``params``, a planned mosaic
  (``path='PLANNED'``), photometry of an image the images table lacks, a job of an
  unknown type, and ``calibrators`` never written.

``old=True`` builds files as earlier versions left them: the ALTER columns absent (no
``source_id``, ``mjd`` or ``snr`` in photometry, ...) and the lazily created tables
missing. The same spec and seed always give the same files.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from dsa110.science.catalogs import iau_name
from dsa110.times import mjd_to_datetime
from tests.legacy.legacy_schema import INGEST, MASTER, PRODUCTS, REGISTRY, LegacyDatabase

UNIX_MJD = 40587.0
STAGE = "/stage/dsa110-contimg"
DEC_CENTER = 55.0
N_SUBBANDS = 16
CAL_TYPES = (("K", 10, "_kcal"), ("BP", 30, "_bpcal"), ("GP", 50, "_gpcal"))


def unix(mjd: float) -> float:
    return (mjd - UNIX_MJD) * 86400.0


def group_id_of(mjd: float) -> str:
    return mjd_to_datetime(mjd).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class FixtureSpec:
    sources: int = 300
    days: int = 12
    groups_per_day: int = 24
    seed: int = 110
    old: bool = False
    oddities: bool = True
    fits_images: int = 0  # write real FITS headers for this many images (root must be writable)
    start_mjd: float = 60900.0


@dataclass
class LegacyFixture:
    state_dir: Path
    spec: FixtureSpec
    counts: dict[str, int] = field(default_factory=dict)
    source_ids: list[str] = field(default_factory=list)
    null_source_rows: int = 0
    no_error_rows: int = 0
    orphan_image_paths: list[str] = field(default_factory=list)
    fits_paths: list[Path] = field(default_factory=list)

    def path(self, db: LegacyDatabase) -> Path:
        return self.state_dir / db.file

    @property
    def products(self) -> Path:
        return self.path(PRODUCTS)

    @property
    def ingest(self) -> Path:
        return self.path(INGEST)


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")  # as QueueDB and ensure_products_db set it
    return conn


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def insert(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> int:
    """Insert dict rows, dropping keys the (possibly older) table does not have."""
    if not rows:
        return 0
    have = _columns(conn, table)
    if not have:
        return 0
    keys = [k for k in dict.fromkeys(k for row in rows for k in row) if k in have]
    sql = f"INSERT INTO {table} ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})"
    conn.executemany(sql, ([row.get(k) for k in keys] for row in rows))
    return len(rows)


@dataclass(frozen=True)
class Sky:
    names: list[str]
    ra: np.ndarray
    dec: np.ndarray
    flux_jy: np.ndarray


def make_sky(n: int, rng: np.random.Generator) -> Sky:
    names: list[str] = []
    seen: set[str] = set()
    ras, decs = [], []
    while len(names) < n:
        ra = float(rng.uniform(0.0, 360.0))
        dec = float(rng.uniform(DEC_CENTER - 2.5, DEC_CENTER + 2.5))
        name = iau_name("NVSS", ra, dec)
        if name in seen:
            continue
        seen.add(name)
        names.append(name)
        ras.append(ra)
        decs.append(dec)
    flux = 10 ** rng.uniform(np.log10(0.005), np.log10(0.5), n)
    return Sky(names, np.asarray(ras), np.asarray(decs), flux)


def group_state(spec: FixtureSpec, day: int, g: int) -> str:
    """Queue state of group g of day ``day``: the newest three are still in the queue."""
    index = day * spec.groups_per_day + g
    last = spec.days * spec.groups_per_day - 1
    if index == last:
        return "collecting"
    if index == last - 1:
        return "pending"
    if index == last - 2:
        return "in_progress"
    if index % 37 == 5:
        return "failed"
    return "completed"


def ms_path(gid: str) -> str:
    return f"{STAGE}/ms/{gid}.ms"


def image_paths(gid: str) -> tuple[str, str]:
    """The imaging root's ``.image`` and primary-beam corrected FITS (what photometry reads)."""
    return f"{STAGE}/ms/{gid}.img.image", f"{STAGE}/ms/{gid}.img.image.pbcor.fits"


def build_fixture(state_dir: Path, spec: FixtureSpec = FixtureSpec()) -> LegacyFixture:
    """Write the four legacy state files under ``state_dir`` (which must not hold them yet)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fixture = LegacyFixture(state_dir, spec)
    rng = np.random.default_rng(spec.seed)
    sky = make_sky(spec.sources, rng)
    fixture.source_ids = list(sky.names)
    conns = {db.file: connect(state_dir / db.file) for db in (INGEST, REGISTRY, PRODUCTS, MASTER)}
    try:
        for db in (INGEST, REGISTRY, PRODUCTS, MASTER):
            conn = conns[db.file]
            conn.execute("PRAGMA synchronous=OFF")
            db.create(conn, old=spec.old)
            conn.commit()
        _write(fixture, sky, rng, conns)
        for conn in conns.values():
            conn.commit()
    finally:
        for conn in conns.values():
            conn.close()
    return fixture


def _count(fixture: LegacyFixture, table: str, n: int) -> None:
    fixture.counts[table] = fixture.counts.get(table, 0) + n


def _write(
    fixture: LegacyFixture, sky: Sky, rng: np.random.Generator, conns: dict[str, sqlite3.Connection]
) -> None:
    spec = fixture.spec
    queue, products = conns[INGEST.file], conns[PRODUCTS.file]
    registry, master = conns[REGISTRY.file], conns[MASTER.file]
    gpd = spec.groups_per_day
    slot = np.floor(sky.ra / 360.0 * gpd).astype(np.int64)  # the group of the day that sees it
    err = 0.0005 + 0.02 * sky.flux_jy
    dips = set(rng.choice(len(sky.names), size=min(3, len(sky.names)), replace=False).tolist())
    dip_index = np.asarray(sorted(dips), dtype=np.int64)
    names_all = sky.names
    fluxes: list[np.ndarray] = []
    sources_seen: list[np.ndarray] = []
    image_id = 0
    photometry_id = 0
    ms_done: list[tuple[str, float, int]] = []  # (group_id, mid_mjd, day)
    pbcor_paths: list[str] = []
    for day in range(spec.days):
        groups, subbands, perf, ms_rows, image_rows, pointing = [], [], [], [], [], []
        phot: list[tuple[Any, ...]] = []
        for g in range(gpd):
            start = spec.start_mjd + day + g / gpd
            gid, mid = group_id_of(start), start + 2.5 / 1440.0
            state = group_state(spec, day, g)
            received = unix(start) + 5.0
            n_sb = N_SUBBANDS if state != "collecting" else 9
            groups.append(
                {
                    "group_id": gid,
                    "state": state,
                    "received_at": received,
                    "last_update": received + (900.0 if state in ("completed", "failed") else 60.0),
                    "expected_subbands": N_SUBBANDS,
                    "retry_count": 1 if state == "failed" and day % 2 else 0,
                    "error": "orchestrator exit=1" if state == "failed" else None,
                    "checkpoint_path": None,
                    "processing_stage": "collecting",
                    "chunk_minutes": 5.0,
                    "has_calibrator": 1 if g == 0 else 0,
                    "calibrators": None,  # read by the API, written by nothing (section 1.1)
                }
            )
            if spec.oddities and day == 0 and g < 2:
                groups[-1]["received_at"] = mjd_to_datetime(start).strftime("%Y-%m-%dT%H:%M:%S")
            subbands += [
                {"group_id": gid, "subband_idx": sb, "path": f"/data/incoming/{gid}_sb{sb:02d}.hdf5"}
                for sb in range(n_sb)
            ]
            pointing.append({"timestamp": mid, "ra_deg": 360.0 * (g + 0.5) / gpd, "dec_deg": DEC_CENTER})
            if state != "completed":
                continue
            perf.append(
                {
                    "group_id": gid,
                    "load_time": 20.0,
                    "phase_time": 30.0,
                    "write_time": 40.0,
                    "total_time": 90.0,
                    "writer_type": "parallel-subband",
                    "recorded_at": received + 600.0,
                }
            )
            ms_done.append((gid, mid, day))
            ms_rows.append(
                {
                    "path": ms_path(gid),
                    "start_mjd": start,
                    "end_mjd": start + 5.0 / 1440.0,
                    "mid_mjd": mid,
                    "processed_at": received + 300.0,
                    "status": "done",
                    "stage": "imaged",
                    "stage_updated_at": received + 800.0,
                    "cal_applied": 1,
                    "imagename": f"{STAGE}/ms/{gid}.img",
                    "ra_deg": 360.0 * (g + 0.5) / gpd,
                    "dec_deg": DEC_CENTER,
                    "field_name": f"drift_{g:03d}",
                    "pointing_ra_deg": 360.0 * (g + 0.5) / gpd,
                    "pointing_dec_deg": DEC_CENTER,
                }
            )
            plain, pbcor = image_paths(gid)
            for path, is_pbcor in ((plain, 0), (pbcor, 1)):
                image_id += 1
                image_rows.append(
                    {
                        "id": image_id,
                        "path": path,
                        "ms_path": ms_path(gid),
                        "created_at": received + 800.0,
                        "type": "5min",
                        "beam_major_arcsec": None,  # never populated (known issue)
                        "noise_jy": None,
                        "pbcor": is_pbcor,
                        "format": "fits",
                    }
                )
            pbcor_paths.append(pbcor)
            who = np.nonzero(slot == g)[0]
            if who.size == 0:
                continue
            in_dip = 0.4 < day / spec.days < 0.7
            dip = np.where(np.isin(who, dip_index) & in_dip, 0.6, 1.0)
            f = sky.flux_jy[who] * dip + rng.normal(0.0, err[who])
            fluxes.append(f)
            sources_seen.append(who)
            ids = np.arange(photometry_id + 1, photometry_id + 1 + who.size)
            photometry_id += who.size
            names: list[str | None] = [names_all[i] for i in who.tolist()]
            errors: list[float | None] = err[who].tolist()
            snr: list[float | None] = (f / err[who]).tolist()
            if spec.oddities:
                for k in np.nonzero(ids % 53 == 7)[0].tolist():
                    names[k] = None  # written by the batch job: its source_id UPDATE failed
                    fixture.null_source_rows += 1
                for k in np.nonzero(ids % 997 == 11)[0].tolist():
                    errors[k] = snr[k] = None
                    fixture.no_error_rows += 1
            n = who.size
            phot += zip(
                ids.tolist(),
                repeat(pbcor, n),
                sky.ra[who].tolist(),
                sky.dec[who].tolist(),
                (sky.flux_jy[who] * 1000.0).tolist(),
                f.tolist(),
                errors,
                repeat(unix(mid) + 1200.0, n),
                names,
                snr,
                repeat(mid, n),
                repeat(0.3, n),
                repeat(0, n),
                strict=True,
            )
        _count(fixture, "ingest_queue", insert(queue, "ingest_queue", groups))
        _count(fixture, "subband_files", insert(queue, "subband_files", subbands))
        _count(fixture, "performance_metrics", insert(queue, "performance_metrics", perf))
        _count(fixture, "ms_index", insert(products, "ms_index", ms_rows))
        _count(fixture, "images", insert(products, "images", image_rows))
        _count(fixture, "pointing_history", insert(products, "pointing_history", pointing))
        _count(fixture, "photometry", _insert_photometry(products, phot, spec.old))
    if spec.oddities and ms_done:
        gid, mid, _ = ms_done[len(ms_done) // 2]
        plain, _pbcor = image_paths(gid)
        image_id += 1  # re-imaged: the same path inserted again (path is not UNIQUE)
        _count(
            fixture,
            "images",
            insert(
                products,
                "images",
                [
                    {
                        "id": image_id,
                        "path": plain,
                        "ms_path": ms_path(gid),
                        "created_at": unix(mid) + 5000.0,
                        "type": "5min",
                        "beam_major_arcsec": None,
                        "noise_jy": None,
                        "pbcor": 0,
                    }
                ],
            ),
        )
        orphan = f"{STAGE}/adhoc/{gid}.forced.fits"  # measured but never registered as an image
        fixture.orphan_image_paths.append(orphan)
        i = 0
        photometry_id += 1
        row: tuple[Any, ...] = (photometry_id, orphan, float(sky.ra[i]), float(sky.dec[i]), None, 0.01, 0.001)
        row += (unix(mid) + 7000.0, sky.names[i], 10.0, None, None, 0)
        _count(fixture, "photometry", _insert_photometry(products, [row], spec.old))
    all_f = np.concatenate(fluxes) if fluxes else np.zeros(0)
    all_s = np.concatenate(sources_seen) if sources_seen else np.zeros(0, dtype=np.int64)
    _write_science(fixture, sky, all_s, all_f, sorted(dips), products)
    _write_operations(fixture, ms_done, pbcor_paths, queue, products, registry)
    _write_master(fixture, sky, rng, master)
    if spec.fits_images:
        fixture.fits_paths = _write_fits(fixture, ms_done[: spec.fits_images], sky)


PHOTOMETRY_COLUMNS = (
    "id, image_path, ra_deg, dec_deg, nvss_flux_mjy, peak_jyb, peak_err_jyb, measured_at, "
    "source_id, snr, mjd, sep_from_center_deg, flags"
)


def _insert_photometry(conn: sqlite3.Connection, rows: list[tuple[Any, ...]], old: bool) -> int:
    if old:  # no ALTER columns: the first eight only
        conn.executemany(
            "INSERT INTO photometry (id, image_path, ra_deg, dec_deg, nvss_flux_mjy, peak_jyb, "
            "peak_err_jyb, measured_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (r[:8] for r in rows),
        )
    else:
        conn.executemany(
            f"INSERT INTO photometry ({PHOTOMETRY_COLUMNS}) VALUES ({', '.join('?' * 13)})", rows
        )
    return len(rows)


def _write_science(
    fixture: LegacyFixture,
    sky: Sky,
    src: np.ndarray,
    flux: np.ndarray,
    dips: list[int],
    products: sqlite3.Connection,
) -> None:
    """variability_stats as ese_pipeline writes them (mJy), and candidates for the dips."""
    n = len(sky.names)
    end = unix(fixture.spec.start_mjd + fixture.spec.days)
    count = np.bincount(src, minlength=n)
    f_mjy = flux * 1000.0
    mean = np.bincount(src, f_mjy, n) / np.maximum(count, 1)
    var = np.bincount(src, f_mjy * f_mjy, n) / np.maximum(count, 1) - mean**2
    std = np.sqrt(np.maximum(var, 0.0))
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    np.minimum.at(lo, src, f_mjy)
    np.maximum.at(hi, src, f_mjy)
    # A dip source was flagged when its sigma_deviation reached the candidate's significance.
    flagged = {i: 7.5 - k for k, i in enumerate(dips)}
    rows = []
    for i in range(n):
        if count[i] == 0:
            continue
        sdev = max(hi[i] - mean[i], mean[i] - lo[i]) / std[i] if std[i] > 0 else 0.0
        sdev = flagged.get(i, sdev)
        rows.append(
            {
                "source_id": sky.names[i],
                "ra_deg": float(sky.ra[i]),
                "dec_deg": float(sky.dec[i]),
                "nvss_flux_mjy": float(sky.flux_jy[i] * 1000.0),
                "n_obs": int(count[i]),
                "mean_flux_mjy": float(mean[i]),
                "std_flux_mjy": float(std[i]),
                "min_flux_mjy": float(lo[i]),
                "max_flux_mjy": float(hi[i]),
                "chi2_nu": 1.0,
                "sigma_deviation": float(sdev),
                "eta_metric": None,
                "last_measured_at": end,
                "last_mjd": fixture.spec.start_mjd + fixture.spec.days,
                "updated_at": end,
            }
        )
    _count(fixture, "variability_stats", insert(products, "variability_stats", rows))
    statuses = ("active", "investigated", "dismissed")
    candidates = [
        {
            "source_id": sky.names[i],
            "flagged_at": end - 3600.0 * (k + 1),
            "flagged_by": "auto",
            "significance": flagged[i],
            "flag_type": "auto",
            "notes": None if k == 0 else f"looked at by the operator ({statuses[k % 3]})",
            "status": statuses[k % 3],
            "investigated_at": end if statuses[k % 3] == "investigated" else None,
            "dismissed_at": end if statuses[k % 3] == "dismissed" else None,
        }
        for k, i in enumerate(dips)
        if count[i] > 0
    ]
    _count(fixture, "ese_candidates", insert(products, "ese_candidates", candidates))


def _write_operations(
    fixture: LegacyFixture,
    ms_done: list[tuple[str, float, int]],
    pbcor_paths: list[str],
    queue: sqlite3.Connection,
    products: sqlite3.Connection,
    registry: sqlite3.Connection,
) -> None:
    spec = fixture.spec
    by_day: dict[int, list[tuple[str, float]]] = {}
    for gid, mid, day in ms_done:
        by_day.setdefault(day, []).append((gid, mid))
    caltables, jobs, mosaics, qa, data, lineage = [], [], [], [], [], []
    last_day = max(by_day) if by_day else 0
    for day, members in sorted(by_day.items()):
        cal_gid, cal_mid = members[0]
        base = f"{STAGE}/ms/{cal_gid}"
        for table_type, order, suffix in CAL_TYPES:
            caltables.append(
                {
                    "set_name": f"cal_{cal_gid}",
                    "path": base + suffix,
                    "table_type": table_type,
                    "order_index": order,
                    "cal_field": "0834+555",
                    "refant": "103",
                    "created_at": unix(cal_mid) + 400.0,
                    "valid_start_mjd": cal_mid,
                    "valid_end_mjd": None,
                    "status": "active" if day >= last_day - 1 else "retired",
                    "notes": None,
                    "source_ms_path": ms_path(cal_gid),
                }
            )
        jobs.append(_job("calibrate", ms_path(cal_gid), cal_mid, "done", {"field": "0", "refant": "103"}))
        for gid, mid in members[1::4]:
            jobs.append(
                _job("image", ms_path(gid), mid, "done", {"gridder": "wproject", "quality_tier": "standard"})
            )
        tiles = [image_paths(g)[1] for g, _ in members]
        mosaics.append(
            {
                "path": f"{STAGE}/mosaics/mosaic_day{day:03d}.fits",
                "name": f"mosaic_day{day:03d}",
                "created_at": unix(members[-1][1]) + 3600.0,
                "start_mjd": members[0][1] - 2.5 / 1440.0,
                "end_mjd": members[-1][1] + 2.5 / 1440.0,
                "integration_sec": 300.0 * len(members),
                "n_images": len(members),
                "center_ra_deg": 180.0,
                "center_dec_deg": DEC_CENTER,
                "noise_jy": 0.0004,
                "n_sources": 100 + day,
                "tiles": "\n".join(tiles),
            }
        )
        for gid, mid in members[:2]:
            for name in ("amp_vs_time.png", "ragavi_gains.html"):
                qa.append(
                    {
                        "group_id": gid,
                        "name": name,
                        "path": f"state/qa/{gid}/{name}",
                        "created_at": unix(mid) + 700.0,
                    }
                )
        for gid, mid in members:
            published = day < last_day - 1
            ms_id = ms_path(gid)
            image_id = image_paths(gid)[1]
            for data_type, data_id in (("ms", ms_id), ("image", image_id)):
                stage_path = data_id
                if spec.oddities and data_type == "image" and gid == members[-1][0]:
                    stage_path = f"images/{Path(data_id).name}"  # relative to the pipeline's cwd
                data.append(
                    {
                        "data_type": data_type,
                        "data_id": data_id,
                        "base_path": str(Path(data_id).parent),
                        "status": "published" if published else "staging",
                        "stage_path": stage_path,
                        "published_path": (
                            f"/data/dsa110-contimg/products/{data_type}s/{Path(data_id).name}"
                            if published
                            else None
                        ),
                        "created_at": unix(mid) + 300.0,
                        "staged_at": unix(mid) + 300.0,
                        "published_at": unix(mid) + 7200.0 if published else None,
                        "publish_mode": "auto" if published else None,
                        "metadata_json": json.dumps({"group_id": gid}),
                        "qa_status": "passed" if published else "pending",
                        "validation_status": "validated" if published else "pending",
                        "finalization_status": "finalized" if published else "pending",
                        "auto_publish_enabled": 1,
                        "publish_attempts": 0,
                        "publish_error": None,
                    }
                )
            lineage.append(
                {"parent_data_id": ms_id, "child_data_id": image_id, "relationship_type": "derived_from"}
            )
    if jobs:
        jobs[-1].update(status="running", finished_at=None, logs="start imaging\ncleaning major cycle 1\n")
        jobs[-2].update(status="failed", logs=jobs[-2]["logs"] + "ERROR tclean: out of memory\n")
        jobs.append(_job("ese-detect", "", spec.start_mjd + spec.days - 0.1, "pending", {"min_sigma": 5.0}))
        if spec.oddities:
            jobs.append(_job("reticulate", "", spec.start_mjd + 0.5, "done", {}))  # no such job type
    if spec.oddities and by_day:
        first_day = by_day[min(by_day)]
        mosaics.append(
            {
                "path": "PLANNED",
                "name": "planned_next",
                "created_at": unix(spec.start_mjd + spec.days),
                "start_mjd": 0.0,
                "end_mjd": 0.0,
                "status": "planned",
                "method": "linear",
                "tiles": "\n".join(image_paths(g)[1] for g, _ in first_day[:3]),
            }
        )
    _count(fixture, "caltables", insert(registry, "caltables", caltables))
    _count(fixture, "jobs", insert(products, "jobs", jobs))
    _count(fixture, "mosaics", insert(products, "mosaics", mosaics))
    _count(fixture, "qa_artifacts", insert(products, "qa_artifacts", qa))
    _count(fixture, "data_registry", insert(products, "data_registry", data))
    _count(fixture, "data_relationships", insert(products, "data_relationships", lineage))
    if not spec.old and by_day:
        _write_batches(fixture, products, [r["ms_path"] for r in jobs if r["type"] == "image"][:4])


def _job(kind: str, ms: str, mjd: float, status: str, params: dict[str, Any]) -> dict[str, Any]:
    created = unix(mjd) + 900.0
    return {
        "type": kind,
        "status": status,
        "ms_path": ms,
        "params": json.dumps(params),
        "logs": f"{kind} started\n{kind} step 1 of 2\n{kind} step 2 of 2\n"
        + ("done\n" if status == "done" else ""),
        "artifacts": json.dumps([ms + ".img.image"] if kind == "image" else []),
        "created_at": created,
        "started_at": created + 5.0 if status != "pending" else None,
        "finished_at": created + 600.0 if status in ("done", "failed") else None,
    }


def _write_batches(fixture: LegacyFixture, products: sqlite3.Connection, ms_paths: list[str]) -> None:
    when = unix(fixture.spec.start_mjd + 1.0)
    params_repr = str({"ms_paths": ms_paths, "params": {"gridder": "wproject", "imsize": 2048}})
    batches = [
        {
            "id": 1,
            "type": "batch_image",
            "created_at": when,
            "status": "done",
            "total_items": len(ms_paths),
            "completed_items": len(ms_paths),
            "failed_items": 0,
            "params": params_repr if fixture.spec.oddities else json.dumps({"ms_paths": ms_paths}),
        },
        {
            "id": 2,
            "type": "batch_photometry",
            "created_at": when + 60.0,
            "status": "running",
            "total_items": 2,
            "completed_items": 1,
            "failed_items": 0,
            "params": json.dumps({"box_size_pix": 5, "annulus_pix": [12, 20], "normalize": False}),
        },
    ]
    items = [
        {
            "batch_id": 1,
            "ms_path": ms,
            "job_id": None,
            "status": "done",
            "error": None,
            "started_at": when,
            "completed_at": when + 100.0,
        }
        for ms in ms_paths
    ] + [
        {
            "batch_id": 2,
            "ms_path": "/x/a.fits:10.0:55.0",
            "job_id": None,
            "status": "done",
            "error": None,
            "started_at": when,
            "completed_at": when + 5.0,
        },
        {
            "batch_id": 2,
            "ms_path": "/x/b.fits:11.0:55.0",
            "job_id": None,
            "status": "pending",
            "error": None,
            "started_at": None,
            "completed_at": None,
        },
    ]
    _count(fixture, "batch_jobs", insert(products, "batch_jobs", batches))
    _count(fixture, "batch_job_items", insert(products, "batch_job_items", items))


def _write_master(
    fixture: LegacyFixture, sky: Sky, rng: np.random.Generator, master: sqlite3.Connection
) -> None:
    """The master catalog: every monitored source plus field sources (fluxes in Jy)."""
    extra = max(1, len(sky.names) // 10)
    ra = np.concatenate([sky.ra, rng.uniform(0.0, 360.0, extra)])
    dec = np.concatenate([sky.dec, rng.uniform(DEC_CENTER - 3, DEC_CENTER + 3, extra)])
    flux = np.concatenate([sky.flux_jy, 10 ** rng.uniform(-2.5, -1.0, extra)])
    rows = [
        {
            "source_id": i,
            "ra_deg": float(ra[i]),
            "dec_deg": float(dec[i]),
            "s_nvss": float(flux[i]),
            "snr_nvss": float(flux[i] / 0.00045),
            "s_vlass": float(flux[i] * 0.6),
            "alpha": -0.7,
            "resolved_flag": int(i % 17 == 3),
            "confusion_flag": int(i % 23 == 4),
        }
        for i in range(ra.size)
    ]
    _count(fixture, "sources", insert(master, "sources", rows))
    insert(master, "meta", [{"key": "match_radius_arcsec", "value": "7.5"}])


def _write_fits(fixture: LegacyFixture, groups: list[tuple[str, float, int]], sky: Sky) -> list[Path]:
    """Small real FITS files at the pbcor paths (re-rooted under the fixture), headers as imaged."""
    from astropy.io import fits

    root = fixture.state_dir.parent
    out = []
    for gid, mid, _ in groups:
        path = root / image_paths(gid)[1].lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        g = round((mid - math.floor(mid)) * fixture.spec.groups_per_day - 0.5)
        header = fits.Header()
        for key, value in (
            ("CTYPE1", "RA---SIN"),
            ("CTYPE2", "DEC--SIN"),
            ("CRPIX1", 16.5),
            ("CRPIX2", 16.5),
            ("CRVAL1", 360.0 * (g + 0.5) / fixture.spec.groups_per_day),
            ("CRVAL2", DEC_CENTER),
            ("CDELT1", -6.0 / 3600),
            ("CDELT2", 6.0 / 3600),
            ("CTYPE3", "FREQ"),
            ("CRVAL3", 1.405e9),
            ("CDELT3", 1.872e8),
            ("CRPIX3", 1.0),
            ("BMAJ", 36.0 / 3600),
            ("BMIN", 24.0 / 3600),
            ("BPA", 12.5),
            ("BUNIT", "Jy/beam"),
            ("DATE-OBS", mjd_to_datetime(mid).strftime("%Y-%m-%dT%H:%M:%S.%f")),
        ):
            header[key] = value
        fits.PrimaryHDU(np.zeros((1, 32, 32), dtype=np.float32), header=header).writeto(path, overwrite=True)
        out.append(path)
    return out
