"""The cone search and VOSI documents, spoken to by pyvo (the VO's own Python client)."""

from __future__ import annotations

import asyncio
import io
import warnings
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
import pyvo
from astropy.io.votable import parse
from sqlalchemy import select

from dsa110.db.engine import create_engine
from dsa110.db.tables import catalog_sources
from tests.compat.conftest import Demo, Graph
from tests.live.servers import server_process

SR = 5.0  # the 300-source demo spreads over all RA: about 25 sources in 5 degrees
CONE_DOC = """query($c: ConeFilter!) {
  sources(filter: {cone: $c}, first: 500) { totalCount nodes { sourceId raDeg decDeg eta } }
}"""


async def _centre(graph: Graph, demo: Demo) -> tuple[float, float]:
    """A source in the middle of the demo's strip (by RA)."""
    nodes = (await graph.data("{ sources(first: 150, orderBy: RA) { nodes { raDeg decDeg } } }"))["sources"][
        "nodes"
    ]
    return nodes[-1]["raDeg"], nodes[-1]["decDeg"]


def _statuses(content: bytes) -> list[tuple[str, str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        document = parse(io.BytesIO(content))
    return [(i.name, i.value) for i in document.resources[0].infos if i.name == "QUERY_STATUS"]


async def test_pyvo_cone_search_returns_the_graphs_cone(demo: Demo, graph: Graph) -> None:
    ra, dec = await _centre(graph, demo)
    expected = (await graph.data(CONE_DOC, c={"raDeg": ra, "decDeg": dec, "radiusArcsec": SR * 3600}))[
        "sources"
    ]
    catalog = (
        await graph.data(
            "query($r: Float!, $d: Float!) { catalogSources(raDeg: $r, decDeg: $d, radiusArcsec: 18000,"
            ' catalog: "nvss", limit: 10000) { entry { name } } }',
            r=ra,
            d=dec,
        )
    )["catalogSources"]
    assert expected["totalCount"] > 3 and catalog

    async with server_process(demo.url, "memory://", demo.root) as (base, _):

        def with_pyvo() -> dict[str, Any]:
            service = pyvo.dal.SCSService(f"{base}/vo/scs")
            results = service.search(pos=(ra, dec), radius=SR, verbosity=3)
            minimal = service.search(pos=(ra, dec), radius=SR, verbosity=1)
            columns = {c.name: c for c in service.columns}
            nvss = pyvo.dal.SCSService(f"{base}/vo/catalogs/nvss/scs").search(pos=(ra, dec), radius=SR)
            try:
                service.search(pos=(ra, dec), radius=45.0)
                refused = ""
            except pyvo.dal.DALQueryError as error:
                refused = str(error)
            first = results[0]
            return {
                "ids": [str(r.id) for r in results],
                "table": results.to_table(),
                "first_pos": (first.pos.ra.deg, first.pos.dec.deg),
                "minimal_columns": list(minimal.fieldnames),
                "columns": columns,
                "nvss": [str(r.id) for r in nvss],
                "refused": refused,
            }

        got = await asyncio.to_thread(with_pyvo)
    assert sorted(got["ids"]) == sorted(n["sourceId"] for n in expected["nodes"])
    by_id = {n["sourceId"]: n for n in expected["nodes"]}
    table = got["table"]
    for row in table:
        node = by_id[str(row["source_id"])]
        assert row["ra_deg"] == pytest.approx(node["raDeg"]) and row["dec_deg"] == pytest.approx(
            node["decDeg"]
        )
        assert row["distance_deg"] <= SR
    assert str(table["ra_deg"].unit) == "deg" and str(table["mean_flux_jy"].unit) == "Jy / beam"
    assert got["first_pos"] == pytest.approx((table["ra_deg"][0], table["dec_deg"][0]))
    assert got["minimal_columns"] == ["source_id", "ra_deg", "dec_deg"]
    assert got["columns"]["source_id"].ucd == "ID_MAIN"
    assert got["columns"]["ra_deg"].ucd == "POS_EQ_RA_MAIN" and got["columns"]["ra_deg"].unit == "deg"
    assert got["columns"]["eta"].ucd == "src.var.index"
    assert sorted(got["nvss"]) == sorted(c["entry"]["name"] for c in catalog)
    assert "SR must be in [0, 10]" in got["refused"]


async def test_maxrec_cuts_and_flags_overflow(api: httpx.AsyncClient, graph: Graph, demo: Demo) -> None:
    ra, dec = await _centre(graph, demo)
    whole = await api.get(f"/vo/scs?RA={ra}&DEC={dec}&SR={SR}")
    assert whole.headers["content-type"].startswith("text/xml;content=x-votable")
    assert _statuses(whole.content) == [("QUERY_STATUS", "OK")]
    n = len(parse(io.BytesIO(whole.content)).get_first_table().array)
    cut = await api.get(f"/vo/scs?ra={ra}&dec={dec}&sr={SR}&maxrec=2")  # names are case-insensitive
    assert len(parse(io.BytesIO(cut.content)).get_first_table().array) == 2 < n
    assert _statuses(cut.content) == [("QUERY_STATUS", "OK"), ("QUERY_STATUS", "OVERFLOW")]
    exact = await api.get(f"/vo/scs?RA={ra}&DEC={dec}&SR={SR}&MAXREC={n}")
    assert _statuses(exact.content) == [("QUERY_STATUS", "OK")]
    metadata = await api.get(f"/vo/scs?RA={ra}&DEC={dec}&SR=0")
    table = parse(io.BytesIO(metadata.content)).get_first_table()
    assert len(table.array) == 0 and [f.name for f in table.fields][:3] == ["source_id", "ra_deg", "dec_deg"]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("DEC=42&SR=1", "MISSING_PARAMETER"),
        ("RA=abc&DEC=42&SR=1", "BAD_PARAMETER"),
        ("RA=nan&DEC=42&SR=1", "BAD_PARAMETER"),
        ("RA=10&DEC=95&SR=1", "BAD_PARAMETER"),
        ("RA=10&DEC=42&SR=-1", "BAD_PARAMETER"),
        ("RA=10&DEC=42&SR=1e308", "BAD_PARAMETER"),
        ("RA=10&DEC=42&SR=1&VERB=9", "BAD_PARAMETER"),
        ("RA=10&DEC=42&SR=1&MAXREC=-1", "BAD_PARAMETER"),
        ("RA=10&DEC=42&SR=1&MAXREC=99999999999", "BAD_PARAMETER"),
        ("RA=" + "1" * 100 + "&DEC=42&SR=1", "BAD_PARAMETER"),
    ],
)
async def test_bad_cone_queries_get_the_scs_error_document(
    api: httpx.AsyncClient, query: str, code: str
) -> None:
    response = await api.get(f"/vo/scs?{query}")
    assert response.status_code == 200 and response.headers["x-error-code"] == code
    document = parse(io.BytesIO(response.content))
    assert [i.name for i in document.infos] == ["Error"] and document.infos[0].value
    assert _statuses(response.content) == [("QUERY_STATUS", "ERROR")]


