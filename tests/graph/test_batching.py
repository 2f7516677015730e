"""Nested queries cost one SQL statement per level, whatever the number of parents."""

from __future__ import annotations

import pytest

from loaders.pagination import encode_cursor
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


ORDERED = """query($n: Int!, $after: String) { images(first: $n) { nodes { imageId
  measurements(first: 3, after: $after, orderBy: PEAK_FLUX, direction: DESC) {
    totalCount pageInfo { endCursor } nodes { peakFluxJy source { sourceId } } } } } }"""


async def test_measurements_in_another_order_are_one_statement_per_level_and_page_on(graph: Graph) -> None:
    """`orderBy` on a link sorts each parent's children in the same windowed statement:
    the page of every image's brightest measurements is one statement, and its cursor
    goes on along that order."""
    counts = {}
    for n in (2, 20):
        with graph.statements.measure() as used:
            data = await graph.data(ORDERED, n=n, after=None)
        counts[n] = used[0]
    # images, measurement pages, sources (+ one count for the images whose page is empty:
    # their total does not come with a row of the window)
    assert counts[2] <= counts[20] <= 4
    for image in data["images"]["nodes"]:
        every = await graph.data(
            "query($i: Int!) { image(imageId: $i) { measurements(first: 500) { nodes { peakFluxJy } } } }",
            i=image["imageId"],
        )
        fluxes = [m["peakFluxJy"] for m in every["image"]["measurements"]["nodes"]]
        page = image["measurements"]
        assert page["totalCount"] == len(fluxes)
        assert [m["peakFluxJy"] for m in page["nodes"]] == sorted(fluxes, reverse=True)[:3]
    first = data["images"]["nodes"][0]
    more = await graph.data(
        """query($i: Int!, $after: String) { image(imageId: $i) {
          measurements(first: 3, after: $after, orderBy: PEAK_FLUX, direction: DESC) { nodes { peakFluxJy } } } }""",
        i=first["imageId"],
        after=first["measurements"]["pageInfo"]["endCursor"],
    )
    every = await graph.data(
        "query($i: Int!) { image(imageId: $i) { measurements(first: 500) { nodes { peakFluxJy } } } }",
        i=first["imageId"],
    )
    fluxes = sorted((m["peakFluxJy"] for m in every["image"]["measurements"]["nodes"]), reverse=True)
    assert [m["peakFluxJy"] for m in more["image"]["measurements"]["nodes"]] == fluxes[3:6]
    # Without orderBy, DESC is the link's own order reversed (a source's newest epochs first).
    epochs = await graph.data(
        """{ sources(first: 1, orderBy: N_EPOCHS, direction: DESC) { nodes {
          oldest: measurements(first: 500) { nodes { mjd } }
          newest: measurements(first: 2, direction: DESC) { nodes { mjd } } } } }"""
    )
    source = epochs["sources"]["nodes"][0]
    assert [m["mjd"] for m in source["newest"]["nodes"]] == [m["mjd"] for m in source["oldest"]["nodes"]][
        ::-1
    ][:2]


async def test_one_link_in_two_orders_is_counted_once(graph: Graph) -> None:
    """Counting does not depend on the order: every page past the end (so every total comes
    from the count loader, not the window), two orders asked, one COUNT statement."""
    document = """query($after: String!) { images(first: 20) { nodes {
      bySnr: measurements(first: 1, after: $after, orderBy: SNR) { totalCount nodes { snr } }
      byFlux: measurements(first: 1, after: $after, orderBy: PEAK_FLUX, direction: DESC) { totalCount }
      plain: measurements(first: 1, after: $after) { totalCount } } } }"""
    with graph.statements.measure() as used:
        data = await graph.data(document, after=encode_cursor(1_000_000))
    nodes = data["images"]["nodes"]
    assert all(not n["bySnr"]["nodes"] for n in nodes)
    assert [n["bySnr"]["totalCount"] for n in nodes] == [n["byFlux"]["totalCount"] for n in nodes]
    assert [n["bySnr"]["totalCount"] for n in nodes] == [n["plain"]["totalCount"] for n in nodes]
    assert any(n["plain"]["totalCount"] > 0 for n in nodes)
    assert used[0] == 5  # images, three (empty) pages, one count
