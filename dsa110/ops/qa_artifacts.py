"""QA artefacts on record: plots, thumbnails, notebooks and reports, linked to what they show.

One row per file path. Registering a path again updates the row (the file was
regenerated); two writers registering the same new path at once both succeed, one
inserting and the other updating.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db.tables import qa_artifacts
from dsa110.db.writes import write_transaction
from dsa110.errors import InputError

KINDS: Final = ("plot", "thumbnail", "notebook", "report")


async def register_artifact(
    engine: AsyncEngine,
    path: Path,
    *,
    kind: str,
    media_type: str,
    size_bytes: int | None = None,
    group_pk: int | None = None,
    ms_pk: int | None = None,
    image_pk: int | None = None,
    caltable_pk: int | None = None,
) -> dict[str, Any]:
    if kind not in KINDS:
        raise InputError(f"kind must be one of {', '.join(KINDS)}", field="kind")
    values = {
        "kind": kind,
        "name": path.name[:255],
        "media_type": media_type,
        "size_bytes": size_bytes,
        "created_at": datetime.now(UTC),
        "group_pk": group_pk,
        "ms_pk": ms_pk,
        "image_pk": image_pk,
        "caltable_pk": caltable_pk,
    }
    for _ in range(2):
        try:
            async with write_transaction(engine) as conn:
                found = (
                    await conn.execute(select(qa_artifacts.c.id).where(qa_artifacts.c.path == str(path)))
                ).first()
                if found is None:
                    stmt: Any = insert(qa_artifacts).values(path=str(path), **values)
                else:
                    stmt = update(qa_artifacts).where(qa_artifacts.c.id == found.id).values(**values)
                return dict((await conn.execute(stmt.returning(*qa_artifacts.c))).mappings().one())
        except IntegrityError:
            continue  # another writer inserted the same path first: update it instead
    raise RuntimeError("could not register the QA artefact")
