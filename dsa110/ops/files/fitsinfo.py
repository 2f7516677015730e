"""A FITS file for the QA browser: its HDUs, a header, the WCS and image statistics.

Statistics are over the finite pixels of the chosen HDU's data: min, max, mean, standard
deviation, median, and a robust noise ``1.4826 x MAD`` (the median absolute deviation
scaled to a Gaussian sigma, insensitive to the sources on the image). Images larger than
``MAX_STATS_PIXELS`` are sampled on a regular stride, so the answer stays quick; the
sampling is reported.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dsa110.ops.files.jsonable import jsonable

MAX_STATS_PIXELS = 16_000_000
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class HduInfo:
    index: int
    name: str
    kind: str
    shape: list[int]


@dataclass(frozen=True)
class ImageStats:
    n_pixels: int
    n_finite: int
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    median: float | None
    mad_rms: float | None
    sampled_every: int


@dataclass(frozen=True)
class FitsInfo:
    path: Path
    size_bytes: int
    hdus: list[HduInfo]
    hdu: int
    header: dict[str, Any]
    data_shape: list[int]
    wcs: dict[str, Any] | None
    stats: ImageStats | None


def image_stats(data: np.ndarray[Any, Any]) -> ImageStats:
    step = max(1, math.ceil(math.sqrt(data.size / MAX_STATS_PIXELS))) if data.size > MAX_STATS_PIXELS else 1
    plane = np.asarray(data[..., ::step, ::step] if data.ndim >= 2 else data[::step], dtype=np.float64)
    finite = plane[np.isfinite(plane)]
    if not finite.size:
        return ImageStats(int(data.size), 0, None, None, None, None, None, None, step)
    median = float(np.median(finite))
    return ImageStats(
        n_pixels=int(data.size),
        n_finite=int(finite.size) * step * step if step > 1 else int(finite.size),
        min=float(finite.min()),
        max=float(finite.max()),
        mean=float(finite.mean()),
        std=float(finite.std()),
        median=median,
        mad_rms=MAD_TO_SIGMA * float(np.median(np.abs(finite - median))),
        sampled_every=step,
    )


def _header(header: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for card in header.cards:
        key = card.keyword
        if not key:
            continue
        value = card.value
        if key in ("COMMENT", "HISTORY"):
            out.setdefault(key, []).append(str(value))
            continue
        out[key] = None if type(value).__name__ == "Undefined" else jsonable(value)
    return out


def _wcs(header: Any) -> dict[str, Any] | None:
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning
    from astropy.wcs.utils import proj_plane_pixel_scales

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception:  # an unreadable WCS is reported as none, not as a failure
            return None
    if not wcs.has_celestial:
        return None
    celestial = wcs.celestial
    return {
        "ctype": list(celestial.wcs.ctype),
        "crval": [float(v) for v in celestial.wcs.crval],
        "crpix": [float(v) for v in celestial.wcs.crpix],
        "cdelt": [float(v) for v in proj_plane_pixel_scales(celestial)],
        "radesys": str(celestial.wcs.radesys),
        "naxis": int(wcs.naxis),
    }


def read_fits(path: Path, hdu: int = 0) -> FitsInfo:
    """Describe ``path`` (blocking I/O); ``hdu`` chooses which header and data to show."""
    from astropy.io import fits

    with fits.open(path, memmap=True, lazy_load_hdus=False) as hdul:
        if not 0 <= hdu < len(hdul):
            raise IndexError(f"the file has {len(hdul)} HDUs")
        hdus = [
            HduInfo(index=i, name=h.name, kind=type(h).__name__, shape=list(getattr(h, "shape", ()) or ()))
            for i, h in enumerate(hdul)
        ]
        chosen = hdul[hdu]
        data = chosen.data if chosen.is_image else None
        stats = image_stats(np.asarray(data)) if data is not None and np.asarray(data).size else None
        return FitsInfo(
            path=path,
            size_bytes=path.stat().st_size,
            hdus=hdus,
            hdu=hdu,
            header=_header(chosen.header),
            data_shape=list(data.shape) if data is not None else [],
            wcs=_wcs(chosen.header) if chosen.is_image else None,
            stats=stats,
        )
