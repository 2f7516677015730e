"""Images: list with the documented filters, detail, FITS download, measurements.

Profile and fit: ``compat_rest.image_analysis`` (mounted at the end of ``routes``).
"""

from __future__ import annotations

from typing import Any, Final

from compat_rest import table_order
from compat_rest.convert import after_offset, compact, mjy
from compat_rest.files import data_file
from compat_rest.image_analysis import analysis_routes
from compat_rest.paging import LEGACY_MAX_LIMIT
from compat_rest.params import Args, Bool, Float, Int, PathInt, Str, Time
from compat_rest.routing import RestRoute, graphql_route, multi_query_route
from compat_rest.shapes import BOOL, INT, NUM, STR, TIME, arr, null, obj
from dsa110.settings import Settings

TAG = "images"
IMAGE_ID = PathInt("image_id", "Integer image id")

IMAGE_FIELDS = """
  imageId path type createdAt midMjd beamMajorArcsec beamMinorArcsec beamPaDeg noiseJy
  centerRaDeg centerDecDeg imsizeX imsizeY cellsizeArcsec freqGhz bandwidthMhz pbcor
  measurementSet { path }
"""

LIST = f"""
query RestImages($first: Int!, $after: String, $filter: ImageFilter) {{
  images(first: $first, after: $after, filter: $filter) {{
    totalCount pageInfo {{ hasNextPage endCursor }} nodes {{ {IMAGE_FIELDS} }}
  }}
}}
"""

DETAIL = f"""
query RestImage($imageId: Int!) {{
  image(imageId: $imageId) {{
    {IMAGE_FIELDS} nMeasurements dynamicRange integrationSec group {{ groupId }} observationStart
    centerForms {{ raHms decDms lDeg bDeg }} localRmsRange {{ minJy maxJy }}
  }}
}}
"""

PATH = "query RestImagePath($imageId: Int!) { image(imageId: $imageId) { imageId path } }"

MEASUREMENTS = """
query RestImageMeasurements(
  $imageId: Int!, $first: Int!, $after: String,
  $orderBy: MeasurementOrderField, $direction: OrderDirection!, $filter: MeasurementFilter
) {
  image(imageId: $imageId) {
    freqGhz
    measurements(first: $first, after: $after, orderBy: $orderBy, direction: $direction, filter: $filter) {
      totalCount pageInfo { hasNextPage endCursor }
      nodes {
        raDeg decDeg peakFluxJy peakFluxErrJy intFluxJy intFluxErrJy localRmsJy snr forced mjd
        source { sourceId }
      }
    }
  }
}
"""


def _image_size_deg(node: dict[str, Any]) -> float | None:
    nx, ny, cell = node["imsizeX"], node["imsizeY"], node["cellsizeArcsec"]
    if nx is None or ny is None or cell is None:
        return None
    return float(max(nx, ny) * cell / 3600.0)


def image_item(node: dict[str, Any]) -> dict[str, Any]:
    ms = node["measurementSet"]
    return {
        "id": node["imageId"],
        "path": node["path"],
        "ms_path": ms["path"] if ms else None,
        "created_at": node["createdAt"],
        "type": node["type"],
        "mid_mjd": node["midMjd"],
        "beam_major_arcsec": node["beamMajorArcsec"],
        "beam_minor_arcsec": node["beamMinorArcsec"],
        "beam_pa_deg": node["beamPaDeg"],
        "noise_jy": node["noiseJy"],
        # TODO(graph): Image.peakFluxJy is not in the graph yet.
        "peak_flux_jy": None,
        "pbcor": node["pbcor"],
        "center_ra_deg": node["centerRaDeg"],
        "center_dec_deg": node["centerDecDeg"],
        "image_size_deg": _image_size_deg(node),
        "pixel_size_arcsec": node["cellsizeArcsec"],
    }


def list_variables(args: Args) -> dict[str, Any]:
    image_type = args["image_type"]
    return {
        "first": args["limit"],
        "after": after_offset(args["offset"]),
        "filter": compact(
            {
                "types": [image_type] if image_type else None,
                "pbcor": args["pbcor"],
                "createdAfter": args["start_date"],
                "createdBefore": args["end_date"],
                "noiseMaxJy": args["noise_max"],
                "decMinDeg": args["dec_min"],
                "decMaxDeg": args["dec_max"],
                "msPathContains": args["ms_path"],
                "hasCalibrator": args["has_calibrator"],
            }
        ),
    }


