"""/api/observation_timeline: its answer pinned on hand-made groups, and against the legacy
rule on the demo's groups.

The rule (legacy-pipeline-facts §3.10): groups in ``group_id`` order, a new segment wherever
a group's epoch is more than the threshold after the previous group's. The groups below use
MJDs that are binary fractions, so every sum and difference is exact and the expected
answer can be written out in full; it is the answer the route gave when it paged through
every group in Python, before the timeline moved into SQL.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from compat_rest import observing
from compat_rest.convert import iso_from_mjd
from dsa110.auth.identity import Role
from dsa110.db import tables as t
from dsa110.db.engine import create_engine
from dsa110.settings import Settings
from server.app import create_app
from tests.credentials import key_headers
from tests.graph.conftest import Graph

# group_id, mid_mjd, subband files. The fifth group's epoch is *before* the fourth's (a
# group whose id and epoch disagree): the rule follows group_id order, so it joins the
# fourth's segment and that segment ends before it starts. The third is exactly 3 h
# (0.125 d) after the second: a gap of 3 h at a threshold of 3 h joins.
GROUPS = [
    ("2025-11-11T00:00:00", 60990.0, 16),
    ("2025-11-11T00:11:15", 60990.0078125, 16),
    ("2025-11-11T03:11:15", 60990.1328125, 0),
    ("2025-11-11T12:00:00", 60990.5, 5),
    ("2025-11-11T12:05:00", 60990.4921875, 3),
    ("2025-11-12T00:00:00", 60991.0, 16),
    ("2025-11-12T00:00:01", 60991.0, 1),
]


# The answers the route gave before the timeline moved into SQL (captured, then checked by hand).
AT_1_HOUR = {
    "observations": [
        {
            "group_id": "2025-11-11T00:00:00",
            "start_mjd": 60990.0,
            "end_mjd": 60990.0078125,
            "file_count": 32,
            "n_groups": 2,
            "duration_hours": 0.1875,
        },
        {
            "group_id": "2025-11-11T03:11:15",
            "start_mjd": 60990.1328125,
            "end_mjd": 60990.1328125,
            "file_count": 0,
            "n_groups": 1,
            "duration_hours": 0.0,
        },
        {
            "group_id": "2025-11-11T12:00:00",
            "start_mjd": 60990.5,
            "end_mjd": 60990.4921875,
            "file_count": 8,
            "n_groups": 2,
            "duration_hours": -0.1875,
        },
        {
            "group_id": "2025-11-12T00:00:00",
            "start_mjd": 60991.0,
            "end_mjd": 60991.0,
            "file_count": 17,
            "n_groups": 2,
            "duration_hours": 0.0,
        },
    ],
    "gaps": [
        {"start_mjd": 60990.0078125, "end_mjd": 60990.1328125, "duration_hours": 3.0},
        {"start_mjd": 60990.1328125, "end_mjd": 60990.5, "duration_hours": 8.8125},
        {"start_mjd": 60990.4921875, "end_mjd": 60991.0, "duration_hours": 12.1875},
    ],
    "earliest_time": "2025-11-11T00:00:00Z",
    "latest_time": "2025-11-12T00:00:00Z",
    "total_files": 57,
    "unique_timestamps": 7,
    "segments": [
        {"start_time": "2025-11-11T00:00:00Z", "end_time": "2025-11-11T00:11:15Z", "file_count": 32},
        {"start_time": "2025-11-11T03:11:15Z", "end_time": "2025-11-11T03:11:15Z", "file_count": 0},
        {"start_time": "2025-11-11T12:00:00Z", "end_time": "2025-11-11T11:48:45Z", "file_count": 8},
        {"start_time": "2025-11-12T00:00:00Z", "end_time": "2025-11-12T00:00:00Z", "file_count": 17},
    ],
    "truncated": False,
}
AT_3_HOURS = {
    "observations": [
        {
            "group_id": "2025-11-11T00:00:00",
            "start_mjd": 60990.0,
            "end_mjd": 60990.1328125,
            "file_count": 32,
            "n_groups": 3,
            "duration_hours": 3.1875,
        },
        {
            "group_id": "2025-11-11T12:00:00",
            "start_mjd": 60990.5,
            "end_mjd": 60990.4921875,
            "file_count": 8,
            "n_groups": 2,
            "duration_hours": -0.1875,
        },
        {
            "group_id": "2025-11-12T00:00:00",
            "start_mjd": 60991.0,
            "end_mjd": 60991.0,
            "file_count": 17,
            "n_groups": 2,
            "duration_hours": 0.0,
        },
    ],
    "gaps": [
        {"start_mjd": 60990.1328125, "end_mjd": 60990.5, "duration_hours": 8.8125},
        {"start_mjd": 60990.4921875, "end_mjd": 60991.0, "duration_hours": 12.1875},
    ],
    "earliest_time": "2025-11-11T00:00:00Z",
    "latest_time": "2025-11-12T00:00:00Z",
    "total_files": 57,
    "unique_timestamps": 7,
    "segments": [
        {"start_time": "2025-11-11T00:00:00Z", "end_time": "2025-11-11T03:11:15Z", "file_count": 32},
        {"start_time": "2025-11-11T12:00:00Z", "end_time": "2025-11-11T11:48:45Z", "file_count": 8},
        {"start_time": "2025-11-12T00:00:00Z", "end_time": "2025-11-12T00:00:00Z", "file_count": 17},
    ],
    "truncated": False,
}
AT_0_HOURS = {
    "observations": [
        {
            "group_id": "2025-11-11T00:00:00",
            "start_mjd": 60990.0,
            "end_mjd": 60990.0,
            "file_count": 16,
            "n_groups": 1,
            "duration_hours": 0.0,
        },
        {
            "group_id": "2025-11-11T00:11:15",
            "start_mjd": 60990.0078125,
            "end_mjd": 60990.0078125,
            "file_count": 16,
            "n_groups": 1,
            "duration_hours": 0.0,
        },
        {
            "group_id": "2025-11-11T03:11:15",
            "start_mjd": 60990.1328125,
            "end_mjd": 60990.1328125,
            "file_count": 0,
            "n_groups": 1,
            "duration_hours": 0.0,
        },
        {
            "group_id": "2025-11-11T12:00:00",
            "start_mjd": 60990.5,
            "end_mjd": 60990.4921875,
            "file_count": 8,
            "n_groups": 2,
            "duration_hours": -0.1875,
        },
        {
            "group_id": "2025-11-12T00:00:00",
            "start_mjd": 60991.0,
            "end_mjd": 60991.0,
            "file_count": 17,
            "n_groups": 2,
            "duration_hours": 0.0,
        },
    ],
    "gaps": [
        {"start_mjd": 60990.0, "end_mjd": 60990.0078125, "duration_hours": 0.1875},
        {"start_mjd": 60990.0078125, "end_mjd": 60990.1328125, "duration_hours": 3.0},
        {"start_mjd": 60990.1328125, "end_mjd": 60990.5, "duration_hours": 8.8125},
        {"start_mjd": 60990.4921875, "end_mjd": 60991.0, "duration_hours": 12.1875},
    ],
    "earliest_time": "2025-11-11T00:00:00Z",
    "latest_time": "2025-11-12T00:00:00Z",
    "total_files": 57,
    "unique_timestamps": 7,
    "segments": [
        {"start_time": "2025-11-11T00:00:00Z", "end_time": "2025-11-11T00:00:00Z", "file_count": 16},
        {"start_time": "2025-11-11T00:11:15Z", "end_time": "2025-11-11T00:11:15Z", "file_count": 16},
        {"start_time": "2025-11-11T03:11:15Z", "end_time": "2025-11-11T03:11:15Z", "file_count": 0},
        {"start_time": "2025-11-11T12:00:00Z", "end_time": "2025-11-11T11:48:45Z", "file_count": 8},
        {"start_time": "2025-11-12T00:00:00Z", "end_time": "2025-11-12T00:00:00Z", "file_count": 17},
    ],
    "truncated": False,
}
FIRST_4_AT_3_HOURS = {
    "observations": [
        {
            "group_id": "2025-11-11T00:00:00",
            "start_mjd": 60990.0,
            "end_mjd": 60990.1328125,
            "file_count": 32,
            "n_groups": 3,
            "duration_hours": 3.1875,
        },
        {
            "group_id": "2025-11-11T12:00:00",
            "start_mjd": 60990.5,
            "end_mjd": 60990.5,
            "file_count": 5,
            "n_groups": 1,
            "duration_hours": 0.0,
        },
    ],
    "gaps": [{"start_mjd": 60990.1328125, "end_mjd": 60990.5, "duration_hours": 8.8125}],
    "earliest_time": "2025-11-11T00:00:00Z",
    "latest_time": "2025-11-11T12:00:00Z",
    "total_files": 37,
    "unique_timestamps": 4,
    "segments": [
        {"start_time": "2025-11-11T00:00:00Z", "end_time": "2025-11-11T03:11:15Z", "file_count": 32},
        {"start_time": "2025-11-11T12:00:00Z", "end_time": "2025-11-11T12:00:00Z", "file_count": 5},
    ],
    "truncated": True,
}


async def _insert_groups(url: str) -> None:
    engine = create_engine(url)
    now = datetime(2025, 11, 13, 12, 0, tzinfo=UTC)
    try:
        async with engine.begin() as conn:
            for group_id, mjd, files in GROUPS:
                pk = (
                    await conn.execute(
                        insert(t.groups)
                        .values(
                            group_id=group_id,
                            state="completed",
                            received_at=now,
                            updated_at=now,
                            mid_mjd=mjd,
                            expected_subbands=16,
                        )
                        .returning(t.groups.c.id)
                    )
                ).scalar_one()
                if files:
                    await conn.execute(
                        insert(t.subband_files),
                        [
                            {"group_pk": pk, "subband_idx": i, "path": f"/data/{group_id}_sb{i:02d}.hdf5"}
                            for i in range(files)
                        ],
                    )
    finally:
        await engine.dispose()


@pytest.fixture
async def client(empty_db_url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url)
    app = create_app(settings, migrate=False)
    headers = await key_headers(empty_db_url, Role.VIEWER)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    ) as http:
        yield http
    await app.state.engine.dispose()


async def _timeline(http: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await http.get("/api/observation_timeline", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_an_empty_timeline(client: httpx.AsyncClient) -> None:
    assert await _timeline(client) == {
        "observations": [],
        "gaps": [],
        "earliest_time": None,
        "latest_time": None,
        "total_files": 0,
        "unique_timestamps": 0,
        "segments": [],
        "truncated": False,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [({}, AT_1_HOUR), ({"gap_threshold_hours": 3.0}, AT_3_HOURS), ({"gap_threshold_hours": 0}, AT_0_HOURS)],
    ids=["default-1h", "3h", "0h"],
)
async def test_the_timeline_is_pinned(
    client: httpx.AsyncClient, empty_db_url: str, params: dict[str, Any], expected: dict[str, Any]
) -> None:
    await _insert_groups(empty_db_url)
    assert await _timeline(client, **params) == expected


async def test_past_the_group_limit_the_timeline_is_truncated(
    client: httpx.AsyncClient, empty_db_url: str
) -> None:
    await _insert_groups(empty_db_url)
    # The first 4 groups by group_id: the graph's maxGroups (the route asks for its default,
    # 50,000), shaped by the route's own function.
    query = (
        "query T { observationTimeline(gapThresholdHours: 3, maxGroups: 4) { "
        "segments { firstGroupId startMjd endMjd groupCount subbandFileCount } "
        "groupCount subbandFileCount truncated } }"
    )
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert observing.timeline(data, {"gap_threshold_hours": 3.0}) == FIRST_4_AT_3_HOURS


def legacy_timeline(nodes: list[dict[str, Any]], threshold_hours: float) -> dict[str, Any]:
    """The legacy rule over every group in group_id order, as the route computed it in Python."""
    threshold_days = threshold_hours / 24.0
    segments: list[dict[str, Any]] = []
    for node in nodes:
        mjd = node["midMjd"]
        if segments and mjd - segments[-1]["end_mjd"] <= threshold_days:
            segments[-1].update(end_mjd=mjd)
            segments[-1]["file_count"] += node["presentSubbands"]
            segments[-1]["n_groups"] += 1
        else:
            segments.append(
                {
                    "group_id": node["groupId"],
                    "start_mjd": mjd,
                    "end_mjd": mjd,
                    "file_count": node["presentSubbands"],
                    "n_groups": 1,
                }
            )
    return {
        "observations": [{**s, "duration_hours": (s["end_mjd"] - s["start_mjd"]) * 24.0} for s in segments],
        "gaps": [
            {
                "start_mjd": a["end_mjd"],
                "end_mjd": b["start_mjd"],
                "duration_hours": (b["start_mjd"] - a["end_mjd"]) * 24.0,
            }
            for a, b in itertools.pairwise(segments)
        ],
        "earliest_time": iso_from_mjd(nodes[0]["midMjd"]) if nodes else None,
        "latest_time": iso_from_mjd(nodes[-1]["midMjd"]) if nodes else None,
        "total_files": sum(n["presentSubbands"] for n in nodes),
        "unique_timestamps": len(nodes),
        "segments": [
            {
                "start_time": iso_from_mjd(s["start_mjd"]),
                "end_time": iso_from_mjd(s["end_mjd"]),
                "file_count": s["file_count"],
            }
            for s in segments
        ],
        "truncated": False,
    }


async def _every_group(graph: Graph) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        data = await graph.data(
            "query($after: String) { groups(first: 500, after: $after, orderBy: GROUP_ID, direction: ASC) {"
            " pageInfo { hasNextPage endCursor } nodes { groupId midMjd presentSubbands } } }",
            after=after,
        )
        nodes.extend(data["groups"]["nodes"])
        if not data["groups"]["pageInfo"]["hasNextPage"]:
            return nodes
        after = data["groups"]["pageInfo"]["endCursor"]


async def test_the_demo_timeline_follows_the_legacy_rule(api: httpx.AsyncClient, graph: Graph) -> None:
    nodes = await _every_group(graph)
    assert len(nodes) > 500  # more than a page
    for hours in (1.0, 0.01, 0.0, 24.0):
        assert await _timeline(api, gap_threshold_hours=hours) == legacy_timeline(nodes, hours), hours
