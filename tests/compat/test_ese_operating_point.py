"""The dashboard's ESE list shows the candidates flagged at the survey's operating point.

The job opens a candidate from score 1 and rates it by the live null table, so the
candidate table holds candidates at every false-alarm probability, and ones the detector
rejected since: ~1.4 % of steady source-years open one (``dsa110.science.ese_live_null``),
seven times the 0.002 the injection bench's figures are at. ``GET /api/ese/candidates``
lists, by default, the ones at ``Settings.ese_operating_point`` that the detector still
stands by, and the legacy (unrated) ones; ``max_false_alarm`` chooses another point,
``all_candidates`` lists every one. The graph filters only when asked (``operatingPoint``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from compat_rest.ese import candidate_variables
from dsa110.db import tables as t
from dsa110.settings import Settings
from tests.compat.conftest import Demo, Graph, candidate_row

# (label, phase, false-alarm probability): beside the demo's own candidates, on one source.
CASES = (
    ("flagged", "confirmed", 0.001),
    ("above the point", "ongoing", 0.01),
    ("rejected since", "rejected", 0.0005),
    ("legacy", None, None),
)


@pytest.fixture
async def added(engine: AsyncEngine, demo: Demo) -> AsyncIterator[dict[str, int]]:
    """One candidate per ``CASES`` row (its id by label), removed afterwards."""
    async with engine.begin() as conn:
        seeded = await candidate_row(conn, demo.candidate_source)
        ids: dict[str, int] = {}
        for label, phase, fap in CASES:
            row = {**seeded, "phase": phase, "false_alarm_probability": fap, "status": "active"}
            ids[label] = (
                await conn.execute(insert(t.ese_candidates).values(**row).returning(t.ese_candidates.c.id))
            ).scalar_one()
    yield ids
    async with engine.begin() as conn:
        await conn.execute(delete(t.ese_candidates).where(t.ese_candidates.c.id.in_(ids.values())))


async def _listed(api: httpx.AsyncClient, **params: Any) -> set[int]:
    response = await api.get("/api/ese/candidates", params={"limit": 1000, **params})
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()["candidates"]}


async def test_the_default_list_is_the_operating_points(
    api: httpx.AsyncClient, added: dict[str, int]
) -> None:
    listed = await _listed(api)
    assert added["flagged"] in listed and added["legacy"] in listed
    assert added["above the point"] not in listed and added["rejected since"] not in listed


async def test_every_candidate_on_request(api: httpx.AsyncClient, added: dict[str, int]) -> None:
    assert set(added.values()) <= await _listed(api, all_candidates="true")


async def test_a_chosen_point_replaces_the_default(api: httpx.AsyncClient, added: dict[str, int]) -> None:
    listed = await _listed(api, max_false_alarm=0.05)
    # maxFalseAlarm as the graph has it: rated at most that, whatever the phase; unrated out.
    assert {added["flagged"], added["above the point"], added["rejected since"]} <= listed
    assert added["legacy"] not in listed


async def test_the_graph_filters_only_when_asked(graph: Graph, added: dict[str, int]) -> None:
    query = (
        "query($f: EseCandidateFilter) { eseCandidates(first: 500, filter: $f) { nodes { candidateId } } }"
    )
    every = {n["candidateId"] for n in (await graph.data(query, f=None))["eseCandidates"]["nodes"]}
    assert set(added.values()) <= every
    at = await graph.data(query, f={"operatingPoint": 0.002})
    chosen = {n["candidateId"] for n in at["eseCandidates"]["nodes"]}
    assert added["flagged"] in chosen and added["legacy"] in chosen
    assert added["above the point"] not in chosen and added["rejected since"] not in chosen


def test_the_point_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().ese_operating_point == 0.002
    monkeypatch.setenv("DSA110_ESE_OPERATING_POINT", "0.02")
    point = Settings.from_env().ese_operating_point
    assert point == 0.02
    args = {"limit": 10, "status": "active", "min_sigma": None, "all_candidates": False}
    assert candidate_variables(point)(args)["filter"]["operatingPoint"] == 0.02
    for bad in ("0", "1.5", "nan", "-0.1"):
        monkeypatch.setenv("DSA110_ESE_OPERATING_POINT", bad)
        with pytest.raises(ValueError, match="DSA110_ESE_OPERATING_POINT"):
            Settings.from_env()
