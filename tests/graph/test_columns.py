"""A list page reads the columns its nodes' fields use, and answers as if it read them all."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.settings import Settings
from tests.graph.conftest import Graph


@contextlib.contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def hit(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", hit)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", hit)


def page_statement(seen: list[str], table: str) -> str:
    pages = [s for s in seen if f"FROM {table}" in s and "count(*)" not in s]
    assert len(pages) == 1, seen
    return pages[0]


async def test_a_page_reads_only_what_its_nodes_select(graph: Graph, demo_engine: AsyncEngine) -> None:
    document = "{ images(first: 5) { nodes { imageId midMjd measurementSet { path } } } }"
    with statements(demo_engine) as seen:
        data = await graph.data(document)
    page = page_statement(seen, "images")
    head = page.split("FROM", 1)[0]
    assert "images.mid_mjd" in head and "images.ms_pk" in head  # a field and a link's key
    assert "images.noise_jy" not in head and "images.dynamic_range" not in head
    assert all(n["measurementSet"]["path"] for n in data["images"]["nodes"])

    skipped = "query($no: Boolean!) { images(first: 5) { nodes { imageId noiseJy @include(if: $no) } } }"
    with statements(demo_engine) as seen:
        data = await graph.data(skipped, no=False)
    assert "images.noise_jy" not in page_statement(seen, "images").split("FROM", 1)[0]
    assert data["images"]["nodes"][0] == {"imageId": data["images"]["nodes"][0]["imageId"]}


@pytest.mark.parametrize(
    "nodes",
    [
        # a resolver that declares nothing (localRmsRange): every column
        "imageId localRmsRange { minJy }",
        # a field behind a fragment and one behind an inline fragment
        "...F ... on Image { centerForms { raHms } } observationStart",
        # a field skipped by a variable: not read, and not answered
        "imageId noiseJy @include(if: $no) integrationSec @skip(if: $no)",
    ],
)
async def test_pruned_pages_answer_as_full_pages(
    demo_engine: AsyncEngine, demo_settings: Settings, nodes: str
) -> None:
    fragment = "fragment F on Image { path createdAt group { groupId } }" if "...F" in nodes else ""
    head = "query($no: Boolean!)" if "$no" in nodes else "query"
    document = f"{head} {{ images(first: 7) {{ nodes {{ {nodes} }} }} }} {fragment}"
    variables = {"no": False} if "$no" in nodes else {}
    # the same nodes reached through edges { node } too: their columns are added up
    both = document.replace("nodes {", "edges { node { imageId freqGhz } } nodes {", 1)
    # nodes that also ask for a field declaring no columns: every column is read
    full = "everyColumn: localRmsRange { nMeasurements } "
    fast = Graph(demo_engine, demo_settings)
    stock = Graph(demo_engine, demo_settings, executor=None)  # strawberry's own resolution
    for doc in (document, both):
        wide = doc.replace("nodes {", "nodes { " + full, 1)
        a, b, c = (
            await fast.run(doc, **variables),
            await stock.run(doc, **variables),
            await fast.run(wide, **variables),
        )
        assert not a.errors and not b.errors and not c.errors, (a.errors, b.errors, c.errors)
        assert a.data == b.data
        for node in c.data["images"]["nodes"]:
            node.pop("everyColumn")
        assert a.data == c.data
        assert len(a.data["images"]["nodes"]) == 7


async def test_a_joined_link_reads_what_its_selection_uses(graph: Graph, demo_engine: AsyncEngine) -> None:
    # The page's images join their measurement sets for `path` alone; the same sets reached
    # elsewhere in the document (by key) are whole objects all the same.
    document = """{ images(first: 5) { nodes { imageId measurementSet { path } } }
        latest: images(first: 1) { nodes { imageId } } }"""
    with statements(demo_engine) as seen:
        data = await graph.data(document)
    joined = [s for s in seen if "JOIN measurement_sets" in s]
    assert len(joined) == 1 and "prefetch_0.status" not in joined[0] and "prefetch_0.path" in joined[0]
    first = data["images"]["nodes"][0]
    elsewhere = await graph.data(
        f"""{{ images(first: 5) {{ nodes {{ measurementSet {{ path }} }} }}
            image(imageId: {first["imageId"]}) {{ measurementSet {{ path status stage startMjd }} }} }}"""
    )
    whole = elsewhere["image"]["measurementSet"]
    assert whole["path"] == first["measurementSet"]["path"]
    assert whole["status"] and whole["startMjd"] is not None


async def test_a_lazily_typed_link_reads_what_its_selection_uses(
    graph: Graph, demo_engine: AsyncEngine
) -> None:
    # A candidate's `source` is typed lazily (an import cycle): its selection is cut all the same,
    # and the cut sources answer as whole ones reached by key.
    document = "{ eseCandidates(first: 20) { nodes { candidateId source { sourceId raDeg nEpochs } } } }"
    with statements(demo_engine) as seen:
        data = await graph.data(document)
    joined = [s for s in seen if "JOIN sources" in s]
    assert len(joined) == 1 and "prefetch_0.source_id" in joined[0] and "prefetch_0.eta" not in joined[0]
    for node in data["eseCandidates"]["nodes"]:
        whole = await graph.data(
            "query($id: Int!) { eseCandidate(candidateId: $id) { source { sourceId raDeg nEpochs } } }",
            id=node["candidateId"],
        )
        assert whole["eseCandidate"]["source"] == node["source"]


@pytest.mark.parametrize(
    "connection", ["images", "sources", "eseCandidates", "groups(filter: {states: [COMPLETED]})"]
)
async def test_a_count_alone_reads_no_page(graph: Graph, demo_engine: AsyncEngine, connection: str) -> None:
    # `{ totalCount }` runs the count and no page statement; with the page asked for too, the
    # same count.
    name = connection.split("(", maxsplit=1)[0]
    table = {"images": "images", "sources": "sources", "eseCandidates": "ese_candidates", "groups": "groups"}[
        name
    ]
    with statements(demo_engine) as seen:
        alone = await graph.data(f"{{ {connection} {{ totalCount __typename }} }}")
    assert not [s for s in seen if f"FROM {table}" in s and "count(" not in s], seen
    paged = connection.replace(name, f"{name}(first: 3)") if "(" not in connection else connection
    with_page = await graph.data(f"{{ {paged} {{ totalCount nodes {{ __typename }} }} }}")
    assert alone[name]["totalCount"] == with_page[name]["totalCount"]
    assert alone[name]["__typename"].endswith("Connection")


def test_the_column_sets_kept_are_bounded_whatever_clients_select() -> None:
    """The column sets come from what documents select: a client asking a new subset of a
    table's fields each time must not grow the process's cache without end."""
    from itertools import combinations

    from dsa110.db import tables
    from loaders.pages import entity_columns

    names = [c.name for c in tables.sources.c if c.name != "id"]
    subsets = [frozenset(three) for three in combinations(names, 3)][:1500]
    assert len(subsets) == 1500  # more than the cache holds
    for only in subsets:
        assert [c.name for c in entity_columns(tables.sources, only)] == [n for n in names if n in only]
    assert entity_columns.cache_info().currsize <= 1024
