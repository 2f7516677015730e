"""Table exports read back with astropy: the same rows, values and units as the graph."""

from __future__ import annotations

import io
import json
import math
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import astropy.units as u
import httpx
import numpy as np
import pytest
from astropy.table import Table

from compat_rest.exports import SOURCES_LISTING, prepare_listing
from compat_rest.graph import GraphRunner
from dsa110.db.engine import create_engine
from dsa110.exports.columns import ALL_SPECS
from tests.compat.conftest import Demo, Graph, assert_envelope

FORMATS = ("votable", "csv", "ecsv", "fits")
READERS = {"votable": "votable", "csv": "ascii.csv", "ecsv": "ascii.ecsv", "fits": "fits"}
JY_BEAM = u.Jy / u.beam


def read(response: httpx.Response, fmt: str) -> Table:
    assert response.status_code == 200, response.text[:500]
    source: Any = io.BytesIO(response.content) if fmt in ("votable", "fits") else response.text
    return Table.read(source, format=READERS[fmt])


def numbers(column: Any) -> list[float]:
    """A numeric column as floats, masked or NaN entries as NaN (how each format says "none")."""
    filled = column.filled(np.nan) if hasattr(column, "filled") else column
    return [float(v) for v in np.asarray(filled, dtype=float)]


def flags(column: Any) -> list[bool]:
    """A boolean column (CSV gives the words True/False back as text)."""
    return [v in (True, "True") for v in column.tolist()]


def same(a: list[float], b: list[float | None]) -> bool:
    return all(
        (y is None and math.isnan(x)) or (y is not None and math.isclose(x, y, rel_tol=1e-12))
        for x, y in zip(a, b, strict=True)
    )


def test_every_ucd_is_a_valid_ucd1_plus() -> None:
    from astropy.io.votable.ucd import check_ucd

    for spec in ALL_SPECS:
        for column in spec.columns:
            assert column.ucd is None or check_ucd(column.ucd, check_controlled_vocabulary=True), column


@pytest.mark.parametrize("fmt", FORMATS)
async def test_sources_export_matches_the_graph(api: httpx.AsyncClient, graph: Graph, fmt: str) -> None:
    graph_filter = {"nEpochsMin": 1, "decMinDeg": 41.0}
    expected = (
        await graph.data(
            "query($f: SourceFilter) { sources(filter: $f, orderBy: ETA, direction: DESC, first: 500) {"
            " totalCount nodes { sourceId raDeg eta meanFluxJy nEpochs newSource } } }",
            f=graph_filter,
        )
    )["sources"]
    url = await graph.data(
        "query($f: SourceFilter, $fmt: TableFormat!) "
        "{ sourcesExportUrl(format: $fmt, filter: $f, orderBy: ETA, direction: DESC) }",
        f=graph_filter,
        fmt=fmt.upper(),
    )
    table = read(await api.get(url["sourcesExportUrl"]), fmt)
    nodes = expected["nodes"]
    assert len(table) == expected["totalCount"] == len(nodes) > 10
    assert [str(s) for s in table["source_id"]] == [n["sourceId"] for n in nodes]
    assert same(numbers(table["eta"]), [n["eta"] for n in nodes])
    assert same(numbers(table["mean_flux_jy"]), [n["meanFluxJy"] for n in nodes])
    assert [int(v) for v in table["n_epochs"]] == [n["nEpochs"] for n in nodes]
    assert flags(table["new_source"]) == [n["newSource"] for n in nodes]
    if fmt != "csv":  # CSV carries no units; the others must
        assert table["ra_deg"].unit == u.deg
        assert table["mean_flux_jy"].unit == JY_BEAM
        assert table["catalog_flux_jy"].unit == u.Jy
        assert table["first_mjd"].unit == u.day
    if fmt == "votable":
        from astropy.io.votable import parse_single_table

        fields = {
            f.name: f
            for f in parse_single_table(io.BytesIO((await api.get(url["sourcesExportUrl"])).content)).fields
        }
        assert fields["ra_deg"].ucd == "pos.eq.ra;meta.main"
        assert fields["source_id"].arraysize == "*"


