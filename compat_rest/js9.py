"""``POST /api/visualization/js9/analysis``: the JS9 viewer's server-side analysis panel.

The legacy server ran a CASA task (``imstat``, ``imfit``, ``imval``, ``imview``,
``specflux``) on a FITS file with an optional JS9 region in image pixels (legacy-pipeline-facts
§4.5; request ``{task, image_path, region?, parameters?}``, answer ``{success, task, result,
error, execution_time_sec}``). Here the tasks with a counterpart in the graph run through it:

* ``imstat`` -> ``fitsFile.regionStatistics`` (``result.DATA{mean, std, rms, min, max, sum,
  npts}``, the CASA names); without a region, the file's whole-image statistics;
* ``imfit`` -> ``fitsFile.fit`` inside the region (Gaussian or Moffat, ``parameters.model``);
* ``imval`` -> ``fitsFile.pixelValues``: the stored values of the region's bounding box (a
  point region: one pixel), at most 128 x 128.

``imview`` (contours) and ``specflux`` (a spectrum: these images are single-channel) have no
counterpart: 422 ``UNSUPPORTED_TASK`` naming the supported tasks.

JS9 regions are in 1-based FITS image pixels (pixel centres on integers, x along NAXIS1):
circle ``{x, y, r|radius}``, box ``{x, y, width, height, angle}`` (angle in degrees,
counter-clockwise from +x), ellipse ``{x, y, r1, r2, angle}`` (r1 along the rotated x
axis), polygon ``{pts: [{x, y}, ...]}`` and point ``{x, y}``. They are converted to sky
shapes through the image's celestial WCS (astropy): the centre by ``pixel_to_world``,
lengths by the pixel scales (``proj_plane_pixel_scales``; a circle's radius by their
geometric mean) and angles as the position angle (east of north) of the rotated pixel
axis, so a rotated or flipped image keeps the region the viewer drew.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

from compat_rest import qa
from compat_rest.errors import ApiError
from compat_rest.graph import GraphCall
from compat_rest.params import Args, Json, Str
from compat_rest.routing import RestRoute, multi_query_route
from compat_rest.shapes import ANY, BOOL, STR, null, obj
from dsa110.auth.identity import Role
from dsa110.settings import Settings

TAG = "visualization"
SUPPORTED_TASKS = ("imstat", "imfit", "imval")
LEGACY_TASKS = ("imview", "specflux", "imhead", "immath")
MAX_REGION_PIXELS = 4096.0
"""A region's size (diameter, side) in pixels at most: regions are for sources and patches."""
MAX_VERTICES = 1000
MAX_BOX = 128

HEADER = """
query RestJs9Header($path: String!) {
  fitsFile(path: $path) {
    path header dataShape
    statistics { nPixels nFinite min max mean std sampledEvery }
  }
}
"""
STATS = """
query RestJs9Stats($path: String!, $shape: JSON!) {
  fitsFile(path: $path) { path regionStatistics(shape: $shape) { mean rms std min max sum nPixels unit } }
}
"""
FIT = """
query RestJs9Fit($path: String!, $shape: JSON!, $model: FitModel!, $background: Boolean!) {
  fitsFile(path: $path) {
    path
    fit(shape: $shape, model: $model, fitBackground: $background) {
      model peak peakErr raDeg decDeg raErrArcsec decErrArcsec fwhmMajorArcsec fwhmMajorErrArcsec
      fwhmMinorArcsec fwhmMinorErrArcsec paDeg paErrDeg background backgroundErr integratedFluxJy
      integratedFluxErrJy unit nPixels reducedChi2 residualRms beta betaErr
    }
  }
}
"""
VALUES = """
query RestJs9Values($path: String!, $x0: Int!, $y0: Int!, $width: Int!, $height: Int!) {
  fitsFile(path: $path) {
    path pixelValues(x0: $x0, y0: $y0, width: $width, height: $height) {
      x0 y0 width height values unit raDeg decDeg
    }
  }
}
"""


def _bad(message: str, code: str = "BAD_REGION", **details: Any) -> ApiError:
    return ApiError(422, code, message, details)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad(f"region `{name}` must be a finite number", field=name)
    return float(value)


def _size(region: dict[str, Any], *names: str) -> float:
    for name in names:
        if region.get(name) is not None:
            value = _number(region[name], name)
            if not 0 < value <= MAX_REGION_PIXELS:
                raise _bad(
                    f"region `{name}` must be in (0, {MAX_REGION_PIXELS:g}] pixels",
                    code="REGION_TOO_LARGE" if value > 0 else "BAD_REGION",
                    field=name,
                )
            return value
    raise _bad(f"region needs `{names[0]}`", field=names[0])


