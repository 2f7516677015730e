"""The breadth-first executor answers exactly as graphql-core's stock executor does."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.settings import Settings
from tests.graph.conftest import Graph

CORPUS = [
    # nested connections, links both ways, cursors and page info
    """{ sources(first: 7, orderBy: ETA, direction: DESC) { totalCount pageInfo { hasNextPage hasPreviousPage
         startCursor endCursor } edges { cursor node { id sourceId raDeg eta v
         measurements(last: 3) { totalCount pageInfo { hasPreviousPage } edges { cursor node { mjd time
           peakFluxJy forced image { imageId createdAt group { groupId state receivedAt } } source { sourceId } } } }
       } } } }""",
    # fragments, inline fragments, aliases, __typename, @include/@skip
    """query($yes: Boolean!) { a: sources(first: 2) { nodes { ...S } } b: sources(first: 2, after: "b2Zmc2V0OjE=")
         { nodes { __typename ... on Source { sourceId @include(if: $yes) decDeg @skip(if: $yes) } } } }
       fragment S on Source { __typename sourceId images(first: 2) { nodes { ... on Image { imageId mosaics { name } } } } }""",
    # abstract type (Node interface)
    """{ groups(first: 3) { nodes { id } } }""",
    # lists of links, JSON scalars, enums
    """{ jobs(first: 10) { nodes { jobId type state params group { groupId } outputs { dataId type status
         parents { dataId } children { dataId } jobs { jobId } } logs(last: 2) { line loggedAt } } } }""",
    # errors inside lists: a bad cursor argument on a nested connection
    """{ sources(first: 3) { nodes { sourceId measurements(first: 2, after: "garbage") { totalCount } } } }""",
    # non-null root field failing -> data null
    """{ source(sourceId: "NVSS J000000.0+000000") { sourceId } }""",
    # errors at several depths, siblings unaffected
    """{ ok: images(first: 2) { nodes { imageId } } bad: images(first: 1000) { totalCount } }""",
    # introspection
    """{ __schema { queryType { name } types { name kind } } __type(name: "Source") { fields { name } } }""",
    # variables, filters, empty results
    """query($f: SourceFilter) { sources(first: 5, filter: $f) { totalCount nodes { sourceId } } }""",
    # arguments converted by a planned function: input objects, enum lists, scalar lists
    """{ eseCandidates(first: 3, filter: {statuses: [ACTIVE, DISMISSED], minScore: 0.1}, direction: ASC)
         { totalCount nodes { candidateId status } }
       images(first: 2, filter: {types: ["5min"], pbcor: true, createdAfter: "2020-01-01T00:00:00Z"},
         orderBy: CREATED_AT) { nodes { imageId type } }
       sources(first: 2, filter: {cone: {raDeg: 10.0, decDeg: 41.0, radiusArcsec: 7200}}) { nodes { sourceId } } }""",
    # a filter value the filter refuses, beside one it accepts
    """{ bad: sources(first: 2, filter: {decMinDeg: 95}) { totalCount } ok: sources(first: 1) { nodes { sourceId } } }""",
    """{ mosaics(first: 2) { nodes { name startMjd images(last: 2) { totalCount pageInfo { hasNextPage
         hasPreviousPage } edges { cursor node { imageId midMjd } } } } } }""",
]


@pytest.mark.parametrize("document", CORPUS)
async def test_same_response_as_stock_executor(
    demo_engine: AsyncEngine, demo_settings: Settings, document: str
) -> None:
    fast = Graph(demo_engine, demo_settings)
    stock = Graph(demo_engine, demo_settings, executor=None)
    variables = {"yes": True, "f": {"decMinDeg": 89.0}}
    a = await fast.run(document, **variables)
    b = await stock.run(document, **variables)
    assert json.dumps(a.data, sort_keys=True) == json.dumps(b.data, sort_keys=True)
    errors_a = sorted(
        (e.message, tuple(e.path or ()), json.dumps(e.extensions, sort_keys=True)) for e in a.errors or []
    )
    errors_b = sorted(
        (e.message, tuple(e.path or ()), json.dumps(e.extensions, sort_keys=True)) for e in b.errors or []
    )
    assert errors_a == errors_b
