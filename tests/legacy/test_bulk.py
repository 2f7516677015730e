"""The SQLite bulk path of photometry (rowid ranges converted in SQL) keeps the row path's results.

On SQLite, photometry rows that need no Python are copied by ``INSERT ... SELECT`` from
the legacy file attached read-only; the rest go through the row path. Whatever the mix,
the database must end up exactly as the row path alone leaves it, and announce the same.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.db.legacy_tables import legacy_import_state
from dsa110.events import MEASUREMENTS_ADDED
from dsa110.legacy import runner
from dsa110.legacy.table import TableSpec
from tests.databases import scratch_database
from tests.legacy.conftest import Recorder, counts, import_once
from tests.legacy.fixture import FixtureSpec, LegacyFixture, build_fixture
from tests.legacy.test_import import legacy_count

SPEC = FixtureSpec(sources=60, days=5, groups_per_day=10)


def _append_awkward_rows(fixture: LegacyFixture) -> None:
    """Rows the bulk SQL must leave to Python, or convert exactly as Python does."""
    with sqlite3.connect(fixture.products) as conn:
        names = [r[1] for r in conn.execute("PRAGMA table_info(photometry)")]
        named = [
            dict(zip(names, row, strict=True))
            for row in conn.execute(
                "SELECT * FROM photometry WHERE source_id IS NOT NULL AND peak_err_jyb > 0 "
                "AND typeof(measured_at) = 'real' ORDER BY rowid LIMIT 20"
            )
        ]
        r = iter(named)
        awkward: list[dict[str, Any]] = []

        def row(**changes: Any) -> None:
            awkward.append({**next(r), **changes, "id": None})

        base = named[0]
        # One (source, image) three times: named (clean), unnamed (Python), named again (clean).
        awkward.append({**base, "id": None, "peak_jyb": base["peak_jyb"] * 1.5})
        awkward.append({**base, "id": None, "source_id": None, "peak_jyb": base["peak_jyb"] * 2.0})
        awkward.append({**base, "id": None, "peak_jyb": base["peak_jyb"] * 3.0})
        # And the other order: a clean row, then an unnamed one for the same key, which wins.
        other = named[1]
        awkward.append({**other, "id": None, "peak_jyb": other["peak_jyb"] * 4.0})
        awkward.append({**other, "id": None, "source_id": None, "peak_jyb": other["peak_jyb"] * 5.0})
        next(r), next(r)
        row(ra_deg=named[2]["ra_deg"] + 360.0)  # outside [0, 360): ra % 360
        row(ra_deg=0.0)
        row(image_path=" " + named[4]["image_path"] + "\u00a0")  # whitespace Python strips
        row(peak_jyb="bright")  # text in a REAL column: skipped
        row(peak_err_jyb=0.0)  # no usable error: skipped
        row(peak_jyb=float("inf"))
        row(snr=float("-inf"))  # not finite: peak / error instead
        row(mjd=None)  # the image's mid-MJD
        row(source_id="J" * 65)  # too long: found by position
        row(source_id="NVSS J999999.9+999999")  # a new source
        row(measured_at="2025-08-14T03:00:00")  # an ISO string
        row(mjd="soon")  # unreadable epoch: the image's
        columns = ", ".join(names)
        marks = ", ".join("?" for _ in names)
        conn.executemany(
            f"INSERT INTO photometry ({columns}) VALUES ({marks})", [[a[n] for n in names] for a in awkward]
        )


def _row_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "SPECS", tuple(dataclasses.replace(s, bulk=None) for s in runner.SPECS))


def _counting_bulk(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"n": 0}

    def wrap(spec: TableSpec) -> TableSpec:
        if spec.bulk is None:
            return spec
        bulk = spec.bulk

        async def counted(*args: Any) -> int:
            calls["n"] += 1
            return await bulk(*args)

        return dataclasses.replace(spec, bulk=counted)

    monkeypatch.setattr(runner, "SPECS", tuple(wrap(s) for s in runner.SPECS))
    return calls


async def _state(engine: AsyncEngine) -> dict[str, Any]:
    """Everything photometry writes, keyed by natural keys (pks may differ between runs)."""
    async with engine.connect() as conn:
        name = dict((await conn.execute(select(t.sources.c.id, t.sources.c.source_id))).all())
        path = dict((await conn.execute(select(t.images.c.id, t.images.c.path))).all())
        m = t.measurements
        rows = (await conn.execute(select(m).order_by(m.c.id))).mappings().all()
        measured = sorted(
            (
                name[r["source_pk"]],
                path[r["image_pk"]],
                *(r[c.name] for c in m.c if c.name.endswith(("_jy", "_deg", "mjd", "snr", "forced"))),
            )
            for r in rows
        )
        s = t.sources
        metric_columns = [c.name for c in s.c if c.name != "id"]
        source_rows = sorted(
            tuple(r[c] for c in metric_columns) for r in (await conn.execute(select(s))).mappings().all()
        )
        image_rows = sorted(
            (r.path, r.n_measurements, r.mid_mjd, r.type)
            for r in (
                await conn.execute(
                    select(t.images.c.path, t.images.c.n_measurements, t.images.c.mid_mjd, t.images.c.type)
                )
            ).all()
        )
    return {
        "measurements": measured,
        "sources": source_rows,
        "images": image_rows,
        "name": name,
        "path": path,
    }


def _announced(events: Recorder, state: dict[str, Any]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            state["path"][p["image_pk"]],
            p["n_measurements"],
            tuple(sorted(state["name"][pk] for pk in p["source_pks"])),
        )
        for p in events.on(MEASUREMENTS_ADDED)
    )


@pytest.fixture
def awkward_fixture(tmp_path: Path) -> LegacyFixture:
    fixture = build_fixture(tmp_path / "pipeline" / "state", SPEC)
    _append_awkward_rows(fixture)
    return fixture


async def _import_into(url: str, fixture: LegacyFixture) -> tuple[dict[str, Any], Any, Recorder]:
    engine = create_engine(url)
    events = Recorder()
    try:
        imp = await import_once(engine, fixture, publish=events)
        return await _state(engine), imp.report, events
    finally:
        await engine.dispose()


async def test_the_bulk_path_leaves_what_the_row_path_leaves(
    awkward_fixture: LegacyFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    originals = runner.SPECS
    (tmp_path / "rows").mkdir()
    (tmp_path / "bulk").mkdir()
    async with scratch_database("sqlite", tmp_path / "rows") as url:
        _row_path_only(monkeypatch)
        by_rows, rows_report, rows_events = await _import_into(url, awkward_fixture)
    monkeypatch.setattr(runner, "SPECS", originals)
    async with scratch_database("sqlite", tmp_path / "bulk") as url:
        calls = _counting_bulk(monkeypatch)
        by_bulk, bulk_report, bulk_events = await _import_into(url, awkward_fixture)
    assert calls["n"] >= 1  # the bulk path ran
    for what in ("measurements", "sources", "images"):
        assert by_bulk[what] == by_rows[what], what
    phot_rows, phot_bulk = rows_report.table("products.photometry"), bulk_report.table("products.photometry")
    assert (phot_bulk.read, dict(phot_bulk.skipped)) == (phot_rows.read, dict(phot_rows.skipped))
    assert bulk_report.odd.counts == rows_report.odd.counts
    assert _announced(bulk_events, by_bulk) == _announced(rows_events, by_rows)
    assert bulk_report.errors == rows_report.errors == []


async def test_a_bulk_import_read_again_from_the_start_changes_nothing(
    engine: AsyncEngine, awkward_fixture: LegacyFixture
) -> None:
    await import_once(engine, awkward_fixture)
    before, tables = await _state(engine), await counts(engine)
    async with engine.begin() as conn:  # the watermark lost: every row is read and upserted again
        await conn.execute(
            delete(legacy_import_state).where(legacy_import_state.c.table_name == "photometry")
        )
    imp = await import_once(engine, awkward_fixture)
    if engine.dialect.name == "sqlite":  # asyncpg's executemany reports no row count: rows are counted
        assert imp.report.table("products.photometry").written == 0
    after = await _state(engine)
    for what in ("measurements", "sources", "images"):
        assert after[what] == before[what], what
    assert await counts(engine) == tables


def _corrupt_overflow_chain(products: Path) -> None:
    """The last photometry row gets a path long enough for overflow pages; its chain then
    points past the end of the file: reading that row fails as a corrupt file does."""
    with sqlite3.connect(products) as conn:
        conn.execute(
            "INSERT INTO photometry (image_path, ra_deg, dec_deg, peak_jyb, peak_err_jyb, measured_at, source_id) "
            "SELECT ?, ra_deg, dec_deg, peak_jyb, peak_err_jyb, measured_at, source_id FROM photometry "
            "WHERE rowid = (SELECT max(rowid) FROM photometry)",
            ("/stage/" + "x" * 20_000,),
        )
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = [
            int(p)
            for (p,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'photometry' AND pagetype = 'overflow' ORDER BY path"
            )
        ]
        conn.execute("PRAGMA journal_mode=WAL")
    assert pages
    with products.open("r+b") as f:
        f.seek((pages[0] - 1) * page_size)
        f.write((0x7FFFFFF0).to_bytes(4, "big"))  # the next overflow page: far past the end


async def test_a_file_corrupt_mid_table_leaves_nothing_of_its_batch(
    engine: AsyncEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixture = build_fixture(tmp_path / "pipeline" / "state", dataclasses.replace(SPEC, oddities=False))
    _corrupt_overflow_chain(fixture.products)
    specs = [
        dataclasses.replace(s, batch_rows=100, bulk_batch_rows=100) if s.table == "photometry" else s
        for s in runner.SPECS
    ]
    monkeypatch.setattr(runner, "SPECS", tuple(specs))
    imp = await import_once(engine, fixture)
    assert any(str(fixture.products) in e and "corrupt" in e for e in imp.report.errors)
    async with engine.connect() as conn:
        mark = (
            await conn.execute(
                select(legacy_import_state.c.last_rowid).where(
                    legacy_import_state.c.table_name == "photometry"
                )
            )
        ).scalar_one()
        stored = len((await conn.execute(select(t.measurements.c.id))).all())
    total = legacy_count(fixture.products, "SELECT max(rowid) FROM photometry")
    assert 0 < mark < total  # the batches before the bad page are in
    # Exactly the rows up to the watermark (all usable, one per source and image): none of the failed batch.
    assert stored == legacy_count(fixture.products, f"SELECT count(*) FROM photometry WHERE rowid <= {mark}")
