"""The migrations are the schema: they build it from nothing and upgrade in place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dsa110.db.engine import create_engine
from dsa110.db.migrate import current_revision, head_revision, upgrade
from dsa110.db.tables import metadata
from tests.databases import scratch_database

T = TypeVar("T")


async def test_migrations_build_exactly_the_declared_tables(backend: str, tmp_path: Path) -> None:
    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()

        def _diff(connection: Connection) -> list[object]:
            def _here(obj: object, name: object, kind: str, reflected: bool, other: object) -> bool:
                # an index declared ddl_if(dialect=...) exists only on that dialect (tables.py)
                only = getattr(getattr(obj, "_ddl_if", None), "dialect", None)
                return only is None or only == connection.dialect.name

            opts = {"compare_type": True, "include_object": _here}
            context = MigrationContext.configure(connection, opts=opts)
            return list(compare_metadata(context, metadata))

        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            diff = await connection.run_sync(_diff)
        await engine.dispose()
    assert set(metadata.tables) <= names
    assert diff == [], f"tables.py and the migrations disagree: {diff}"


async def test_upgrade_is_idempotent(backend: str, tmp_path: Path) -> None:
    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        await engine.dispose()


async def test_an_older_database_upgrades_in_place(backend: str, tmp_path: Path) -> None:

    from sqlalchemy import insert, select

    from dsa110.db import tables as t

    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0001")
        assert await current_revision(engine) == "0001"
        now = datetime.now(UTC)
        async with engine.begin() as conn:
            await conn.execute(
                insert(t.groups).values(
                    group_id="2025-10-24T14:00:00",
                    state="completed",
                    received_at=now,
                    updated_at=now,
                    mid_mjd=60972.58,
                )
            )
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            kept = (await conn.execute(select(t.groups.c.group_id, t.groups.c.received_at))).all()
        await engine.dispose()
    assert kept == [("2025-10-24T14:00:00", now.replace(microsecond=now.microsecond))]


def test_each_migration_docstring_names_the_revision_it_revises() -> None:
    """The chain is not in file-name order (0011 -> 0014 -> 0012 -> 0015 -> 0013 -> 0016):
    whoever reads a script's header to find its parent must read the truth."""
    import re

    from alembic.script import ScriptDirectory

    from dsa110.db.migrate import alembic_config

    wrong = []
    for script in ScriptDirectory.from_config(alembic_config()).walk_revisions():
        doc = script.module.__doc__ or ""
        ids = re.search(r"^Revision ID: *(\S*)$", doc, re.MULTILINE)
        parent = re.search(r"^Revises: *(\S*)$", doc, re.MULTILINE)
        said = (ids and ids.group(1), parent and parent.group(1))
        if said != (script.revision, script.down_revision or ""):
            wrong.append((script.revision, said))
    assert wrong == []


def test_every_sort_and_filter_column_leads_an_index() -> None:
    """Lists sort and filter in SQL; without an index each page would scan the table."""
    from enum import Enum

    from dsa110.db import file_filters, filters
    from dsa110.db import tables as t

    def indexed(table: object) -> set[str]:
        leading = {idx.columns[0].name for idx in table.indexes}  # type: ignore[attr-defined]
        leading |= {c.name for c in table.columns if c.unique or c.primary_key}  # type: ignore[attr-defined]
        return leading

    sorts = {
        filters.SourceOrderField: t.sources,
        filters.ImageOrderField: t.images,
        filters.GroupOrderField: t.groups,
        filters.MosaicOrderField: t.mosaics,
        filters.JobOrderField: t.jobs,
        filters.DataProductOrderField: t.data_products,
        filters.EseCandidateOrderField: t.ese_candidates,
        filters.AlertOrderField: t.alerts,
        filters.RegionOrderField: t.regions,
        file_filters.MeasurementSetOrderField: t.measurement_sets,
        file_filters.CalTableOrderField: t.cal_tables,
        file_filters.QaArtifactOrderField: t.qa_artifacts,
    }
    missing = [
        f"{table.name}.{field.value}"
        for enum, table in sorts.items()
        for field in enum  # type: ignore[attr-defined]
        if isinstance(field, Enum) and field.value not in indexed(table)
    ]
    assert missing == []


