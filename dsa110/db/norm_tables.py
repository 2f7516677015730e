"""Stored light-curve normalisation: each sky cell's reference set and per-image factors.

The ensemble correction of an image (``dsa110.science.lightcurve``) is defined per coarse
sky cell (one reference set per cell, ``dsa110.ops.ingest.lightcurves``), and each
reference's baseline is its median over *all* its epochs, so a new image changes the
factors of earlier images in the cell. The factors are therefore stored per cell with the
state of the data they were computed from (``dsa110.ops.norm_store``), and recomputed when
that state moved on; a read of fresh factors is one indexed join.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, Table, Text, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dsa110.db.tables import metadata
from dsa110.db.types import UtcDateTime

norm_state = Table(
    "norm_state",
    metadata,
    Column("id", Integer, primary_key=True),  # one row, id 1 (migration 0016)
    # Bumped by writers that change or remove measurements in place (no new ids): every
    # stored cell computed under an older epoch is stale.
    Column("epoch", BigInteger, nullable=False, default=0),
)

norm_cells = Table(
    "norm_cells",
    metadata,
    Column("cell", BigInteger, primary_key=True),  # HEALPix nested index at GROUP_ORDER
    # The data the factors were computed from: the largest measurement id then, and the epoch.
    Column("watermark", BigInteger, nullable=False),
    Column("epoch", BigInteger, nullable=False),
    Column("reference_pks", Text, nullable=False),  # JSON list, in reference order
    Column("computed_at", UtcDateTime, nullable=False),
)

image_norm_factors = Table(
    "image_norm_factors",
    metadata,
    # Only corrected images have a row: an image without one gets no correction (factor 1).
    Column("cell", BigInteger, ForeignKey("norm_cells.cell", ondelete="CASCADE"), primary_key=True),
    Column("image_pk", Integer, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True),
    Column("factor", Float, nullable=False),
    Column("factor_err", Float, nullable=False),
    Column("n_ref", Integer, nullable=False),
    Index(None, "image_pk"),  # an image's deletion cascades here
)


async def bump_epoch(conn: AsyncConnection) -> None:
    """Make every stored cell stale; call it in the transaction of a write that changes
    measurements or source metrics without adding a measurement id (an in-place update)."""
    result = await conn.execute(
        update(norm_state).where(norm_state.c.id == 1).values(epoch=norm_state.c.epoch + 1)
    )
    if result.rowcount == 0:  # a database made without the migration's row (metadata.create_all)
        await conn.execute(insert(norm_state).values(id=1, epoch=1))
