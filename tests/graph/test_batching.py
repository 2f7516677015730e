"""Nested queries cost one SQL statement per level, whatever the number of parents."""

from __future__ import annotations

import pytest

from tests.graph.conftest import Graph

NESTED = """query($n: Int!) { sources(first: $n) { edges { node {
  measurements(last: 50) { edges { node { image { group { groupId } } } } } } } } }"""

NESTED_WITH_COUNTS = """query($n: Int!) { sources(first: $n) { totalCount edges { node {
  measurements(last: 50) { totalCount edges { node { image { group { groupId } } } } } } } } }"""


@pytest.mark.parametrize(("document", "levels"), [(NESTED, 4), (NESTED_WITH_COUNTS, 5)])
async def test_statement_count_does_not_grow_with_n(graph: Graph, document: str, levels: int) -> None:
    counts = {}
    for n in (10, 100):
        with graph.statements.measure() as used:
            data = await graph.data(document, n=n)
        counts[n] = used[0]
        assert len(data["sources"]["edges"]) == min(n, 300)
        measured = [e for s in data["sources"]["edges"] for e in s["node"]["measurements"]["edges"]]
        assert measured, "the probe must actually reach images and groups"
        assert all(e["node"]["image"]["group"]["groupId"] for e in measured)
    assert counts[10] == counts[100]
    # sources, measurement pages, images, groups (+ the sources count; measurement
    # totals come from the page statement's window).
    assert counts[100] <= levels


async def test_every_link_is_batched(graph: Graph) -> None:
    document = """{ images(first: 40) { edges { node {
        group { groupId jobs { jobId outputs { dataId parents { dataId } children { dataId } } } }
        mosaics { name images(first: 3) { totalCount nodes { imageId } } }
        measurements(first: 5) { nodes { source { sourceId images(first: 2) { nodes { imageId } } } } }
    } } } }"""
    with graph.statements.measure() as small:
        await graph.data(document.replace("first: 40", "first: 4"))
    with graph.statements.measure() as large:
        await graph.data(document)
    assert small[0] == large[0]


@pytest.mark.parametrize(
    ("links", "fields"),
    [
        ("images", "imageId measurementSet { path } group { groupId state }"),
        ("eseCandidates", "candidateId source { sourceId raDeg nEpochs }"),
        ("alerts", "alertId source { sourceId } candidate { candidateId status }"),
    ],
)
async def test_a_list_joins_the_to_one_links_of_its_nodes(graph: Graph, links: str, fields: str) -> None:
    # Written on the nodes, the links come with the page (one statement, the count another);
    # behind a fragment they are batched per level as before: the same answer either way.
    joined = f"{{ {links}(first: 50) {{ totalCount nodes {{ {fields} }} }} }}"
    batched = f"{{ {links}(first: 50) {{ totalCount nodes {{ ...F }} }} }} fragment F on {links_type(links)} {{ {fields} }}"
    with graph.statements.measure() as one_level:
        together = await graph.data(joined)
    with graph.statements.measure() as per_level:
        apart = await graph.data(batched)
    assert together == apart
    assert one_level[0] <= 2  # no page is read when the count is 0
    assert per_level[0] >= one_level[0]


def links_type(root: str) -> str:
    return {"images": "Image", "eseCandidates": "EseCandidate", "alerts": "Alert"}[root]