async def test_upgrading_to_0004_fills_max_snr_and_new_source_from_the_measurements(
    backend: str, tmp_path: Path
) -> None:
    """Existing sources get what a recompute would give them, without running one."""

    import sqlalchemy as sa
    from alembic import command

    from dsa110.db import tables as t
    from dsa110.db.migrate import alembic_config
    from dsa110.science.variability import source_row, sums_from_arrays

    # Source 1: S/N 2, 3.75, then 10 and 11: first detected at MJD 2; earlier errors
    # 0.001 and 0.0008 -> new_high_sigma = 0.020 / 0.0008 = 25: new; max S/N 11.
    # Source 2: S/N 20 from the first epoch: not new. Source 3: no measurements.
    light_curves = {
        1: ([0.002, 0.003, 0.020, 0.022], [0.001, 0.0008, 0.002, 0.002]),
        2: ([0.1, 0.1, 0.1, 0.1], [0.005] * 4),
        3: ([], []),
    }
    mjds = [0.0, 1.0, 2.0, 3.0]
    old_sources = sa.table(  # the columns as of revision 0003
        "sources",
        *(sa.column(name) for name in ("id", "source_id", "ra_deg", "dec_deg", "healpix", "n_epochs")),
        *(sa.column(name) for name in ("sum_w", "sum_wf", "sum_wf2", "sum_f", "sum_f2")),
    )
    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0003")
        async with engine.begin() as conn:
            for pk in light_curves:
                await conn.execute(
                    sa.insert(old_sources).values(
                        id=pk, source_id=f"S{pk}", ra_deg=1.0, dec_deg=2.0, healpix=0, n_epochs=0,
                        sum_w=0.0, sum_wf=0.0, sum_wf2=0.0, sum_f=0.0, sum_f2=0.0,
                    )
                )  # fmt: skip
            for i, mjd in enumerate(mjds):
                await conn.execute(
                    sa.insert(t.images).values(
                        id=i + 1, path=f"/i{i}.fits", type="5min", created_at=datetime.now(UTC), mid_mjd=mjd
                    )
                )
            for pk, (flux, err) in light_curves.items():
                for i, (f, e) in enumerate(zip(flux, err, strict=True)):
                    await conn.execute(
                        sa.insert(t.measurements).values(
                            source_pk=pk, image_pk=i + 1, mjd=mjds[i], ra_deg=1.0, dec_deg=2.0,
                            peak_flux_jy=f, peak_flux_err_jy=e, forced=True,
                        )
                    )  # fmt: skip
        await upgrade(engine)
        async with engine.connect() as conn:
            rows = {r["id"]: r for r in (await conn.execute(sa.select(t.sources))).mappings()}
            kept = (await conn.execute(sa.select(sa.func.count()).select_from(t.measurements))).scalar()
        # And back: neither direction may rebuild `sources` (on SQLite the rebuild's DROP
        # TABLE would cascade to every measurement).
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0003"))
        async with engine.connect() as conn:
            kept_down = (await conn.execute(sa.select(sa.func.count()).select_from(t.measurements))).scalar()
        await engine.dispose()
    assert kept == kept_down == sum(len(flux) for flux, _ in light_curves.values())
    names = ("max_snr", "first_detection_mjd", "first_detection_flux_jy", "pre_detection_min_err_jy")
    names += ("new_high_sigma", "new_source")
    for pk, (flux, err) in light_curves.items():
        expected = source_row(sums_from_arrays(flux, err, mjds[: len(flux)]))
        assert {name: rows[pk][name] for name in names} == {name: expected[name] for name in names}, pk
    assert (rows[1]["new_source"], rows[1]["new_high_sigma"]) == (True, pytest.approx(25.0))
    assert rows[1]["max_snr"] == pytest.approx(11.0)
    assert rows[2]["new_source"] is False and rows[3]["new_source"] is False
    assert rows[3]["max_snr"] is None


async def test_0020_adds_red_rms_null_for_old_candidates_and_drops_it_keeping_their_history(
    backend: str, tmp_path: Path
) -> None:
    """``ese_candidates.red_rms``: a candidate stored before it reads NULL (not a made-up
    stratum); downgrading drops the column without rebuilding the table (on SQLite the
    rebuild's DROP TABLE would delete the candidates' status history and unlink alerts)."""
    import sqlalchemy as sa
    from alembic import command

    from dsa110.db import tables as t
    from dsa110.db.migrate import alembic_config

    def columns(c: Connection) -> set[str]:
        return {col["name"] for col in inspect(c).get_columns("ese_candidates")}

    now = datetime.now(UTC)
    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0019")
        async with engine.begin() as conn:
            assert "red_rms" not in await conn.run_sync(columns)
            source_pk, candidate_pk = await _candidate_with_history(
                conn, now, phase="confirmed", kind="dip", false_alarm_probability=0.002
            )

        await upgrade(engine, "0020")
        async with engine.begin() as conn:
            assert "red_rms" in await conn.run_sync(columns)
            old = (await conn.execute(sa.select(t.ese_candidates.c.red_rms))).scalar_one()
            await conn.execute(
                sa.insert(t.ese_candidates).values(
                    source_pk=source_pk, status="active", score=1.3, significance=6.5, start_mjd=60100.0,
                    end_mjd=60130.0, depth=0.3, baseline_flux_jy=1.0, min_flux_jy=0.7,
                    detector_version="ese-drw-3.6", flagged_at=now, updated_at=now, red_rms=0.034,
                )
            )  # fmt: skip
            stored = (
                await conn.execute(sa.select(t.ese_candidates.c.red_rms).order_by(t.ese_candidates.c.id))
            ).scalars().all()  # fmt: skip
        assert old is None and stored == [None, pytest.approx(0.034)]

        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0019"))
        assert await current_revision(engine) == "0019"
        async with engine.connect() as conn:
            assert "red_rms" not in await conn.run_sync(columns)
            kept = (
                await conn.execute(sa.select(t.ese_candidates.c.id, t.ese_candidates.c.status).order_by("id"))
            ).all()
            history = (await conn.execute(sa.select(t.ese_status_changes.c.candidate_pk))).scalars().all()
            linked = (await conn.execute(sa.select(t.alerts.c.candidate_pk))).scalars().all()

        await upgrade(engine)  # and up again
        assert await current_revision(engine) == head_revision()
        await engine.dispose()
    assert [status for _, status in kept] == ["investigated", "active"]
    assert history == [candidate_pk] and linked == [candidate_pk]