def shape_detail(data: dict[str, Any], _args: Args) -> dict[str, Any]:
    node = data["image"]
    freq, bandwidth = node["freqGhz"], node["bandwidthMhz"]
    beam = (node["beamMajorArcsec"], node["beamMinorArcsec"])
    group = node["group"]
    forms, rms = node["centerForms"], node["localRmsRange"]
    return {
        **image_item(node),
        "name": node["path"].rsplit("/", 1)[-1],
        "group_id": group["groupId"] if group else None,
        "n_measurements": node["nMeasurements"],
        "n_meas": node["nMeasurements"],
        "n_runs": 0,
        "frequency_hz": freq * 1e9 if freq is not None else None,
        "bandwidth_hz": bandwidth * 1e6 if bandwidth is not None else None,
        # The real server's ImageDetail names: degrees for the beam, MHz, mJy.
        "ra": node["centerRaDeg"],
        "dec": node["centerDecDeg"],
        "beam_bmaj": beam[0] / 3600.0 if beam[0] is not None else None,
        "beam_bmin": beam[1] / 3600.0 if beam[1] is not None else None,
        "beam_bpa": node["beamPaDeg"],
        "ra_hms": forms["raHms"] if forms else None,
        "dec_dms": forms["decDms"] if forms else None,
        "l": forms["lDeg"] if forms else None,
        "b": forms["bDeg"] if forms else None,
        "rms_median": mjy(node["noiseJy"]),
        "rms_min": mjy(rms["minJy"]) if rms else None,
        "rms_max": mjy(rms["maxJy"]) if rms else None,
        "frequency": freq * 1000.0 if freq is not None else None,
        "bandwidth": bandwidth,
        # The legacy value is the observation start (FITS DATE-OBS), not the row's creation.
        "datetime": node["observationStart"],
        "dynamic_range": node["dynamicRange"],
        "integration_sec": node["integrationSec"],
    }


def measurement(node: dict[str, Any], freq_ghz: float | None) -> dict[str, Any]:
    source_id = node["source"]["sourceId"]
    peak, integrated = node["peakFluxJy"], node["intFluxJy"]
    return {
        "id": None,
        "name": source_id,
        "source_id": source_id,
        "ra": node["raDeg"],
        "dec": node["decDeg"],
        "ra_deg": node["raDeg"],
        "dec_deg": node["decDeg"],
        "flux_peak": mjy(peak),
        "flux_peak_err": mjy(node["peakFluxErrJy"]),
        "flux_int": mjy(integrated),
        "flux_int_err": mjy(node["intFluxErrJy"]),
        "flux_peak_jy": peak,
        "flux_peak_err_jy": node["peakFluxErrJy"],
        "flux_int_jy": integrated,
        "local_rms_jy": node["localRmsJy"],
        "snr": node["snr"],
        "forced": node["forced"],
        "mjd": node["mjd"],
        "frequency": freq_ghz * 1000.0 if freq_ghz is not None else None,
        "compactness": integrated / peak if integrated is not None and peak else None,
        "has_siblings": False,
    }


MEASUREMENT_TABLE: Final = table_order.DetailTable(
    MEASUREMENTS,
    "image",
    lambda args: {"imageId": args["image_id"]},
    lambda image, node: measurement(node, image["freqGhz"]),
    table_order.orders_for(
        *("ra", "dec", "ra_deg", "dec_deg", "flux_peak", "flux_peak_err", "flux_int", "flux_int_err"),
        *("flux_peak_jy", "flux_peak_err_jy", "flux_int_jy", "local_rms_jy", "snr", "mjd"),
    ),
    search_filter="sourceIdContains",
)
"""An image's measurements, paged; the graph sorts by the keys of ``measurement`` rows
listed, and searches (the rows' only text is the source's name)."""


