"""What users rely on: keys resolve, links agree both ways, filters and pages are right."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sqlalchemy import select

from dsa110.db import tables as t
from dsa110.science.healpix import angular_separation_deg
from tests.graph.conftest import Graph


async def test_natural_key_and_global_id_name_the_same_node(graph: Graph) -> None:
    first = (await graph.data("{ sources(first: 1) { nodes { id sourceId raDeg } } }"))["sources"]["nodes"][0]
    by_key = await graph.data("query($k: String!) { source(sourceId: $k) { id raDeg } }", k=first["sourceId"])
    by_id = await graph.data(
        "query($i: ID!) { node(id: $i) { id ... on Source { sourceId } } }", i=first["id"]
    )
    assert by_key["source"]["id"] == first["id"]
    assert by_id["node"]["sourceId"] == first["sourceId"]
    group = (await graph.data("{ groups(first: 1) { nodes { id groupId } } }"))["groups"]["nodes"][0]
    again = await graph.data("query($g: String!) { group(groupId: $g) { id } }", g=group["groupId"])
    assert again["group"]["id"] == group["id"]


async def test_links_agree_in_both_directions(graph: Graph) -> None:
    data = await graph.data(
        """{ images(first: 5) { nodes { imageId group { groupId images { imageId } }
             mosaics { name images(first: 100) { nodes { imageId } } }
             measurements(first: 20) { nodes { source { sourceId images(first: 500) { nodes { imageId } } } image { imageId } } } } } }"""
    )
    for image in data["images"]["nodes"]:
        me = image["imageId"]
        assert me in [i["imageId"] for i in image["group"]["images"]]
        for mosaic in image["mosaics"]:
            assert me in [i["imageId"] for i in mosaic["images"]["nodes"]]
        for m in image["measurements"]["nodes"]:
            assert m["image"]["imageId"] == me
            assert me in [i["imageId"] for i in m["source"]["images"]["nodes"]]
    jobs = await graph.data(
        "{ jobs(first: 50) { nodes { jobId outputs { dataId jobs { jobId } children { dataId parents { dataId } } } } } }"
    )
    linked = 0
    for job in jobs["jobs"]["nodes"]:
        for product in job["outputs"]:
            assert job["jobId"] in [j["jobId"] for j in product["jobs"]]
            for child in product["children"]:
                linked += 1
                assert product["dataId"] in [p["dataId"] for p in child["parents"]]
    assert linked > 0, "the demo must hold lineage to test"


async def test_walking_pages_visits_every_source_once(graph: Graph) -> None:
    seen: list[str] = []
    after = None
    total = None
    while True:
        page = (
            await graph.data(
                "query($a: String) { sources(first: 37, after: $a) { totalCount pageInfo { hasNextPage endCursor } nodes { sourceId } } }",
                a=after,
            )
        )["sources"]
        total = page["totalCount"]
        seen += [n["sourceId"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == total
    assert seen == sorted(seen)
    tail = (
        await graph.data(
            "{ sources(last: 5) { pageInfo { hasPreviousPage hasNextPage } nodes { sourceId } } }"
        )
    )["sources"]
    assert [n["sourceId"] for n in tail["nodes"]] == seen[-5:]
    assert tail["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": False}


async def test_nested_last_and_before_page_backwards(graph: Graph) -> None:
    doc = """query($b: String) { sources(first: 1, orderBy: N_EPOCHS, direction: DESC) { nodes {
        measurements(last: 2, before: $b) { totalCount pageInfo { hasPreviousPage startCursor } nodes { mjd } } } } }"""
    full = (
        await graph.data(doc.replace("last: 2, before: $b", "first: 500").replace("query($b: String) ", ""))
    )["sources"]["nodes"][0]["measurements"]
    mjds = [n["mjd"] for n in full["nodes"]]
    assert mjds == sorted(mjds) and len(mjds) >= 4
    collected: list[float] = []
    before = None
    while True:
        page = (await graph.data(doc, b=before))["sources"]["nodes"][0]["measurements"]
        collected = [n["mjd"] for n in page["nodes"]] + collected
        assert page["totalCount"] == len(mjds)
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert collected == mjds


async def test_cone_filter_matches_exact_separation(graph: Graph) -> None:
    async with graph.engine.connect() as conn:
        rows = (
            await conn.execute(select(t.sources.c.source_id, t.sources.c.ra_deg, t.sources.c.dec_deg))
        ).all()
    names = np.array([r[0] for r in rows])
    ra = np.array([r[1] for r in rows])
    dec = np.array([r[2] for r in rows])
    centre_ra, centre_dec = float(ra[0]), float(dec[0])
    for radius_arcsec in (1.0, 1800.0, 5400.0):
        expected = set(names[angular_separation_deg(centre_ra, centre_dec, ra, dec) <= radius_arcsec / 3600])
        data = await graph.data(
            "query($f: SourceFilter) { sources(first: 500, filter: $f) { totalCount nodes { sourceId } } }",
            f={"cone": {"raDeg": centre_ra, "decDeg": centre_dec, "radiusArcsec": radius_arcsec}},
        )
        got = {n["sourceId"] for n in data["sources"]["nodes"]}
        assert got == expected
        assert data["sources"]["totalCount"] == len(expected)


async def test_filters_and_ordering(graph: Graph) -> None:
    data = await graph.data(
        """{ sources(first: 500, filter: {decMinDeg: 41.5, decMaxDeg: 42.5, nEpochsMin: 2}, orderBy: ETA, direction: DESC) {
             nodes { decDeg eta nEpochs } } }"""
    )
    nodes = data["sources"]["nodes"]
    assert nodes
    assert all(41.5 <= n["decDeg"] <= 42.5 and n["nEpochs"] >= 2 for n in nodes)
    etas = [n["eta"] for n in nodes if n["eta"] is not None]
    assert etas == sorted(etas, reverse=True)
    groups = await graph.data("{ groups(first: 500, filter: {states: [FAILED]}) { nodes { state error } } }")
    assert groups["groups"]["nodes"] and all(
        g["state"] == "FAILED" and g["error"] for g in groups["groups"]["nodes"]
    )
    images = await graph.data(
        "{ images(first: 20, orderBy: MJD, direction: ASC) { nodes { midMjd createdAt } } }"
    )
    mjd = [i["midMjd"] for i in images["images"]["nodes"]]
    assert mjd == sorted(mjd)
    assert all(i["createdAt"].endswith("Z") for i in images["images"]["nodes"])


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ('{ source(sourceId: "NVSS J999999.9+999999") { id } }', "NOT_FOUND"),
        ('{ node(id: "U291cmNlOjk5OTk5OTk") { id } }', "NOT_FOUND"),
        ('{ node(id: "%%%") { id } }', "BAD_USER_INPUT"),
        ('{ node(id: "Tm9wZToxMjM") { id } }', "NOT_FOUND"),
        ("{ sources(first: 100000) { totalCount } }", "BAD_USER_INPUT"),
        ("{ sources(first: -1) { totalCount } }", "BAD_USER_INPUT"),
        ('{ sources(after: "not-a-cursor") { totalCount } }', "BAD_USER_INPUT"),
        # offsets past SQLite's 64-bit integers (the driver raised: a 500), and forms that
        # ``int()`` reads but no cursor ever had: " 3", "3_0"
        ('{ sources(after: "b2Zmc2V0Ojk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5") { totalCount } }', "BAD_USER_INPUT"),
        (
            '{ sources(last: 1, before: "b2Zmc2V0OjkyMjMzNzIwMzY4NTQ3NzU4MDc=") { totalCount } }',
            "BAD_USER_INPUT",
        ),
        (
            '{ sources(first: 1) { nodes { measurements(after: "b2Zmc2V0Ojk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5") { totalCount } } } }',
            "BAD_USER_INPUT",
        ),
        ('{ sources(after: "b2Zmc2V0OiAz") { totalCount } }', "BAD_USER_INPUT"),
        ('{ sources(after: "b2Zmc2V0OjNfMA==") { totalCount } }', "BAD_USER_INPUT"),
        ("{ sources(filter: {decMinDeg: 50, decMaxDeg: 40}) { totalCount } }", "BAD_USER_INPUT"),
        (
            "{ sources(filter: {cone: {raDeg: 10, decDeg: 10, radiusArcsec: 0}}) { totalCount } }",
            "BAD_USER_INPUT",
        ),
        (
            "{ sources(filter: {cone: {raDeg: 400, decDeg: 10, radiusArcsec: 5}}) { totalCount } }",
            "BAD_USER_INPUT",
        ),
        (
            '{ images(filter: {createdAfter: "2025-01-01T00:00:00"}) { totalCount } }',
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ('{ images(filter: {createdAfter: "yesterday"}) { totalCount } }', "GRAPHQL_VALIDATION_FAILED"),
        ("{ groups(filter: {states: [NOT_A_STATE]}) { totalCount } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ sources { nope } }", "GRAPHQL_VALIDATION_FAILED"),
        ("{ sources(", "GRAPHQL_PARSE_FAILED"),
    ],
)
async def test_bad_input_gets_a_code(graph: Graph, document: str, code: str) -> None:
    result = await graph.run(document)
    assert result.errors, document
    assert {e.extensions["code"] for e in result.errors} == {code}, [e.message for e in result.errors]


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        ("query($f: SourceFilter) { sources(filter: $f) { totalCount } }", {"f": {"fluxMinJy": math.inf}}),
        ("query($f: SourceFilter) { sources(filter: $f) { totalCount } }", {"f": {"decMinDeg": "north"}}),
        (
            "query($f: ImageFilter) { images(filter: $f) { totalCount } }",
            {"f": {"createdAfter": "2025-01-01T00:00:00"}},
        ),
        (
            "query($f: ImageFilter) { images(filter: $f) { totalCount } }",
            {"f": {"createdAfter": "x" * 10_000}},
        ),
        ("query($n: Int) { sources(first: $n) { totalCount } }", {"n": 2**40}),
        (
            "query($f: SourceFilter) { sources(filter: $f) { totalCount } }",
            {"f": {"sourceIds": ["x"] * 5000}},
        ),
    ],
)
async def test_bad_variables_are_bad_user_input(
    graph: Graph, document: str, variables: dict[str, object]
) -> None:
    result = await graph.run(document, **variables)
    assert result.errors
    assert {e.extensions["code"] for e in result.errors} == {"BAD_USER_INPUT"}


async def test_name_prefix_is_literal_and_image_filters_follow_links(graph: Graph) -> None:
    first = (await graph.data("{ sources(first: 1) { nodes { sourceId } } }"))["sources"]["nodes"][0][
        "sourceId"
    ]
    prefix = first[:9]
    data = await graph.data(
        "query($p: String!) { sources(first: 500, filter: {sourceIdPrefix: $p}) { nodes { sourceId } } }",
        p=prefix,
    )
    names = [n["sourceId"] for n in data["sources"]["nodes"]]
    assert first in names and all(n.startswith(prefix) for n in names)
    wild = await graph.data('{ sources(filter: {sourceIdPrefix: "NVSS J%"}) { totalCount } }')
    assert wild["sources"]["totalCount"] == 0, "% is a literal character, not a wildcard"

    image = (
        await graph.data(
            "{ images(first: 1) { nodes { imageId path measurementSet { path } group { hasCalibrator } } } }"
        )
    )["images"]["nodes"][0]
    by_path = await graph.data(
        "query($p: [String!]) { images(filter: {paths: $p}) { nodes { imageId } } }", p=[image["path"]]
    )
    assert [n["imageId"] for n in by_path["images"]["nodes"]] == [image["imageId"]]
    ms_name = image["measurementSet"]["path"].rsplit("/", 1)[-1]
    by_ms = await graph.data(
        "query($m: String!) { images(filter: {msPathContains: $m}) { nodes { imageId } } }", m=ms_name
    )
    assert image["imageId"] in [n["imageId"] for n in by_ms["images"]["nodes"]]
    flag = bool(image["group"]["hasCalibrator"])
    by_flag = await graph.data(
        "query($f: Boolean!) { images(first: 500, filter: {hasCalibrator: $f}) { nodes { group { hasCalibrator } } } }",
        f=flag,
    )
    assert all(bool(n["group"]["hasCalibrator"]) == flag for n in by_flag["images"]["nodes"])