async def _source(conn: AsyncConnection) -> int:
    """One source row (every revision has the table); returns its pk."""
    import sqlalchemy as sa

    from dsa110.db import tables as t

    src = await conn.execute(
        sa.insert(t.sources)
        .values(source_id="S1", ra_deg=1.0, dec_deg=2.0, healpix=0, n_epochs=0,
                sum_w=0.0, sum_wf=0.0, sum_wf2=0.0, sum_f=0.0, sum_f2=0.0)
        .returning(t.sources.c.id)
    )  # fmt: skip
    return int(src.scalar_one())


async def _candidate_with_history(conn: AsyncConnection, now: datetime, **extra: object) -> tuple[int, int]:
    """A source with one ESE candidate (``extra``: columns of later revisions), a status
    change and an alert that points at it: every row that refers to ``ese_candidates``
    from revision 0001 on. Returns (source pk, candidate pk)."""
    import sqlalchemy as sa

    from dsa110.db import tables as t

    source_pk = await _source(conn)
    cand = await conn.execute(
        sa.insert(t.ese_candidates)
        .values(source_pk=source_pk, status="investigated", score=1.2, significance=6.0,
                start_mjd=60010.0, end_mjd=60040.0, depth=0.3, baseline_flux_jy=1.0,
                min_flux_jy=0.7, detector_version="ese-drw-3.5", flagged_at=now,
                updated_at=now, **extra)
        .returning(t.ese_candidates.c.id)
    )  # fmt: skip
    candidate_pk = cand.scalar_one()
    await conn.execute(
        sa.insert(t.ese_status_changes).values(
            candidate_pk=candidate_pk, from_status="active", to_status="investigated",
            changed_by="op", changed_at=now,
        )
    )  # fmt: skip
    await conn.execute(
        sa.insert(t.alerts).values(
            source_pk=source_pk, candidate_pk=candidate_pk, alert_type="ese_candidate",
            severity="warning", message="m", triggered_at=now,
        )
    )  # fmt: skip
    return source_pk, candidate_pk


async def test_downgrading_below_0013_keeps_candidates_their_history_and_alert_links(
    backend: str, tmp_path: Path
) -> None:
    """From head to 0015 (0013's parent): phase, kind and false_alarm_probability go, the
    candidates stay, and so do the rows that refer to them. ``ese_status_changes`` and
    ``alerts.candidate_pk`` date from 0001, so they outlive this downgrade; on SQLite a
    rebuild of ``ese_candidates`` (batch mode) would delete the history by ON DELETE
    CASCADE and set the alerts' link to NULL when it drops the old table."""
    import sqlalchemy as sa
    from alembic import command

    from dsa110.db import tables as t
    from dsa110.db.migrate import alembic_config

    def shape(c: Connection) -> tuple[set[str], set[str]]:
        found = inspect(c)
        columns = {col["name"] for col in found.get_columns("ese_candidates")}
        indexes = {str(ix["name"]) for ix in found.get_indexes("ese_candidates")}
        return columns, indexes

    added = {"phase", "kind", "false_alarm_probability"}
    now = datetime.now(UTC)
    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine)
        async with engine.begin() as conn:
            _, candidate_pk = await _candidate_with_history(
                conn, now, phase="confirmed", kind="dip", false_alarm_probability=0.002, red_rms=0.02
            )

        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0015"))
        assert await current_revision(engine) == "0015"
        async with engine.connect() as conn:
            columns, indexes = await conn.run_sync(shape)
            kept = (await conn.execute(sa.select(t.ese_candidates.c.id, t.ese_candidates.c.status))).all()
            history = (await conn.execute(sa.select(t.ese_status_changes.c.candidate_pk))).scalars().all()
            linked = (await conn.execute(sa.select(t.alerts.c.candidate_pk))).scalars().all()

        await upgrade(engine)  # and up again: the columns come back, NULL for the kept row
        async with engine.connect() as conn:
            again = (
                await conn.execute(sa.select(t.ese_candidates.c.phase, t.ese_candidates.c.kind))
            ).one()  # fmt: skip
        await engine.dispose()
    assert not added & columns and "red_rms" not in columns
    assert {"ix_ese_candidates_phase", "ix_ese_candidates_false_alarm_probability"}.isdisjoint(indexes)
    assert {"ix_ese_candidates_status", "ix_ese_candidates_score"} <= indexes  # the older ones stay
    assert kept == [(candidate_pk, "investigated")]
    assert history == [candidate_pk] and linked == [candidate_pk]
    assert tuple(again) == (None, None)


