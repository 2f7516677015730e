"""Catalog overlay: catalog entries in a cone, or on an image with their pixel positions."""

from __future__ import annotations

from typing import Any

from compat_rest.params import Args, Float, Int, Param, PathStr, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import INT, NUM, STR, arr, null, obj
from dsa110.settings import Settings

TAG = "catalog"
CATALOGS = ("all", "nvss", "vlass", "first", "rax")

OVERLAY = """
query RestOverlay($ra: Float!, $dec: Float!, $radius: Float!, $catalog: String, $limit: Int!) {
  catalogSources(raDeg: $ra, decDeg: $dec, radiusArcsec: $radius, catalog: $catalog, limit: $limit) {
    separationArcsec entry { catalog name raDeg decDeg fluxJy }
  }
}
"""


IMAGE_OVERLAY = """
query RestImageOverlay($imageId: Int, $path: String, $catalog: String, $minFlux: Float) {
  image(imageId: $imageId, path: $path) {
    centerRaDeg centerDecDeg imsizeX imsizeY cellsizeArcsec
    catalogOverlay(catalog: $catalog, minFluxJy: $minFlux, limit: 1000) {
      x y entry { name raDeg decDeg fluxJy }
    }
  }
}
"""


def image_reference(ref: str) -> dict[str, Any]:
    """An image by its id (``17224``) or by its path (the legacy server took only paths)."""
    text = ref.strip()
    if text.isascii() and text.isdigit() and len(text) <= 9:
        return {"imageId": int(text), "path": None}
    return {"imageId": None, "path": text}


def image_overlay_variables(args: Args) -> dict[str, Any]:
    return {**image_reference(args["image_ref"]), "catalog": args["catalog"], "minFlux": args["min_flux_jy"]}


def shape_image_overlay(data: dict[str, Any], args: Args) -> dict[str, Any]:
    image = data["image"]
    nx, ny, cell = image["imsizeX"], image["imsizeY"], image["cellsizeArcsec"]
    return {
        "sources": [
            {
                "x": m["x"],
                "y": m["y"],
                "ra": m["entry"]["raDeg"],
                "dec": m["entry"]["decDeg"],
                "flux_jy": m["entry"]["fluxJy"],
                "name": m["entry"]["name"],
            }
            for m in image["catalogOverlay"]
        ],
        "image_info": {
            "center_ra": image["centerRaDeg"],
            "center_dec": image["centerDecDeg"],
            "width_deg": nx * cell / 3600.0 if nx is not None and cell is not None else None,
            "height_deg": ny * cell / 3600.0 if ny is not None and cell is not None else None,
            "nx": nx,
            "ny": ny,
            "pixel_scale_arcsec": cell,
        },
        "catalog_used": args["catalog"],
    }


def overlay_variables(args: Args) -> dict[str, Any]:
    catalog = args["catalog"]
    return {
        "ra": args["ra"],
        "dec": args["dec"],
        "radius": args["radius"] * 3600.0,
        "catalog": None if catalog == "all" else catalog,
        "limit": args["limit"],
    }


def shape_overlay(data: dict[str, Any], args: Args) -> dict[str, Any]:
    sources = [
        {
            "ra_deg": m["entry"]["raDeg"],
            "dec_deg": m["entry"]["decDeg"],
            "flux_mjy": m["entry"]["fluxJy"] * 1000.0 if m["entry"]["fluxJy"] is not None else None,
            "source_id": m["entry"]["name"],
            "catalog_type": m["entry"]["catalog"].lower(),
            "separation_arcsec": m["separationArcsec"],
        }
        for m in data["catalogSources"]
    ]
    return {
        "sources": sources,
        "count": len(sources),
        "ra_center": args["ra"],
        "dec_center": args["dec"],
        "radius_deg": args["radius"],
    }


def routes(settings: Settings) -> list[RestRoute]:
    return [
        graphql_route(
            "GET",
            "/catalog/overlay",
            OVERLAY,
            shape_overlay,
            variables=overlay_variables,
            params=[
                Float("ra", required=True, ge=0.0, le=360.0, description="Centre RA, degrees"),
                Float("dec", required=True, ge=-90.0, le=90.0, description="Centre Dec, degrees"),
                Param(
                    "radius",
                    "number",
                    required=True,
                    exclusive_minimum=0.0,
                    maximum=10.0,
                    description="Radius, degrees (at most 10)",
                ),
                Str("catalog", "all", enum=CATALOGS),
                Int("limit", 1000, ge=1, le=10_000),
            ],
            response=obj(
                sources=arr(
                    obj(ra_deg=NUM, dec_deg=NUM, flux_mjy=null(NUM), source_id=null(STR), catalog_type=STR)
                ),
                count={"type": "integer"},
                ra_center=NUM,
                dec_center=NUM,
                radius_deg=NUM,
            ),
            tag=TAG,
            summary="Catalog sources in a cone (for image overlays)",
        ),
        graphql_route(
            "GET",
            # Before `/qa/{ms_path:path}` (the QA section), which would take it for an MS path.
            "/qa/images/{image_ref:path}/catalog-overlay",
            IMAGE_OVERLAY,
            shape_image_overlay,
            variables=image_overlay_variables,
            params=[
                PathStr("image_ref", "Image id, or the image's path", max_length=4096),
                Str("catalog", "nvss", enum=tuple(c for c in CATALOGS if c != "all")),
                Float("min_flux_jy", ge=0.0, description="Faintest catalog flux, Jy"),
                Float("search_radius_arcsec", ge=0.0, description="Accepted; the image's extent decides"),
            ],
            response=obj(
                sources=arr(obj(x=NUM, y=NUM, ra=NUM, dec=NUM, flux_jy=null(NUM), name=null(STR))),
                image_info=obj(
                    center_ra=null(NUM),
                    center_dec=null(NUM),
                    width_deg=null(NUM),
                    height_deg=null(NUM),
                    nx=null(INT),
                    ny=null(INT),
                    pixel_scale_arcsec=null(NUM),
                ),
                catalog_used=STR,
            ),
            errors=(400, 404, 422),
            tag=TAG,
            summary="Catalog sources on an image, with their pixel positions (brightest first)",
        ),
    ]