async def test_paging_through_a_listing_gives_every_row_once(settings: Any, graph: Graph) -> None:
    runner = GraphRunner(graph.schema, graph.engine, settings)

    async def call(document: str, variables: dict[str, Any]) -> Any:
        return await runner(document, variables)

    variables = {"filter": None, "orderBy": "MEAN_FLUX", "direction": "DESC"}
    prepared = await prepare_listing(call, SOURCES_LISTING, variables, max_rows=100, page=7)
    rows = list(prepared.first)
    async for chunk in prepared.rest:
        assert len(chunk) <= 7
        rows.extend(chunk)
    expected = await graph.data(
        "{ sources(first: 100, orderBy: MEAN_FLUX, direction: DESC) { nodes { sourceId } } }"
    )
    assert [r[0] for r in rows] == [n["sourceId"] for n in expected["sources"]["nodes"]]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_light_curve_export_has_raw_normalised_and_the_ese_window(
    api: httpx.AsyncClient, graph: Graph, demo: Demo, fmt: str
) -> None:
    source = (
        await graph.data(
            "query($s: String!) { source(sourceId: $s) { lightCurveExportUrl(format: VOTABLE)"
            " lightCurve { points { mjd fluxJy fluxErrJy normFluxJy normFluxErrJy imageId } }"
            " eseCandidates { candidateId startMjd endMjd } } }",
            s=demo.candidate_source,
        )
    )["source"]
    assert (
        source["lightCurveExportUrl"]
        == f"/exports/sources/{quote(demo.candidate_source, safe='')}/lightcurve.votable"
    )
    table = read(await api.get(source["lightCurveExportUrl"].replace(".votable", f".{fmt}")), fmt)
    points = source["lightCurve"]["points"]
    assert len(table) == len(points) > 0
    assert same(numbers(table["mjd"]), [p["mjd"] for p in points])
    assert same(numbers(table["flux_jy"]), [p["fluxJy"] for p in points])
    assert same(numbers(table["norm_flux_err_jy"]), [p["normFluxErrJy"] for p in points])
    assert [int(v) for v in table["image_id"]] == [p["imageId"] for p in points]
    (window,) = source["eseCandidates"]
    inside = [window["startMjd"] <= p["mjd"] <= window["endMjd"] for p in points]
    assert flags(table["in_ese_window"]) == inside
    assert [int(v) for v in table["candidate_id"]] == [window["candidateId"] if i else 0 for i in inside]
    if fmt != "csv":
        assert table["flux_jy"].unit == JY_BEAM and table["mjd"].unit == u.day
    if fmt == "ecsv":
        assert table.meta["source_id"] == demo.candidate_source
        assert table.meta["ese_windows"][0]["start_mjd"] == window["startMjd"]


async def test_image_measurements_and_candidates_export(api: httpx.AsyncClient, graph: Graph) -> None:
    image = (
        await graph.data(
            "{ images(first: 1, orderBy: MJD, direction: ASC) { nodes { imageId nMeasurements"
            " measurementsExportUrl(format: FITS) measurements(first: 500) { nodes { peakFluxJy snr } } } } }"
        )
    )["images"]["nodes"][0]
    table = read(await api.get(image["measurementsExportUrl"]), "fits")
    assert len(table) == image["nMeasurements"] > 0
    assert same(numbers(table["peak_flux_jy"]), [m["peakFluxJy"] for m in image["measurements"]["nodes"]])
    assert table["peak_flux_jy"].unit == JY_BEAM and table["int_flux_jy"].unit == u.Jy

    url = (await graph.data("{ eseCandidatesExportUrl(format: ECSV, filter: {statuses: [ACTIVE]}) }"))[
        "eseCandidatesExportUrl"
    ]
    candidates = read(await api.get(url), "ecsv")
    expected = (
        await graph.data(
            "{ eseCandidates(filter: {statuses: [ACTIVE]}) { nodes { candidateId significance } } }"
        )
    )["eseCandidates"]["nodes"]
    assert [int(c) for c in candidates["candidate_id"]] == [n["candidateId"] for n in expected]
    assert same(numbers(candidates["significance"]), [n["significance"] for n in expected])
    assert str(candidates["status"][0]) == "active" and candidates["end_mjd"].unit == u.day


