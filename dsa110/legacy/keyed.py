"""Rows whose only legacy key is an integer id: images, jobs, batches, candidates, mosaics.

The legacy id is remembered in ``legacy_keys`` (kind, legacy id) -> our pk. A row seen
before is upserted by our pk (written only if something differs); a new row is inserted
keeping the legacy id as ours when that id is free (so legacy URLs keep working), or
with a new id when it is not (:func:`store.insert_keeping_ids`), and its key remembered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, insert

from dsa110.legacy import store
from dsa110.legacy.context import Batch, ImportContext


@dataclass
class Saved:
    pks: dict[str, int] = field(default_factory=dict)  # every legacy key of the batch -> our pk
    new: set[int] = field(default_factory=set)
    changed: set[int] = field(default_factory=set)  # updated rows (not new) that differed


async def known(ctx: ImportContext, b: Batch, kind: str, keys: Sequence[str]) -> dict[str, int]:
    out = {k: pk for k in keys if (pk := b.found[kind].get(k) or ctx.known[kind].get(k)) is not None}
    missing = [k for k in keys if k not in out]
    if missing:
        found = await store.known_keys(b.conn, kind, missing)
        b.found[kind].update(found)
        out.update(found)
    return out


async def save_keyed(
    ctx: ImportContext,
    b: Batch,
    table: Table,
    kind: str,
    items: Sequence[tuple[str, dict[str, Any]]],
    *,
    keep_ids: bool,
    existing: Mapping[str, int] | None = None,
    keep: Sequence[str] = (),
) -> Saved:
    """Write ``(legacy key, row)`` pairs; ``existing`` names pks found by another key (a path)."""
    saved = Saved()
    if not items:
        return saved
    pks = await known(ctx, b, kind, [k for k, _ in items])
    for key, pk in (existing or {}).items():
        pks.setdefault(key, pk)
    old = [{"id": pks[k], **row} for k, row in items if k in pks]
    for row in await store.upsert(b.conn, table, old, ("id",), keep=keep):
        saved.changed.add(int(row["id"]))
    fresh = [(k, row) for k, row in items if k not in pks]
    if fresh:
        if keep_ids and all(k.isdigit() for k, _ in fresh):
            new_pks = await store.insert_keeping_ids(
                b.conn, table, [{"id": int(k), **row} for k, row in fresh]
            )
        else:
            new_pks = []
            for _, row in fresh:
                result = await b.conn.execute(insert(table).values(**row).returning(table.c.id))
                new_pks.append(int(result.scalar_one()))
        for (key, _), pk in zip(fresh, new_pks, strict=True):
            pks[key] = pk
            saved.new.add(pk)
    remembered = {k: pks[k] for k, _ in items}
    await store.remember_keys(b.conn, kind, remembered)
    b.found[kind].update(remembered)
    saved.pks = remembered
    return saved
