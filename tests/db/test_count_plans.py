"""Every documented source filter's exact count is answered from an index, at 10^5 rows.

The table is generated in one ``INSERT ... SELECT`` (SQLite: a recursive CTE; PostgreSQL:
``generate_series``) with the indexes built after the load, then ANALYZEd as bulk loads
are; each filter value picks about 1 % of the rows, where an index is the right plan.
The plans come from ``EXPLAIN QUERY PLAN`` (SQLite) and ``EXPLAIN`` (PostgreSQL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.db.filters import ConeFilter, OrderDirection, Ordering, SourceFilter, SourceOrderField
from dsa110.db.row_counts import count_statement
from tests.databases import scratch_database

N = 100_000
_COLUMNS = (
    "id, source_id, ra_deg, dec_deg, healpix, catalog_flux_jy, n_epochs, sum_w, sum_wf, sum_wf2, sum_f, "
    "sum_f2, mean_flux_jy, eta, v, chi2_nu, sigma_deviation, max_snr, last_mjd, new_source, new_high_sigma"
)
# i -> values; i % 1009 etc. spread each metric evenly so that "top 1 %" thresholds are known.
_VALUES = (
    "i, 'NVSS J' || i, (i * 0.0036) % 360, ((i * 7) % 1200) * 0.1 - 30, i * 1000, (i % 997) * 0.001, "
    "1 + (i % 200), 1, 1, 1, 1, 1, (i % 991) * 0.001, (i % 1009) * 0.01, (i % 1013) * 0.001, "
    "(i % 1019) * 0.01, (i % 1021) * 0.01, (i % 1031) * 0.1, 60000 + (i % 100), {new}, NULL"
)

FILTERS = {
    "sourceIds": SourceFilter(source_ids=["NVSS J12", "NVSS J99"]),
    "sourceIdPrefix": SourceFilter(source_id_prefix="NVSS J123"),
    "raRange": SourceFilter(ra_min_deg=10.0, ra_max_deg=13.0),
    "decRange": SourceFilter(dec_min_deg=50.0, dec_max_deg=51.0),
    "cone": SourceFilter(cone=ConeFilter(ra_deg=100.0, dec_deg=20.0, radius_arcsec=1800.0)),
    "fluxMin": SourceFilter(flux_min_jy=0.98),
    "fluxRange": SourceFilter(flux_min_jy=0.5, flux_max_jy=0.51),
    "catalogFluxMin": SourceFilter(catalog_flux_min_jy=0.987),
    "etaMin": SourceFilter(eta_min=9.99),
    "vMin": SourceFilter(v_min=1.0),
    "chi2NuMin": SourceFilter(chi2_nu_min=10.1),
    "sigmaMin": SourceFilter(sigma_min=10.1),
    "nEpochsMin": SourceFilter(n_epochs_min=199),
    "maxSnrMin": SourceFilter(max_snr_min=102.0),
    "newSource": SourceFilter(new_source=True),
    # the dashboard's variability searches: a metric minimum with a minimum of epochs
    "etaMin+nEpochsMin": SourceFilter(eta_min=9.99, n_epochs_min=10),
    "vMin+nEpochsMin": SourceFilter(v_min=1.0, n_epochs_min=10),
    "chi2NuMin+nEpochsMin": SourceFilter(chi2_nu_min=10.1, n_epochs_min=10),
    "sigmaMin+nEpochsMin": SourceFilter(sigma_min=10.1, n_epochs_min=10),
    "maxSnrMin+nEpochsMin": SourceFilter(max_snr_min=102.0, n_epochs_min=10),
    "fluxMin+nEpochsMin": SourceFilter(flux_min_jy=0.98, n_epochs_min=10),
}

COMBINED = {
    "etaMin+nEpochsMin": "eta",
    "vMin+nEpochsMin": "v",
    "chi2NuMin+nEpochsMin": "chi2_nu",
    "sigmaMin+nEpochsMin": "sigma_deviation",
    "maxSnrMin+nEpochsMin": "max_snr",
    "fluxMin+nEpochsMin": "mean_flux_jy",
}


async def _generate(conn: AsyncConnection) -> None:
    indexes = list(t.sources.indexes)
    await conn.run_sync(lambda c: [ix.drop(c) for ix in indexes])
    if conn.dialect.name == "sqlite":
        values = _VALUES.format(new="(i % 100) = 0")
        await conn.exec_driver_sql(
            f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {N}) "
            f"INSERT INTO sources ({_COLUMNS}) SELECT {values} FROM n"
        )
    else:
        values = _VALUES.format(new="(i % 100) = 0")
        await conn.exec_driver_sql(
            f"INSERT INTO sources ({_COLUMNS}) SELECT {values} FROM generate_series(1, {N}) AS g(i)"
        )
    await conn.run_sync(lambda c: [ix.create(c) for ix in indexes])
    await conn.exec_driver_sql("ANALYZE sources")


async def plan_of(conn: AsyncConnection, stmt: Any) -> str:
    """The backend's plan of ``stmt`` (values written in), one line per step, ``|``-joined."""
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        rows = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
        return " | ".join(str(r[-1]) for r in rows)
    rows = (await conn.exec_driver_sql(f"EXPLAIN {sql}")).all()
    return " | ".join(str(r[0]) for r in rows)


async def _plan(conn: AsyncConnection, flt: SourceFilter) -> str:
    return await plan_of(conn, select(func.count()).select_from(t.sources).where(*flt.conditions()))