async def test_an_export_url_with_a_datetime_filter_gives_the_graphs_rows(
    api: httpx.AsyncClient, graph: Graph
) -> None:
    # A DateTime in the filter made the URL's JSON fail to serialise: INTERNAL_SERVER_ERROR.
    after = "2000-01-01T00:00:00Z"
    url = (
        await graph.data(
            "query($a: DateTime!) { eseCandidatesExportUrl(format: CSV, filter: {flaggedAfter: $a}) }",
            a=after,
        )
    )["eseCandidatesExportUrl"]
    assert json.loads(parse_qs(urlparse(url).query)["filter"][0]) == {"flaggedAfter": after}
    candidates = read(await api.get(url), "csv")
    expected = (
        await graph.data(
            "query($a: DateTime!) { eseCandidates(filter: {flaggedAfter: $a}) { totalCount } }", a=after
        )
    )["eseCandidates"]["totalCount"]
    assert len(candidates) == expected > 0


async def test_rest_forms_answer_the_same_rows_as_tables(api: httpx.AsyncClient, demo: Demo) -> None:
    body = {"sort": {"field": "eta", "order": "desc"}, "limit": 5, "offset": 3}
    as_json = (await api.post("/api/sources/search", json=body)).json()
    table = read(await api.post("/api/sources/search?format=csv", json=body), "csv")
    assert [str(s) for s in table["source_id"]] == [s["source_id"] for s in as_json["sources"]]

    candidates = (await api.get("/api/ese/candidates?limit=10")).json()["candidates"]
    votable = read(await api.get("/api/ese/candidates?limit=10&format=votable"), "votable")
    assert [int(c) for c in votable["candidate_id"]] == [c["id"] for c in candidates]

    page = (await api.get("/api/images/1/measurements?page=2&page_size=10")).json()["items"]
    fits_page = read(await api.get("/api/images/1/measurements?page=2&page_size=10&format=fits"), "fits")
    assert [str(s) for s in fits_page["source_id"]] == [m["source_id"] for m in page]

    path = f"/api/sources/{quote(demo.candidate_source, safe='')}/lightcurve"
    curve = (await api.get(path)).json()
    ecsv = read(await api.get(f"{path}?format=ecsv"), "ecsv")
    assert same(numbers(ecsv["flux_jy"]), [p["flux_jy"] for p in curve["flux_points"]])
    download = await api.get(f"{path}?format=fits")
    assert download.headers["content-type"] == "application/fits"
    assert download.headers["content-disposition"].startswith('attachment; filename="lightcurve_NVSS_J')


