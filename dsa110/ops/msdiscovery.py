"""Finding Measurement Sets on disk and registering them (legacy ``POST /api/ms/discover``).

A directory ending in ``.ms`` that holds ``table.dat`` is an MS; the search does not
descend into one. Each MS found is read for its time range, phase-centre declination and
size. New ones are inserted with status and stage ``discovered`` (linked to their
observation group when the name is ``<group_id>.ms``); known ones get their times and
size refreshed without touching their processing state. An unreadable MS is skipped and
reported.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import groups, measurement_sets
from dsa110.db.writes import write_transaction
from dsa110.ops.files.ms import MsMetadata, read_ms

GROUP_NAME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.ms$")
MAX_FOUND = 10_000


def find_ms(roots: Sequence[Path], recursive: bool = True, limit: int = MAX_FOUND) -> list[Path]:
    found: list[Path] = []
    stack = list(roots)
    while stack and len(found) < limit:
        folder = stack.pop()
        if folder.name.endswith(".ms") and (folder / "table.dat").is_file():
            found.append(folder)
            continue
        try:
            children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
        except OSError:
            continue
        for child in children:
            if child.name.endswith(".ms") and (child / "table.dat").is_file():
                found.append(child)
            elif recursive and not (child / "table.dat").is_file():
                stack.append(child)
    return sorted(set(found))[:limit]


@dataclass
class Discovery:
    discovered: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _read(paths: list[Path]) -> list[tuple[Path, MsMetadata | None]]:
    out: list[tuple[Path, MsMetadata | None]] = []
    for path in paths:
        try:
            out.append((path, read_ms(path, flags=False)))
        except (OSError, RuntimeError, ValueError, KeyError, IndexError):
            out.append((path, None))
    return out


async def discover(engine: AsyncEngine, roots: Sequence[Path], recursive: bool = True) -> Discovery:
    paths = await asyncio.to_thread(find_ms, roots, recursive)
    result = Discovery(discovered=[str(p) for p in paths])
    now = datetime.now(UTC)
    for path, meta in await asyncio.to_thread(_read, paths):
        if meta is None:
            result.skipped.append(str(path))
            continue
        values = {
            "start_mjd": meta.start_mjd,
            "end_mjd": meta.end_mjd,
            "mid_mjd": meta.mid_mjd,
            "dec_deg": meta.pointing_dec_deg,
            "size_bytes": meta.size_bytes,
        }
        name = GROUP_NAME.search(path.name)
        try:
            async with write_transaction(engine) as conn:
                existing = (
                    await conn.execute(
                        select(measurement_sets.c.id).where(measurement_sets.c.path == str(path))
                    )
                ).first()
                if existing is not None:
                    await conn.execute(
                        update(measurement_sets).where(measurement_sets.c.id == existing.id).values(**values)
                    )
                    result.updated.append(str(path))
                    continue
                group_pk = None
                if name is not None:
                    found = await conn.execute(select(groups.c.id).where(groups.c.group_id == name.group(1)))
                    group_pk = found.scalar()
                await conn.execute(
                    insert(measurement_sets).values(
                        path=str(path),
                        group_pk=group_pk,
                        status="discovered",
                        stage="discovered",
                        cal_applied=meta.calibrated,
                        field_name=meta.fields[0].name if meta.fields else None,
                        ra_deg=meta.fields[0].ra_deg if meta.fields else None,
                        created_at=now,
                        stage_updated_at=now,
                        **values,
                    )
                )
        except IntegrityError:  # registered by a concurrent discovery: it is known now
            result.updated.append(str(path))
            continue
        result.registered.append(str(path))
    return result
