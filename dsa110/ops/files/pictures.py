"""PNG pictures: FITS thumbnails and cached derived files, drawn with matplotlib (Agg).

Thumbnails follow the legacy QA thumbnail: the image's first 2-D plane, a linear stretch
between its 1st and 99.5th percentiles (astropy ``AsymmetricPercentileInterval``), at most
``size`` pixels on a side (block-averaged down first when larger). PNG and JPEG pictures are
shrunk with Pillow instead.

Derived files live under the cache directory, named by a hash of the source's real path,
size, modification time and the request, and are written to a temporary name then renamed:
a half-written picture is never served, and a changed source gets a fresh one.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_THUMB = 512
MAX_THUMB = 2048


def figure(width_px: int, height_px: int, dpi: int = 100) -> Any:
    """A matplotlib Figure on an Agg canvas (no pyplot: safe from any thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    return buffer.getvalue()


def first_plane(data: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    plane = np.asarray(data)
    while plane.ndim > 2:
        plane = plane[0]
    if plane.ndim != 2:
        raise ValueError("the FITS data is not an image")
    return plane.astype(np.float64)


def _shrink(plane: np.ndarray[Any, Any], size: int) -> np.ndarray[Any, Any]:
    factor = int(np.ceil(max(plane.shape) / size))
    if factor <= 1:
        return plane
    ny, nx = (plane.shape[0] // factor) * factor, (plane.shape[1] // factor) * factor
    blocks = plane[:ny, :nx].reshape(ny // factor, factor, nx // factor, factor)
    with np.errstate(invalid="ignore"):
        shrunk: np.ndarray[Any, Any] = np.nanmean(blocks, axis=(1, 3))
    return shrunk


def fits_thumbnail(path: Path, size: int = DEFAULT_THUMB) -> bytes:
    from astropy.io import fits
    from astropy.visualization import AsymmetricPercentileInterval, ImageNormalize, LinearStretch

    with fits.open(path, memmap=True) as hdul:
        hdu = next((h for h in hdul if h.is_image and h.data is not None and np.ndim(h.data) >= 2), None)
        if hdu is None:
            raise ValueError("the FITS file has no image")
        plane = _shrink(first_plane(hdu.data), size)
    finite = plane[np.isfinite(plane)]
    norm = (
        ImageNormalize(finite, interval=AsymmetricPercentileInterval(1.0, 99.5), stretch=LinearStretch())
        if finite.size
        else None
    )
    ny, nx = plane.shape
    scale = size / max(nx, ny)
    fig = figure(max(1, round(nx * scale)), max(1, round(ny * scale)))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(
        np.nan_to_num(plane, nan=float(np.nanmin(finite)) if finite.size else 0.0),
        origin="lower",
        cmap="inferno",
        norm=norm,
    )
    ax.set_axis_off()
    return png_bytes(fig)


def picture_thumbnail(path: Path, size: int = DEFAULT_THUMB) -> bytes:
    from PIL import Image

    with Image.open(path) as picture:
        picture.thumbnail((size, size))
        buffer = io.BytesIO()
        picture.convert("RGBA" if picture.mode in ("RGBA", "LA", "P") else "RGB").save(buffer, format="PNG")
        return buffer.getvalue()


def cache_key(source: Path, *parts: object) -> str:
    stat = source.stat()
    text = "|".join([str(source.resolve()), str(stat.st_size), str(stat.st_mtime_ns), *map(str, parts)])
    return hashlib.sha256(text.encode()).hexdigest()


def write_atomic(target: Path, content: bytes) -> Path:
    """Write ``content`` to a temporary name beside ``target``, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    try:
        partial.write_bytes(content)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed write leaves nothing beside the target
        raise
    return target


def cached(target: Path, render: Callable[[], bytes]) -> Path:
    """``target`` if it exists, else ``render()`` written there atomically."""
    return target if target.is_file() else write_atomic(target, render())


def thumbnail(path: Path, cache_dir: Path, size: int = DEFAULT_THUMB) -> Path:
    """A cached PNG thumbnail of a FITS image or a picture."""
    key = cache_key(path, "thumb", size)
    target = cache_dir / "thumbs" / key[:2] / f"{key}.png"
    if path.suffix.lower() in (".fits", ".fit", ".fts"):
        return cached(target, lambda: fits_thumbnail(path, size))
    return cached(target, lambda: picture_thumbnail(path, size))