async def _put(conn: AsyncConnection, name: str, /, **values: object) -> None:
    """Insert one row naming only ``values``' columns (typed as in ``tables.py``): the table
    may be at an older revision, without the columns (and defaults) added later."""
    import sqlalchemy as sa

    declared = metadata.tables[name]
    table = sa.table(name, *(sa.column(key, declared.c[key].type) for key in values))
    await conn.execute(sa.insert(table).values(**values))


async def _products_jobs_and_sets(conn: AsyncConnection, now: datetime) -> None:
    """Rows that refer to ``measurement_sets``, ``data_products`` and ``jobs`` (the tables
    0008 and 0009 alter), every one of them from revision 0001: an MS that an image, a
    calibration table and a product were made from; two products, one derived from the
    other, both of a job that also logged a line."""
    await _put(conn, "groups", id=1, group_id="2025-10-24T14:00:00", state="completed",
               received_at=now, updated_at=now, mid_mjd=60972.58, expected_subbands=16, retry_count=0)  # fmt: skip
    await _put(conn, "measurement_sets", id=1, path="/ms/a.ms", group_pk=1, status="converted",
               stage="imaged", cal_applied=True, created_at=now)  # fmt: skip
    await _put(conn, "images", id=1, path="/img/a.fits", type="5min", group_pk=1, ms_pk=1,
               created_at=now, mid_mjd=60972.58, pbcor=False, n_measurements=0)  # fmt: skip
    await _put(conn, "cal_tables", id=1, set_name="s", path="/cal/a.bcal", table_type="B",
               order_index=0, created_at=now, status="active", source_ms_pk=1)  # fmt: skip
    for pk, data_type in ((1, "ms"), (2, "image")):
        await _put(conn, "data_products", id=pk, data_id=f"d{pk}", data_type=data_type,
                   status="staged", stage_path=f"/stage/d{pk}", created_at=now, staged_at=now,
                   finalization_status="pending", auto_publish=True, publish_attempts=0,
                   ms_pk=1)  # fmt: skip
    await _put(conn, "data_lineage", parent_pk=1, child_pk=2, relationship="derived_from")
    await _put(conn, "jobs", id=1, type="imaging", state="completed", params={}, group_pk=1,
               created_at=now)  # fmt: skip
    await _put(conn, "job_logs", job_pk=1, logged_at=now, line="imaged")
    await _put(conn, "job_products", job_pk=1, product_pk=1, role="input")
    await _put(conn, "job_products", job_pk=1, product_pk=2, role="output")


async def _links(conn: AsyncConnection) -> dict[str, list[tuple[object, ...]]]:
    import sqlalchemy as sa

    queries = {
        "images": "SELECT id, ms_pk FROM images",
        "cal_tables": "SELECT id, source_ms_pk FROM cal_tables",
        "data_products": "SELECT id, ms_pk FROM data_products ORDER BY id",
        "data_lineage": "SELECT parent_pk, child_pk FROM data_lineage",
        "job_logs": "SELECT job_pk, line FROM job_logs",
        "job_products": "SELECT job_pk, product_pk, role FROM job_products ORDER BY product_pk",
    }
    return {name: [tuple(row) for row in await conn.execute(sa.text(sql))] for name, sql in queries.items()}


LINKS = {
    "images": [(1, 1)],
    "cal_tables": [(1, 1)],
    "data_products": [(1, 1), (2, 1)],
    "data_lineage": [(1, 2)],
    "job_logs": [(1, "imaged")],
    "job_products": [(1, 1, "input"), (1, 2, "output")],
}


