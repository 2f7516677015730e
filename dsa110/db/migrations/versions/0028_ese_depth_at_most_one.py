"""ESE candidates: depth at most 1 and minimum flux at least 0, as the schema documents

Up to ese-drw-3.17 a Gaussian fitted to a strong lens's flat floor could overshoot it (a > b)
and the candidate was stored with depth above 1 and a negative minimum flux (47 of 405
candidates on three bench replays). ese-drw-3.18 reports ``depth = min(a/b, 1)`` and
``min_flux_jy = max(b - a, 0) * baseline``; this revision brings rows stored before it to
the same: a lens redirects flux, it cannot take more than the source has.

Imported legacy candidates (``detector_version = 'legacy'``) name the source's lowest
*measured* flux, which for a faint source can be below zero (noise): that value is kept, and
only their depth is brought to 1, as the importer now writes it
(``dsa110.legacy.candidates.legacy_depth``). Other columns and rows are untouched; the
whole upgrade runs in the migration's one transaction on both backends. ``updated_at`` is
not moved and no ``ese.candidate`` event is published: nothing about the candidate changed
but the reading of a fit's artefact, so a client syncing by ``updated_at`` keeps its copy
until it reads the candidate again.

Downgrade changes nothing: the overshoot was the fit's artefact, not a measurement.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_candidates = sa.table(
    "ese_candidates",
    sa.column("depth", sa.Float),
    sa.column("min_flux_jy", sa.Float),
    sa.column("detector_version", sa.String),
)
_LEGACY = "legacy"  # dsa110.legacy.candidates.LEGACY_DETECTOR, as it was at this revision


def upgrade() -> None:
    c = _candidates.c
    op.execute(sa.update(_candidates).where(c.depth > 1.0).values(depth=1.0))
    op.execute(
        sa.update(_candidates)
        .where(c.min_flux_jy < 0.0, c.detector_version != _LEGACY)
        .values(min_flux_jy=0.0)
    )


def downgrade() -> None:
    pass