IMAGE_ITEM = obj(
    id=INT,
    path=STR,
    ms_path=null(STR),
    created_at=TIME,
    type=STR,
    beam_major_arcsec=null(NUM),
    beam_minor_arcsec=null(NUM),
    beam_pa_deg=null(NUM),
    noise_jy=null(NUM),
    pbcor=BOOL,
    center_ra_deg=null(NUM),
    center_dec_deg=null(NUM),
)
IMAGE_DETAIL = {
    **IMAGE_ITEM,
    "properties": {
        **IMAGE_ITEM["properties"],
        "n_measurements": INT,
        "frequency_hz": null(NUM),
        "bandwidth_hz": null(NUM),
        "ra_hms": null(STR),
        "dec_dms": null(STR),
        "l": null(NUM),
        "b": null(NUM),
        "rms_median": null(NUM),
        "rms_min": null(NUM),
        "rms_max": null(NUM),
        "datetime": TIME,
    },
    "required": [
        *IMAGE_ITEM["required"],
        *("n_measurements", "frequency_hz", "bandwidth_hz", "ra_hms", "dec_dms", "l", "b"),
        *("rms_median", "rms_min", "rms_max", "datetime"),
    ],
}
MEASUREMENT_ITEM = obj(
    source_id=STR,
    ra_deg=NUM,
    dec_deg=NUM,
    flux_peak_jy=NUM,
    flux_peak_err_jy=NUM,
    flux_int_jy=null(NUM),
    snr=null(NUM),
)


def routes(settings: Settings) -> list[RestRoute]:
    def fits(data: dict[str, Any], _args: Args) -> Any:
        image = data["image"]
        return data_file(
            image["path"],
            settings.file_roots,
            media_type="application/fits",
            filename=f"image-{image['imageId']}.fits",
        )

    return [
        graphql_route(
            "GET",
            "/images",
            LIST,
            lambda data, _args: {
                "items": [image_item(n) for n in data["images"]["nodes"]],
                "total": data["images"]["totalCount"],
            },
            variables=list_variables,
            params=[
                Int("limit", 100, ge=1, le=LEGACY_MAX_LIMIT),
                Int("offset", 0, ge=0, le=10_000_000),
                Str("ms_path", max_length=1024, description="Only images whose MS path contains this text"),
                Str("image_type", max_length=32),
                Bool("pbcor"),
                Time("start_date", description="Created at or after (ISO 8601)"),
                Time("end_date", description="Created before (ISO 8601)"),
                Float("noise_max", ge=0.0, description="Highest noise, Jy/beam"),
                Float("dec_min", ge=-90.0, le=90.0),
                Float("dec_max", ge=-90.0, le=90.0),
                Bool("has_calibrator", description="Only images of groups with (or without) a calibrator"),
            ],
            paged=lambda data: data["images"],
            response=obj(items=arr(IMAGE_ITEM), total=INT),
            errors=(400, 422),
            tag=TAG,
            summary="Images, newest first, with the documented filters",
        ),
        graphql_route(
            "GET",
            "/images/{image_id}",
            DETAIL,
            shape_detail,
            variables=lambda args: {"imageId": args["image_id"]},
            params=[IMAGE_ID],
            response=IMAGE_DETAIL,
            tag=TAG,
            summary="Image detail",
        ),
        graphql_route(
            "GET",
            "/images/{image_id}/fits",
            PATH,
            fits,
            variables=lambda args: {"imageId": args["image_id"]},
            params=[IMAGE_ID],
            response=None,
            media_type="application/fits",
            tag=TAG,
            summary="Download the image FITS file",
        ),
        multi_query_route(
            "GET",
            "/images/{image_id}/measurements",
            [MEASUREMENTS],
            MEASUREMENT_TABLE.fetch,
            MEASUREMENT_TABLE.shape,
            params=[
                IMAGE_ID,
                Int("page", 1, ge=1, le=1_000_000),
                Int("page_size", 25, ge=1, le=100),
                *table_order.PARAMS,
            ],
            response=obj(items=arr(MEASUREMENT_ITEM), total=INT, page=INT, page_size=INT),
            tag=TAG,
            summary="Photometry on an image, paged",
        ),
        *analysis_routes(IMAGE_ID, TAG),
    ]