class ImagePlane:
    """The celestial WCS of a FITS file's image plane, from the header the graph read."""

    def __init__(self, header: dict[str, Any], data_shape: list[int]) -> None:
        from astropy.io import fits
        from astropy.wcs import WCS
        from astropy.wcs.utils import proj_plane_pixel_scales

        if len(data_shape) < 2:
            raise _bad("the FITS file holds no image", code="NOT_AN_IMAGE")
        cards = [
            (k, v)
            for k, v in header.items()
            if k not in ("COMMENT", "HISTORY", "") and isinstance(v, str | int | float | bool)
        ]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                full = WCS(fits.Header(cards), naxis=len(data_shape))
                if not full.has_celestial:
                    raise ValueError("no celestial axes")
                self.wcs = full.celestial
                sx, sy = (float(s) * 3600.0 for s in proj_plane_pixel_scales(self.wcs))
        except (ValueError, TypeError, KeyError, MemoryError) as exc:
            raise _bad(f"the image has no usable RA/Dec WCS: {str(exc)[:200]}", code="NOT_AN_IMAGE") from None
        self.scales = (sx, sy)
        self.ny, self.nx = int(data_shape[-2]), int(data_shape[-1])

    def on_image(self, x: float, y: float) -> bool:
        """Whether 0-based pixel (x, y) is on the image."""
        return -0.5 <= x < self.nx - 0.5 and -0.5 <= y < self.ny - 0.5

    def sky(self, x: float, y: float) -> tuple[float, float]:
        ra, dec = self.wcs.pixel_to_world_values(x, y)
        if not (math.isfinite(float(ra)) and math.isfinite(float(dec))):
            raise _bad("the region's position has no sky coordinates", code="REGION_OFF_IMAGE")
        return float(ra) % 360.0, float(dec)

    def position_angle(self, x: float, y: float, angle_deg: float) -> float:
        """Position angle (degrees east of north) of the pixel direction at ``angle_deg``
        counter-clockwise from +x, at pixel (x, y): the bearing from the point to one pixel
        along that direction (spherical bearing formula)."""
        a = math.radians(angle_deg)
        ra0, dec0 = map(math.radians, self.sky(x, y))
        ra1, dec1 = map(math.radians, self.sky(x + math.cos(a), y + math.sin(a)))
        d_ra = ra1 - ra0
        pa = math.atan2(
            math.sin(d_ra) * math.cos(dec1),
            math.cos(dec0) * math.sin(dec1) - math.sin(dec0) * math.cos(dec1) * math.cos(d_ra),
        )
        return math.degrees(pa) % 360.0


def _centre(region: dict[str, Any], plane: ImagePlane) -> tuple[float, float]:
    x, y = _number(region.get("x"), "x") - 1.0, _number(region.get("y"), "y") - 1.0
    if not plane.on_image(x, y):
        raise _bad(
            f"the region's centre ({x + 1:g}, {y + 1:g}) is not on the {plane.nx} x {plane.ny} image "
            "(JS9 pixels are 1-based)",
            code="REGION_OFF_IMAGE",
        )
    return x, y


def _points(region: dict[str, Any], plane: ImagePlane) -> list[tuple[float, float]]:
    pts = region.get("pts")
    if not isinstance(pts, list) or not 3 <= len(pts) <= MAX_VERTICES:
        raise _bad(f"a polygon needs `pts`: 3 to {MAX_VERTICES} {{x, y}} vertices", field="pts")
    out = []
    for p in pts:
        if not isinstance(p, dict):
            raise _bad("each polygon vertex must be an object {x, y}", field="pts")
        x, y = _number(p.get("x"), "pts.x") - 1.0, _number(p.get("y"), "pts.y") - 1.0
        if not plane.on_image(x, y):
            raise _bad("a polygon vertex is not on the image", code="REGION_OFF_IMAGE")
        out.append((x, y))
    xs, ys = [p[0] for p in out], [p[1] for p in out]
    if max(max(xs) - min(xs), max(ys) - min(ys)) > MAX_REGION_PIXELS:
        raise _bad(f"the polygon spans over {MAX_REGION_PIXELS:g} pixels", code="REGION_TOO_LARGE")
    return out


