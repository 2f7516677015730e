"""Pixel values of a box of an image (the CASA ``imval`` task with a box region).

``imval`` (CASA task reference, "imval") answers the stored values of the pixels of a
region's bounding box with a mask of the valid ones; here the box is given in 0-based
pixels ``[x0, x0 + width) x [y0, y0 + height)`` (x along NAXIS1), clipped to the image.
No resampling: each value is the stored pixel, NaN (blanked) reported as masked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dsa110.science.errors import ScienceInputError
from dsa110.science.fitsio import SkyImage

MAX_BOX_PIXELS = 128 * 128
"""At most this many values in one answer (a box of 128 x 128 pixels)."""


@dataclass(frozen=True)
class PixelBox:
    x0: int
    y0: int
    width: int
    height: int
    values: list[list[float | None]]
    """Rows (``values[j][i]`` is pixel ``(x0 + i, y0 + j)``); null where the pixel is blank."""
    unit: str
    ra_deg: float
    dec_deg: float
    """Sky position of the box's first pixel ``(x0, y0)``."""


def pixel_box(image: SkyImage, x0: int, y0: int, width: int, height: int) -> PixelBox:
    """The stored values of the box clipped to the image; ``OUT_OF_IMAGE`` when nothing of it
    is on the image, ``BAD_SIZE`` when it holds over ``MAX_BOX_PIXELS`` pixels."""
    if width < 1 or height < 1:
        raise ScienceInputError("BAD_SIZE", "the box needs a width and a height of at least one pixel")
    if width * height > MAX_BOX_PIXELS:
        raise ScienceInputError("BAD_SIZE", f"the box holds over {MAX_BOX_PIXELS} pixels; make it smaller")
    ny, nx = image.shape
    xa, xb = max(0, x0), min(nx, x0 + width)
    ya, yb = max(0, y0), min(ny, y0 + height)
    if xa >= xb or ya >= yb:
        raise ScienceInputError("OUT_OF_IMAGE", f"the box is not on the {nx} x {ny} image")
    plane = np.asarray(image.data[ya:yb, xa:xb], dtype=np.float64)
    rows = [[float(v) if math.isfinite(v) else None for v in row] for row in plane.tolist()]
    ra, dec = image.pixel_to_world(xa, ya)
    return PixelBox(
        x0=xa,
        y0=ya,
        width=xb - xa,
        height=yb - ya,
        values=rows,
        unit=image.unit,
        ra_deg=float(ra),
        dec_deg=float(dec),
    )
