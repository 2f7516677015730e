"""Catalog overlay: catalog entries in a cone, for drawing on images."""

from __future__ import annotations

from typing import Any

from compat_rest.params import Args, Float, Int, Param, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import NUM, STR, arr, null, obj
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
        )
    ]
