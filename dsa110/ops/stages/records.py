"""What the stages write to the database: MS, calibration sets, images, products, lineage.

Every write goes through ``write_transaction``. A stage run twice on the same input
updates its rows (an MS, an image and a product are keyed by path or data id) instead of
failing, so a retried job converges. Products are registered ``staging`` (legacy
register_pipeline_data, legacy-pipeline-facts §4.7), linked to their parents
(``derived_from`` / ``calibrated_with``) and to the job (``job_products`` input/output).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dsa110.db.enums import ProductStatus
from dsa110.db.functions import insert_or_skip
from dsa110.db.tables import (
    cal_tables,
    data_lineage,
    data_products,
    groups,
    images,
    job_products,
    measurement_sets,
    subband_files,
)
from dsa110.db.writes import write_transaction


def now() -> datetime:
    return datetime.now(UTC)


async def _upsert(conn: AsyncConnection, table: Any, key: str, values: Mapping[str, Any]) -> int:
    column = table.c[key]
    pk = (await conn.execute(select(table.c.id).where(column == values[key]))).scalar()
    if pk is None:
        return int((await conn.execute(table.insert().values(**values).returning(table.c.id))).scalar_one())
    await conn.execute(update(table).where(table.c.id == pk).values(**values))
    return int(pk)


async def group_pk(engine: AsyncEngine, group_id: str) -> int | None:
    async with engine.connect() as conn:
        pk = (await conn.execute(select(groups.c.id).where(groups.c.group_id == group_id))).scalar()
    return None if pk is None else int(pk)


async def group_files(engine: AsyncEngine, group_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(subband_files.c.path)
            .join(groups, groups.c.id == subband_files.c.group_pk)
            .where(groups.c.group_id == group_id)
            .order_by(subband_files.c.subband_idx)
        )
        return [str(p) for p in rows.scalars()]


async def group_calibrators(engine: AsyncEngine, group_pk_: int) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        value = (await conn.execute(select(groups.c.calibrators).where(groups.c.id == group_pk_))).scalar()
    return [dict(v) for v in value or [] if isinstance(v, Mapping)]


async def product(
    conn: AsyncConnection,
    data_id: str,
    data_type: str,
    stage_path: str,
    metadata: Mapping[str, Any],
    **links: int | None,
) -> int:
    """Register (or refresh, keeping its status) a staging product; returns its pk.

    The same files still staging under another id are that product, refreshed: a job run
    again (a lease lost, a retry, a mosaic the demo or the legacy importer named the legacy
    way, ``mosaic_<group>_<unix time>``) must not make a second product of one file, which
    publishing the first would leave pointing at nothing."""
    p = data_products.c
    existing = (await conn.execute(select(p.id).where(p.data_id == data_id))).scalar()
    if existing is None:
        existing = (
            await conn.execute(
                select(p.id)
                .where(
                    p.stage_path == stage_path,
                    p.data_type == data_type,
                    p.status == str(ProductStatus.STAGING),
                )
                .order_by(p.id)
                .limit(1)
            )
        ).scalar()
    values = {"stage_path": stage_path, "metadata": dict(metadata), **links}
    if existing is not None:
        await conn.execute(update(data_products).where(data_products.c.id == existing).values(**values))
        return int(existing)
    t = now()
    inserted = await conn.execute(
        data_products.insert()
        .values(
            data_id=data_id,
            data_type=data_type,
            status=str(ProductStatus.STAGING),
            created_at=t,
            staged_at=t,
            finalization_status="pending",
            qa_status="pending",
            validation_status="pending",
            auto_publish=True,
            publish_attempts=0,
            **values,
        )
        .returning(data_products.c.id)
    )
    return int(inserted.scalar_one())


async def link(conn: AsyncConnection, parent_pk: int, child_pk: int, relationship: str) -> None:
    await conn.execute(
        insert_or_skip(conn.dialect.name, data_lineage).values(
            parent_pk=parent_pk, child_pk=child_pk, relationship=relationship
        )
    )


async def job_product(conn: AsyncConnection, job_id: int | None, product_pk: int, role: str) -> None:
    if job_id is None:
        return
    await conn.execute(
        insert_or_skip(conn.dialect.name, job_products).values(
            job_pk=job_id, product_pk=product_pk, role=role
        )
    )


async def product_pk(conn: AsyncConnection, data_id: str) -> int | None:
    pk = (await conn.execute(select(data_products.c.id).where(data_products.c.data_id == data_id))).scalar()
    return None if pk is None else int(pk)


async def record_ms(
    engine: AsyncEngine,
    *,
    job_id: int | None,
    ms: Mapping[str, Any],
    raw_id: str | None,
    raw_files: Sequence[str],
) -> dict[str, int]:
    """The MS row, its ``ms`` product, and lineage from the group's ``raw`` product."""
    async with write_transaction(engine) as conn:
        ms_pk = await _upsert(conn, measurement_sets, "path", {**ms, "created_at": now()})
        pk = await product(
            conn,
            str(ms["path"]),
            "ms",
            str(ms["path"]),
            {"group_pk": ms.get("group_pk"), "n_inputs": len(raw_files)},
            ms_pk=ms_pk,
        )
        await job_product(conn, job_id, pk, "output")
        if raw_id is not None:
            raw_pk = await product(
                conn,
                raw_id,
                "raw",
                raw_files[0] if raw_files else "",
                {"files": list(raw_files)[:64]},
            )
            await link(conn, raw_pk, pk, "derived_from")
            await job_product(conn, job_id, raw_pk, "input")
    return {"ms_pk": ms_pk, "product_pk": pk}


