"""The legacy dashboard's pages (issue 17): the shapes its code reads, served with real meaning."""

from __future__ import annotations

import httpx

from tests.compat.conftest import Graph


async def test_lineage_groups_ids_by_relationship_as_the_lineage_page_reads(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    data = await graph.data(
        "{ dataProducts(first: 500) { nodes { dataId parents { dataId } children { dataId } } } }"
    )
    linked = [n for n in data["dataProducts"]["nodes"] if n["parents"] and n["children"]]
    assert linked, "the demo links raw -> MS -> tables -> image products"
    node = linked[0]
    body = (await api.get(f"/api/data/{node['dataId']}/lineage")).json()
    for key, graph_key in (("parents", "parents"), ("children", "children")):
        groups = body[key]
        assert isinstance(groups, dict) and groups
        assert all(isinstance(rel, str) and isinstance(ids, list) for rel, ids in groups.items())
        flat = sorted(i for ids in groups.values() for i in ids)
        assert flat == sorted(p["dataId"] for p in node[graph_key])
    detail = (await api.get(f"/api/data/{node['dataId']}")).json()
    assert detail["lineage"]["parents"] == body["parents"]
