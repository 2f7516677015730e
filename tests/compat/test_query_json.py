"""JSON in query parameters (``/exports/...?filter=``, ``/api/images/{id}/profile?coordinates=``):
the strict parser, a size and a nesting limit, a 400 with a code for each fault, never a 500."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest

from tests.compat.conftest import assert_envelope

LINE = "/api/images/1/profile?profile_type=line&coordinates="
FILTERED = "/exports/sources.csv?filter="

NOT_JSON = [
    "not-json",
    "{",
    '{"fluxMinJy": NaN}',
    '{"fluxMinJy": Infinity}',
    '{"fluxMinJy": -Infinity}',
    "NaN",
]
COORDINATES_NOT_JSON = ["[[10, 20], [11", "[[NaN, 20], [11, 21]]", "[[10, Infinity], [11, 21]]", "-Infinity"]


@pytest.mark.parametrize("text", NOT_JSON)
async def test_a_filter_that_is_not_json_is_400_invalid_json(api: httpx.AsyncClient, text: str) -> None:
    body = assert_envelope(await api.get(FILTERED + quote(text)), 400, "INVALID_JSON")
    assert body["details"] == {"parameter": "filter"}


@pytest.mark.parametrize("text", COORDINATES_NOT_JSON)
async def test_coordinates_that_are_not_json_are_400_invalid_json(api: httpx.AsyncClient, text: str) -> None:
    body = assert_envelope(await api.get(LINE + quote(text)), 400, "INVALID_JSON")
    assert body["details"] == {"parameter": "coordinates"}


async def test_oversized_json_parameters_are_400_parameter_too_long(api: httpx.AsyncClient) -> None:
    padded = '{"sourceIds": ["' + "x" * 20_000 + '"]}'
    assert_envelope(await api.get(FILTERED + quote(padded)), 400, "PARAMETER_TOO_LONG")
    assert_envelope(await api.get(FILTERED + "x" * 20_000), 400, "PARAMETER_TOO_LONG")
    pairs = "[" + ", ".join(["[10.000000000001, 20.000000000001]"] * 300) + "]"
    assert_envelope(await api.get(LINE + quote(pairs)), 400, "PARAMETER_TOO_LONG")


async def test_over_deep_json_parameters_are_400_nested_too_deep(api: httpx.AsyncClient) -> None:
    deep_filter = '{"cone": ' * 9 + "1" + "}" * 9  # 9 levels: the limit is 8
    assert_envelope(await api.get(FILTERED + quote(deep_filter)), 400, "NESTED_TOO_DEEP")
    # Deeper than the interpreter's own parser goes (RecursionError), within the size limit.
    assert_envelope(await api.get(FILTERED + "[" * 10_000), 400, "NESTED_TOO_DEEP")
    assert_envelope(await api.get(LINE + quote("[[[10, 20]], [[11, 21]]]")), 400, "NESTED_TOO_DEEP")
    assert_envelope(await api.get(LINE + "[" * 5000), 400, "NESTED_TOO_DEEP")


async def test_a_lone_surrogate_in_a_json_parameter_is_400_invalid_unicode(api: httpx.AsyncClient) -> None:
    lone = quote('{"sourceIds": ["\\ud800"]}')
    assert_envelope(await api.get(FILTERED + lone), 400, "INVALID_UNICODE")
    key = quote('{"\\udfff": 1}')
    assert_envelope(await api.get(FILTERED + key), 400, "INVALID_UNICODE")


async def test_json_of_the_wrong_shape_is_still_422(api: httpx.AsyncClient) -> None:
    assert_envelope(await api.get(FILTERED + quote("[1, 2]")), 422, "VALIDATION_ERROR")
    assert_envelope(await api.get(LINE + quote('{"ra": 1}')), 422, "VALIDATION_ERROR")
    assert_envelope(await api.get(LINE + quote("[[10, 20]]")), 422, "VALIDATION_ERROR")  # a line needs 2


async def test_good_json_parameters_still_work(api: httpx.AsyncClient) -> None:
    nested = quote('{"cone": {"raDeg": 10.0, "decDeg": 20.0, "radiusArcsec": 3600.0}}')
    response = await api.get(FILTERED + nested)
    assert response.status_code == 200, response.text
    image = (await api.get("/api/images", params={"limit": 1})).json()
    assert image  # the demo has images
    spaced = quote(" [ [ 0 , 0 ] , [ 10 , 10 ] ] ")
    answer = await api.get(
        f"/api/images/1/profile?profile_type=line&coordinate_system=pixel&coordinates={spaced}"
    )
    assert answer.status_code == 200, answer.text