async def _enforces_foreign_keys(conn: AsyncConnection) -> bool:
    if conn.dialect.name != "sqlite":
        return True
    return bool((await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one())


async def test_upgrading_across_0008_and_0009_keeps_the_rows_that_refer_to_rebuilt_tables(
    backend: str, tmp_path: Path
) -> None:
    """0008 adds a foreign key to ``data_products`` and 0009 one to ``jobs``; on SQLite
    that is a batch rebuild (copy, DROP TABLE, rename), and a DROP TABLE with foreign keys
    enforced first deletes the rows of the tables that refer to it (ON DELETE CASCADE):
    product lineage, a job's products and logs. The upgrade keeps every row and link, and
    the connections afterwards enforce foreign keys again."""
    now = datetime.now(UTC)
    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0007")
        async with engine.begin() as conn:
            await _products_jobs_and_sets(conn, now)
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        async with engine.connect() as conn:
            links = await _links(conn)
            enforced = await _enforces_foreign_keys(conn)
        await engine.dispose()
    assert links == LINKS
    assert enforced


async def test_downgrading_across_0010_0009_and_0008_keeps_the_rows_that_outlive_them(
    backend: str, tmp_path: Path
) -> None:
    """Down from head: 0010 drops ``services.supervisor_at``, 0009 the queue's columns of
    ``jobs`` (and its key to ``batches``), 0008 the lifecycle columns of ``data_products``
    (and its key to ``cal_tables``) and ``measurement_sets.size_bytes``. On SQLite each is
    a batch rebuild of the table; the rows that refer to it date from 0001 and outlive the
    downgrade, so none is deleted (CASCADE) or unlinked (SET NULL). And up again."""
    from dsa110.db.migrate import downgrade

    now = datetime.now(UTC)
    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine)
        async with engine.begin() as conn:
            await _products_jobs_and_sets(conn, now)
            await _put(conn, "services", name="streaming", desired="running", config={}, config_version=0,
                       generation=0, updated_at=now, restarts=0, supervisor_at=now)  # fmt: skip
        seen = {}
        for revision in ("0009", "0008", "0007"):
            await downgrade(engine, revision)
            assert await current_revision(engine) == revision
            async with engine.connect() as conn:
                seen[revision] = await _links(conn)
                if revision == "0009":  # 0009 made the table, 0010 added a column
                    seen[revision]["services"] = [
                        tuple(row) for row in await conn.exec_driver_sql("SELECT name, desired FROM services")
                    ]
                enforced = await _enforces_foreign_keys(conn)
                assert enforced, revision
        await upgrade(engine)
        async with engine.connect() as conn:
            again = await _links(conn)
        await engine.dispose()
    assert seen["0009"] == {**LINKS, "services": [("streaming", "running")]}
    assert seen["0008"] == LINKS and seen["0007"] == LINKS
    assert again == LINKS


async def test_a_sqlite_migration_that_breaks_a_foreign_key_is_undone_whole(tmp_path: Path) -> None:
    """With enforcement off during a migration, SQLite's ``foreign_key_check`` is what catches
    a migration that leaves a reference to no row: it fails, and everything it did, DDL
    included, is rolled back. A reference that was dangling before (a row deleted in the
    ``sqlite3`` shell, which does not enforce foreign keys) stops no later upgrade."""
    import sqlite3

    import sqlalchemy as sa

    from dsa110.db.migrate import _migrating

    now = datetime.now(UTC)
    async with scratch_database("sqlite", tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0007")
        async with engine.begin() as conn:
            await _products_jobs_and_sets(conn, now)
        shell = sqlite3.connect(url.removeprefix("sqlite+aiosqlite:///"))
        shell.execute("INSERT INTO job_logs (job_pk, logged_at, line) VALUES (99, '2025-01-01', 'orphan')")
        shell.commit()
        shell.close()
        await upgrade(engine)  # the orphan was there before: the upgrade goes ahead
        assert await current_revision(engine) == head_revision()

        with pytest.raises(RuntimeError, match="broke foreign keys"):
            async with _migrating(engine) as conn:
                await conn.exec_driver_sql("CREATE TABLE scratch_x (id INTEGER PRIMARY KEY)")
                await conn.exec_driver_sql("DELETE FROM jobs")  # its log and products now point at nothing
        async with engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            jobs_left = (await conn.exec_driver_sql("SELECT id FROM jobs")).scalars().all()
            lines = sorted((await conn.exec_driver_sql("SELECT line FROM job_logs")).scalars().all())
            enforced = await _enforces_foreign_keys(conn)
            with pytest.raises(sa.exc.IntegrityError):  # and the pooled connection enforces them again
                await conn.exec_driver_sql(
                    "INSERT INTO job_logs (job_pk, logged_at, line) VALUES (98, 'x', 'y')"
                )
        await engine.dispose()
    assert "scratch_x" not in tables and jobs_left == [1]
    assert lines == ["imaged", "orphan"]
    assert enforced


async def _added_column_round_trip(
    backend: str,
    tmp_path: Path,
    *,
    table: str,
    column: str,
    before: str,
    after: str,
    seed: Callable[[AsyncConnection], Awaitable[None]],
    kept: str,
) -> tuple[Any, list[tuple[Any, ...]]]:
    """A plain add-column revision ``after`` (parent ``before``) on a database holding rows:
    upgrade to ``before``, ``seed`` rows, upgrade to ``after`` and read ``column`` of the one
    row of ``table``, downgrade to ``before`` (the column is gone) and run ``kept``, then
    upgrade to head. Returns (the column's value, the rows ``kept`` read after the downgrade)."""
    import sqlalchemy as sa
    from alembic import command

    from dsa110.db.migrate import alembic_config

    def columns(c: Connection) -> set[str]:
        return {col["name"] for col in inspect(c).get_columns(table)}

    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, before)
        async with engine.begin() as conn:
            assert column not in await conn.run_sync(columns)
            await seed(conn)
        await upgrade(engine, after)
        async with engine.connect() as conn:
            value = (await conn.execute(sa.text(f"SELECT {column} FROM {table}"))).scalar_one()
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), before))
        async with engine.connect() as conn:
            assert column not in await conn.run_sync(columns)
            rows = [tuple(r) for r in (await conn.execute(sa.text(kept))).all()]
        await upgrade(engine)
        assert await current_revision(engine) == head_revision()
        await engine.dispose()
    return value, rows


