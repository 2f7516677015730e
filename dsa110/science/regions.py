"""Sky regions (circle, rotated rectangle, ellipse, polygon), pixel masks and statistics.

The legacy code ignored a rectangle's angle and returned an empty mask for polygons
(legacy-pipeline-facts §3.8). Here every shape is defined on the sky and tested on the
sky: each pixel centre is converted to (RA, Dec) through the image WCS and then

* circle: inside when its great-circle separation from the centre is <= the radius;
* ellipse and rectangle: projected onto the plane tangent at the shape's centre
  (gnomonic projection, Calabretta & Greisen 2002, A&A 395, 1077, eq. 54; Snyder 1987
  p. 164): with (a, d) = (RA, Dec), c the angular distance from the centre (a0, d0),
      cos c = sin d0 sin d + cos d0 cos d cos(a-a0)
      xi  = cos d sin(a-a0) / cos c                          (east)
      eta = (cos d0 sin d - sin d0 cos d cos(a-a0)) / cos c   (north)
  and the shape is tested in (xi, eta), rotated by its position angle;
* polygon: vertices and pixel centres are projected about the vertices' mean direction;
  the gnomonic projection maps great circles to straight lines, so edges are great-circle
  arcs, and the even-odd (crossing number) rule decides inside.

Angles are position angles in degrees east of north (north = 0, east = 90). A rectangle's
``height`` lies along its angle, its ``width`` perpendicular; at angle 0 height runs
north-south. An ellipse's semi-major axis lies along its PA. Boundaries are inclusive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage
from dsa110.science.healpix import angular_separation_deg

RAD_TO_ARCSEC = 180.0 / math.pi * 3600.0
# Regions are for sources and small patches; 10 degrees is far beyond any real use and
# keeps the tangent-plane geometry well-conditioned.
MAX_REGION_ARCSEC = 36_000.0
MAX_POLYGON_VERTICES = 1000


def _bad(message: str) -> ScienceInputError:
    return ScienceInputError("BAD_REGION", message)


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"{name} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise _bad(f"{name} must be finite, got {value}")
    return number


def _position(ra: Any, dec: Any) -> tuple[float, float]:
    ra_deg, dec_deg = _number(ra, "ra_deg"), _number(dec, "dec_deg")
    if not -90.0 <= dec_deg <= 90.0:
        raise _bad(f"dec_deg must be within [-90, 90], got {dec_deg}")
    return ra_deg % 360.0, dec_deg


def _size(value: Any, name: str) -> float:
    size = _number(value, name)
    if not 0.0 < size <= MAX_REGION_ARCSEC:
        raise _bad(f"{name} must be in (0, {MAX_REGION_ARCSEC:g}] arcsec, got {size}")
    return size


def tangent_offsets_arcsec(
    ra0_deg: float, dec0_deg: float, ra_deg: ArrayLike, dec_deg: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Gnomonic (xi east, eta north) offsets in arcsec about (ra0, dec0); formula in the module doc.

    The third array is False for points on the far hemisphere (cos c <= 0), where the
    projection is undefined; their offsets are NaN.
    """
    a0, d0 = math.radians(ra0_deg), math.radians(dec0_deg)
    a = np.radians(np.asarray(ra_deg, dtype=float))
    d = np.radians(np.asarray(dec_deg, dtype=float))
    da = a - a0
    cos_c = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(da)
    near = cos_c > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(near, np.cos(d) * np.sin(da) / cos_c, np.nan)
        eta = np.where(
            near, (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(da)) / cos_c, np.nan
        )
    return xi * RAD_TO_ARCSEC, eta * RAD_TO_ARCSEC, near


def _rotate(xi: NDArray[Any], eta: NDArray[Any], pa_deg: float) -> tuple[NDArray[Any], NDArray[Any]]:
    """Components along the PA direction (``along``) and perpendicular to it (``across``)."""
    s, c = math.sin(math.radians(pa_deg)), math.cos(math.radians(pa_deg))
    return xi * s + eta * c, xi * c - eta * s


