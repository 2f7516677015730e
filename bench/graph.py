"""Nested-query cost: the GraphQL API against hand-written SQL + json.dumps, same run.

The document is the issue's N+1 probe::

    sources(first: N) { edges { node { measurements(last: 50) {
        edges { node { image { group { groupId } } } } } } } }

The baseline is the best hand-written path to the same JSON on the same database and
driver: one statement (the same windowed "last 50 per source" plus two joins) and a
Python loop building the nested dicts, then ``json.dumps``. The GraphQL side is
``schema.execute`` (parse and validation cached, as in the server) plus ``json.dumps``
of its data. Both are timed in-process, so HTTP costs are excluded from both.

Prints ``nested statements=<n> p50_ms=<x> raw_p50_ms=<y> ratio=<x/y>`` (also the stock
graphql-core executor for comparison, ``nested_stock``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
from pathlib import Path
from typing import Any

from sqlalchemy import event, text

from bench.common import line, p50, time_async
from dsa110.db.engine import create_engine
from dsa110.settings import Settings
from schema.execution import BreadthFirstExecutor
from schema.schema import build_schema, make_context

DOCUMENT = """query Nested($n: Int!) { sources(first: $n) { edges { node {
  measurements(last: 50) { edges { node { image { group { groupId } } } } } } } } }"""

RAW_SQL = """
WITH s AS (
  SELECT id, source_id FROM sources ORDER BY source_id, id LIMIT :n
), w AS (
  SELECT m.source_pk, m.image_pk,
         ROW_NUMBER() OVER (PARTITION BY m.source_pk ORDER BY m.mjd, m.id) AS rn,
         COUNT(*) OVER (PARTITION BY m.source_pk) AS total
  FROM measurements m WHERE m.source_pk IN (SELECT id FROM s)
)
SELECT s.id AS spk, g.group_id
FROM s LEFT JOIN w ON w.source_pk = s.id AND w.rn > w.total - 50
LEFT JOIN images i ON i.id = w.image_pk
LEFT JOIN groups g ON g.id = i.group_pk
ORDER BY s.source_id, s.id, w.rn
"""


async def raw_json(engine: Any, n: int) -> str:
    async with engine.connect() as conn:
        rows = (await conn.execute(text(RAW_SQL), {"n": n})).all()
    edges: list[dict[str, Any]] = []
    current = None
    for spk, group_id in rows:
        if spk != current:
            current = spk
            inner: list[dict[str, Any]] = []
            edges.append({"node": {"measurements": {"edges": inner}}})
        if group_id is not None:
            inner.append({"node": {"image": {"group": {"groupId": group_id}}}})
    return json.dumps({"sources": {"edges": edges}})


async def run(settings: Settings, n: int, repeat: int, stock: bool) -> None:
    engine = create_engine(settings.resolved_database_url)
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    fast = build_schema(settings, BreadthFirstExecutor)
    variables = {"n": n}

    async def graph_json(schema: Any = fast) -> str:
        result = await schema.execute(
            DOCUMENT, variable_values=variables, context_value=make_context(engine, settings)
        )
        if result.errors:
            raise RuntimeError(result.errors)
        return json.dumps(result.data)

    # Long-lived start-up objects (modules, schema, SQLAlchemy caches) are moved out of
    # the collector's reach, as the server does after start-up: both paths benefit.
    gc.collect()
    gc.freeze()
    expected = await raw_json(engine, n)
    got = await graph_json()
    if json.loads(got) != json.loads(expected):
        raise SystemExit("GraphQL and raw SQL disagree: the benchmark would be meaningless")
    statements = 0
    await graph_json()
    per_query = statements

    # Interleave the two so machine noise hits both alike.
    graph_samples: list[float] = []
    raw_samples: list[float] = []
    for _ in range(repeat):
        graph_samples += await time_async(graph_json, 1, warmup=0)
        raw_samples += await time_async(lambda: raw_json(engine, n), 1, warmup=0)
    x, y = p50(graph_samples), p50(raw_samples)
    print(line("nested", n=n, statements=per_query, p50_ms=x, raw_p50_ms=y, ratio=x / y))
    if stock:
        slow = build_schema(settings, executor=None)
        samples = await time_async(lambda: graph_json(slow), max(3, repeat // 4))
        print(line("nested_stock", n=n, p50_ms=p50(samples), raw_p50_ms=y, ratio=p50(samples) / y))
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--database-url")
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--stock", action="store_true", help="also time graphql-core's stock executor")
    args = parser.parse_args()
    settings = Settings.from_env(data_dir=Path(args.data_dir).resolve(), database_url=args.database_url)
    asyncio.run(run(settings, args.n, args.repeat, args.stock))


if __name__ == "__main__":
    main()