async def ms_row(engine: AsyncEngine, path: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(measurement_sets).where(measurement_sets.c.path == path)))
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


async def set_ms_stage(engine: AsyncEngine, path: str, stage: str, **values: Any) -> None:
    async with write_transaction(engine) as conn:
        await conn.execute(
            update(measurement_sets)
            .where(measurement_sets.c.path == path)
            .values(stage=stage, status=stage, stage_updated_at=now(), **values)
        )


async def record_cal_set(
    engine: AsyncEngine,
    *,
    job_id: int | None,
    set_name: str,
    ms_path: str,
    tables: Sequence[Mapping[str, Any]],
) -> list[int]:
    """The set's ``cal_tables`` rows (active; older sets over the same time retired) and products."""
    ms = await ms_row(engine, ms_path)
    ms_pk = None if ms is None else int(ms["id"])
    pks = []
    async with write_transaction(engine) as conn:
        first = tables[0] if tables else {}
        if first.get("valid_start_mjd") is not None:
            await conn.execute(
                update(cal_tables)
                .where(
                    cal_tables.c.status == "active",
                    cal_tables.c.set_name != set_name,
                    cal_tables.c.valid_end_mjd.is_(None),
                )
                .values(status="retired", valid_end_mjd=first["valid_start_mjd"])
            )
        ms_product = await product_pk(conn, ms_path)
        for table in tables:
            values = {**table, "set_name": set_name, "source_ms_pk": ms_pk, "created_at": now()}
            cal_pk = await _upsert(conn, cal_tables, "path", values)
            pks.append(cal_pk)
            pk = await product(
                conn,
                str(table["path"]),
                "caltable",
                str(table["path"]),
                {"table_type": table["table_type"], "set_name": set_name},
                caltable_pk=cal_pk,
            )
            await job_product(conn, job_id, pk, "output")
            if ms_product is not None:
                await link(conn, ms_product, pk, "derived_from")
                await job_product(conn, job_id, ms_product, "input")
    return pks


async def cal_set_paths(
    engine: AsyncEngine, set_name: str | None, mid_mjd: float | None
) -> tuple[str, list[str]]:
    """The tables of ``set_name``, or of the active set valid at ``mid_mjd`` (newest first)."""
    c = cal_tables.c
    async with engine.connect() as conn:
        if set_name is None:
            query = select(c.set_name).where(c.status == "active").order_by(c.created_at.desc(), c.id.desc())
            if mid_mjd is not None:
                query = query.where(
                    (c.valid_start_mjd.is_(None)) | (c.valid_start_mjd <= mid_mjd),
                    (c.valid_end_mjd.is_(None)) | (c.valid_end_mjd >= mid_mjd),
                )
            set_name = (await conn.execute(query.limit(1))).scalar()
            if set_name is None:
                return "", []
        rows = await conn.execute(
            select(c.path).where(c.set_name == set_name, c.status != "failed").order_by(c.order_index)
        )
        return str(set_name), [str(p) for p in rows.scalars()]


async def record_calibrated(
    engine: AsyncEngine, *, job_id: int | None, ms_path: str, caltables: Sequence[str]
) -> None:
    """The MS is calibrated: ``cal_applied``, a ``calib_ms`` product from the MS and its tables."""
    await set_ms_stage(engine, ms_path, "calibrated", cal_applied=True)
    ms = await ms_row(engine, ms_path)
    async with write_transaction(engine) as conn:
        pk = await product(
            conn,
            f"calib_{ms_path}",
            "calib_ms",
            ms_path,
            {"caltables": list(caltables)},
            ms_pk=None if ms is None else int(ms["id"]),
        )
        await job_product(conn, job_id, pk, "output")
        for parent in [ms_path, *caltables]:
            parent_pk = await product_pk(conn, parent)
            if parent_pk is not None:
                await link(conn, parent_pk, pk, "derived_from" if parent == ms_path else "calibrated_with")
                await job_product(conn, job_id, parent_pk, "input")


async def record_image(
    engine: AsyncEngine,
    *,
    job_id: int | None,
    image: Mapping[str, Any],
    ms_path: str,
    caltables: Sequence[str],
) -> dict[str, int]:
    ms = await ms_row(engine, ms_path)
    values = {**image, "created_at": now()}
    if ms is not None:
        values.update(ms_pk=int(ms["id"]), group_pk=ms["group_pk"])
    async with write_transaction(engine) as conn:
        image_pk = await _upsert(conn, images, "path", values)
        pk = await product(
            conn,
            str(image["path"]),
            "image",
            str(image["path"]),
            {"noise_jy": image.get("noise_jy"), "ms_path": ms_path},
            image_pk=image_pk,
        )
        await job_product(conn, job_id, pk, "output")
        ms_product = await product_pk(conn, f"calib_{ms_path}") or await product_pk(conn, ms_path)
        if ms_product is not None:
            await link(conn, ms_product, pk, "derived_from")
            await job_product(conn, job_id, ms_product, "input")
        for table in caltables:
            table_pk = await product_pk(conn, table)
            if table_pk is not None:
                await link(conn, table_pk, pk, "calibrated_with")
    if ms is not None:
        await set_ms_stage(engine, ms_path, "imaged")
    return {"image_pk": image_pk, "product_pk": pk}
