"""Files over HTTP: whole FITS images and mosaics, and cut-outs as FITS or PNG.

The graph hands out URLs (``Image.fitsUrl``, ``Source.postageStamps``); these routes
serve them. Each looks the file up through the graph (never from a client-supplied
path) and opens only its real location under the configured roots
(``dsa110.ops.files.paths.resolve_stored``): a row naming a file elsewhere, or a symlink
leading out, is ``FILE_NOT_FOUND``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from dsa110.ops.files.paths import Kind, resolve_stored
from dsa110.science.cutout import make_cutout
from dsa110.science.errors import ScienceInputError
from loaders.entities import IMAGE, MOSAIC
from loaders.relations import Entity
from resolvers import science
from schema.schema import make_context

STATUS_BY_CODE = {"NOT_FOUND": 404, "FILE_NOT_FOUND": 404, "OUT_OF_IMAGE": 404}
MEDIA = {"fits": "application/fits", "png": "image/png"}


def error_response(message: str, code: str, status: int | None = None) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code}}]},
        status_code=status or STATUS_BY_CODE.get(code, 400),
    )


async def _path_of(request: Request, entity: Entity[Any], key: int) -> str | None:
    app = request.app
    context = make_context(app.state.engine, app.state.settings, request=request)
    row: Any = await context.loaders.by_key(entity).load(key)
    return None if row is None else str(row.path)


def _int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else None


async def image_fits(request: Request) -> Response:
    return await _whole_file(request, IMAGE)


async def mosaic_fits(request: Request) -> Response:
    return await _whole_file(request, MOSAIC)


async def _whole_file(request: Request, entity: Entity[Any]) -> Response:
    key = _int(request.path_params["key"])
    path = await _path_of(request, entity, key) if key is not None else None
    if path is None:
        return error_response(f"no such {entity.label}", "NOT_FOUND")
    roots = request.app.state.settings.file_roots
    try:
        real = await asyncio.to_thread(resolve_stored, path, roots, Kind.FILE)
    except LookupError:  # missing, or not under the roots: the same answer
        return error_response("the file is not on disk", "FILE_NOT_FOUND")
    return FileResponse(real, media_type=MEDIA["fits"], filename=f"{entity.name}-{key}.fits")


def _float(request: Request, name: str) -> float:
    raw = request.query_params.get(name)
    try:
        value = float(raw) if raw is not None and len(raw) < 40 else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ScienceInputError("BAD_USER_INPUT", f"query parameter `{name}` must be a finite number")
    return value


async def cutout(request: Request) -> Response:
    key = _int(request.path_params["key"])
    fmt = request.path_params["fmt"]
    if fmt not in MEDIA:
        return error_response("format must be fits or png", "BAD_USER_INPUT")
    path = await _path_of(request, IMAGE, key) if key is not None else None
    if path is None:
        return error_response("no such image", "NOT_FOUND")
    try:
        ra, dec, size = _float(request, "ra"), _float(request, "dec"), _float(request, "size")
        context = make_context(request.app.state.engine, request.app.state.settings, request=request)
        image = await science.sky_image(context, path)
        stamp = await asyncio.to_thread(make_cutout, image, ra, dec, size)
        body = await asyncio.to_thread(stamp.to_fits_bytes if fmt == "fits" else stamp.to_png_bytes)
    except ScienceInputError as error:
        return error_response(error.message, error.code)
    headers = {"cache-control": "public, max-age=86400"}
    if fmt == "fits":
        headers["content-disposition"] = f'attachment; filename="cutout-{key}.fits"'
    return Response(body, media_type=MEDIA[fmt], headers=headers)


ROUTES = [
    Route("/files/images/{key}.fits", image_fits),
    Route("/files/mosaics/{key}.fits", mosaic_fits),
    Route("/cutouts/images/{key}.{fmt}", cutout),
]
