"""Regions on images: list, create, read, update, delete, pixel statistics."""

from __future__ import annotations

from typing import Any

from compat_rest.convert import epoch_fields
from compat_rest.errors import not_found, validation_error
from compat_rest.graph import GraphCall
from compat_rest.paging import LEGACY_MAX_LIMIT, collect
from compat_rest.params import Args, Float, Int, Json, PathInt, Str
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "regions"
REGION_ID = PathInt("region_id", "Integer region id")
REGION_TYPES = ("circle", "ellipse", "rectangle", "polygon")
IMAGE_PATH_TEXT = "The image's exact file path (the legacy form); or give `image_id`"

REGION_FIELDS = "regionId name type shape createdAt createdBy updatedAt image { imageId path }"

LIST = f"""
query RestRegions($imageId: Int, $path: String) {{
  image(imageId: $imageId, path: $path) {{ regions {{ {REGION_FIELDS} }} }}
}}
"""
ALL = f"""
query RestAllRegions($first: Int!, $after: String, $filter: RegionFilter) {{
  regions(first: $first, after: $after, filter: $filter, orderBy: CREATED, direction: DESC) {{
    pageInfo {{ hasNextPage endCursor }} nodes {{ {REGION_FIELDS} }}
  }}
}}
"""
MAX_LISTED = LEGACY_MAX_LIMIT
IMAGE_BY_PATH = "query RestImageByPath($path: String!) { image(path: $path) { imageId } }"
READ = f"query RestRegion($regionId: Int!) {{ region(regionId: $regionId) {{ {REGION_FIELDS} }} }}"
CREATE = f"""
mutation RestCreateRegion($imageId: Int!, $name: String!, $shape: JSON!) {{
  createRegion(imageId: $imageId, name: $name, shape: $shape) {{ {REGION_FIELDS} }}
}}
"""
UPDATE = f"""
mutation RestUpdateRegion($regionId: Int!, $name: String, $shape: JSON) {{
  updateRegion(regionId: $regionId, name: $name, shape: $shape) {{ {REGION_FIELDS} }}
}}
"""
DELETE = "mutation RestDeleteRegion($regionId: Int!) { deleteRegion(regionId: $regionId) }"
STATISTICS = """
query RestRegionStatistics($regionId: Int!) {
  region(regionId: $regionId) { regionId statistics { mean rms std min max sum nPixels unit } }
}
"""

# Legacy coordinates were in degrees; the graph's shapes are in arcseconds.
_DEG_TO_ARCSEC = {
    "radius_deg": "radius_arcsec",
    "width_deg": "width_arcsec",
    "height_deg": "height_arcsec",
    "semi_major_deg": "semi_major_arcsec",
    "semi_minor_deg": "semi_minor_arcsec",
}


def region(node: dict[str, Any]) -> dict[str, Any]:
    shape = node["shape"] if isinstance(node["shape"], dict) else {}
    coordinates = {k: v for k, v in shape.items() if k != "type"}
    image = node["image"]
    return {
        "id": node["regionId"],
        "name": node["name"],
        "type": node["type"],
        "region_type": node["type"],
        "shape": shape,
        "coordinates": coordinates,
        "image_id": image["imageId"],
        "image_path": image["path"],
        "ra_deg": shape.get("ra_deg"),
        "dec_deg": shape.get("dec_deg"),
        "radius_arcsec": shape.get("radius_arcsec"),
        # Unix seconds, as the legacy table stored them: the region list renders
        # `new Date(created_at * 1000)`. ISO alongside as `*_iso`.
        **epoch_fields(created_at=node["createdAt"], updated_at=node["updatedAt"]),
        "created_by": node["createdBy"],
    }


