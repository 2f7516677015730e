"""Products and the data registry: recent products, data products, lineage, auto-publish status."""

from __future__ import annotations

from typing import Any

from compat_rest.convert import after_offset, compact, epoch_fields, lower
from compat_rest.images import IMAGE_FIELDS, image_item
from compat_rest.paging import LEGACY_MAX_LIMIT
from compat_rest.params import Args, Int, PathStr, Str
from compat_rest.routing import RestRoute, graphql_route
from compat_rest.shapes import ANY, BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.settings import Settings

TAG = "products"
DATA_ID = PathStr("data_id", "Data product id (often a path)", max_length=1024)
DATA_TYPES = ("raw", "ms", "calib_ms", "caltable", "image", "mosaic", "catalog", "qa", "metadata")
DATA_STATUSES = ("staging", "publishing", "published")

PRODUCTS = f"""
query RestProducts($first: Int!, $after: String) {{
  images(first: $first, after: $after, orderBy: CREATED_AT, direction: DESC) {{
    pageInfo {{ hasNextPage endCursor }} nodes {{ {IMAGE_FIELDS} }}
  }}
}}
"""

PRODUCT_FIELDS = """
  dataId type status stagePath publishedPath createdAt stagedAt publishedAt publishMode qaStatus
  validationStatus finalizationStatus autoPublish publishAttempts publishError publishFailedAt metadata
  finalizedBy publishedBy
  autoPublishCriteria { enabled criteriaMet reasons }
"""
DATA_LIST = f"""
query RestData($first: Int!, $after: String, $filter: DataProductFilter) {{
  dataProducts(first: $first, after: $after, filter: $filter) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {PRODUCT_FIELDS} }}
  }}
}}
"""
DATA_DETAIL = f"""
query RestDataProduct($dataId: String!) {{
  dataProduct(dataId: $dataId) {{
    {PRODUCT_FIELDS} parents: lineageByRelationship(upstream: true)
    children: lineageByRelationship(upstream: false)
  }}
}}
"""


def product(node: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": node["dataId"],
        "data_id": node["dataId"],
        "data_type": lower(node["type"]),
        "type": lower(node["type"]),
        "status": lower(node["status"]),
        "path": node["publishedPath"] or node["stagePath"],
        "stage_path": node["stagePath"],
        "published_path": node["publishedPath"],
        # Unix seconds, as the legacy registry stored them: the data pages render
        # `new Date(parseInt(created_at) * 1000)`. ISO alongside as `*_iso`.
        **epoch_fields(
            created_at=node["createdAt"],
            staged_at=node["stagedAt"],
            published_at=node["publishedAt"],
            publish_failed_at=node["publishFailedAt"],
        ),
        "publish_mode": node["publishMode"],
        "qa_status": node["qaStatus"],
        "validation_status": node["validationStatus"],
        "finalization_status": node["finalizationStatus"],
        "auto_publish_enabled": node["autoPublish"],
        "publish_attempts": node["publishAttempts"],
        "publish_error": node["publishError"],
        "finalized_by": node["finalizedBy"],
        "published_by": node["publishedBy"],
        "metadata": node["metadata"],
    }


LINEAGE_GROUPS = {"type": "object", "additionalProperties": arr(STR)}


def lineage(node: dict[str, Any]) -> dict[str, Any]:
    """``{parents: {relationship: [data_id]}, children: {...}}``: the legacy code's form.

    The API document shows flat lists, but the legacy server grouped by relationship type
    and its lineage page reads that form (a flat list crashes it); we serve what it reads.
    """
    return {
        "data_id": node["dataId"],
        "parents": node["parents"],
        "children": node["children"],
        "dependencies": [],
    }


def data_variables(args: Args) -> dict[str, Any]:
    data_type, status = args["data_type"], args["status"]
    return {
        "first": args["limit"],
        "after": after_offset(args["offset"]),
        "filter": compact(
            {
                "types": [data_type.upper()] if data_type else None,
                "statuses": [status.upper()] if status else None,
            }
        ),
    }


