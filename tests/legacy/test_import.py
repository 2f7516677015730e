"""``import``: every table the dashboard uses arrives, exactly once, with the oddities handled."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.db import tables as t
from dsa110.legacy.files import LegacyFileError, locate
from dsa110.legacy.runner import LegacyImporter
from dsa110.science.variability import batch_metrics
from tests.legacy.conftest import Recorder, counts, import_once
from tests.legacy.fixture import FixtureSpec, LegacyFixture, build_fixture


def _clobber(path: Path) -> None:
    path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def legacy_count(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute(sql).fetchone()[0])


async def test_every_table_arrives_with_the_fixtures_counts(
    engine: AsyncEngine, small_fixture: LegacyFixture
) -> None:
    imp = await import_once(engine, small_fixture)
    got = await counts(engine)
    f, products, queue = small_fixture, small_fixture.products, small_fixture.ingest
    assert got["groups"] == f.counts["ingest_queue"]
    assert got["subband_files"] == f.counts["subband_files"]
    assert got["measurement_sets"] == f.counts["ms_index"]
    assert got["pointing_history"] == f.counts["pointing_history"]
    distinct_paths = legacy_count(products, "SELECT count(DISTINCT path) FROM images")
    assert got["images"] == distinct_paths + len(f.orphan_image_paths)  # re-imaged path merged
    assert got["measurements"] == f.counts["photometry"] - f.no_error_rows
    assert got["sources"] == len(f.source_ids)  # unnamed rows found their sources by position
    assert got["ese_candidates"] == f.counts["ese_candidates"]
    assert got["cal_tables"] == f.counts["caltables"]
    assert got["mosaics"] == f.counts["mosaics"]
    assert got["data_products"] == f.counts["data_registry"]
    assert got["data_lineage"] == f.counts["data_relationships"]
    assert got["qa_artifacts"] == f.counts["qa_artifacts"]
    assert got["catalog_sources"] == f.counts["sources"]
    unknown_type = legacy_count(products, "SELECT count(*) FROM jobs WHERE type = 'reticulate'")
    assert got["jobs"] == f.counts["jobs"] - unknown_type + f.counts["batch_jobs"]
    assert got["job_logs"] > 0
    report = imp.report
    assert report.table("products.photometry").skipped == {
        "no usable peak_err_jyb (NULL, zero or negative)": f.no_error_rows
    }
    assert sum(report.table("products.jobs").skipped.values()) == unknown_type
    odd = {what for (_, what) in report.odd.counts}
    assert "received_at: ISO string instead of epoch seconds" in odd
    assert "params: Python repr instead of JSON" in odd
    assert "source_id NULL (batch job): source found by position" in odd
    assert report.errors == []
    assert legacy_count(queue, "SELECT count(*) FROM ingest_queue") == f.counts["ingest_queue"]  # untouched


async def test_importing_twice_changes_nothing(engine: AsyncEngine, small_fixture: LegacyFixture) -> None:
    await import_once(engine, small_fixture)
    before = await counts(engine)
    async with engine.connect() as conn:
        snapshot = {
            name: sorted(map(tuple, (await conn.execute(select(t.metadata.tables[name]))).all()), key=repr)
            for name in (
                "groups",
                "images",
                "sources",
                "measurements",
                "jobs",
                "data_products",
                "ese_candidates",
            )
        }
    again = Recorder()
    imp = await import_once(engine, small_fixture, publish=again)
    assert imp.report.rows_written == 0
    assert again.events == []
    assert await counts(engine) == before
    async with engine.connect() as conn:
        for name, rows in snapshot.items():
            now = sorted(map(tuple, (await conn.execute(select(t.metadata.tables[name]))).all()), key=repr)
            assert now == rows, name


async def test_metrics_are_recomputed_from_the_imported_measurements(
    engine: AsyncEngine, small_fixture: LegacyFixture
) -> None:
    await import_once(engine, small_fixture)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t.sources).order_by(t.sources.c.id).limit(25))).mappings().all()
        for src in rows:
            points = (
                await conn.execute(
                    select(
                        t.measurements.c.peak_flux_jy, t.measurements.c.peak_flux_err_jy, t.measurements.c.mjd
                    ).where(t.measurements.c.source_pk == src["id"])
                )
            ).all()
            arr = np.asarray(points, dtype=float).reshape(-1, 3)
            expected = batch_metrics(arr[:, 0], arr[:, 1], arr[:, 2])
            assert src["n_epochs"] == expected.n_epochs
            for name in ("mean_flux_jy", "v", "eta", "chi2_nu", "sigma_deviation", "vs_abs_max", "m_abs_max"):
                assert src[name] == pytest.approx(getattr(expected, name), rel=1e-9, abs=1e-12), name
            assert src["first_mjd"] == expected.first_mjd and src["last_mjd"] == expected.last_mjd


async def test_rows_without_a_source_id_join_the_source_at_their_position(
    engine: AsyncEngine, small_fixture: LegacyFixture
) -> None:
    await import_once(engine, small_fixture)
    with sqlite3.connect(small_fixture.products) as legacy:
        named = {
            (ra, dec): sid
            for ra, dec, sid in legacy.execute("SELECT ra_deg, dec_deg, source_id FROM variability_stats")
        }
        unnamed = legacy.execute(
            "SELECT ra_deg, dec_deg, image_path FROM photometry WHERE source_id IS NULL"
        ).fetchall()
    assert unnamed
    async with engine.connect() as conn:
        for ra, dec, image_path in unnamed:
            owner = (
                await conn.execute(
                    select(t.sources.c.source_id)
                    .join(t.measurements, t.measurements.c.source_pk == t.sources.c.id)
                    .join(t.images, t.images.c.id == t.measurements.c.image_pk)
                    .where(t.images.c.path == image_path, func.abs(t.measurements.c.ra_deg - ra) < 1e-9)
                )
            ).scalar_one()
            assert owner == named[(ra, dec)]


async def test_an_older_file_without_the_later_columns_imports(engine: AsyncEngine, tmp_path: Path) -> None:
    old = build_fixture(tmp_path / "state", FixtureSpec(sources=60, days=5, groups_per_day=8, old=True))
    imp = await import_once(engine, old)
    got = await counts(engine)
    assert got["measurements"] == old.counts["photometry"] - old.no_error_rows
    assert got["sources"] == len(old.source_ids)  # no source_id column: every row by position
    assert "products.pointing_history" in imp.report.missing  # created lazily: absent in old files
    assert imp.report.errors == []


async def test_an_unreadable_file_is_named_and_nothing_is_taken_from_it(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    good = build_fixture(tmp_path / "state", FixtureSpec(sources=30, days=3, groups_per_day=6))
    _clobber(good.products)
    imp = await import_once(engine, good)
    assert any(str(good.products) in e and "not a SQLite database" in e for e in imp.report.errors)
    got = await counts(engine)
    assert got["groups"] == good.counts["ingest_queue"]  # the other files still import
    assert got["images"] == got["measurements"] == got["jobs"] == 0
    (tmp_path / "empty").mkdir()
    with pytest.raises(LegacyFileError, match="no legacy state files"):
        locate([tmp_path / "empty"])
    with pytest.raises(LegacyFileError, match="not a known state file"):
        locate([tmp_path / "state" / "notes.txt"])


async def test_an_interrupted_import_resumes_to_the_same_result(
    engine: AsyncEngine, small_fixture: LegacyFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    from dsa110.legacy import runner

    calls = {"n": 0}
    originals = runner.SPECS
    specs = list(originals)
    index = next(i for i, s in enumerate(specs) if s.table == "photometry")
    original = specs[index]

    def power_cut() -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("power cut")

    async def fails_on_third(ctx, b, rows):  # type: ignore[no-untyped-def]
        power_cut()
        return await original.write(ctx, b, rows)

    async def bulk_fails_on_third(ctx, b, *bounds):  # type: ignore[no-untyped-def]
        power_cut()  # the SQLite bulk path (rowid ranges) fails at the same batch
        assert original.bulk is not None
        return await original.bulk(ctx, b, *bounds)

    specs[index] = dataclasses.replace(
        original, write=fails_on_third, bulk=bulk_fails_on_third, batch_rows=200, bulk_batch_rows=200
    )
    monkeypatch.setattr(runner, "SPECS", tuple(specs))
    imp = LegacyImporter(engine, locate([small_fixture.state_dir]))
    with pytest.raises(RuntimeError, match="power cut"):
        await imp.run_pass()
    imp.close()
    partial = await counts(engine)
    assert 0 < partial["measurements"] < small_fixture.counts["photometry"] - small_fixture.no_error_rows
    assert partial["legacy_dirty_sources"] > 0  # their metrics are owed, and remembered
    monkeypatch.setattr(runner, "SPECS", originals)
    await import_once(engine, small_fixture)
    resumed = await counts(engine)
    assert resumed["measurements"] == small_fixture.counts["photometry"] - small_fixture.no_error_rows
    assert resumed["legacy_dirty_sources"] == 0


async def test_empty_image_columns_are_read_from_the_fits_header(engine: AsyncEngine, tmp_path: Path) -> None:
    spec = FixtureSpec(sources=30, days=2, groups_per_day=6, fits_images=2)
    fixture = build_fixture(tmp_path / "state", spec)
    stage = str(tmp_path / "stage")
    await import_once(engine, fixture, path_map=(("/stage", stage),))
    async with engine.connect() as conn:
        rows = (
            (await conn.execute(select(t.images).where(t.images.c.beam_major_arcsec.is_not(None))))
            .mappings()
            .all()
        )
    assert len(rows) == 2  # the two images whose FITS files exist
    for row in rows:
        assert row["beam_major_arcsec"] == pytest.approx(36.0)
        assert row["beam_minor_arcsec"] == pytest.approx(24.0)
        assert row["beam_pa_deg"] == pytest.approx(12.5)
        assert row["imsize_x"] == row["imsize_y"] == 32
        assert row["cellsize_arcsec"] == pytest.approx(6.0)
        assert row["freq_ghz"] == pytest.approx(1.405)
        assert row["bandwidth_mhz"] == pytest.approx(187.2)
        assert row["center_dec_deg"] == pytest.approx(55.0, abs=0.01)
        assert row["healpix"] is not None
        assert row["path"].startswith("/stage/")  # stored as the pipeline names it


def test_the_cli_prints_a_summary_and_fails_on_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from server.cli import main

    fixture = build_fixture(
        tmp_path / "pipeline" / "state", FixtureSpec(sources=20, days=2, groups_per_day=4)
    )
    data = tmp_path / "data"
    with pytest.raises(SystemExit) as done:
        main(["import-legacy", "--data-dir", str(data), "--from", str(fixture.state_dir), "--quiet"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "products.photometry" in out and "rows read" in out
    _clobber(fixture.ingest)
    with pytest.raises(SystemExit) as done:
        main(["import-legacy", "--data-dir", str(data), "--from", str(fixture.state_dir), "--quiet"])
    assert done.value.code == 1
    assert f"error: {fixture.ingest}: not a SQLite database" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["import-legacy", "--data-dir", str(data), "--from", str(tmp_path / "nowhere"), "--quiet"])
    assert done.value.code == 2


async def test_the_cli_publishes_on_the_servers_event_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Servers sharing a Redis with other deployments listen on their own namespace
    (``DSA110_EVENTS_NAMESPACE``); the importer's events must arrive there."""
    import asyncio

    from dsa110.events import create_event_bus
    from dsa110.events.channels import GROUP_STATE
    from server.cli import main
    from tests.databases import REDIS_URL
    from tests.events.conftest import fresh_namespace, next_event

    if not REDIS_URL:
        pytest.skip("DSA110_TEST_REDIS_URL not set")
    namespace = fresh_namespace()
    monkeypatch.setenv("DSA110_EVENTS_NAMESPACE", namespace)
    fixture = build_fixture(
        tmp_path / "pipeline" / "state", FixtureSpec(sources=20, days=1, groups_per_day=2)
    )
    argv = ["import-legacy", "--data-dir", str(tmp_path / "data"), "--from", str(fixture.state_dir)]
    server = create_event_bus(REDIS_URL, namespace=namespace)
    await server.start()
    try:
        async with server.subscribe(GROUP_STATE) as heard:
            with pytest.raises(SystemExit) as done:
                await asyncio.to_thread(main, [*argv, "--quiet", "--events-url", REDIS_URL])
            assert done.value.code == 0
            event = await next_event(heard)
            assert GROUP_STATE.payload(event)["state"] == "pending"  # a group the import added
    finally:
        await server.close()