async def _tracker_state(conn: AsyncConnection, source_pk: int, **columns: float) -> None:
    """One source's ese-detect running state, as an earlier revision stored it (``columns``:
    the values a test reads back, and the columns that revision has beyond these)."""
    import sqlalchemy as sa

    from dsa110.db import tables as t

    state = {"source_pk": source_pk, "n": 40, "mean": 1.0, "var": 0.01, "last_measurement_pk": 7,
             "last_test_mjd": 60030.0, "last_test_n": 30, "updated_at": datetime.now(UTC), **columns}  # fmt: skip
    await conn.execute(sa.insert(t.ese_source_state).values(**state))


TRACKER_STATE_COLUMNS = [
    # (revision before, after, the column it adds, a column stored before it and its value)
    pytest.param("0020", "0021", "watch_until_mjd", "backoff_days", 6.0, id="0021-watch: NULL, not watched"),
    pytest.param(
        "0022", "0023", "recheck_mjd", "watch_until_mjd", 60090.0, id="0023-recheck: NULL, no look asked for"
    ),
    pytest.param(
        "0026", "0027", "last_look", "recheck_mjd", 60035.0, id="0027-memo: NULL, nothing remembered"
    ),
]


@pytest.mark.parametrize(("before", "after", "column", "stored", "value"), TRACKER_STATE_COLUMNS)
async def test_a_tracker_state_column_reads_null_for_old_state_and_drops_keeping_the_state(
    backend: str, tmp_path: Path, before: str, after: str, column: str, stored: str, value: float
) -> None:
    """Each ``ese_source_state`` column the tracker gained: a source's running state stored
    before it reads NULL (the tracker resumes as before: not watched, no persistence look
    asked for, no memo so the next persistence look searches); downgrading keeps the rows."""
    source: list[int] = []

    async def seed(conn: AsyncConnection) -> None:
        source.append(await _source(conn))
        await _tracker_state(conn, source[0], **{"cusum": 8.0, "backoff_days": 5.0, stored: value})

    added, kept = await _added_column_round_trip(
        backend, tmp_path, table="ese_source_state", column=column, before=before, after=after,
        seed=seed, kept=f"SELECT source_pk, cusum, {stored} FROM ese_source_state",
    )  # fmt: skip
    assert added is None
    assert kept == [(source[0], 8.0, value)]


async def test_0022_adds_no_false_alarm_ceiling_to_old_webhooks_and_drops_it_keeping_them(
    backend: str, tmp_path: Path
) -> None:
    """``webhook_subscriptions.max_false_alarm``: a subscription made before it reads NULL (no
    ceiling: it hears what it heard); downgrading keeps the subscription."""
    import sqlalchemy as sa

    now = datetime.now(UTC)

    async def seed(conn: AsyncConnection) -> None:
        await conn.execute(
            sa.text(
                "INSERT INTO webhook_subscriptions (name, url, secret, event_kinds, min_significance, format, "
                "enabled, created_at, created_by, updated_at) VALUES ('ops', 'https://hooks.example.org/x', "
                "'whsec_x', '[\"ese_candidate\"]', 6.0, 'standard', :on, :now, 'key:test', :now)"
            ),
            {"on": True, "now": now},
        )

    ceiling, kept = await _added_column_round_trip(
        backend, tmp_path, table="webhook_subscriptions", column="max_false_alarm", before="0021", after="0022",
        seed=seed, kept="SELECT name, min_significance FROM webhook_subscriptions",
    )  # fmt: skip
    assert ceiling is None
    assert kept == [("ops", 6.0)]


