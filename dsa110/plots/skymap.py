"""The sky map of the monitored strip: every source, the ESE candidates and the alert sources.

Right ascension runs right to left (east to the left, as on the sky); candidates are
coloured by significance, sources with open alerts are ringed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsa110.plots.render import Canvas, finish, render


@dataclass(frozen=True)
class SkyMap:
    sources: Sequence[tuple[float, float]]
    """(RA, Dec) of the monitored sources, degrees."""
    candidates: Sequence[tuple[float, float, float]]
    """(RA, Dec, significance) of open ESE candidates."""
    alerts: Sequence[tuple[float, float]]
    """(RA, Dec) of sources with open alerts."""
    truncated: bool = False
    """True when only a sample of the sources is drawn."""


def draw_sky_map(sky: SkyMap) -> Any:
    def draw(figure: Any) -> None:
        axes = figure.add_subplot(1, 1, 1)
        if sky.sources:
            ra, dec = np.asarray(sky.sources, dtype=float).T
            note = " (sample)" if sky.truncated else ""
            axes.scatter(ra, dec, s=2, c="#b0b0b0", lw=0, label=f"{len(sky.sources)} sources{note}", zorder=1)
        if sky.candidates:
            ra, dec, significance = np.asarray(sky.candidates, dtype=float).T
            points = axes.scatter(
                ra,
                dec,
                s=40,
                c=significance,
                cmap="plasma",
                edgecolors="black",
                lw=0.5,
                label=f"{len(sky.candidates)} ESE candidates",
                zorder=3,
            )
            figure.colorbar(points, ax=axes, label="significance (sigma)", pad=0.01)
        if sky.alerts:
            ra, dec = np.asarray(sky.alerts, dtype=float).T
            axes.scatter(
                ra,
                dec,
                s=140,
                facecolors="none",
                edgecolors="#d62728",
                lw=1.2,
                label=f"{len(sky.alerts)} open alerts",
                zorder=2,
            )
        if not axes.xaxis_inverted():
            axes.invert_xaxis()
        finish(
            figure,
            axes,
            "DSA-110 monitored strip: ESE candidates and alerts",
            "right ascension (deg, ICRS)",
            "declination (deg)",
            legend="upper right",
        )

    return draw


def sky_map_image(sky: SkyMap, canvas: Canvas) -> bytes:
    return render(canvas, draw_sky_map(sky))
