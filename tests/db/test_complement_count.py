"""A filtered count taken from the left-out side equals the direct count (issue 11).

``dsa110.db.complement_count``: ``count(F) = total - sum_j count(c_1 .. c_{j-1}, NOT* c_j)``.
Checked on real databases against ``count(*) WHERE F`` on a generated table with NULLs and
repeated values in the filtered columns, for thresholds at, between and outside the stored
values; the side chosen; each term's plan; the memo's bound; and, on PostgreSQL, exactness
while another connection commits inserts and deletes.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import ColumnElement, delete, event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dsa110.db import complement_count as cc
from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.db.filters import ConeFilter, SourceFilter
from dsa110.db.stats import analyze
from loaders.registry import count_on
from tests.databases import POSTGRES_URL, scratch_database
from tests.db.test_count_plans import _generate, plan_of

N = 2000
c = t.sources.c


def _row(i: int, rng: random.Random) -> dict[str, Any]:
    def metric(null_every: int) -> float | None:
        return None if rng.randrange(null_every) == 0 else rng.randrange(40) * 0.25

    return {
        "id": i,
        "source_id": f"NVSS J{i:06d}",
        "ra_deg": rng.uniform(0, 360),
        "dec_deg": rng.uniform(-30, 90),
        "healpix": i,
        "n_epochs": rng.randrange(30),
        "sum_w": 0.0,
        "sum_wf": 0.0,
        "sum_wf2": 0.0,
        "sum_f": 0.0,
        "sum_f2": 0.0,
        "eta": metric(7),
        "v": metric(5),
        "mean_flux_jy": metric(9),
        "new_source": i % 10 == 0,
    }


async def _fill(conn: AsyncConnection, seed: int = 11) -> None:
    rng = random.Random(seed)
    await conn.execute(insert(t.sources), [_row(i, rng) for i in range(1, N + 1)])


async def _direct(conn: AsyncConnection, conditions: list[ColumnElement[bool]]) -> int:
    return int(
        (await conn.execute(select(func.count()).select_from(t.sources).where(*conditions))).scalar_one()
    )


async def _complement(conn: AsyncConnection, sided: cc.SidedCount) -> int:
    total, left_out = (await conn.execute(sided.complement)).one()
    return int(total) - int(left_out)


def _random_filters(rng: random.Random) -> list[list[ColumnElement[bool]]]:
    """1-, 2- and 3-comparison filters the complement takes, thresholds on stored values
    (``>=`` vs ``>`` at a boundary), between them and outside them."""

    def value() -> float:
        return rng.choice([rng.randrange(-2, 42) * 0.25, rng.uniform(-1, 11)])

    metric = [c.eta, c.v, c.mean_flux_jy]
    ops = ["ge", "gt", "le", "lt"]

    def comparison(column: Any, v: float) -> ColumnElement[bool]:
        op = rng.choice(ops)
        return {"ge": column >= v, "gt": column > v, "le": column <= v, "lt": column < v}[op]

    out: list[list[ColumnElement[bool]]] = []
    for _ in range(12):
        m = rng.choice(metric)
        epochs = rng.choice([0, 1, 10, 15, 29, 30, 31])
        lo = value()
        out.append([comparison(m, lo)])
        out.append([comparison(c.n_epochs, epochs)])
        out.append([comparison(m, lo), comparison(c.n_epochs, epochs)])
        out.append([m >= lo, m <= lo + rng.choice([0.0, 0.25, 3.0]), comparison(c.n_epochs, epochs)])
        out.append([comparison(m, lo), c.n_epochs > epochs, c.n_epochs <= epochs + 5])
        # two bounds on one side of a column: the tighter one makes the interval
        out.append([m > lo, m >= value(), c.n_epochs >= epochs, c.n_epochs > rng.choice([epochs, 3])])
        out.append([m <= lo, m < lo - rng.choice([0.0, 0.25, 1.0]), comparison(c.n_epochs, epochs)])
    return out


async def test_the_complement_equals_the_direct_count(backend: str, tmp_path: Path) -> None:
    rng = random.Random(5)
    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await _fill(conn)
            async with engine.connect() as conn:
                dialect = conn.dialect.name
                filters = _random_filters(rng)
                got, want = [], []
                for i, conditions in enumerate(filters):
                    sided = cc.sided_count(dialect, t.sources, conditions)
                    assert sided is not None, conditions
                    want.append(await _direct(conn, conditions))
                    got.append(await _complement(conn, sided))
                    # through the loaders' path, twice: the second may take the other side
                    key = ("test-complement", backend, i)
                    assert await count_on(conn, t.sources, conditions, key) == want[-1]
                    assert await count_on(conn, t.sources, conditions, key) == want[-1]
        finally:
            await engine.dispose()
    assert got == want
    assert len(set(want)) > 20  # the thresholds were not all trivial
    assert min(want) == 0 and max(want) > N // 2  # some keep nothing, some most rows


def _outside_shape() -> dict[str, list[ColumnElement[bool]]]:
    return {
        "prefix": SourceFilter(source_id_prefix="NVSS J0001").conditions(),
        "boolean": SourceFilter(new_source=True).conditions(),
        "cone": SourceFilter(cone=ConeFilter(ra_deg=100.0, dec_deg=20.0, radius_arcsec=36000.0)).conditions(),
        "members": SourceFilter(source_ids=["NVSS J000001", "NVSS J000002"]).conditions(),
        "no index order": [c.eta >= 1.0, c.v >= 1.0, c.n_epochs >= 3],  # no index holds (eta, v)
        "metric and cone": [
            c.eta >= 1.0,
            *SourceFilter(cone=ConeFilter(ra_deg=1, dec_deg=2, radius_arcsec=9)).conditions(),
        ],
        "no index": [c.sum_w >= 0.0],
        "empty interval": [c.eta >= 2.0, c.eta < 2.0, c.n_epochs >= 1],
        "empty interval, strict": [c.eta > 2.0, c.eta <= 2.0],
        "crossed bounds": [c.eta >= 3.0, c.eta <= 2.0],
        "text bounds": [c.source_id >= "NVSS J0001", c.source_id < "NVSS J0002"],
        "two text lower bounds": [c.source_id >= "NVSS J0001", c.source_id > "NVSS J00015"],
    }


async def test_filters_of_other_shapes_are_counted_directly(backend: str, tmp_path: Path) -> None:
    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await _fill(conn)
            async with engine.connect() as conn:
                for name, conditions in _outside_shape().items():
                    assert cc.sided_count(conn.dialect.name, t.sources, conditions) is None, name
                    want = await _direct(conn, conditions)
                    for _ in range(2):
                        assert await count_on(conn, t.sources, conditions, ("test-shape", name)) == want
                # a table whose exact total is not cheap is never counted from the other side
                assert cc.sided_count(conn.dialect.name, t.measurements, [t.measurements.c.mjd >= 0]) is None
        finally:
            await engine.dispose()


async def test_the_side_flips_after_a_broad_filter_was_seen(backend: str, tmp_path: Path) -> None:
    statements: list[str] = []
    parameters: list[Any] = []
    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: parameters.append(a[3]))
        try:
            async with engine.begin() as conn:
                await _fill(conn)
            async with engine.connect() as conn:
                broad = [c.n_epochs >= 1]  # about 29 of 30 rows
                narrow = [c.n_epochs >= 25]  # about 5 of 30 rows
                want_broad, want_narrow = await _direct(conn, broad), await _direct(conn, narrow)
                assert want_broad > 0.9 * N and want_narrow < 0.3 * N
                answers, sides = [], []
                for conditions, key in (
                    (broad, "broad"),
                    (broad, "broad"),
                    (narrow, "narrow"),
                    (narrow, "narrow"),
                ):
                    full_key = ("count", conn.dialect.name, "sources", ("test-side", backend, key))
                    sides.append(cc.use_complement(full_key, 1))
                    statements.clear()
                    answers.append(await count_on(conn, t.sources, conditions, ("test-side", backend, key)))
                    assert len(statements) == 1  # one statement: one snapshot
                    assert ("n_epochs <" in statements[0]) == sides[-1], statements[0]
                    if sides[-1] and backend == "postgresql":  # planned once per connection
                        assert not parameters[-1], (statements[0], parameters[-1])
                # conditions kept by no key (an unhashable filter value) are counted directly
                for _ in range(2):
                    statements.clear()
                    answers.append(await count_on(conn, t.sources, broad, None))
                    assert len(statements) == 1 and "n_epochs <" not in statements[0], statements
        finally:
            await engine.dispose()
    assert answers == [want_broad, want_broad, want_narrow, want_narrow, want_broad, want_broad]
    assert sides == [False, True, False, False]


def test_the_memo_is_bounded() -> None:
    for i in range(cc.SIZE + 50):
        cc.remember(("test-memo", i), 10, 11)
    assert cc.last_seen(("test-memo", 0)) is None
    assert cc.last_seen(("test-memo", cc.SIZE + 49)) == (10, 11)
    assert len(cc._LAST) <= cc.SIZE
    assert cc.use_complement(("test-memo", cc.SIZE + 49), 1)  # 1 * (11 - 10) < 10
    assert not cc.use_complement(("test-memo", "never seen"), 1)


PLANNED = {
    "etaMin+nEpochsMin": SourceFilter(eta_min=1.0, n_epochs_min=10),
    "vMin+nEpochsMin": SourceFilter(v_min=0.1, n_epochs_min=10),
    "fluxRange+nEpochsMin": SourceFilter(flux_min_jy=0.1, flux_max_jy=0.9, n_epochs_min=10),
    "etaMin": SourceFilter(eta_min=1.0),
    "nEpochsMin": SourceFilter(n_epochs_min=10),
    "decRange": SourceFilter(dec_min_deg=-20.0, dec_max_deg=80.0),
}


async def test_every_complement_term_is_an_index_range(backend: str, tmp_path: Path) -> None:
    """On the 10^5-row table of ``test_count_plans``, vacuumed and analyzed as a bulk load is:
    each term is an index-only range of an index that leads with the term's left-out column."""
    async with scratch_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await _generate(conn)
            await analyze(engine, ("sources",), vacuum=True)  # as after a bulk load
            plans: dict[str, list[str]] = {}
            async with engine.connect() as conn:
                for name, flt in PLANNED.items():
                    sided = cc.sided_count(conn.dialect.name, t.sources, flt.conditions())
                    assert sided is not None, name
                    plans[name] = [await plan_of(conn, term) for term in sided.terms]
        finally:
            await engine.dispose()
    for name, terms in plans.items():
        for plan in terms:
            if backend == "sqlite":
                steps = [s for s in plan.split(" | ") if "sources" in s]
                assert steps and all(s.startswith("SEARCH") and "COVERING INDEX" in s for s in steps), (
                    name,
                    plan,
                )
            else:
                assert "Index Only Scan" in plan and "Heap" not in plan and "Seq Scan" not in plan, (
                    name,
                    plan,
                )
    # eta >= 1 AND n_epochs >= 10: n_epochs < 10 from ix_sources_n_epochs, then the eta ranges
    # (eta < 1, eta IS NULL) with n_epochs >= 10 from ix_sources_eta_n_epochs
    eta = plans["etaMin+nEpochsMin"]
    assert len(eta) == 3
    assert "ix_sources_n_epochs" in eta[0]
    assert all("ix_sources_eta_n_epochs" in p for p in eta[1:]), eta


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs DSA110_TEST_POSTGRES_URL")
async def test_exact_while_another_connection_writes(tmp_path: Path) -> None:
    """Counts taken while a writer commits inserts and deletes are each one committed state,
    and equal a direct count in the same snapshot."""
    conditions = [c.eta >= 1.0, c.n_epochs >= 10]
    rng = random.Random(3)
    async with scratch_database("postgresql", tmp_path) as url:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await _fill(conn)
            async with engine.connect() as conn:
                base = await _direct(conn, conditions)
                sided = cc.sided_count(conn.dialect.name, t.sources, conditions)
                assert sided is not None
            extra = [dict(_row(N + i, rng), eta=5.0, n_epochs=20) for i in range(1, 41)]
            extra += [dict(_row(N + i, rng), eta=None, n_epochs=20) for i in range(41, 61)]
            stop = asyncio.Event()

            async def writer() -> int:
                rounds = 0
                while not stop.is_set():
                    async with engine.begin() as w:
                        await w.execute(insert(t.sources), extra)
                        await asyncio.sleep(0)
                    async with engine.begin() as w:
                        await w.execute(delete(t.sources).where(t.sources.c.id > N))
                    rounds += 1
                return rounds

            async def reader() -> tuple[set[int], int]:
                seen: set[int] = set()
                same = 0
                for _ in range(150):
                    async with engine.connect() as r:
                        seen.add(await _complement(r, sided))
                    async with engine.connect() as plain:
                        r = await plain.execution_options(isolation_level="REPEATABLE READ")
                        one = await _complement(r, sided)
                        await asyncio.sleep(0)
                        assert one == await _direct(r, conditions)
                        same += 1
                        await r.rollback()
                    await asyncio.sleep(0)
                stop.set()
                return seen, same

            rounds, (seen, same) = await asyncio.gather(writer(), reader())
        finally:
            await engine.dispose()
    assert rounds > 0 and same == 150
    assert seen <= {base, base + 40}, seen
