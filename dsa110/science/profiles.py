"""Image profiles: along a line, along a polyline, radial, and along one pixel row or column.

Positions are given on the sky, as (RA, Dec) pairs in degrees, or in pixels, as ``Pixel(x, y)``
(0-based, pixel centres on integers, x along NAXIS1: numpy's and astropy's ``*_values``
convention). Either way every sample reports both its sky position and its pixel position.

Line and polyline. Each segment is sampled on the straight pixel-space line between its
end points (in the image projection; over the few arcminutes of a profile this is the
great circle to better than 1e-6 of the length) at no more than one pixel spacing, with
bilinear interpolation (``scipy.ndimage.map_coordinates``, order 1; NaN outside the image).
With ``width_arcsec`` the value at each sample is the mean of ``n = max(1, round(width /
pixel))`` samples spread evenly across the width, perpendicular to the segment. Distances
are cumulative great-circle separations between successive samples (Vincenty, from
``dsa110.science.healpix``), in arcsec from the first vertex. Error of a sample:
sigma_noise / sqrt(n), with sigma_noise the robust image noise (1.4826 x MAD, see
``SkyImage.noise_estimate``) unless given: a noise-based error, since one sample has no
scatter of its own. (Noise is correlated over a beam, so widths under a beam average
fewer independent values than ``n``: the error is then a lower bound.)

Radial. Pixels whose centres lie within ``radius_arcsec`` (great-circle separation) of
the centre are binned into ``n_annuli`` equal-width annuli [r_i, r_i+1); the value is the
mean and the error std/sqrt(n) (sample std, n-1), or sigma_noise when an annulus holds one
pixel. Distances are the annulus mid-radii. Empty annuli carry ``None``.

Slice (the legacy ``axis``/``position`` form). The pixels of one row (axis x) or column
(axis y) as stored, no interpolation; distances are cumulative great-circle separations
between successive pixel centres, errors sigma_noise as for a line of zero width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage
from dsa110.science.healpix import angular_separation_deg
from dsa110.science.regions import CircleRegion, region_mask

MAX_PROFILE_SAMPLES = 4_000_000  # samples along x across; a 2000 x 2000 band
MAX_POLYLINE_VERTICES = 1000
MAX_ANNULI = 1000


class Pixel(NamedTuple):
    """A pixel position, 0-based, pixel centres on integers."""

    x: float
    y: float


Position = tuple[float, float] | Pixel  # (RA, Dec) in degrees, or a Pixel


@dataclass(frozen=True)
class ProfilePoint:
    distance_arcsec: float
    ra_deg: float
    dec_deg: float
    x: float  # pixel position of the sample (the centre, for a radial profile)
    y: float
    value: float | None  # None where no valid pixel contributes (blank or off the image)
    error: float | None
    n_samples: int


@dataclass(frozen=True)
class Profile:
    kind: Literal["line", "polyline", "radial", "slice"]
    unit: str
    points: list[ProfilePoint]


def _bad(message: str) -> ScienceInputError:
    return ScienceInputError("BAD_PROFILE", message)


def _noise(image: SkyImage, noise: float | None) -> float:
    if noise is None:
        return image.noise_estimate()
    if not math.isfinite(noise) or noise < 0:
        raise _bad(f"noise must be a non-negative number, got {noise}")
    return noise


def line_profile(
    image: SkyImage,
    start: Position,
    end: Position,
    *,
    width_arcsec: float = 0.0,
    noise: float | None = None,
) -> Profile:
    """Profile from ``start`` to ``end`` (both on the image)."""
    points = _sampled_path(image, [start, end], width_arcsec, _noise(image, noise))
    return Profile(kind="line", unit=image.unit, points=points)


def polyline_profile(
    image: SkyImage,
    vertices: Sequence[Position],
    *,
    width_arcsec: float = 0.0,
    noise: float | None = None,
) -> Profile:
    """Profile along successive segments; distance keeps growing across vertices."""
    if not 2 <= len(vertices) <= MAX_POLYLINE_VERTICES:
        raise _bad(f"a polyline needs 2 to {MAX_POLYLINE_VERTICES} vertices")
    points = _sampled_path(image, list(vertices), width_arcsec, _noise(image, noise))
    return Profile(kind="polyline", unit=image.unit, points=points)


def pixel_position(image: SkyImage, position: Position) -> Pixel:
    """The pixel of a sky or pixel position; ``OUT_OF_IMAGE`` when it is off the image."""
    if not isinstance(position, tuple | list) or len(position) != 2:
        raise _bad("each position must be a pair (ra_deg, dec_deg) or a Pixel(x, y)")
    try:
        a, b = float(position[0]), float(position[1])
    except (TypeError, ValueError) as exc:
        raise _bad("position coordinates must be numbers") from exc
    if not isinstance(position, Pixel):
        return Pixel(*image.pixel_of(a, b))
    ny, nx = image.shape
    if not (math.isfinite(a) and math.isfinite(b) and -0.5 <= a < nx - 0.5 and -0.5 <= b < ny - 0.5):
        raise ScienceInputError(
            "OUT_OF_IMAGE", f"pixel ({a:g}, {b:g}) is not on the {nx} x {ny} image (0-based)"
        )
    return Pixel(a, b)


def _sampled_path(
    image: SkyImage, vertices: list[Position], width_arcsec: float, noise: float
) -> list[ProfilePoint]:
    if not math.isfinite(width_arcsec) or width_arcsec < 0:
        raise _bad(f"width_arcsec must be >= 0, got {width_arcsec}")
    pixels = [pixel_position(image, vertex) for vertex in vertices]
    scale = min(image.pixel_scales_arcsec())
    n_across = max(1, round(width_arcsec / scale))
    xs: list[NDArray[np.float64]] = []
    ys: list[NDArray[np.float64]] = []
    normals: list[NDArray[np.float64]] = []
    for (x0, y0), (x1, y1) in pairwise(pixels):
        length = math.hypot(x1 - x0, y1 - y0)
        if length < 1e-9:
            raise _bad("successive vertices coincide")
        n = math.ceil(length - 1e-6) + 1  # tolerate WCS round-trip error on whole lengths
        t = np.linspace(0.0, 1.0, n)
        if xs:  # the vertex is already the last sample of the previous segment
            t = t[1:]
        xs.append(x0 + t * (x1 - x0))
        ys.append(y0 + t * (y1 - y0))
        normals.append(np.tile([-(y1 - y0) / length, (x1 - x0) / length], (t.size, 1)))
    x, y, normal = np.concatenate(xs), np.concatenate(ys), np.concatenate(normals)
    if x.size * n_across > MAX_PROFILE_SAMPLES:
        raise _bad(f"the profile needs over {MAX_PROFILE_SAMPLES} samples; shorten it or narrow it")

    # Offsets across the width, in pixels: evenly spaced, centred on the path.
    width_px = width_arcsec / scale
    across = (np.arange(n_across) - (n_across - 1) / 2.0) * (width_px / n_across if n_across > 1 else 0.0)
    sample_x = x[:, None] + normal[:, 0:1] * across[None, :]
    sample_y = y[:, None] + normal[:, 1:2] * across[None, :]
    data = np.asarray(image.data, dtype=np.float64)
    values = ndimage.map_coordinates(
        data, [sample_y.ravel(), sample_x.ravel()], order=1, mode="constant", cval=np.nan
    ).reshape(sample_x.shape)
    return _points_along(image, x, y, values, noise)


def axis_slice(
    image: SkyImage, axis: Literal["x", "y"], position: int | None = None, *, noise: float | None = None
) -> Profile:
    """Row ``y = position`` (axis x) or column ``x = position`` (axis y); the centre by default."""
    ny, nx = image.shape
    if axis not in ("x", "y"):
        raise _bad(f"axis must be x or y, got {axis!r}")
    across = ny if axis == "x" else nx
    if position is None:
        position = across // 2
    if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position < across:
        raise ScienceInputError(
            "OUT_OF_IMAGE", f"position must be an integer pixel in [0, {across - 1}] for axis {axis}"
        )
    along = np.arange(nx if axis == "x" else ny, dtype=np.float64)
    fixed = np.full(along.size, float(position))
    x, y = (along, fixed) if axis == "x" else (fixed, along)
    data = image.data[position, :] if axis == "x" else image.data[:, position]
    values = np.asarray(data, dtype=np.float64)[:, None]
    return Profile(
        kind="slice", unit=image.unit, points=_points_along(image, x, y, values, _noise(image, noise))
    )


def _points_along(
    image: SkyImage,
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    values: NDArray[np.float64],
    noise: float,
) -> list[ProfilePoint]:
    """One point per (x, y) sample: the mean of its finite ``values`` row, distance along the path."""
    finite = np.isfinite(values)
    counts = finite.sum(axis=1)
    sums = np.where(finite, values, 0.0).sum(axis=1)
    ra, dec = image.pixel_to_world(x, y)
    steps = angular_separation_deg(ra[:-1], dec[:-1], ra[1:], dec[1:]) * 3600.0
    distance = np.concatenate([[0.0], np.cumsum(steps)])
    return [
        ProfilePoint(
            distance_arcsec=float(distance[i]),
            ra_deg=float(ra[i]),
            dec_deg=float(dec[i]),
            x=float(x[i]),
            y=float(y[i]),
            value=float(sums[i] / counts[i]) if counts[i] else None,
            error=float(noise / math.sqrt(counts[i])) if counts[i] else None,
            n_samples=int(counts[i]),
        )
        for i in range(x.size)
    ]


def radial_profile(
    image: SkyImage,
    center: Position,
    radius_arcsec: float,
    *,
    n_annuli: int = 20,
    noise: float | None = None,
) -> Profile:
    """Mean in ``n_annuli`` equal annuli out to ``radius_arcsec`` around ``center``."""
    if isinstance(n_annuli, bool) or not isinstance(n_annuli, int) or not 1 <= n_annuli <= MAX_ANNULI:
        raise _bad(f"n_annuli must be an integer in [1, {MAX_ANNULI}]")
    if not math.isfinite(radius_arcsec) or radius_arcsec <= 0:
        raise _bad(f"radius_arcsec must be positive, got {radius_arcsec}")
    x0, y0 = pixel_position(image, center)
    if isinstance(center, Pixel):
        ra0, dec0 = (float(v) for v in image.pixel_to_world(x0, y0))
    else:
        ra0, dec0 = float(center[0]), float(center[1])
    scale = min(image.pixel_scales_arcsec())
    if math.pi * (radius_arcsec / scale) ** 2 > MAX_PROFILE_SAMPLES:
        raise _bad(f"the radius covers over {MAX_PROFILE_SAMPLES} pixels")
    try:
        disc = CircleRegion(ra0, dec0, radius_arcsec)
    except ScienceInputError as exc:
        raise _bad(exc.message) from exc
    rows, cols = np.nonzero(region_mask(image, disc))
    values = np.asarray(image.data[rows, cols], dtype=np.float64)
    ra, dec = image.pixel_to_world(cols, rows)
    distance = angular_separation_deg(ra0, dec0, ra, dec) * 3600.0
    edges = np.linspace(0.0, radius_arcsec, n_annuli + 1)
    annulus = np.clip(np.searchsorted(edges, distance, side="right") - 1, 0, n_annuli - 1)
    sigma = _noise(image, noise)
    points = []
    for i in range(n_annuli):
        inside = values[(annulus == i) & np.isfinite(values)]
        n = int(inside.size)
        if n > 1:
            value, error = float(inside.mean()), float(inside.std(ddof=1) / math.sqrt(n))
        elif n == 1:
            value, error = float(inside[0]), sigma
        else:
            value, error = None, None
        points.append(
            ProfilePoint(
                distance_arcsec=float((edges[i] + edges[i + 1]) / 2),
                ra_deg=ra0 % 360.0,
                dec_deg=dec0,
                x=x0,
                y=y0,
                value=value,
                error=error,
                n_samples=n,
            )
        )
    return Profile(kind="radial", unit=image.unit, points=points)


def profile_arrays(profile: Profile) -> dict[str, Any]:
    """Column-wise view (distance, value, error lists) for JSON or plotting clients."""
    return {
        "kind": profile.kind,
        "unit": profile.unit,
        "distance_arcsec": [p.distance_arcsec for p in profile.points],
        "value": [p.value for p in profile.points],
        "error": [p.error for p in profile.points],
        "n_samples": [p.n_samples for p in profile.points],
    }
