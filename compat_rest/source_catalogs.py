"""A source's objects in external catalogs (SIMBAD, NED, Gaia): ``GET .../external_catalogs``.

One GraphQL query per catalog, run concurrently, each with its own time limit: one
service down or slow answers an ``error`` in its own entry and never hides the others.
Served under ``/sources/{source_id}`` and ``/ese/candidates/{source_id}``
(``compat_rest.sources.source_subroutes``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from compat_rest.errors import ApiError
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Float, Param, Str
from compat_rest.routing import RestRoute, multi_query_route
from compat_rest.shapes import BOOL, NUM, STR, null, obj

POSITION = (
    "query RestSourcePosition($sourceId: String!) { source(sourceId: $sourceId) { sourceId raDeg decDeg } }"
)

EXTERNAL = """
query RestExternal($sourceId: String!, $service: ExternalService!, $radius: Float!) {
  source(sourceId: $sourceId) {
    externalCatalogs(service: $service, radiusArcsec: $radius) {
      service cached objects { name raDeg decDeg separationArcsec objectType extra }
    }
  }
}
"""


SERVICES = ("simbad", "ned", "gaia")
_EXTRA_KEYS = ("redshift", "parallax", "distance", "pmra", "pmdec", "phot_g_mean_mag")


def _extra(extra: dict[str, Any], key: str) -> Any:
    for name, value in extra.items():
        if name.lower() == key:
            return value
    return None


def catalog_match(service: str, result: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    objects = sorted((result or {}).get("objects") or [], key=lambda o: o["separationArcsec"])
    best = objects[0] if objects else None
    extra = (best or {}).get("extra") or {}
    return {
        "catalog": service,
        "matched": best is not None,
        "main_id": best["name"] if best else None,
        "object_type": best["objectType"] if best else None,
        "separation_arcsec": best["separationArcsec"] if best else None,
        "ra_deg": best["raDeg"] if best else None,
        "dec_deg": best["decDeg"] if best else None,
        **{key: _extra(extra, key) if best else None for key in _EXTRA_KEYS},
        "n_objects": len(objects),
        "cached": (result or {}).get("cached"),
        "error": error,
    }


def _services(text: str | None) -> list[str]:
    if not text or text.strip().lower() == "all":
        return list(SERVICES)
    chosen = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(SERVICES))
    if unknown or not chosen:
        raise ApiError(400, "BAD_CATALOG", f"catalogs must be `all` or a list of {', '.join(SERVICES)}")
    return list(dict.fromkeys(chosen))


async def fetch_external(call: GraphCall, args: Args) -> dict[str, Any]:
    services = _services(args["catalogs"])
    started = time.perf_counter()
    position = await call(POSITION, {"sourceId": args["source_id"]})

    async def one(service: str) -> dict[str, Any]:
        variables = {
            "sourceId": args["source_id"],
            "service": service.upper(),
            "radius": args["radius_arcsec"],
        }
        try:
            data = await asyncio.wait_for(call(EXTERNAL, variables), timeout=args["timeout"])
        except ApiError as error:
            # One service down must not hide the others: the error rides in its entry.
            return catalog_match(service, None, f"{error.code}: {error.message}")
        except TimeoutError:
            return catalog_match(service, None, "TIMEOUT: the query did not finish in time")
        return catalog_match(service, data["source"]["externalCatalogs"], None)

    matches = await asyncio.gather(*(one(service) for service in services))
    source = position["source"]
    return {
        "source_id": source["sourceId"],
        "ra_deg": source["raDeg"],
        "dec_deg": source["decDeg"],
        "matches": dict(zip(services, matches, strict=True)),
        "query_time_sec": round(time.perf_counter() - started, 3),
    }


MATCH_SCHEMA = obj(
    catalog=STR,
    matched=BOOL,
    main_id=null(STR),
    object_type=null(STR),
    separation_arcsec=null(NUM),
    error=null(STR),
)
EXTERNAL_SCHEMA = obj(
    source_id=STR,
    ra_deg=NUM,
    dec_deg=NUM,
    matches={"type": "object", "additionalProperties": MATCH_SCHEMA},
    query_time_sec=NUM,
)


def external_catalogs_route(base: str, source_id: Param, tag: str) -> RestRoute:
    """``GET {base}/external_catalogs``; ``base`` ends with the ``{source_id}`` parameter."""
    return multi_query_route(
        "GET",
        f"{base}/external_catalogs",
        [POSITION, EXTERNAL],
        fetch_external,
        lambda data, _args: data,
        params=[
            source_id,
            Float("radius_arcsec", 5.0, ge=0.1, le=600.0, description="Search radius, arcsec"),
            Str("catalogs", "all", max_length=64, description="`all` or a comma list of simbad, ned, gaia"),
            Float("timeout", 30.0, ge=0.1, le=60.0, description="Per-catalog timeout, seconds"),
        ],
        response=EXTERNAL_SCHEMA,
        tag=tag,
        summary="SIMBAD / NED / Gaia objects near the source (cached; per-catalog errors)",
    )