async def test_0024_adds_no_publish_claim_to_old_products_and_drops_it_keeping_them(
    backend: str, tmp_path: Path
) -> None:
    """``data_products.publish_claimed_at`` and ``publish_target``: a product stored before
    them reads NULL (a product left ``publishing`` then is stamped by the sweep on first
    sight); downgrading keeps the products."""
    import sqlalchemy as sa

    now = datetime.now(UTC)

    async def seed(conn: AsyncConnection) -> None:
        await conn.execute(
            sa.text(
                "INSERT INTO data_products (data_id, data_type, status, stage_path, created_at, staged_at, "
                "finalization_status, auto_publish, publish_attempts) VALUES ('g.ms', 'ms', 'publishing', "
                "'/data/ms/g.ms', :now, :now, 'finalized', :on, 0)"
            ),
            {"on": True, "now": now},
        )

    claimed, kept = await _added_column_round_trip(
        backend, tmp_path, table="data_products", column="publish_claimed_at", before="0023", after="0024",
        seed=seed, kept="SELECT data_id, status FROM data_products",
    )  # fmt: skip
    assert claimed is None
    assert kept == [("g.ms", "publishing")]


async def test_0024_adds_the_publish_target_column(backend: str, tmp_path: Path) -> None:
    def columns(c: Connection) -> set[str]:
        return {col["name"] for col in inspect(c).get_columns("data_products")}

    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0023")
        async with engine.connect() as conn:
            before = await conn.run_sync(columns)
        await upgrade(engine)
        async with engine.connect() as conn:
            after = await conn.run_sync(columns)
        await engine.dispose()
    assert {"publish_claimed_at", "publish_target"} - before == {"publish_claimed_at", "publish_target"}
    assert {"publish_claimed_at", "publish_target"} <= after


async def _data_round_trip(
    engine: Any, revision: str, previous: str, read: Callable[[Any], Awaitable[T]]
) -> tuple[T, T]:
    """A data migration's test: ``read`` after upgrading to ``revision`` and again after
    downgrading to ``previous`` (what the upgrade changed, what the downgrade keeps); then up
    to head."""
    from dsa110.db.migrate import downgrade

    await upgrade(engine, revision)
    upgraded = await read(engine)
    await downgrade(engine, previous)
    downgraded = await read(engine)
    await upgrade(engine)
    return upgraded, downgraded


async def test_0025_takes_the_secrets_out_of_old_audit_records(backend: str, tmp_path: Path) -> None:
    """Records written before redaction lose their secrets on upgrade (a webhook URL kept as
    its origin, secret-named keys of JSON arguments); other records are untouched; a
    downgrade keeps the records as they are."""
    import json

    import sqlalchemy as sa

    now = datetime.now(UTC)
    stored = [
        (
            "createWebhookSubscription",
            {"name": "ops", "url": "https://hooks.slack.com/services/T0/B0/SECRETTOKEN"},
        ),
        ("submitJob", {"kind": "CALIBRATE", "params": {"refant": "pad103", "api_key": "k-123"}}),
        ("reprocessGroup", {"groupId": "2026-12-05T12:00:00"}),
    ]
    insert = sa.text(
        "INSERT INTO audit_log (at, actor, actor_kind, role, operation, arguments, outcome) "
        "VALUES (:at, 'key:ops', 'key', 'admin', :operation, :arguments, 'OK')"
    )
    read = sa.text("SELECT operation, arguments FROM audit_log ORDER BY id")

    async def records(engine: Any) -> list[tuple[str, dict[str, Any]]]:
        async with engine.connect() as conn:
            rows = (await conn.execute(read)).all()
        return [(op, a if isinstance(a, dict) else json.loads(a)) for op, a in rows]

    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0024")
        async with engine.begin() as conn:
            for operation, arguments in stored:
                await conn.execute(
                    insert, {"at": now, "operation": operation, "arguments": json.dumps(arguments)}
                )
        upgraded, downgraded = await _data_round_trip(engine, "0025", "0024", records)
        await engine.dispose()
    assert upgraded == [
        ("createWebhookSubscription", {"name": "ops", "url": "https://hooks.slack.com"}),
        ("submitJob", {"kind": "CALIBRATE", "params": {"refant": "pad103", "api_key": "[redacted]"}}),
        ("reprocessGroup", {"groupId": "2026-12-05T12:00:00"}),
    ]
    assert downgraded == upgraded


