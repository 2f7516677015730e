"""Input no handler expected: each answers a coded 4xx over HTTP, never a 500.

The cases are the reproductions of issue 15 item 5: bodies that are JSON but not an
operation, variables nested far too deep, the cut-out URL a tiny ``sizeArcsec`` hands out,
a lone surrogate, strawberry's own refusals (batching, bad JSON, content type, GET
mutations), and database rows naming files outside the configured roots.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Role
from dsa110.db.tables import images, mosaics
from dsa110.errors import KEPT_TAIL, MAX_MESSAGE, MAX_QUOTED, NotFoundError, bounded_message, shown
from dsa110.settings import Settings
from server.app import create_app
from tests.credentials import key_headers
from tests.live.conftest import LiveApp
from tests.science.fits_factory import sin_header, write_image

QUERY = "{ sources(first: 1) { totalCount } }"
BY_NAME = "query($n: String!) { source(sourceId: $n) { sourceId } }"
RA0, DEC0 = 105.346, 42.0
CELL_ARCSEC = 90.0  # the demo's (and DSA-110 tiles') pixel: 30 arcsec is a third of one


@pytest.fixture
async def live(empty_db_url: str, tmp_path: Path) -> AsyncIterator[LiveApp]:
    settings = Settings(data_dir=tmp_path / "data", database_url=empty_db_url, metrics_interval_s=0)
    settings.data_dir.mkdir()
    app = create_app(settings, migrate=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        yield LiveApp(app, http)
    await app.state.engine.dispose()


def _code(response: Any) -> str:
    return str(response.json()["errors"][0]["extensions"]["code"])


async def _post(live: LiveApp, body: bytes, content_type: str = "application/json") -> Any:
    return await live.http.post("/graphql", content=body, headers={"content-type": content_type})


@pytest.mark.parametrize("body", [b"42", b'"str"', b"null", b"true"])
async def test_a_json_body_that_is_not_an_object_is_400(live: LiveApp, body: bytes) -> None:
    response = await _post(live, body)
    assert response.status_code == 400
    assert _code(response) == "BAD_REQUEST"


@pytest.mark.parametrize("depth", [1200, 100])
@pytest.mark.parametrize(("opening", "closing"), [("[", "]"), ('{"a":', "}")])
async def test_variables_nested_too_deep_are_400(
    live: LiveApp, depth: int, opening: str, closing: str
) -> None:
    nested = opening * depth + "1" + closing * depth
    body = f'{{"query": "{QUERY}", "variables": {{"x": {nested}}}}}'.encode()
    response = await _post(live, body)
    assert response.status_code == 400
    assert _code(response) == "NESTED_TOO_DEEP"


async def test_a_document_nested_too_deep_is_refused_with_a_code(live: LiveApp) -> None:
    document = "{ sources " + "{ nodes " * 1200 + "}" * 1201
    response = await live.http.post("/graphql", json={"query": document})
    assert response.status_code < 500  # a GraphQL request error: 200, or 400 if the parser gave up
    assert _code(response) in {"NESTED_TOO_DEEP", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"}


async def test_a_lone_surrogate_in_a_string_variable_is_400(live: LiveApp) -> None:
    body = json.dumps({"query": BY_NAME, "variables": {"n": "\ud800"}}).encode()
    assert b"\\ud800" in body
    response = await _post(live, body)
    assert response.status_code == 400
    assert _code(response) == "INVALID_UNICODE"


async def test_batching_is_refused_with_a_code(live: LiveApp) -> None:
    response = await live.http.post("/graphql", json=[{"query": QUERY}, {"query": QUERY}])
    assert response.status_code == 400
    assert _code(response) == "BATCHING_NOT_SUPPORTED"


async def test_bad_json_is_refused_with_a_code(live: LiveApp) -> None:
    response = await _post(live, b'{"query": ')
    assert response.status_code == 400
    assert _code(response) == "INVALID_JSON"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_not_json(live: LiveApp, literal: str) -> None:
    # Python's json module accepts them; RFC 8259 does not, and no filter or row can hold them.
    document = "query($f: SourceFilter) { sources(first: 1, filter: $f) { totalCount } }"
    body = f'{{"query": "{document}", "variables": {{"f": {{"fluxMinJy": {literal}}}}}}}'.encode()
    response = await _post(live, body)
    assert response.status_code == 400
    assert _code(response) == "INVALID_JSON"
    admin = await key_headers(live.engine, Role.ADMIN)
    region = f'{{"image_id": 1, "name": "r", "type": "circle", "coordinates": {{"ra_deg": {literal}}}}}'
    rest = await live.http.post(
        "/api/regions", content=region.encode(), headers={**admin, "content-type": "application/json"}
    )
    assert rest.status_code == 400, rest.text
    assert rest.json()["code"] == "INVALID_JSON"  # the code /graphql gives (compat_rest.query_json)


@pytest.mark.parametrize("content_type", ["text/plain", "application/merge-patch+json"])
async def test_a_wrong_content_type_is_415_with_a_code(live: LiveApp, content_type: str) -> None:
    response = await _post(live, json.dumps({"query": QUERY}).encode(), content_type)
    assert response.status_code == 415
    assert _code(response) == "UNSUPPORTED_MEDIA_TYPE"


async def test_a_mutation_over_get_is_405_with_a_code(live: LiveApp) -> None:
    document = 'mutation { setAutoPublish(dataId: "x", enabled: true) { dataId } }'
    response = await live.http.get("/graphql", params={"query": document})
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert _code(response) == "METHOD_NOT_ALLOWED"


# "²" passes str.isdigit() and fails int(): each of these answered a bare 500.
UNICODE_DIGIT_URLS = [
    "/api/operations/dlq/items/{d}",
    "/api/operations/dlq/items/webhook-{d}",
    "/vo/scs?RA=180&DEC=42&SR=0.5&MAXREC={d}",
    "/exports/images/1/measurements.csv?limit={d}",
    "/exports/images/{d}/measurements.csv",
    "/api/uvh5?subband=sb{d}",
    "/plots/sources/NVSS%20J1/lightcurve.png?width={d}",
    "/cutouts/images/{d}.png?ra=1&dec=2&size=60",
    "/files/images/{d}.fits",
]


@pytest.mark.parametrize("template", UNICODE_DIGIT_URLS)
async def test_a_digit_that_is_not_ascii_is_refused_like_a_letter(live: LiveApp, template: str) -> None:
    digit = await live.http.get(template.format(d="%C2%B2"))
    letter = await live.http.get(template.format(d="x"))
    assert letter.status_code < 500
    assert digit.status_code == letter.status_code, digit.text
    assert digit.headers["content-type"] == letter.headers["content-type"]


async def test_another_method_is_405_with_a_code(live: LiveApp) -> None:
    response = await live.http.request("PATCH", "/graphql")
    assert response.status_code == 405
    assert _code(response) == "METHOD_NOT_ALLOWED"


async def _image_row(engine: AsyncEngine, path: Path | str) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(images)
            .values(path=str(path), type="image", created_at=datetime.now(UTC), mid_mjd=60_000.0)
            .returning(images.c.id)
        )
        return int(result.scalar_one())


async def _mosaic_row(engine: AsyncEngine, path: Path | str, name: str) -> int:
    async with engine.begin() as conn:
        result = await conn.execute(
            insert(mosaics)
            .values(
                name=name,
                path=str(path),
                status="completed",
                created_at=datetime.now(UTC),
                start_mjd=60_000.0,
                end_mjd=60_001.0,
            )
            .returning(mosaics.c.id)
        )
        return int(result.scalar_one())


def _fits(path: Path) -> Path:
    header = sin_header(nx=64, ny=64, ra0=RA0, dec0=DEC0, cell_arcsec=CELL_ARCSEC)
    data = np.random.default_rng(7).normal(0.0, 0.01, (1, 1, 64, 64))
    data[0, 0, 32, 32] = 1.0
    return write_image(path, data, header)


async def test_the_cutout_url_of_a_tiny_size_works(live: LiveApp) -> None:
    data_dir = live.app.state.settings.data_dir
    image_id = await _image_row(live.engine, _fits(data_dir / "tile.fits"))
    document = "query($i: Int!) { image(imageId: $i) { cutout(raDeg: 105.346, decDeg: 42, sizeArcsec: 30) { pngUrl fitsUrl } } }"
    answer = await live.http.post("/graphql", json={"query": document, "variables": {"i": image_id}})
    stamp = answer.json()["data"]["image"]["cutout"]
    assert stamp["pngUrl"] == f"/cutouts/images/{image_id}.png?ra=105.3460000&dec=42.0000000&size=30"
    png = await live.http.get(stamp["pngUrl"])
    assert png.status_code == 200, png.text
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    fits_stamp = await live.http.get(stamp["fitsUrl"])
    assert fits_stamp.status_code == 200, fits_stamp.text


@pytest.mark.parametrize("size", ["0", "-30", "1e999"])
async def test_the_cutout_field_hands_out_no_url_that_fails(live: LiveApp, size: str) -> None:
    image_id = await _image_row(live.engine, _fits(live.app.state.settings.data_dir / "tile.fits"))
    document = f"query($i: Int!) {{ image(imageId: $i) {{ cutout(raDeg: 105.3, decDeg: 42, sizeArcsec: {size}) {{ pngUrl }} }} }}"
    answer = await live.http.post("/graphql", json={"query": document, "variables": {"i": image_id}})
    assert answer.status_code < 500
    assert _code(answer) in {"BAD_SIZE", "BAD_USER_INPUT"}


async def test_a_row_pointing_at_a_symlink_out_of_the_roots_serves_nothing(live: LiveApp) -> None:
    data_dir = live.app.state.settings.data_dir
    link = data_dir / "passwd.fits"
    os.symlink("/etc/passwd", link)
    inside = _fits(data_dir / "real.fits")
    hostile = {
        "link": await _image_row(live.engine, link),
        "absolute": await _image_row(live.engine, "/etc/passwd"),
        "dotdot": await _image_row(live.engine, f"{data_dir}/../../../../etc/passwd"),
    }
    good = await _image_row(live.engine, inside)
    mosaic_link = await _mosaic_row(live.engine, link, "hostile")
    mosaic_good = await _mosaic_row(live.engine, inside, "good")
    assert (await live.http.get(f"/files/images/{good}.fits")).status_code == 200
    assert (await live.http.get(f"/files/mosaics/{mosaic_good}.fits")).status_code == 200
    assert (await live.http.get(f"/api/images/{good}/fits")).status_code == 200
    urls = [
        *(f"/files/images/{pk}.fits" for pk in hostile.values()),
        *(f"/api/images/{pk}/fits" for pk in hostile.values()),
        *(f"/cutouts/images/{pk}.png?ra={RA0}&dec={DEC0}&size=600" for pk in hostile.values()),
        f"/files/mosaics/{mosaic_link}.fits",
        f"/api/mosaics/{mosaic_link}/fits",
    ]
    for url in urls:
        response = await live.http.get(url)
        assert response.status_code in (403, 404), (url, response.status_code)
        assert "root:" not in response.text
        body = response.json()
        code = body["code"] if url.startswith("/api/") else body["errors"][0]["extensions"]["code"]
        assert code in {"NOT_FOUND", "FILE_NOT_FOUND"}, (url, body)


# What an error quotes of the input is bounded (``dsa110.errors``): a 100k-character
# ``sourceId`` came back twice (the message and ``details``), ``fit(raDeg: -1e308)`` printed
# a 309-digit number.

HUGE = "J" * 100_000
SMALL = 1_000  # bytes an error answer may take, quoted input included


def _one_error(response: Any) -> dict[str, Any]:
    errors = response.json()["errors"]
    assert len(errors) == 1
    return errors[0]  # type: ignore[no-any-return]


async def test_a_huge_source_id_is_not_echoed_back(live: LiveApp) -> None:
    for variables, query in (
        ({"n": HUGE}, BY_NAME),  # a variable
        ({}, f'{{ source(sourceId: "{HUGE}") {{ sourceId }} }}'),  # a literal in the document
    ):
        answer = await live.http.post("/graphql", json={"query": query, "variables": variables})
        assert answer.status_code == 200 and len(answer.content) < SMALL, len(answer.content)
        error = _one_error(answer)
        assert error["extensions"]["code"] == "NOT_FOUND"
        message = error["message"]
        assert message.startswith("no source 'JJJJ") and message.endswith("JJJ'") and "\u2026" in message
        assert all(len(str(v)) <= MAX_QUOTED + 1 for v in error["extensions"].get("details", {}).values())


async def test_a_huge_literal_of_the_wrong_type_is_not_echoed_back(live: LiveApp) -> None:
    answer = await live.http.post(
        "/graphql", json={"query": f"{{ source(sourceId: {'9' * 5000}) {{ sourceId }} }}"}
    )
    assert len(answer.content) < SMALL, len(answer.content)
    assert _one_error(answer)["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_a_huge_number_is_shown_to_six_digits(live: LiveApp) -> None:
    image_id = await _image_row(live.engine, _fits(live.app.state.settings.data_dir / "tile.fits"))
    for ra in ("-1e308", "1e308"):
        document = f"query($i: Int!) {{ image(imageId: $i) {{ fit(raDeg: {ra}, decDeg: 42) {{ model }} }} }}"
        answer = await live.http.post("/graphql", json={"query": document, "variables": {"i": image_id}})
        assert len(answer.content) < SMALL, answer.text
        error = _one_error(answer)
        assert error["extensions"]["code"] == "OUT_OF_IMAGE"
        assert f"RA={float(ra):.6g} " in error["message"], error["message"]  # -1e+308


def test_the_bound_by_hand() -> None:
    assert bounded_message("no source 'NVSS J123456.7+420312'") == "no source 'NVSS J123456.7+420312'"
    quoted = bounded_message(f"no source {HUGE!r}")
    head = MAX_QUOTED - KEPT_TAIL - 1
    assert quoted == f"no source '{'J' * (head - 1)}\u2026{'J' * (KEPT_TAIL - 1)}'"
    spaced = bounded_message("no source " + "ab " * 50_000)
    assert len(spaced) == MAX_MESSAGE + 1 and spaced.endswith("\u2026")
    assert bounded_message(f"RA={1e308:f} is out") == "RA=1e+308 is out"
    assert bounded_message(f"RA={-1e308:f}, out") == "RA=-1e+308, out"
    error = NotFoundError(f"no source {HUGE!r}", key=HUGE, big=10**400, ra=-1e308, n=42)
    assert len(error.message) <= MAX_QUOTED + len("no source ") and str(error) == error.message
    huge_key = "J" * head + "\u2026" + "J" * KEPT_TAIL
    assert error.details == {"key": huge_key, "big": "~1e+400", "ra": -1e308, "n": 42}
    assert shown(True) is True and shown(None) is None


# A path is quoted whole up to 200 characters (``dsa110.ops.stages.params``): what tells
# two of them apart is at the end (the observation's time, the subband).
PADDING = " (the stage cannot start)" * 8  # the message is long enough to be looked at


def _path(length: int, name: str = "2025-10-24T14:00:00_cal.ms") -> str:
    root = "/stage/dsa110-contimg/ms/"
    return root + "d" * (length - len(root) - len(name) - 1) + "/" + name


@pytest.mark.parametrize("length", [132, 200])
def test_a_path_quoted_in_a_message_is_kept_whole(length: int) -> None:
    path = _path(length)
    assert len(path) == length
    for message in (
        f"`ms`: {path!r} is not a CASA table (Measurement Set){PADDING}",
        f"no file {path!r}, {PADDING}",
    ):
        assert bounded_message(message) == message
    assert NotFoundError(f"no file {path!r}{PADDING}", path=path).details == {"path": path}


def test_a_longer_path_keeps_its_head_and_its_end() -> None:
    path = _path(2_000, name="2025-10-24T14:05:09_sb15.hdf5")
    message = bounded_message(f"`files`: no file {path!r}{PADDING}")
    quoted = message.split()[3]
    assert len(quoted) == MAX_QUOTED and quoted.startswith("'/stage/dsa110-contimg/ms/ddd")
    assert quoted.endswith("d/2025-10-24T14:05:09_sb15.hdf5'") and "\u2026" in quoted
    assert message.endswith(PADDING)


def test_digits_in_a_file_name_are_not_a_number() -> None:
    for name in (
        "/data/incoming/2025102414000000123_sb01.hdf5",
        "/data/incoming/2025102414000000123.hdf5",
        "/data/2025102414000000123/sb01.hdf5",
        "obs-2025102414000000123",
        "run_12345678901234567890",
    ):
        message = f"no file {name!r}{PADDING}"
        assert bounded_message(message) == message
        assert shown(name) == name
    # A number standing alone is still shown to 6 digits, inside quotes or ending a sentence.
    assert bounded_message(f"no image '{10**30}'{PADDING}") == f"no image '1e+30'{PADDING}"
    assert bounded_message(f"{PADDING} got {10**30}.") == f"{PADDING} got 1e+30."
    assert len(bounded_message(f"value {'9' * 309}{PADDING}")) < 250