def region_kind(region: dict[str, Any]) -> str:
    shape = region.get("shape", "circle" if "pts" not in region else "polygon")
    if not isinstance(shape, str) or len(shape) > 32:
        raise _bad("region `shape` must be a shape name", field="shape")
    kinds = {"c": "circle", "circle": "circle", "box": "box", "r": "box", "rectangle": "box"}
    kinds |= {"ellipse": "ellipse", "polygon": "polygon", "point": "point"}
    kind = kinds.get(shape.lower())
    if kind is None:
        raise _bad(
            f"unsupported region shape {shape[:32]!r}; use circle, box, ellipse, polygon or point",
            field="shape",
        )
    return kind


def sky_shape(region: dict[str, Any], plane: ImagePlane) -> dict[str, Any]:
    """The JS9 pixel region as a sky shape (``Region.shape``: circle, rectangle, ellipse, polygon)."""
    kind = region_kind(region)
    sx, sy = plane.scales
    if kind == "polygon":
        return {"type": "polygon", "vertices": [list(plane.sky(x, y)) for x, y in _points(region, plane)]}
    if kind == "point":
        raise _bad("a point region has no area: draw a circle or a box", field="shape")
    x, y = _centre(region, plane)
    ra, dec = plane.sky(x, y)
    angle = _number(region.get("angle", 0.0), "angle")
    if kind == "circle":
        radius = _size(region, "r", "radius")
        return {"type": "circle", "ra_deg": ra, "dec_deg": dec, "radius_arcsec": radius * math.sqrt(sx * sy)}
    if kind == "box":
        width, height = _size(region, "width"), _size(region, "height")
        return {
            "type": "rectangle",
            "ra_deg": ra,
            "dec_deg": dec,
            "width_arcsec": width * sx,
            "height_arcsec": height * sy,
            "angle_deg": plane.position_angle(x, y, angle + 90.0),  # the height runs along rotated +y
        }
    r1, r2 = _size(region, "r1"), _size(region, "r2")
    major_along = angle if r1 >= r2 else angle + 90.0
    return {
        "type": "ellipse",
        "ra_deg": ra,
        "dec_deg": dec,
        "semi_major_arcsec": max(r1, r2) * math.sqrt(sx * sy),
        "semi_minor_arcsec": min(r1, r2) * math.sqrt(sx * sy),
        "pa_deg": plane.position_angle(x, y, major_along),
    }


def pixel_box(region: dict[str, Any], plane: ImagePlane) -> dict[str, int]:
    """The 0-based bounding box of a JS9 region (a point: its pixel), at most 128 x 128."""
    kind = region_kind(region)
    if kind == "polygon":
        pts = _points(region, plane)
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        lo_x, hi_x, lo_y, hi_y = min(xs), max(xs), min(ys), max(ys)
    else:
        x, y = _centre(region, plane)
        if kind == "point":
            half_x = half_y = 0.0
        elif kind == "circle":
            half_x = half_y = _size(region, "r", "radius")
        elif kind == "box":
            a = math.radians(_number(region.get("angle", 0.0), "angle"))
            w, h = _size(region, "width") / 2, _size(region, "height") / 2
            half_x = abs(w * math.cos(a)) + abs(h * math.sin(a))
            half_y = abs(w * math.sin(a)) + abs(h * math.cos(a))
        else:
            half_x = half_y = max(_size(region, "r1"), _size(region, "r2"))
        lo_x, hi_x, lo_y, hi_y = x - half_x, x + half_x, y - half_y, y + half_y
    x0, y0 = max(0, round(lo_x)), max(0, round(lo_y))
    x1, y1 = min(plane.nx - 1, round(hi_x)), min(plane.ny - 1, round(hi_y))
    width, height = x1 - x0 + 1, y1 - y0 + 1
    if width * height > MAX_BOX * MAX_BOX:
        raise _bad(f"imval answers at most {MAX_BOX} x {MAX_BOX} pixels", code="REGION_TOO_LARGE")
    return {"x0": x0, "y0": y0, "width": width, "height": height}


def _task(args: Args) -> str:
    task = args["task"]
    if task not in SUPPORTED_TASKS:
        known = " (it has no counterpart here)" if task in LEGACY_TASKS else ""
        raise ApiError(
            422,
            "UNSUPPORTED_TASK",
            f"task {task[:32]!r} is not supported{known}; supported: {', '.join(SUPPORTED_TASKS)}",
            {"supported_tasks": list(SUPPORTED_TASKS)},
        )
    return str(task)


def _parameters(args: Args) -> dict[str, Any]:
    parameters = args.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise _bad("`parameters` must be a JSON object", code="VALIDATION_ERROR", field="parameters")
    return parameters