@dataclass(frozen=True)
class CircleRegion:
    ra_deg: float
    dec_deg: float
    radius_arcsec: float

    kind = "circle"

    def __post_init__(self) -> None:
        ra, dec = _position(self.ra_deg, self.dec_deg)
        object.__setattr__(self, "ra_deg", ra)
        object.__setattr__(self, "dec_deg", dec)
        object.__setattr__(self, "radius_arcsec", _size(self.radius_arcsec, "radius_arcsec"))

    @property
    def center(self) -> tuple[float, float]:
        return self.ra_deg, self.dec_deg

    def bounding_radius_arcsec(self) -> float:
        return self.radius_arcsec

    def contains(self, ra_deg: ArrayLike, dec_deg: ArrayLike) -> NDArray[np.bool_]:
        sep = angular_separation_deg(self.ra_deg, self.dec_deg, ra_deg, dec_deg) * 3600.0
        return np.asarray(sep <= self.radius_arcsec)


@dataclass(frozen=True)
class EllipseRegion:
    ra_deg: float
    dec_deg: float
    semi_major_arcsec: float
    semi_minor_arcsec: float
    pa_deg: float = 0.0

    kind = "ellipse"

    def __post_init__(self) -> None:
        ra, dec = _position(self.ra_deg, self.dec_deg)
        object.__setattr__(self, "ra_deg", ra)
        object.__setattr__(self, "dec_deg", dec)
        major = _size(self.semi_major_arcsec, "semi_major_arcsec")
        minor = _size(self.semi_minor_arcsec, "semi_minor_arcsec")
        if minor > major:
            raise _bad("semi_minor_arcsec must not exceed semi_major_arcsec")
        object.__setattr__(self, "semi_major_arcsec", major)
        object.__setattr__(self, "semi_minor_arcsec", minor)
        object.__setattr__(self, "pa_deg", _number(self.pa_deg, "pa_deg") % 360.0)

    @property
    def center(self) -> tuple[float, float]:
        return self.ra_deg, self.dec_deg

    def bounding_radius_arcsec(self) -> float:
        return self.semi_major_arcsec

    def contains(self, ra_deg: ArrayLike, dec_deg: ArrayLike) -> NDArray[np.bool_]:
        xi, eta, near = tangent_offsets_arcsec(self.ra_deg, self.dec_deg, ra_deg, dec_deg)
        along, across = _rotate(xi, eta, self.pa_deg)
        with np.errstate(invalid="ignore"):
            inside = (along / self.semi_major_arcsec) ** 2 + (across / self.semi_minor_arcsec) ** 2 <= 1.0
        return np.asarray(near & inside)


@dataclass(frozen=True)
class RectangleRegion:
    ra_deg: float
    dec_deg: float
    width_arcsec: float
    height_arcsec: float
    angle_deg: float = 0.0

    kind = "rectangle"

    def __post_init__(self) -> None:
        ra, dec = _position(self.ra_deg, self.dec_deg)
        object.__setattr__(self, "ra_deg", ra)
        object.__setattr__(self, "dec_deg", dec)
        object.__setattr__(self, "width_arcsec", _size(self.width_arcsec, "width_arcsec"))
        object.__setattr__(self, "height_arcsec", _size(self.height_arcsec, "height_arcsec"))
        object.__setattr__(self, "angle_deg", _number(self.angle_deg, "angle_deg") % 360.0)

    @property
    def center(self) -> tuple[float, float]:
        return self.ra_deg, self.dec_deg

    def bounding_radius_arcsec(self) -> float:
        return 0.5 * math.hypot(self.width_arcsec, self.height_arcsec)

    def contains(self, ra_deg: ArrayLike, dec_deg: ArrayLike) -> NDArray[np.bool_]:
        xi, eta, near = tangent_offsets_arcsec(self.ra_deg, self.dec_deg, ra_deg, dec_deg)
        along, across = _rotate(xi, eta, self.angle_deg)
        with np.errstate(invalid="ignore"):
            inside = (np.abs(along) <= self.height_arcsec / 2) & (np.abs(across) <= self.width_arcsec / 2)
        return np.asarray(near & inside)