def _shape(args: Args, required: bool) -> dict[str, Any] | None:
    """The graph's shape JSON from any of the three request forms (shape, coordinates, flat)."""
    kind = args["type"] or args["region_type"]
    given = args["shape"] if args["shape"] is not None else args["coordinates"]
    if given is not None:
        if not isinstance(given, dict):
            raise validation_error("`coordinates` must be a JSON object", parameter="coordinates")
        shape: dict[str, Any] = {
            _DEG_TO_ARCSEC.get(str(k), str(k)): v * 3600.0 if k in _DEG_TO_ARCSEC and _is_number(v) else v
            for k, v in given.items()
        }
        shape.setdefault("type", kind)
        if shape["type"] is None:
            raise validation_error("the region `type` is required", parameter="type")
        return shape
    flat = {k: args[k] for k in ("ra_deg", "dec_deg", "radius_arcsec") if args[k] is not None}
    if not flat and not required:
        return None
    if kind not in (None, "circle") or len(flat) != 3:
        raise validation_error(
            "give `coordinates` (or `shape`), or a circle as ra_deg, dec_deg and radius_arcsec",
            location="body",
        )
    return {"type": "circle", **flat}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _image_key(args: Args) -> dict[str, Any]:
    """The image as the graph's ``image(imageId:, path:)`` takes it: by id or by exact path."""
    image_id, path = args["image_id"], args["image_path"]
    if (image_id is None) == (path is None):
        raise validation_error("give one of `image_id` and `image_path`", parameter="image_id")
    return {"imageId": image_id, "path": path}


async def fetch_list(call: GraphCall, args: Args) -> Any:
    """One image's regions, or (no image given: the legacy listing) every region, newest first."""
    if args["image_id"] is not None or args["image_path"] is not None:
        return await call(LIST, _image_key(args))
    kinds = {"types": [args["region_type"]]} if args["region_type"] is not None else None
    return await collect(call, ALL, {"filter": kinds}, lambda data: data["regions"], max_rows=MAX_LISTED)


def shape_list(data: dict[str, Any], args: Args) -> dict[str, Any]:
    nodes = data["image"]["regions"] if "image" in data else data["regions"]["nodes"]
    regions = [region(n) for n in nodes]
    if args["region_type"] is not None:
        regions = [r for r in regions if r["type"] == args["region_type"]]
    return {"regions": regions, "count": len(regions)}


async def fetch_create(call: GraphCall, args: Args) -> Any:
    """Create on the image named by id or, in the legacy form, by path (looked up first)."""
    image = _image_key(args)
    shape = _shape(args, required=True)
    if image["imageId"] is None:
        found = await call(IMAGE_BY_PATH, {"path": image["path"]})
        image["imageId"] = found["image"]["imageId"]
    variables = {
        "imageId": image["imageId"],
        "name": args["name"] or f"{(shape or {}).get('type', 'region')} region",
        "shape": shape,
    }
    return await call(CREATE, variables)


async def fetch_update(call: GraphCall, args: Args) -> Any:
    """Update the name and/or shape; coordinates without a ``type`` keep the region's own.

    The region editor sends ``Partial<Region>`` (frontend ``queries.ts`` ``useUpdateRegion``:
    ``PUT /regions/{id}`` with e.g. ``{name}`` or ``{name, coordinates}``), as the legacy
    server took it (it updated ``name``, ``coordinates`` and ``updated_at``, never the type).
    """
    given = args["shape"] if args["shape"] is not None else args["coordinates"]
    if (
        args["type"] is None
        and args["region_type"] is None
        and isinstance(given, dict)
        and "type" not in given
    ):
        current = (await call(READ, {"regionId": args["region_id"]}))["region"]
        if current is None:
            raise not_found(f"no region {args['region_id']}", region_id=args["region_id"])
        args = {**args, "type": current["type"]}
    variables = {"regionId": args["region_id"], "name": args["name"], "shape": _shape(args, required=False)}
    return await call(UPDATE, variables)