async def _on_region(call: GraphCall, document: str, variables: dict[str, Any]) -> Any:
    """Run a document on a region the graph checks again (its sky limits, e.g. at most 10 deg
    across): its ``BAD_REGION`` is answered 422 like this route's own, not the compat layer's 400."""
    try:
        return await call(document, variables)
    except ApiError as exc:
        if exc.code == "BAD_REGION":
            raise ApiError(422, exc.code, exc.message, exc.details) from None
        raise


async def fetch(call: GraphCall, args: Args) -> dict[str, Any]:
    """Validate the task, read the file's WCS, convert the region and run the task's document."""
    started = time.perf_counter()
    task = _task(args)
    parameters = _parameters(args)
    region = args.get("region")
    if region is not None and not isinstance(region, dict):
        raise _bad("`region` must be a JS9 region object", field="region")
    found = (await call(HEADER, {"path": args["image_path"]}))["fitsFile"]
    path = found["path"]
    plane = ImagePlane(found["header"], found["dataShape"])
    result: dict[str, Any]
    if task == "imstat":
        if region is None:
            s = found["statistics"] or {}
            result = {
                "DATA": {k: s.get(k) for k in ("mean", "std", "min", "max")} | {"npts": s.get("nFinite")},
                "sampled_every": s.get("sampledEvery"),
                "region": None,
            }
        else:
            shape = sky_shape(region, plane)
            st = (await _on_region(call, STATS, {"path": path, "shape": shape}))["fitsFile"][
                "regionStatistics"
            ]
            data = {k: st[k] for k in ("mean", "std", "rms", "min", "max", "sum")} | {"npts": st["nPixels"]}
            result = {"DATA": data, "unit": st["unit"], "region": shape}
    elif task == "imfit":
        if region is None:
            raise _bad("imfit needs a region around the source", code="REGION_REQUIRED", field="region")
        shape = sky_shape(region, plane)
        model = str(parameters.get("model", "gaussian")).lower()
        if model not in ("gaussian", "moffat"):
            raise _bad("`parameters.model` must be gaussian or moffat", code="VALIDATION_ERROR")
        background = parameters.get("background", True)
        variables = {
            "path": path,
            "shape": shape,
            "model": model.upper(),
            "background": background is not False,
        }
        fit = (await _on_region(call, FIT, variables))["fitsFile"]["fit"]
        x, y = (float(v) + 1.0 for v in plane.wcs.world_to_pixel_values(fit["raDeg"], fit["decDeg"]))
        result = {
            "fit": {
                "amplitude": fit["peak"],
                "center": [x, y],
                "major_axis": fit["fwhmMajorArcsec"],
                "minor_axis": fit["fwhmMinorArcsec"],
                "pa": fit["paDeg"],
                "background": fit["background"],
                "axes_unit": "arcsec (FWHM)",
                **{_snake(k): v for k, v in fit.items()},
            },
            "region": shape,
        }
    else:
        if region is None:
            raise _bad("imval needs a region (a point for one pixel)", code="REGION_REQUIRED", field="region")
        box = pixel_box(region, plane)
        got = (await call(VALUES, {"path": path, **box}))["fitsFile"]["pixelValues"]
        values = got["values"]
        result = {
            "values": values,
            "mask": [[v is not None for v in row] for row in values],
            "shape": [got["height"], got["width"]],
            "blc": [got["x0"] + 1, got["y0"] + 1],  # JS9 (1-based) pixel of values[0][0]
            "unit": got["unit"],
            "blc_world": {"ra_deg": got["raDeg"], "dec_deg": got["decDeg"]},
        }
        if box["width"] == box["height"] == 1 and values[0]:
            result["value"] = values[0][0]
    return {
        "success": True,
        "task": task,
        "image_path": path,
        "result": result,
        "error": None,
        "execution_time_sec": round(time.perf_counter() - started, 3),
    }


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def routes(settings: Settings) -> list[RestRoute]:
    return [
        multi_query_route(
            "POST",
            "/visualization/js9/analysis",
            [HEADER, STATS, FIT, VALUES],
            fetch,
            lambda data, _args: data,
            body=[
                Str("task", required=True, max_length=64, description="imstat, imfit or imval"),
                Str("image_path", required=True, max_length=qa.PATH_CHARS, description="A FITS file"),
                Json("region", description="A JS9 region in 1-based image pixels"),
                Json("parameters", description="imfit: {model: gaussian|moffat, background: bool}"),
            ],
            response=obj(success=BOOL, task=STR, result=ANY, error=null(STR)),
            errors=(400, 403, 404, 422),
            tag=TAG,
            summary="Region statistics, a source fit or pixel values of a FITS file (the JS9 analysis panel)",
            role=Role.VIEWER,  # a read (a computation), sent as POST for its body
        ),
    ]
