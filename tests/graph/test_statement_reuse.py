"""A list asked again runs the statement objects it ran before (SQLAlchemy keys an object once)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.graph.conftest import Graph


@pytest.mark.parametrize(
    "document",
    [
        "{ images(first: 5) { totalCount nodes { imageId measurementSet { path } } } }",
        "{ images(first: 5, orderBy: CREATED_AT, direction: DESC) { nodes { imageId } } }",
        "{ eseCandidates(first: 5, filter: {statuses: [ACTIVE], minScore: 0.1}) { totalCount nodes { candidateId } } }",
        "{ sources(first: 5, filter: {cone: {raDeg: 180, decDeg: 40, radiusArcsec: 3600}}) { totalCount nodes { sourceId } } }",
    ],
)
async def test_a_list_asked_again_runs_the_same_statements(
    graph: Graph, demo_engine: AsyncEngine, document: str
) -> None:
    ran: list[list[Any]] = [[], []]
    current: list[Any] = []

    def seen(_conn: Any, element: Any, *_: Any) -> None:
        current.append(element)

    event.listen(demo_engine.sync_engine, "before_execute", seen)
    try:
        answers = []
        for run in ran:
            current.clear()
            answers.append(await graph.data(document))
            run.extend(current)
    finally:
        event.remove(demo_engine.sync_engine, "before_execute", seen)
    assert answers[0] == answers[1]
    assert ran[0] and len(ran[0]) == len(ran[1])
    assert all(a is b for a, b in zip(ran[0], ran[1], strict=True)), (ran[0], ran[1])