def shape_statistics(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    node = data["region"]
    s = node["statistics"]
    # The real server nested {mean, rms, peak, min, sum, pixel_count}; the document listed
    # {mean, std, min, max, sum, n_pixels} at the top level. Both are served. `rms` is the
    # true root mean square; the legacy `rms` was the standard deviation (`std` here).
    return {
        "region_id": node["regionId"],
        "statistics": {
            "mean": s["mean"],
            "rms": s["rms"],
            "std": s["std"],
            "peak": s["max"],
            "max": s["max"],
            "min": s["min"],
            "sum": s["sum"],
            "pixel_count": s["nPixels"],
            "n_pixels": s["nPixels"],
            "unit": s["unit"],
        },
        "mean": s["mean"],
        "std": s["std"],
        "min": s["min"],
        "max": s["max"],
        "sum": s["sum"],
        "n_pixels": s["nPixels"],
        "unit": s["unit"],
    }


REGION = obj(
    id=INT,
    name=STR,
    type=STR,
    coordinates=ANY,
    image_path=STR,
    image_id=INT,
    created_at=NUM,
    created_at_iso=TIME,
    created_by=null(STR),
    updated_at=null(NUM),
    updated_at_iso=null(TIME),
)
BODY = [
    Int("image_id", ge=0, description="Image the region is drawn on"),
    Str("image_path", max_length=1024, description=IMAGE_PATH_TEXT),
    Str("name", max_length=128),
    Str("type", enum=REGION_TYPES),
    Str("region_type", enum=REGION_TYPES),
    Json(
        "coordinates",
        description="Shape fields: ra_deg, dec_deg, radius_arcsec | width_arcsec ... | vertices",
    ),
    Json("shape", description="The graph's shape JSON (with `type`)"),
    Float("ra_deg", ge=0.0, le=360.0),
    Float("dec_deg", ge=-90.0, le=90.0),
    Float("radius_arcsec", ge=0.0, le=36000.0),
    Str("created_by", max_length=64, description="Ignored: the author is the authenticated caller"),
]


def routes(settings: Settings) -> list[RestRoute]:
    return [
        multi_query_route(
            "GET",
            "/regions",
            [LIST, ALL],
            fetch_list,
            shape_list,
            params=[
                Int("image_id", ge=0),
                Str("image_path", max_length=1024, description=IMAGE_PATH_TEXT),
                Str("region_type", enum=REGION_TYPES),
            ],
            response=obj(regions=arr(REGION), count=INT),
            errors=(400, 404, 422),
            tag=TAG,
            summary="Regions drawn on an image; without one, every region "
            f"(newest first, at most {MAX_LISTED})",
        ),
        multi_query_route(
            "POST",
            "/regions",
            [IMAGE_BY_PATH, CREATE],
            fetch_create,
            lambda data, _args: {
                "id": data["createRegion"]["regionId"],
                "region": region(data["createRegion"]),
                "message": "Region created successfully",
            },
            body=BODY,
            response=obj(id=INT, region=REGION, message=STR),
            errors=(400, 404, 422),
            tag=TAG,
            summary="Create a region",
            role=Role.OPERATOR,
        ),
        graphql_route(
            "GET",
            "/regions/{region_id}",
            READ,
            lambda data, _args: region(data["region"]),
            variables=lambda args: {"regionId": args["region_id"]},
            params=[REGION_ID],
            response=REGION,
            tag=TAG,
            summary="A region",
        ),
        multi_query_route(
            "PUT",
            "/regions/{region_id}",
            [READ, UPDATE],
            fetch_update,
            lambda data, _args: {
                "id": data["updateRegion"]["regionId"],
                "updated": True,
                "region": region(data["updateRegion"]),
                "message": "Region updated successfully",
            },
            params=[REGION_ID],
            body=[p for p in BODY if p.name not in ("image_id", "image_path", "created_by")],
            response=obj(id=INT, updated=BOOL, region=REGION, message=STR),
            errors=(400, 404, 422),
            tag=TAG,
            summary="Update a region's name or shape (a shape without `type` keeps the region's)",
            role=Role.OPERATOR,
        ),
        graphql_route(
            "DELETE",
            "/regions/{region_id}",
            DELETE,
            lambda _data, args: {
                "id": args["region_id"],
                "deleted": True,
                "message": "Region deleted successfully",
            },
            variables=lambda args: {"regionId": args["region_id"]},
            params=[REGION_ID],
            response=obj(id=INT, deleted=BOOL, message=STR),
            tag=TAG,
            summary="Delete a region",
            role=Role.OPERATOR,
        ),
        graphql_route(
            "GET",
            "/regions/{region_id}/statistics",
            STATISTICS,
            shape_statistics,
            variables=lambda args: {"regionId": args["region_id"]},
            params=[REGION_ID],
            response=obj(
                region_id=INT,
                statistics=obj(mean=NUM, rms=NUM, std=NUM, min=NUM, max=NUM, sum=NUM, n_pixels=INT),
                mean=NUM,
                std=NUM,
                min=NUM,
                max=NUM,
                sum=NUM,
                n_pixels=INT,
            ),
            errors=(400, 422),
            tag=TAG,
            summary="Pixel statistics inside a region (image units)",
        ),
    ]
