"""Science on demand: light curves, image analysis on the FITS files, catalogs.

Image work (open, fit, profile, statistics) runs in the science threads: a fit on a large
image must not stall the event loop that serves every other client. Each request opens
an image file at most once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dsa110.ops.files.paths import CONTROL_CHARACTERS, Kind, resolve_stored
from dsa110.ops.ingest import NormalisedLightCurve, normalised_light_curves
from dsa110.science import catalogs, external, fitting, pixelbox, profile_fit, profiles, regions
from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage, open_image
from dsa110.science.threads import in_science_thread
from loaders.entities import IMAGE, REGION
from resolvers import lists
from resolvers.context import GraphContext
from resolvers.errors import BadUserInput, NotFound

if TYPE_CHECKING:  # the graph's type of an image row (loaders.entities.IMAGE)
    from schema.types import Image

MAX_STAMPS = 50
MAX_PATH_CHARS = 4096  # PATH_MAX on Linux
# No stored path holds a control character, and PostgreSQL refuses NUL in text.


async def light_curve(ctx: GraphContext, source_pk: int) -> NormalisedLightCurve | None:
    """Raw and normalised points of one source (batched over the request's sources)."""
    engine = ctx.engine

    async def batch(keys: list[int]) -> list[NormalisedLightCurve | None]:
        curves = await normalised_light_curves(engine, keys)
        return [curves.get(key) for key in keys]

    return await ctx.loaders.custom("light_curve", batch).load(source_pk)


async def sky_image(ctx: GraphContext, path: str) -> SkyImage:
    """The FITS image at ``path`` (from the database), opened once per request; only a file
    under the configured roots (``dsa110.ops.files.paths.resolve_stored``) is opened."""
    cache: dict[str, asyncio.Future[SkyImage]] = ctx.extras.setdefault("sky_images", {})
    if path not in cache:
        roots = ctx.settings.file_roots
        cache[path] = asyncio.ensure_future(in_science_thread(_open_stored, path, roots))
    return await cache[path]


def _open_stored(path: str, roots: Sequence[Path]) -> SkyImage:
    try:
        real = resolve_stored(path, roots, Kind.FILE)
    except LookupError:
        raise ScienceInputError("FILE_NOT_FOUND", "the image file is not on disk") from None
    return open_image(real)


async def image_by_pk(ctx: GraphContext, image_pk: int) -> Image:
    image = await ctx.loaders.by_key(IMAGE).load(image_pk)
    if image is None:
        raise NotFound(f"no image {image_pk}", imageId=image_pk)
    return image


async def image_by_id_or_path(ctx: GraphContext, image_id: int | None, path: str | None) -> Image:
    """The image with this integer id or this exact file path (exactly one of them)."""
    if (image_id is None) == (path is None):
        raise BadUserInput("give exactly one of `imageId` and `path`", field="imageId")
    if path is None:
        return await lists.by_natural_key(ctx, IMAGE, image_id)
    if not 0 < len(path) <= MAX_PATH_CHARS or CONTROL_CHARACTERS.search(path):
        raise BadUserInput(
            f"`path` must be 1 to {MAX_PATH_CHARS} characters without control characters", field="path"
        )
    image = await ctx.loaders.by_key(IMAGE, "path").load(path)
    if image is None:
        raise NotFound("no image has this path", path=path[:128])
    return image


async def region_shape_on_image(ctx: GraphContext, region_id: int, image_pk: int) -> Any:
    """The shape of region ``region_id``, which must be drawn on image ``image_pk``."""
    region = await ctx.loaders.by_key(REGION).load(region_id)
    if region is None or region.image_pk != image_pk:
        raise NotFound(f"no region {region_id} on this image", regionId=region_id)
    return region.shape


async def fit_source(
    ctx: GraphContext,
    path: str,
    ra_deg: float | None,
    dec_deg: float | None,
    box_arcsec: float | None,
    region_shape: Any,
    fit_background: bool,
    model: str,
) -> fitting.SourceFit:
    image = await sky_image(ctx, path)
    region = regions.region_from_json(region_shape) if region_shape is not None else None
    return await in_science_thread(
        fitting.fit_source_2d,
        image,
        ra_deg,
        dec_deg,
        box_arcsec=box_arcsec,
        region=region,
        fit_background=fit_background,
        model=model,
    )


async def fit_profile(result: profiles.Profile, model: str) -> profile_fit.ProfileFit:
    return await in_science_thread(profile_fit.fit_profile, result, model)


async def axis_slice(
    ctx: GraphContext, path: str, axis: Literal["x", "y"], position: int | None
) -> profiles.Profile:
    image = await sky_image(ctx, path)
    return await in_science_thread(profiles.axis_slice, image, axis, position)


async def profile(
    ctx: GraphContext,
    path: str,
    kind: str,
    points: Sequence[profiles.Position],
    width_arcsec: float,
    radius_arcsec: float | None,
    n_annuli: int,
) -> profiles.Profile:
    """A line, polyline or radial profile; ``points`` are (RA, Dec) pairs or ``profiles.Pixel``s."""
    image = await sky_image(ctx, path)
    if kind == "radial":
        if len(points) != 1 or radius_arcsec is None:
            raise ScienceInputError("BAD_PROFILE", "a radial profile needs one centre point and radiusArcsec")
        return await in_science_thread(
            profiles.radial_profile, image, points[0], radius_arcsec, n_annuli=n_annuli
        )
    if kind == "line":
        if len(points) != 2:
            raise ScienceInputError("BAD_PROFILE", "a line profile needs exactly two points")
        return await in_science_thread(
            profiles.line_profile, image, points[0], points[1], width_arcsec=width_arcsec
        )
    return await in_science_thread(profiles.polyline_profile, image, points, width_arcsec=width_arcsec)


async def region_statistics(ctx: GraphContext, path: str, shape: Any) -> regions.RegionStatistics:
    image = await sky_image(ctx, path)
    return await in_science_thread(regions.region_statistics, image, regions.region_from_json(shape))


async def catalog_overlay(
    ctx: GraphContext, path: str, catalog: str | None, min_flux_jy: float | None, limit: int
) -> list[tuple[catalogs.CatalogEntry, float, float]]:
    image = await sky_image(ctx, path)
    return await catalogs.catalog_overlay(
        ctx.engine, image, catalog=catalog, min_flux_jy=min_flux_jy, limit=limit
    )


async def cone_search(
    ctx: GraphContext,
    ra_deg: float,
    dec_deg: float,
    radius_arcsec: float,
    catalog: str | None,
    min_flux_jy: float | None,
    limit: int,
) -> list[catalogs.CatalogEntry]:
    return await catalogs.cone_search(
        ctx.engine,
        ra_deg,
        dec_deg,
        radius_arcsec / 3600.0,
        catalog=catalog,
        min_flux_jy=min_flux_jy,
        limit=limit,
    )


async def external_catalog(
    ctx: GraphContext, service: str, ra_deg: float, dec_deg: float, radius_arcsec: float
) -> external.ExternalResult:
    return await external.query_external(ctx.engine, service, ra_deg, dec_deg, radius_arcsec)


def stamp_images(images: list[Any], limit: int) -> list[Any]:
    if not 1 <= limit <= MAX_STAMPS:
        raise ScienceInputError("BAD_SIZE", f"limit must be in [1, {MAX_STAMPS}]")
    return images[-limit:]


async def pixel_box(
    ctx: GraphContext, path: str, x0: int, y0: int, width: int, height: int
) -> pixelbox.PixelBox:
    image = await sky_image(ctx, path)
    return await in_science_thread(pixelbox.pixel_box, image, x0, y0, width, height)
