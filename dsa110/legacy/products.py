"""Mosaics, the data registry with its lineage, and QA artifacts (legacy-pipeline-facts 1.3, 4.5, 4.7).

- ``mosaics``: both legacy schemas in one table. A mosaic keeps its legacy id when free;
  its name is unique here, so a name another mosaic holds gets `` (legacy <id>)``.
  Status is the CLI's (``planned``...) when known, else ``completed`` (the science
  schema has none; the legacy API always said ``completed``). A planned row
  (``path='PLANNED'``, MJDs 0) takes its time span from its tiles' images, else its
  creation time. ``tiles`` (newline-joined image paths) link the images it holds.
- ``data_registry`` -> ``data_products`` by ``data_id``, from ``products.sqlite3`` and,
  when present, the separate ``data_registry.sqlite3`` some writers used (section 1.3;
  both are read, so no product is invisible). The MS, image, mosaic or calibration table
  a product is gets linked by path. A status change publishes ``product.status``.
- ``data_relationships`` -> ``data_lineage`` (parent, child, type) by data id.
- ``qa_artifacts`` -> ``qa_artifacts`` by path (relative paths resolved), its kind and
  media type from the file name, its group by id.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from typing import Any, Final

from sqlalchemy import select

from dsa110.db.enums import MosaicStatus, ProductStatus, ProductType
from dsa110.db.functions import insert_or_skip
from dsa110.db.tables import (
    cal_tables,
    data_lineage,
    data_products,
    groups,
    images,
    measurement_sets,
    mosaic_images,
    mosaics,
    qa_artifacts,
)
from dsa110.events import PRODUCT_STATUS
from dsa110.legacy import store
from dsa110.legacy.context import Batch, ImportContext
from dsa110.legacy.keyed import known, save_keyed
from dsa110.legacy.table import Row, TableSpec
from dsa110.legacy.values import Oddities, as_float, epoch_time, flag, json_value, mjd_of, resolve_path, text

MOSAICS: Final = "products.mosaics"
MOSAIC_STATUSES: Final = frozenset(s.value for s in MosaicStatus)
PRODUCT_TYPES: Final = frozenset(t.value for t in ProductType)
PRODUCT_STATUSES: Final = frozenset(s.value for s in ProductStatus)


async def write_mosaics(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    tiles = {
        int(r["id"]): [
            resolve_path(p, ctx.root, ctx.odd, MOSAICS)
            for p in str(r.get("tiles") or "").splitlines()
            if p.strip()
        ]
        for r in rows
        if r.get("id") is not None
    }
    tile_paths = {p for paths in tiles.values() for p in paths if p}
    image_pks = await ctx.lookup(b, "image", images, "path", tile_paths)
    spans: dict[int, tuple[float, float]] = {}
    if image_pks:
        result = await b.conn.execute(
            select(images.c.id, images.c.mid_mjd).where(images.c.id.in_(sorted(set(image_pks.values()))))
        )
        mid = {int(i): float(m) for i, m in result.all()}
        for legacy_id, paths in tiles.items():
            got = [mid[image_pks[p]] for p in paths if p in image_pks]
            if got:
                spans[legacy_id] = (min(got), max(got))
    mine = await known(ctx, b, "mosaic", [str(int(r["id"])) for r in rows if r.get("id") is not None])
    names = {text(r.get("name"), 100) for r in rows}
    holders = await ctx.lookup(b, "mosaic_name", mosaics, "name", names)
    items: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        created = epoch_time(row.get("created_at"), ctx.odd, MOSAICS, "created_at")
        name = text(row.get("name"), 100)
        if row.get("id") is None or created is None or not name:
            ctx.report.skip(MOSAICS, "no id, name or created_at")
            continue
        legacy_id = int(row["id"])
        if name in holders and holders[name] != mine.get(str(legacy_id)):
            name = f"{name} (legacy {legacy_id})"
            ctx.odd.note(MOSAICS, "name held by another mosaic: legacy id appended")
        start, end = as_float(row.get("start_mjd")), as_float(row.get("end_mjd"))
        if not start or not end:
            start, end = spans.get(legacy_id, (mjd_of(created), mjd_of(created)))
            ctx.odd.note(MOSAICS, "no time span (planned): from its tiles or its creation")
        status = text(row.get("status"))
        path = text(row.get("path")) or ""
        if status not in MOSAIC_STATUSES:
            status = "planned" if path == "PLANNED" else "completed"
        if path == "PLANNED":  # a placeholder, not a path: the output path if the CLI set one
            path = text(row.get("output_path")) or ""
        items.append(
            (
                str(legacy_id),
                {
                    "name": name,
                    "path": resolve_path(path, ctx.root, ctx.odd, MOSAICS) or "",
                    "status": status,
                    "created_at": created,
                    "start_mjd": start,
                    "end_mjd": end,
                    "noise_jy": as_float(row.get("noise_jy")),
                    "beam_major_arcsec": as_float(row.get("beam_major_arcsec")),
                    "beam_minor_arcsec": as_float(row.get("beam_minor_arcsec")),
                    "beam_pa_deg": as_float(row.get("beam_pa_deg")),
                    "center_ra_deg": as_float(row.get("center_ra_deg")),
                    "center_dec_deg": as_float(row.get("center_dec_deg")),
                    "n_images": int(as_float(row.get("n_images")) or len(tiles.get(legacy_id, []))),
                    "n_sources": None if (n := as_float(row.get("n_sources"))) is None else int(n),
                },
            )
        )
    saved = await save_keyed(ctx, b, mosaics, "mosaic", items, keep_ids=True)
    links = [
        {"mosaic_pk": saved.pks[str(legacy_id)], "image_pk": image_pks[p]}
        for legacy_id, paths in tiles.items()
        if str(legacy_id) in saved.pks
        for p in paths
        if p in image_pks
    ]
    for start_at in range(0, len(links), store.CHUNK):
        await b.conn.execute(
            insert_or_skip(b.conn.dialect.name, mosaic_images), links[start_at : start_at + store.CHUNK]
        )
    for key, values in items:
        b.found["mosaic_path"][values["path"]] = saved.pks[key]
    return len(saved.new) + len(saved.changed)


async def write_registry(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    name = "data_registry"
    parsed: dict[str, dict[str, Any]] = {}
    for row in rows:
        data_id, kind, status = text(row.get("data_id")), text(row.get("data_type")), text(row.get("status"))
        created = epoch_time(row.get("created_at"), ctx.odd, name, "created_at")
        stage_path = resolve_path(row.get("stage_path"), ctx.root, ctx.odd, name)
        if not data_id or len(data_id) > 512 or kind not in PRODUCT_TYPES or status not in PRODUCT_STATUSES:
            ctx.report.skip(
                f"products.{name}", f"data_id too long/empty or unknown type/status ({kind!r}, {status!r})"
            )
            continue
        if created is None or stage_path is None:
            ctx.report.skip(f"products.{name}", "no created_at or stage_path")
            continue
        metadata = json_value(row.get("metadata_json"), ctx.odd, name, "metadata_json")
        parsed[data_id] = {
            "data_id": data_id,
            "data_type": kind,
            "status": status,
            "stage_path": stage_path,
            "published_path": resolve_path(row.get("published_path"), ctx.root, ctx.odd, name),
            "created_at": created,
            "staged_at": epoch_time(row.get("staged_at"), ctx.odd, name, "staged_at") or created,
            "published_at": epoch_time(row.get("published_at"), ctx.odd, name, "published_at"),
            "publish_mode": text(row.get("publish_mode"), 8),
            "qa_status": text(row.get("qa_status"), 16),
            "validation_status": text(row.get("validation_status"), 16),
            "finalization_status": text(row.get("finalization_status"), 16) or "pending",
            "auto_publish": flag(row.get("auto_publish_enabled")) is not False,
            "publish_attempts": int(as_float(row.get("publish_attempts")) or 0),
            "publish_error": text(row.get("publish_error")),
            "metadata": metadata if isinstance(metadata, dict) else None,
        }
    paths = {p for v in parsed.values() for p in (v["data_id"], v["stage_path"], v["published_path"]) if p}
    ms_paths = paths | {p.removeprefix("calib_") for p in paths}
    found = {
        "image": await ctx.lookup(b, "image", images, "path", paths),
        "ms": await ctx.lookup(b, "ms", measurement_sets, "path", ms_paths),
        "mosaic": await ctx.lookup(b, "mosaic_path", mosaics, "path", paths),
        "caltable": await ctx.lookup(b, "caltable", cal_tables, "path", paths),
    }
    for v in parsed.values():
        candidates = [p for p in (v["data_id"], v["stage_path"], v["published_path"]) if p]
        v["image_pk"] = next((found["image"][p] for p in candidates if p in found["image"]), None)
        v["mosaic_pk"] = next((found["mosaic"][p] for p in candidates if p in found["mosaic"]), None)
        v["caltable_pk"] = next((found["caltable"][p] for p in candidates if p in found["caltable"]), None)
        ms = [p.removeprefix("calib_") for p in candidates]
        v["ms_pk"] = next((found["ms"][p] for p in ms if p in found["ms"]), None)
    before = (
        dict(
            (
                await b.conn.execute(
                    select(data_products.c.data_id, data_products.c.status).where(
                        data_products.c.data_id.in_(list(parsed))
                    )
                )
            ).all()
        )
        if parsed
        else {}
    )
    changed = await store.upsert(
        b.conn, data_products, list(parsed.values()), ("data_id",), ("id", "data_id", "status")
    )
    for row in changed:
        b.found["product"][row["data_id"]] = int(row["id"])
        if before.get(row["data_id"]) != row["status"]:
            b.emit(
                PRODUCT_STATUS.signal(
                    {
                        "event": "registered" if row["data_id"] not in before else "status",
                        "product_pk": int(row["id"]),
                        "data_id": row["data_id"][:256],
                        "status": row["status"],
                    }
                )
            )
    return len(changed)


async def write_relationships(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    name = "data_relationships"
    ids = {text(r.get(c)) for r in rows for c in ("parent_data_id", "child_data_id")}
    pks = await ctx.lookup(b, "product", data_products, "data_id", ids)
    links = {}
    for row in rows:
        parent, child = (
            pks.get(text(row.get("parent_data_id")) or ""),
            pks.get(text(row.get("child_data_id")) or ""),
        )
        kind = text(row.get("relationship_type"), 32)
        if parent is None or child is None or not kind:
            ctx.report.skip(f"products.{name}", "a data id not in the registry, or no type")
            continue
        links[(parent, child, kind)] = {"parent_pk": parent, "child_pk": child, "relationship": kind}
    rows_out = list(links.values())
    for start in range(0, len(rows_out), store.CHUNK):
        await b.conn.execute(
            insert_or_skip(b.conn.dialect.name, data_lineage), rows_out[start : start + store.CHUNK]
        )
    return len(rows_out)


KINDS: Final = {
    ".png": "plot",
    ".jpg": "plot",
    ".jpeg": "plot",
    ".svg": "plot",
    ".html": "report",
    ".ipynb": "notebook",
}


async def prepare_qa(ctx: ImportContext, rows: list[Row]) -> list[Row]:
    def sizes() -> None:
        for row in rows:
            path = resolve_path(row.get("path"), ctx.root, Oddities(), "products.qa_artifacts")
            local = ctx.local_path(path) if path else None
            row["_size"] = (
                os.path.getsize(local) if ctx.read_files and local and os.path.isfile(local) else None
            )

    await asyncio.to_thread(sizes)
    return rows


async def write_qa(ctx: ImportContext, b: Batch, rows: list[Row]) -> int:
    name = "products.qa_artifacts"
    group_pks = await ctx.lookup(b, "group", groups, "group_id", (text(r.get("group_id")) for r in rows))
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        path = resolve_path(row.get("path"), ctx.root, ctx.odd, name)
        created = epoch_time(row.get("created_at"), ctx.odd, name, "created_at")
        label = text(row.get("name"), 255)
        if path is None or created is None or not label:
            ctx.report.skip(name, "no path, name or created_at")
            continue
        suffix = os.path.splitext(path)[1].lower()
        out[path] = {
            "path": path,
            "kind": KINDS.get(suffix, "plot"),
            "name": label,
            "media_type": mimetypes.guess_type(path)[0] or "application/octet-stream",
            "size_bytes": row.get("_size"),
            "created_at": created,
            "group_pk": group_pks.get(text(row.get("group_id")) or ""),
        }
    return len(await store.upsert(b.conn, qa_artifacts, list(out.values()), ("path",)))


_REGISTRY_OPEN: Final = "status != 'published' OR finalization_status = 'pending'"

MOSAIC_SPECS: Final = (
    TableSpec(
        "products",
        "mosaics",
        write_mosaics,
        required=("id", "name", "created_at"),
        mutable=True,
        changed=("created_at",),
        open_when=lambda cols: "status NOT IN ('completed', 'failed')" if "status" in cols else None,
        open_every_s=2.0,
    ),
)


def _registry_specs(source: str) -> tuple[TableSpec, ...]:
    return (
        TableSpec(
            source,
            "data_registry",
            write_registry,
            required=("data_id", "data_type", "status"),
            mutable=True,
            changed=("created_at", "staged_at", "published_at"),
            open_when=lambda cols: _REGISTRY_OPEN if "finalization_status" in cols else None,
            open_every_s=2.0,
        ),
        TableSpec(
            source, "data_relationships", write_relationships, required=("parent_data_id", "child_data_id")
        ),
    )


SPECS: Final = (
    *_registry_specs("products"),
    *_registry_specs("data_registry"),
    TableSpec("products", "qa_artifacts", write_qa, prepare=prepare_qa, required=("group_id", "path")),
)