async def test_bad_export_requests_are_clear_4xx(api: httpx.AsyncClient) -> None:
    assert_envelope(await api.get("/exports/sources.xls"), 422, "VALIDATION_ERROR")
    assert_envelope(await api.get("/exports/sources.csv?filter=not-json"), 400, "INVALID_JSON")
    assert_envelope(await api.get("/exports/sources.csv?filter=[1,2]"), 422, "VALIDATION_ERROR")
    assert_envelope(await api.get("/exports/sources.csv?filter=" + "x" * 20_000), 400, "PARAMETER_TOO_LONG")
    assert_envelope(await api.get("/exports/sources.csv?orderBy=DROP%20TABLE"), 422, "VALIDATION_ERROR")
    assert_envelope(await api.get("/exports/sources.csv?limit=0"), 422, "VALIDATION_ERROR")
    unknown_field = await api.get("/exports/sources.csv?filter=" + quote(json.dumps({"evil": 1})))
    assert unknown_field.status_code == 400 and unknown_field.json()["code"]
    bad_value = await api.get("/exports/sources.csv?filter=" + quote(json.dumps({"cone": {"raDeg": 400}})))
    assert bad_value.status_code == 400
    assert_envelope(await api.get("/exports/sources.csv?orderBy=NOPE"), 400)
    assert_envelope(
        await api.get("/exports/sources/NVSS%20J000000.0%2B000000/lightcurve.csv"), 404, "NOT_FOUND"
    )
    assert_envelope(await api.get("/exports/images/99999/measurements.csv"), 404, "NOT_FOUND")
    assert_envelope(await api.get("/exports/images/abc/measurements.csv"), 422, "VALIDATION_ERROR")
    # past the graph's 32-bit Int: was 400 BAD_USER_INPUT quoting the internal variable `$imageId`
    for key in ("2147483648", "9999999999", "-1"):
        refused = await api.get(f"/exports/images/{key}/measurements.csv")
        assert_envelope(refused, 422, "VALIDATION_ERROR")
        assert "$imageId" not in refused.text
    assert_envelope(await api.get("/api/ese/candidates?format=xls"), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("fmt", ["csv", "fits"])
async def test_candidate_exports_carry_phase_kind_probability_and_red_rms(
    empty_db_url: str, tmp_path: Any, fmt: str
) -> None:
    """What rated a candidate travels with it to a table: phase, kind, false-alarm
    probability and the red-noise rms (a fraction of the normalised flux, no unit). A
    candidate stored before they were recorded has none: an empty CSV cell (not ``nan``,
    which a reader takes for a number), NaN in FITS (its convention for a missing float)."""
    from datetime import UTC, datetime

    from sqlalchemy import insert

    from dsa110.auth.identity import Role
    from dsa110.db import tables as t
    from dsa110.settings import Settings
    from server.app import create_app
    from tests.credentials import key_headers

    engine = create_engine(empty_db_url)
    try:
        async with engine.begin() as conn:
            source_pk = (
                await conn.execute(
                    insert(t.sources)
                    .values(source_id="NVSS J000001.0+420000", ra_deg=180.0, dec_deg=42.0, healpix=0)
                    .returning(t.sources.c.id)
                )
            ).scalar_one()
            common = {
                "source_pk": source_pk, "status": "active", "score": 1.2, "significance": 6.0, "depth": 0.3,
                "baseline_flux_jy": 1.0, "min_flux_jy": 0.7, "updated_at": datetime(2025, 1, 2, tzinfo=UTC),
            }  # fmt: skip
            await conn.execute(
                insert(t.ese_candidates),
                [
                    {**common, "start_mjd": 60010.0, "end_mjd": 60040.0, "detector_version": "ese-drw-2.0",
                     "flagged_at": datetime(2025, 1, 1, tzinfo=UTC), "phase": None, "kind": None,
                     "false_alarm_probability": None, "red_rms": None},
                    {**common, "start_mjd": 60100.0, "end_mjd": 60130.0, "detector_version": "ese-drw-3.6",
                     "flagged_at": datetime(2025, 1, 2, tzinfo=UTC), "phase": "confirmed", "kind": "dip",
                     "false_alarm_probability": 0.004, "red_rms": 0.034},
                ],
            )  # fmt: skip
    finally:
        await engine.dispose()
    app = create_app(Settings(data_dir=tmp_path, database_url=empty_db_url), migrate=False)
    headers = await key_headers(empty_db_url, Role.OPERATOR)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=headers
    ) as http:
        response = await http.get(f"/exports/ese_candidates.{fmt}?orderBy=FLAGGED_AT&direction=ASC")
    await app.state.engine.dispose()
    assert response.status_code == 200, response.text[:500]
    columns = ("detector_version", "phase", "kind", "false_alarm_probability", "red_rms")
    if fmt == "csv":
        import csv

        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [tuple(r[c] for c in columns) for r in rows] == [
            ("ese-drw-2.0", "", "", "", ""),
            ("ese-drw-3.6", "confirmed", "dip", "0.004", "0.034"),
        ]
        assert all(r["significance"] == "6.0" for r in rows)  # a value is still written
    else:
        table = read(response, "fits")
        # astropy reads FITS's empty string back as masked; tolist() gives it as "".
        assert table["phase"].tolist() == ["", "confirmed"] and table["kind"].tolist() == ["", "dip"]
        assert same(numbers(table["false_alarm_probability"]), [None, 0.004])
        assert same(numbers(table["red_rms"]), [None, 0.034])
        assert table["red_rms"].unit is None  # a fraction
        header = fits_header(response.content)
        red = next(i for i in range(1, header["TFIELDS"] + 1) if header[f"TTYPE{i}"] == "red_rms")
        assert header[f"TFORM{red}"] == "D" and "fraction of the normalised flux" in header[f"TCOMM{red}"]


def fits_header(content: bytes) -> Any:
    from astropy.io import fits

    with fits.open(io.BytesIO(content)) as hdus:
        return hdus[1].header.copy()
