"""Measurement Sets (``ms_index``), calibration tables (``caltables``), pointing, images.

Legacy-pipeline-facts sections 1.2 and 1.3.

- ``ms_index`` -> ``measurement_sets`` by path. The group is the timestamp in the MS file
  name (``<group_id>.ms``). ``status``/``stage`` NULL (rows ``discover_ms_files`` wrote
  before it knew them) become ``unknown``. The position is ``ra_deg``/``dec_deg``, or the
  later ``pointing_*`` columns.
- ``caltables`` -> ``cal_tables`` by path; the MS it was solved from by
  ``source_ms_path`` (a later column).
- ``pointing_history`` (``timestamp`` is an MJD; HEAD's ``timestamp_mjd`` is read too).
- ``images`` -> ``images``. The legacy ``path`` is not unique (re-imaging inserts the
  same path again): rows with one path become one image, the latest row's values winning,
  and every legacy id of that path names it. An image keeps its legacy id as ours when it
  is free. Its mid-MJD is its MS's; failing that the FITS header's, the group's, or its
  creation time (each fallback counted). Beams, centre, size, cell and frequency the row
  lacks (the pipeline never filled them) are read from the FITS header when the file is
  there (:mod:`dsa110.legacy.fitshead`), before the write transaction opens.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import select

from dsa110.db.tables import cal_tables, groups, images, measurement_sets, pointing_history
from dsa110.events import IMAGE_ADDED
from dsa110.legacy import store
from dsa110.legacy.context import Batch, ImportContext
from dsa110.legacy.fitshead import image_header_values
from dsa110.legacy.keyed import save_keyed
from dsa110.legacy.table import Row, TableSpec
from dsa110.legacy.values import (
    as_float,
    epoch_time,
    flag,
    group_id_in,
    group_start,
    mjd_of,
    resolve_path,
    text,
)
from dsa110.science.healpix import healpix_index

MS: Final = "products.ms_index"
IMAGES: Final = "products.images"
IMAGE_COLUMNS: Final = (
    "beam_major_arcsec",
    "beam_minor_arcsec",
    "beam_pa_deg",
    "noise_jy",
    "dynamic_range",
    "center_ra_deg",
    "center_dec_deg",
    "imsize_x",
    "imsize_y",
    "cellsize_arcsec",
    "freq_ghz",
    "bandwidth_mhz",
    "integration_sec",
)
_INTEGER_COLUMNS: Final = frozenset({"imsize_x", "imsize_y"})


async def write_ms(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    converted: dict[str, dict[str, Any]] = {}
    gids = {}
    for row in rows:
        path = resolve_path(row.get("path"), ctx.root, ctx.odd, MS)
        if path is None:
            ctx.report.skip(MS, "no path")
            continue
        gids[path] = group_id_in(path.rsplit("/", 1)[-1])
    group_pks = await ctx.lookup(b, "group", groups, "group_id", gids.values())
    for row in rows:
        path = resolve_path(row.get("path"), ctx.root, ctx.odd, MS)
        if path is None:
            continue
        status, stage = text(row.get("status"), 16), text(row.get("stage"), 16)
        if status is None or stage is None:
            ctx.odd.note(MS, "status or stage NULL: stored as 'unknown'")
        mid = as_float(row.get("mid_mjd"))
        created = (
            epoch_time(row.get("processed_at"), ctx.odd, MS, "processed_at")
            or epoch_time(row.get("stage_updated_at"), ctx.odd, MS, "stage_updated_at")
            or (None if mid is None else _mjd_time(mid))
        )
        if created is None:
            ctx.report.skip(MS, "no time at all (processed_at, stage_updated_at, mid_mjd)")
            continue
        ra = as_float(row.get("ra_deg"))
        dec = as_float(row.get("dec_deg"))
        if ra is None or dec is None:
            ra, dec = as_float(row.get("pointing_ra_deg")), as_float(row.get("pointing_dec_deg"))
        gid = gids.get(path)
        converted[path] = {
            "path": path,
            "group_pk": group_pks.get(gid) if gid else None,
            "start_mjd": as_float(row.get("start_mjd")),
            "end_mjd": as_float(row.get("end_mjd")),
            "mid_mjd": mid,
            "status": status or "unknown",
            "stage": stage or "unknown",
            "cal_applied": bool(flag(row.get("cal_applied"))),
            "field_name": text(row.get("field_name"), 64),
            "ra_deg": ra,
            "dec_deg": dec,
            "created_at": created,
            "stage_updated_at": epoch_time(row.get("stage_updated_at"), ctx.odd, MS, "stage_updated_at"),
            "size_bytes": None,
        }
    changed = await store.upsert(
        b.conn, measurement_sets, list(converted.values()), ("path",), ("id", "path"), keep=("size_bytes",)
    )
    for row in changed:
        b.found["ms"][row["path"]] = int(row["id"])
    return len(changed)


def _mjd_time(mjd: float) -> Any:
    from dsa110.legacy.values import time_of_mjd

    return time_of_mjd(mjd)


async def write_caltables(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    name = "registry.caltables"
    ms_paths = [resolve_path(r.get("source_ms_path"), ctx.root, ctx.odd, name) for r in rows]
    ms_pks = await ctx.lookup(b, "ms", measurement_sets, "path", ms_paths)
    converted: dict[str, dict[str, Any]] = {}
    for row, ms_path in zip(rows, ms_paths, strict=True):
        path = resolve_path(row.get("path"), ctx.root, ctx.odd, name)
        created = epoch_time(row.get("created_at"), ctx.odd, name, "created_at")
        set_name, kind = text(row.get("set_name")), text(row.get("table_type"))
        order = as_float(row.get("order_index"))
        if path is None or created is None or not set_name or not kind or order is None:
            ctx.report.skip(name, "path, set_name, table_type, order_index or created_at missing")
            continue
        if len(set_name) > 64 or len(kind) > 8:
            ctx.report.skip(name, "set_name or table_type too long")
            continue
        converted[path] = {
            "path": path,
            "set_name": set_name,
            "table_type": kind,
            "order_index": int(order),
            "cal_field": text(row.get("cal_field"), 64),
            "refant": text(row.get("refant"), 16),
            "created_at": created,
            "valid_start_mjd": as_float(row.get("valid_start_mjd")),
            "valid_end_mjd": as_float(row.get("valid_end_mjd")),
            "status": text(row.get("status"), 16) or "active",
            "source_ms_pk": ms_pks.get(ms_path) if ms_path else None,
            "notes": text(row.get("notes")),
        }
    changed = await store.upsert(b.conn, cal_tables, list(converted.values()), ("path",), ("id", "path"))
    return len(changed)


async def write_pointing(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    name = "products.pointing_history"
    out: dict[float, dict[str, Any]] = {}
    for row in rows:
        mjd = as_float(row.get("timestamp", row.get("timestamp_mjd")))
        ra, dec = as_float(row.get("ra_deg")), as_float(row.get("dec_deg"))
        if mjd is None or ra is None or dec is None or not -90.0 <= dec <= 90.0:
            ctx.report.skip(name, "no MJD or position")
            continue
        out[mjd] = {"mjd": mjd, "ra_deg": ra % 360.0, "dec_deg": dec}
    return len(await store.upsert(b.conn, pointing_history, list(out.values()), ("mjd",)))


async def prepare_images(ctx: ImportContext, rows: list[Row]) -> list[Row]:
    """Read the FITS headers of images whose metadata columns are empty (outside any transaction)."""
    if not ctx.read_files:
        return rows

    def read() -> None:
        for row in rows:
            if any(row.get(c) is None for c in ("beam_major_arcsec", "center_ra_deg", "imsize_x")):
                path = resolve_path(row.get("path"), ctx.root, ctx.odd, IMAGES)
                if path is not None:
                    row["_fits"] = image_header_values(ctx.local_path(path))

    await asyncio.to_thread(read)
    return rows


async def write_images(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    by_path: dict[str, Row] = {}
    ids_of: dict[str, list[str]] = {}
    for row in rows:
        path = resolve_path(row.get("path"), ctx.root, ctx.odd, IMAGES)
        if path is None or row.get("id") is None:
            ctx.report.skip(IMAGES, "no path or id")
            continue
        if path in by_path:
            ctx.odd.note(IMAGES, "the same path twice (re-imaged): one image, latest row wins")
        by_path[path] = row
        ids_of.setdefault(path, []).append(str(int(row["id"])))
    ms_paths = {p: resolve_path(r.get("ms_path"), ctx.root, ctx.odd, IMAGES) for p, r in by_path.items()}
    ms_info = await _ms_info(b, [m for m in ms_paths.values() if m])
    gids = {p: group_id_in(p.rsplit("/", 1)[-1]) for p in by_path}
    group_pks = await ctx.lookup(b, "group", groups, "group_id", gids.values())
    same_path = await ctx.lookup(b, "image", images, "path", by_path)
    items: list[tuple[str, dict[str, Any]]] = []
    existing: dict[str, int] = {}
    for path, row in by_path.items():
        converted = _image(ctx, row, path, ms_info.get(ms_paths[path] or ""), group_pks.get(gids[path] or ""))
        if converted is None:
            continue
        key = ids_of[path][-1]
        items.append((key, converted))
        if path in same_path:
            existing[key] = same_path[path]
    saved = await save_keyed(
        ctx, b, images, "image", items, keep_ids=True, existing=existing, keep=("n_measurements",)
    )
    duplicates: dict[str, int] = {}
    for path, key_list in ids_of.items():
        if (pk := saved.pks.get(key_list[-1])) is not None:
            b.found["image"][path] = pk
            duplicates.update({k: pk for k in key_list[:-1]})
    await store.remember_keys(b.conn, "image", duplicates)
    for key, converted in items:
        pk = saved.pks[key]
        if pk in saved.new:
            b.emit(
                IMAGE_ADDED.signal(
                    {"image_pk": pk, "path": converted["path"], "group_pk": converted["group_pk"]}
                )
            )
    return len(saved.new) + len(saved.changed)


async def _ms_info(b: Batch, paths: list[str]) -> dict[str, tuple[int, float | None, int | None]]:
    out: dict[str, tuple[int, float | None, int | None]] = {}
    unique = sorted(set(paths))
    for start in range(0, len(unique), store.CHUNK):
        result = await b.conn.execute(
            select(
                measurement_sets.c.path,
                measurement_sets.c.id,
                measurement_sets.c.mid_mjd,
                measurement_sets.c.group_pk,
            ).where(measurement_sets.c.path.in_(unique[start : start + store.CHUNK]))
        )
        out.update({p: (int(i), m, g) for p, i, m, g in result.all()})
    return out


def _image(
    ctx: ImportContext,
    row: Row,
    path: str,
    ms: tuple[int, float | None, int | None] | None,
    group_pk: int | None,
) -> dict[str, Any] | None:
    created = epoch_time(row.get("created_at"), ctx.odd, IMAGES, "created_at")
    if created is None:
        ctx.report.skip(IMAGES, "no created_at")
        return None
    header: dict[str, Any] = row.get("_fits") or {}
    values: dict[str, Any] = {}
    for column in IMAGE_COLUMNS:
        value = as_float(row.get(column))
        if value is None and column in header:
            value = header[column]
            ctx.odd.note(IMAGES, f"{column} empty: read from the FITS header")
        values[column] = int(value) if value is not None and column in _INTEGER_COLUMNS else value
    mid = ms[1] if ms else None
    if mid is None:
        mid = header.get("mjd_obs")
        gid_start = group_start(group_id_in(path.rsplit("/", 1)[-1]) or "")
        if mid is None and gid_start is not None:
            mid = mjd_of(gid_start + timedelta(minutes=2.5))
        if mid is None:
            mid = mjd_of(created)
        ctx.odd.note(IMAGES, "its MS has no mid-MJD: time from the header, group id or creation")
    ra, dec = values["center_ra_deg"], values["center_dec_deg"]
    kind = text(row.get("type"), 16) or "unknown"
    return {
        "path": path,
        "type": kind,
        "group_pk": group_pk if group_pk is not None else (ms[2] if ms else None),
        "ms_pk": ms[0] if ms else None,
        "created_at": created,
        "mid_mjd": mid,
        **values,
        "healpix": int(healpix_index(ra, dec)) if ra is not None and dec is not None else None,
        "pbcor": bool(flag(row.get("pbcor"))),
        "n_measurements": 0,
    }


SPECS: Final = (
    TableSpec(
        "products",
        "ms_index",
        write_ms,
        required=("path",),
        mutable=True,
        changed=("stage_updated_at", "processed_at"),
    ),
    TableSpec(
        "registry",
        "caltables",
        write_caltables,
        required=("path", "set_name"),
        mutable=True,
        changed=("created_at",),
        open_when=lambda cols: "status = 'active'" if "status" in cols else None,
        open_every_s=5.0,
    ),
    TableSpec("products", "pointing_history", write_pointing, batch_rows=20_000),
    TableSpec("products", "images", write_images, prepare=prepare_images, required=("id", "path")),
)