def _uses_index(backend: str, plan: str) -> bool:
    if backend == "sqlite":
        steps = [s for s in plan.split(" | ") if "sources" in s]
        return (
            bool(steps)
            and all(("USING" in s and "INDEX" in s) or "PRIMARY KEY" in s for s in steps)
            and not any(s.startswith("SCAN") for s in steps)
        )
    return "Index" in plan and "Seq Scan" not in plan


async def test_every_documented_source_filter_counts_from_an_index(backend: str, tmp_path: Path) -> None:
    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await _generate(conn)
            async with engine.connect() as conn:
                plans = {name: await _plan(conn, flt) for name, flt in FILTERS.items()}
        finally:
            await engine.dispose()
    bad = {name: plan for name, plan in plans.items() if not _uses_index(backend, plan)}
    assert bad == {}
    # A metric minimum with nEpochsMin is answered by the metric's (metric, n_epochs) index,
    # not by ix_sources_n_epochs, which matches nearly every row (issue 11).
    for name, column in COMBINED.items():
        assert f"ix_sources_{column}_n_epochs" in plans[name], (name, plans[name])


async def _order_plan(conn: AsyncConnection, ordering: Ordering) -> str:
    return await plan_of(conn, select(t.sources.c.id).order_by(*ordering.clauses(t.sources)).limit(20))


async def test_every_source_ordering_pages_from_an_index(backend: str, tmp_path: Path) -> None:
    """A page in each ``SourceOrderField``, either direction, is read from an index: PostgreSQL
    sorted the whole table for ``metric DESC NULLS LAST`` until 0015 (issue 11)."""
    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await _generate(conn)
            async with engine.connect() as conn:
                plans = {
                    (field.name, direction.name): await _order_plan(conn, Ordering(field.value, direction))
                    for field in SourceOrderField
                    for direction in OrderDirection
                }
        finally:
            await engine.dispose()
    if backend == "sqlite":
        # an index scan, with at most a small sort of the tied rows ("RIGHT PART OF ORDER BY")
        bad = {
            k: p
            for k, p in plans.items()
            if "USING" not in p or "INDEX" not in p or "TEMP B-TREE FOR ORDER BY" in p
        }
    else:
        bad = {k: p for k, p in plans.items() if "Index" not in p or "Seq Scan" in p or "->  Sort" in p}
    assert bad == {}


async def test_a_whole_table_count_reads_no_row_of_it(backend: str, tmp_path: Path) -> None:
    """``totalCount`` without a filter: SQLite counts its smallest index page by page; PostgreSQL
    would visit all 10^5 entries, so it sums the trigger-kept deltas instead (0017, issue 11)."""
    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await _generate(conn)
            async with engine.connect() as conn:
                stmt = count_statement(conn.dialect.name, t.sources)
                sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
                prefix = "EXPLAIN QUERY PLAN" if backend == "sqlite" else "EXPLAIN"
                plan = " | ".join(str(r[-1]) for r in (await conn.exec_driver_sql(f"{prefix} {sql}")).all())
                total = (await conn.execute(stmt)).scalar()
        finally:
            await engine.dispose()
    assert total == N
    if backend == "sqlite":
        assert "COVERING INDEX" in plan, plan
    else:
        assert "row_counts" in plan and " on sources" not in plan, plan


async def test_a_page_of_each_sources_measurements_is_numbered_from_an_index(
    backend: str, tmp_path: Path
) -> None:
    """``sources { measurements(first: 5) }``: the window numbering each source's measurements
    reads the (source_pk, mjd, id) entries alone; PostgreSQL visited a heap page per
    measurement until 0018 put the id in its index (issue 11)."""
    from dsa110.db.stats import analyze
    from loaders.entities import SOURCE_MEASUREMENTS
    from loaders.pages import page_statement
    from loaders.pagination import PageArgs

    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await _generate(conn)
                n_images, per_image = 40, 2000  # each image measures a different slice of sources
                for sql in (
                    "INSERT INTO images (id, path, type, created_at, mid_mjd, pbcor, n_measurements) "
                    f"SELECT i, 'img' || i, 'image', CURRENT_TIMESTAMP, 60000 + i, false, 0 FROM {_series(n_images)}",
                    "INSERT INTO measurements (source_pk, image_pk, mjd, ra_deg, dec_deg, peak_flux_jy, "
                    "peak_flux_err_jy, forced) SELECT 1 + (i % 3000), 1 + i / 3000, 60000 + i / 3000, 0, 0, 1, 0.1, "
                    f"false FROM {_series(n_images * per_image)}",
                ):
                    await conn.exec_driver_sql(sql)
            await analyze(engine, ("images", "measurements"), vacuum=True)  # as bulk loads do
            stmt = page_statement(SOURCE_MEASUREMENTS, list(range(1, 21)), PageArgs(first=5))
            async with engine.connect() as conn:
                sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
                prefix = "EXPLAIN QUERY PLAN" if backend == "sqlite" else "EXPLAIN"
                plan = " | ".join(str(r[-1]) for r in (await conn.exec_driver_sql(f"{prefix} {sql}")).all())
        finally:
            await engine.dispose()
    if backend == "sqlite":
        assert "COVERING INDEX ix_measurements_source_pk_mjd" in plan, plan
    else:
        assert "Index Only Scan using ix_measurements_source_pk_mjd_id" in plan, plan
        assert "Heap Scan on measurements" not in plan, plan


def _series(n: int) -> str:
    """Rows ``i`` = 0 .. n-1 as a FROM item, on SQLite (a recursive CTE is not a FROM item, but a
    table-valued subquery is) and PostgreSQL alike."""
    return f"(WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {n - 1}) SELECT i FROM s) AS s"
