"""Regions drawn on images: create, update, delete (validated shapes and names, UTC times).

The author (``created_by``) is whoever the server authenticated, passed in by the caller;
names are human labels checked against an allow-list (``dsa110.names.safe_label``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.db.writes import write_transaction
from dsa110.errors import InputError, NotFoundError
from dsa110.names import safe_label
from dsa110.science.regions import region_from_json, region_to_json

MAX_NAME = 128
MAX_AUTHOR = 64


def _text(value: str | None, name: str, limit: int, required: bool) -> str | None:
    if value is None:
        if required:
            raise InputError(f"`{name}` is required", field=name)
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InputError(f"`{name}` must be 1 to {limit} characters", field=name)
    return value.strip()


async def create_region(
    engine: AsyncEngine, image_pk: int, name: str, shape: Any, created_by: str | None = None
) -> int:
    """Store a region on an image; the shape is validated (``BAD_REGION`` on any defect)."""
    clean_name = safe_label(name, "name", MAX_NAME)
    author = _text(created_by, "createdBy", MAX_AUTHOR, required=False)
    region = region_from_json(shape)
    async with write_transaction(engine) as conn:
        exists = (await conn.execute(select(t.images.c.id).where(t.images.c.id == image_pk))).first()
        if exists is None:
            raise NotFoundError(f"no image {image_pk}", imageId=image_pk)
        result = await conn.execute(
            insert(t.regions).values(
                name=clean_name,
                type=region.kind,
                image_pk=image_pk,
                shape=region_to_json(region),
                created_at=datetime.now(UTC),
                created_by=author,
            )
        )
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])


async def update_region(
    engine: AsyncEngine, region_pk: int, name: str | None = None, shape: Any = None
) -> None:
    values: dict[str, Any] = {"updated_at": datetime.now(UTC)}
    if name is not None:
        values["name"] = safe_label(name, "name", MAX_NAME)
    if shape is not None:
        region = region_from_json(shape)
        values["shape"] = region_to_json(region)
        values["type"] = region.kind
    async with write_transaction(engine) as conn:
        result = await conn.execute(update(t.regions).where(t.regions.c.id == region_pk).values(**values))
        if result.rowcount == 0:
            raise NotFoundError(f"no region {region_pk}", regionId=region_pk)


async def delete_region(engine: AsyncEngine, region_pk: int) -> None:
    async with write_transaction(engine) as conn:
        result = await conn.execute(delete(t.regions).where(t.regions.c.id == region_pk))
        if result.rowcount == 0:
            raise NotFoundError(f"no region {region_pk}", regionId=region_pk)
