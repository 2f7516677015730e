"""Turning a matplotlib figure into PNG or SVG bytes, one figure at a time.

Only matplotlib's object API is used (``Figure``, never ``pyplot``): no global figure
state, nothing left open. Rendering is serialised by a lock: the object API keeps each
figure separate, but the font cache and text layout are shared by the process, and a
plot is rendered once and then served from the cache (``dsa110.plots.cache``).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

MEDIA: Final = {"png": "image/png", "svg": "image/svg+xml"}
DPI: Final = 100
MIN_PIXELS: Final = 200
MAX_PIXELS: Final = 4000

_LOCK = threading.Lock()


@dataclass(frozen=True)
class Canvas:
    """What to render to: the format and the size in pixels (PNG is exactly this size)."""

    fmt: str
    width: int = 900
    height: int = 500

    def __post_init__(self) -> None:
        if self.fmt not in MEDIA:
            raise ValueError(f"plot format must be one of {', '.join(MEDIA)}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if not MIN_PIXELS <= value <= MAX_PIXELS:
                raise ValueError(f"{name} must be in [{MIN_PIXELS}, {MAX_PIXELS}] pixels")


def finish(figure: Any, axes: Any, title: str, xlabel: str, ylabel: str, legend: str = "best") -> None:
    """Labels, a light grid, a legend when something is labelled, and a layout that fits the canvas."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc=legend, fontsize="small")
    figure.tight_layout()


def render(canvas: Canvas, draw: Callable[[Any], None]) -> bytes:
    """A new figure of ``canvas``'s size, drawn by ``draw(figure)``, saved as ``canvas.fmt``."""
    from matplotlib.figure import Figure  # import on first plot: the server starts without it

    with _LOCK:
        figure = Figure(figsize=(canvas.width / DPI, canvas.height / DPI), dpi=DPI)
        draw(figure)
        buffer = io.BytesIO()
        # metadata: no creation date, so the same data always renders to the same bytes
        metadata = {"Date": None} if canvas.fmt == "svg" else {}
        figure.savefig(buffer, format=canvas.fmt, dpi=DPI, metadata=metadata)
        return buffer.getvalue()