PRODUCT = obj(
    id=STR,
    data_id=STR,
    data_type=STR,
    status=STR,
    path=STR,
    stage_path=STR,
    published_path=null(STR),
    created_at=NUM,
    created_at_iso=TIME,
    staged_at=NUM,
    staged_at_iso=TIME,
    published_at=null(NUM),
    published_at_iso=null(TIME),
    auto_publish_enabled=BOOL,
)


def routes(settings: Settings) -> list[RestRoute]:
    return [
        graphql_route(
            "GET",
            "/products",
            PRODUCTS,
            lambda data, _args: {"items": [image_item(n) for n in data["images"]["nodes"]]},
            variables=lambda args: {"first": args["limit"]},
            paged=lambda data: data["images"],
            params=[Int("limit", 50, ge=1, le=LEGACY_MAX_LIMIT)],
            response=obj(items=arr(obj(type=STR, path=STR, created_at=TIME))),
            tag=TAG,
            summary="Recent image products, newest first",
        ),
        graphql_route(
            "GET",
            "/data",
            DATA_LIST,
            lambda data, args: {
                "items": [product(n) for n in data["dataProducts"]["nodes"]],
                "total": data["dataProducts"]["totalCount"],
                "limit": args["limit"],
                "offset": args["offset"],
            },
            variables=data_variables,
            paged=lambda data: data["dataProducts"],
            params=[
                Str("data_type", enum=DATA_TYPES),
                Str("status", enum=DATA_STATUSES),
                Int("limit", 50, ge=1, le=LEGACY_MAX_LIMIT),
                Int("offset", 0, ge=0, le=10_000_000),
            ],
            response=obj(items=arr(PRODUCT), total=INT, limit=INT, offset=INT),
            tag=TAG,
            summary="Data products with their staging/publication status",
        ),
        # The two sub-resources come first: the legacy server let `{data_id:path}` swallow them.
        graphql_route(
            "GET",
            "/data/{data_id:path}/lineage",
            DATA_DETAIL,
            lambda data, _args: lineage(data["dataProduct"]),
            variables=lambda args: {"dataId": args["data_id"]},
            params=[DATA_ID],
            response=obj(data_id=STR, parents=LINEAGE_GROUPS, children=LINEAGE_GROUPS, dependencies=arr(ANY)),
            tag=TAG,
            summary="Parents and children of a data product",
        ),
        graphql_route(
            "GET",
            "/data/{data_id:path}/auto-publish/status",
            DATA_DETAIL,
            lambda data, _args: {
                "data_id": data["dataProduct"]["dataId"],
                "enabled": data["dataProduct"]["autoPublish"],
                "auto_publish": data["dataProduct"]["autoPublish"],
                "qa_status": data["dataProduct"]["qaStatus"],
                "validation_status": data["dataProduct"]["validationStatus"],
                "finalization_status": data["dataProduct"]["finalizationStatus"],
                "criteria_met": data["dataProduct"]["autoPublishCriteria"]["criteriaMet"],
                "reasons": data["dataProduct"]["autoPublishCriteria"]["reasons"],
            },
            variables=lambda args: {"dataId": args["data_id"]},
            params=[DATA_ID],
            response=obj(data_id=STR, enabled=BOOL, auto_publish=BOOL),
            tag=TAG,
            summary="Auto-publish setting of a data product",
        ),
        graphql_route(
            "GET",
            "/data/{data_id:path}",
            DATA_DETAIL,
            lambda data, _args: {**product(data["dataProduct"]), "lineage": lineage(data["dataProduct"])},
            variables=lambda args: {"dataId": args["data_id"]},
            params=[DATA_ID],
            response=PRODUCT,
            tag=TAG,
            summary="A data product and its lineage",
        ),
    ]