@dataclass(frozen=True)
class PolygonRegion:
    """A polygon of (RA, Dec) vertices in degrees, edges along great circles (even-odd rule)."""

    vertices: tuple[tuple[float, float], ...]

    kind = "polygon"

    def __post_init__(self) -> None:
        raw = self.vertices
        if not isinstance(raw, list | tuple) or not 3 <= len(raw) <= MAX_POLYGON_VERTICES:
            raise _bad(f"a polygon needs 3 to {MAX_POLYGON_VERTICES} vertices")
        vertices: list[tuple[float, float]] = []
        for vertex in raw:
            if not isinstance(vertex, list | tuple) or len(vertex) != 2:
                raise _bad("each polygon vertex must be a pair [ra_deg, dec_deg]")
            vertices.append(_position(vertex[0], vertex[1]))
        object.__setattr__(self, "vertices", tuple(vertices))
        if self.bounding_radius_arcsec() > MAX_REGION_ARCSEC:
            raise _bad(f"polygon vertices must lie within {MAX_REGION_ARCSEC:g} arcsec of their centre")
        x, y = self._projected_vertices()
        area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
        # Relative tolerance: vertices on one great circle give ~1e-12 of rounding area.
        if not area > 1e-9 * self.bounding_radius_arcsec() ** 2:
            raise _bad("the polygon has zero area")

    @property
    def center(self) -> tuple[float, float]:
        """The normalised mean of the vertices' unit vectors: the tangent point."""
        ra = np.radians([v[0] for v in self.vertices])
        dec = np.radians([v[1] for v in self.vertices])
        x, y, z = (np.cos(dec) * np.cos(ra)).sum(), (np.cos(dec) * np.sin(ra)).sum(), np.sin(dec).sum()
        return float(np.degrees(np.arctan2(y, x)) % 360.0), float(np.degrees(np.arctan2(z, np.hypot(x, y))))

    def bounding_radius_arcsec(self) -> float:
        ra0, dec0 = self.center
        ra, dec = zip(*self.vertices, strict=True)
        return float(np.max(angular_separation_deg(ra0, dec0, ra, dec))) * 3600.0

    def _projected_vertices(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        ra0, dec0 = self.center
        ra, dec = zip(*self.vertices, strict=True)
        xi, eta, _ = tangent_offsets_arcsec(ra0, dec0, ra, dec)
        return xi, eta

    def contains(self, ra_deg: ArrayLike, dec_deg: ArrayLike) -> NDArray[np.bool_]:
        ra0, dec0 = self.center
        px, py, near = tangent_offsets_arcsec(ra0, dec0, ra_deg, dec_deg)
        vx, vy = self._projected_vertices()
        inside = np.zeros(np.shape(px), dtype=bool)
        # Crossing number: count edges that a ray towards +x from the point crosses.
        for x1, y1, x2, y2 in zip(vx, vy, np.roll(vx, -1), np.roll(vy, -1), strict=True):
            if y1 == y2:
                continue
            with np.errstate(invalid="ignore"):
                straddles = (y1 > py) != (y2 > py)
                x_cross = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
                inside ^= straddles & (px < x_cross)
        return np.asarray(near & inside)


Region = CircleRegion | EllipseRegion | RectangleRegion | PolygonRegion

_FIELDS: dict[str, tuple[type[Any], tuple[str, ...], tuple[str, ...]]] = {
    # kind: (class, required keys, optional keys)
    "circle": (CircleRegion, ("ra_deg", "dec_deg", "radius_arcsec"), ()),
    "ellipse": (EllipseRegion, ("ra_deg", "dec_deg", "semi_major_arcsec", "semi_minor_arcsec"), ("pa_deg",)),
    "rectangle": (RectangleRegion, ("ra_deg", "dec_deg", "width_arcsec", "height_arcsec"), ("angle_deg",)),
    "polygon": (PolygonRegion, ("vertices",), ()),
}


def region_to_json(region: Region) -> dict[str, Any]:
    """The JSON object stored in ``regions.shape`` (``type`` names the shape)."""
    if isinstance(region, PolygonRegion):
        return {"type": "polygon", "vertices": [[ra, dec] for ra, dec in region.vertices]}
    _, required, optional = _FIELDS[region.kind]
    return {"type": region.kind, **{key: getattr(region, key) for key in required + optional}}


def region_from_json(shape: Any) -> Region:
    """Validate and build a region from its JSON object; ``BAD_REGION`` on any defect."""
    if not isinstance(shape, Mapping):
        raise _bad("a region shape must be a JSON object")
    kind = shape.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise _bad(f"unknown region type {kind!r}; expected one of {sorted(_FIELDS)}")
    cls, required, optional = _FIELDS[kind]
    keys = set(shape) - {"type"}
    missing = [key for key in required if key not in keys]
    unknown = sorted(str(k) for k in keys - set(required) - set(optional))
    if missing or unknown:
        raise _bad(f"{kind}: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}")
    region: Region = cls(**{key: shape[key] for key in required + optional if key in shape})
    return region


def region_mask(image: SkyImage, region: Region) -> NDArray[np.bool_]:
    """Boolean ``[y, x]`` mask of the pixels whose centres lie inside ``region``.

    Only a box around the region is converted to world coordinates, so small regions on
    large images cost little. A region entirely off the image gives an empty mask.
    """
    ny, nx = image.shape
    mask = np.zeros((ny, nx), dtype=bool)
    ra0, dec0 = region.center
    with np.errstate(invalid="ignore"):
        cx, cy = image.world_to_pixel(ra0, dec0)
    cxf, cyf = float(cx), float(cy)
    if not (np.isfinite(cxf) and np.isfinite(cyf)):
        return mask
    # Margin: pixel size drifts slowly across a projection; 5 % plus two pixels covers it.
    reach = region.bounding_radius_arcsec() / min(image.pixel_scales_arcsec()) * 1.05 + 2.0
    x0, x1 = max(0, math.floor(cxf - reach)), min(nx, math.ceil(cxf + reach) + 1)
    y0, y1 = max(0, math.floor(cyf - reach)), min(ny, math.ceil(cyf + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return mask
    ys, xs = np.mgrid[y0:y1, x0:x1]
    with np.errstate(invalid="ignore"):
        ra, dec = image.pixel_to_world(xs, ys)
    valid = np.isfinite(ra) & np.isfinite(dec)
    inside = np.zeros(xs.shape, dtype=bool)
    inside[valid] = region.contains(ra[valid], dec[valid])
    mask[y0:y1, x0:x1] = inside
    return mask


@dataclass(frozen=True)
class RegionStatistics:
    """Statistics of the finite pixels inside a region, in the image unit.

    ``rms`` is the root mean square sqrt(Σx²/n) and ``std`` the sample standard deviation
    sqrt(Σ(x-mean)²/(n-1)) (0 for one pixel), the CASA ``imstat`` definitions. The legacy
    API's ``rms`` was the standard deviation: ``std`` here.
    """

    mean: float
    rms: float
    std: float
    min: float
    max: float
    sum: float
    n_pixels: int
    unit: str


def region_statistics(image: SkyImage, region: Region) -> RegionStatistics:
    """Statistics over the pixels inside ``region``; ``EMPTY_REGION`` when none are."""
    values = np.asarray(image.data[region_mask(image, region)], dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ScienceInputError("EMPTY_REGION", "no valid image pixel lies inside the region")
    return RegionStatistics(
        mean=float(values.mean()),
        rms=float(np.sqrt(np.mean(values**2))),
        std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        min=float(values.min()),
        max=float(values.max()),
        sum=float(values.sum()),
        n_pixels=int(values.size),
        unit=image.unit,
    )