async def _catalogs_held(demo: Demo) -> list[str]:
    """The external catalogs the demo holds rows of: each gets its own cone search."""
    engine = create_engine(demo.url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(catalog_sources.c.catalog).distinct())
            return sorted(str(row[0]) for row in rows)
    finally:
        await engine.dispose()


async def test_unknown_catalogs_and_vosi_documents(api: httpx.AsyncClient, demo: Demo) -> None:
    for name in ("vlass", "..%2F..%2Fetc", "NVSS", "x" * 40):
        response = await api.get(f"/vo/catalogs/{name}/scs?RA=1&DEC=42&SR=1")
        assert response.headers.get("x-error-code") == "UNKNOWN_CATALOG" or response.status_code == 404
    document = (await api.get("/vo/capabilities")).content
    with warnings.catch_warnings():  # pyvo knows TAP's capability types, not ConeSearch's extras
        warnings.simplefilter("ignore")
        capabilities = pyvo.io.vosi.parse_capabilities(io.BytesIO(document))
    cones = [c for c in capabilities if c.standardid == "ivo://ivoa.net/std/ConeSearch"]
    urls = sorted(c.interfaces[0].accessurls[0].content for c in cones)
    held = await _catalogs_held(demo)
    assert "nvss" in held
    assert urls == sorted(
        ["http://testserver/vo/scs?", *(f"http://testserver/vo/catalogs/{name}/scs?" for name in held)]
    )
    assert {c.standardid for c in capabilities} >= {
        "ivo://ivoa.net/std/VOSI#capabilities",
        "ivo://ivoa.net/std/VOSI#availability",
    }
    xsi = "{http://www.w3.org/2001/XMLSchema-instance}type"
    cone = next(c for c in ElementTree.fromstring(document) if c.get(xsi) == "cs:ConeSearch")
    assert cone.findtext("maxSR") == "10" and cone.findtext("verbosity") == "true"
    assert cone.find("testQuery/ra") is not None
    available = pyvo.io.vosi.parse_availability(io.BytesIO((await api.get("/vo/availability")).content))
    assert available.available is True