async def test_0026_a_deleted_regions_id_is_never_given_again(backend: str, tmp_path: Path) -> None:
    """On SQLite without AUTOINCREMENT the newest deleted id went to the next row (a late
    update or delete of it then hit another client's region). From 0026 on an id is used
    once, on both backends; rows already stored are kept with their ids, and the indexes."""
    import sqlalchemy as sa

    from dsa110.db.migrate import downgrade

    now = datetime.now(UTC)
    image = sa.text(
        "INSERT INTO images (path, type, created_at, mid_mjd, pbcor, n_measurements) "
        "VALUES ('/d/i.fits', 'image', :now, 60000.0, :no, 0)"
    )
    region = sa.text(
        "INSERT INTO regions (name, type, image_pk, shape, created_at) "
        "VALUES (:name, 'circle', :image, '{}', :now)"
    )

    async def new_region(conn: AsyncConnection, name: str, image_pk: int) -> int:
        await conn.execute(region, {"name": name, "image": image_pk, "now": now})
        return int((await conn.execute(sa.text("SELECT max(id) FROM regions"))).scalar_one())

    def indexes(c: Connection) -> set[str]:
        return {str(i["name"]) for i in inspect(c).get_indexes("regions")}

    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0025")
        async with engine.begin() as conn:
            before_indexes = await conn.run_sync(indexes)
            await conn.execute(image, {"now": now, "no": False})
            image_pk = int((await conn.execute(sa.text("SELECT max(id) FROM images"))).scalar_one())
            kept = await new_region(conn, "kept", image_pk)
            newest = await new_region(conn, "deleted", image_pk)
        await upgrade(engine, "0026")
        async with engine.begin() as conn:
            assert await conn.run_sync(indexes) == before_indexes
            await conn.execute(sa.text("DELETE FROM regions WHERE id = :id"), {"id": newest})
            after = await new_region(conn, "after", image_pk)
            names = dict((await conn.execute(sa.text("SELECT id, name FROM regions"))).all())
        assert after > newest and names == {kept: "kept", after: "after"}
        await downgrade(engine, "0025")
        async with engine.connect() as conn:
            assert dict((await conn.execute(sa.text("SELECT id, name FROM regions"))).all()) == names
        await upgrade(engine)
        await engine.dispose()


async def test_0028_clamps_an_overshooting_candidate_and_leaves_the_others(
    backend: str, tmp_path: Path
) -> None:
    """A candidate stored with depth above 1 and a negative minimum flux (a Gaussian that
    overshot a lens's flat floor, up to ese-drw-3.17) reads depth 1 and minimum flux 0 after
    the upgrade, as ese-drw-3.18 reports it; an imported legacy candidate keeps its measured
    minimum flux (below zero for a faint source) with its depth at 1; every other value and
    row is kept, and a downgrade keeps them as they are."""
    import sqlalchemy as sa

    from dsa110.db import tables as t

    now = datetime.now(UTC)
    stored = [  # (depth, min flux, score, detector)
        (1.28, -0.28, 7.5, "ese-drw-3.17"),
        (0.3, 0.7, 1.2, "ese-drw-3.17"),
        (1.0, 0.0, 3.0, "ese-drw-3.18"),
        (1.3, -0.3, 6.0, "legacy"),  # an imported candidate: its lowest measured flux is kept
    ]
    read = sa.select(t.ese_candidates).order_by(t.ese_candidates.c.id)
    clamped = ("depth", "min_flux_jy")

    async def rows(engine: Any) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(read)).all()]

    def others(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k not in clamped} for c in candidates]

    async with scratch_database(backend, tmp_path, migrate=False) as url:
        engine = create_engine(url)
        await upgrade(engine, "0027")
        async with engine.begin() as conn:
            source_pk = await _source(conn)
            for depth, min_flux, score, detector in stored:
                await conn.execute(
                    sa.insert(t.ese_candidates).values(
                        source_pk=source_pk, status="active", score=score, significance=6.0,
                        start_mjd=60010.0, end_mjd=60040.0, depth=depth, baseline_flux_jy=1.0,
                        min_flux_jy=min_flux, detector_version=detector, flagged_at=now,
                        updated_at=now,
                    )
                )  # fmt: skip
        before = await rows(engine)
        upgraded, downgraded = await _data_round_trip(engine, "0028", "0027", rows)
        await engine.dispose()
    assert [tuple(c[k] for k in clamped) for c in upgraded] == [
        (1.0, 0.0),
        (0.3, 0.7),
        (1.0, 0.0),
        (1.0, -0.3),
    ]
    assert others(upgraded) == others(before)  # updated_at, score, detector_version, ... as stored
    assert downgraded == upgraded
