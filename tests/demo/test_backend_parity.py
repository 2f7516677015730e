"""The same demo arguments give the same measurements on SQLite and PostgreSQL.

The demo's sky is fixed by its seed, but its pointings follow the sidereal time of its time
origin (``end``, by default the build's "now"): two copies built minutes apart differ by
tens of measurements out of 10^7 (issue 11: 11,984,052 vs 11,984,094). With the same
``end`` the backends must not differ at all.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.demo import build_demo
from tests.databases import POSTGRES_URL, scratch_database

END = datetime(2025, 11, 13, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="DSA110_TEST_POSTGRES_URL not set")


async def _measurements(url: str) -> list[tuple[Any, ...]]:
    """Every measurement by source name and image time (ids and paths differ between builds)."""
    m, s, i = t.measurements.c, t.sources.c, t.images.c
    statement = (
        select(s.source_id, i.mid_mjd, m.mjd, m.peak_flux_jy, m.peak_flux_err_jy, m.snr, m.ra_deg, m.dec_deg)
        .join(t.sources, t.sources.c.id == m.source_pk)
        .join(t.images, t.images.c.id == m.image_pk)
        .order_by(s.source_id, i.mid_mjd)
    )
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(statement)).all()]
    finally:
        await engine.dispose()


async def _build(backend: str, root: Path, end: datetime, large: bool) -> list[tuple[Any, ...]]:
    async with scratch_database(backend, root, migrate=False) as url:
        await build_demo(
            url, root / "data", sources=300, days=2, seed=5, images=False, large=large, end=end, detect=False
        )
        return await _measurements(url)


@pytest.mark.parametrize("large", [False, True], ids=["tiles", "large"])
async def test_both_backends_build_the_same_measurements(tmp_path: Path, large: bool) -> None:
    on_sqlite = await _build("sqlite", tmp_path / "sqlite", END, large)
    on_postgresql = await _build("postgresql", tmp_path / "postgresql", END, large)
    assert len(on_sqlite) > 1000
    assert on_postgresql == on_sqlite


async def test_the_time_origin_moves_the_pointings(tmp_path: Path) -> None:
    """Why the same ``end`` is needed: 5 minutes later the strip has turned under the sky."""
    now = await _build("sqlite", tmp_path / "a", END, True)
    later = await _build("sqlite", tmp_path / "b", END + timedelta(minutes=5), True)
    assert now != later
