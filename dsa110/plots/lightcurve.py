"""A source's light curve: flux with error bars, ESE candidate windows shaded, baselines drawn.

The baseline of a candidate is the detector's robust out-of-dip level
(``baseline_flux_jy``), drawn across the plot so the dip's depth reads at a glance;
without a candidate the inverse-variance weighted mean sum(w F) / sum(w), w = 1/sigma^2,
is drawn instead. Fluxes are shown in mJy/beam.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsa110.plots.render import Canvas, finish, render

WINDOW_COLOURS = ("#ff7f0e", "#d62728", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Window:
    candidate_id: int
    status: str
    start_mjd: float
    end_mjd: float
    baseline_flux_jy: float
    significance: float


@dataclass(frozen=True)
class LightCurvePlot:
    source_id: str
    mjd: Sequence[float]
    flux_jy: Sequence[float]
    flux_err_jy: Sequence[float]
    normalised: bool
    windows: Sequence[Window] = ()


def weighted_mean(flux: Sequence[float], err: Sequence[float]) -> float | None:
    """sum(w F) / sum(w) with w = 1 / sigma^2 over the points with a positive error."""
    f, e = np.asarray(flux, dtype=float), np.asarray(err, dtype=float)
    good = np.isfinite(f) & np.isfinite(e) & (e > 0)
    if not good.any():
        return None
    w = 1.0 / e[good] ** 2
    return float(np.sum(w * f[good]) / np.sum(w))


def draw_light_curve(plot: LightCurvePlot) -> Any:
    def draw(figure: Any) -> None:
        axes = figure.add_subplot(1, 1, 1)
        mjd = np.asarray(plot.mjd, dtype=float)
        flux = np.asarray(plot.flux_jy, dtype=float) * 1e3
        err = np.asarray(plot.flux_err_jy, dtype=float) * 1e3
        label = "normalised flux" if plot.normalised else "measured flux"
        if mjd.size:
            axes.errorbar(mjd, flux, yerr=err, fmt="o", ms=3, lw=0.8, color="#1f77b4", label=label, zorder=3)
        for i, window in enumerate(plot.windows):
            colour = WINDOW_COLOURS[i % len(WINDOW_COLOURS)]
            axes.axvspan(
                window.start_mjd,
                window.end_mjd,
                color=colour,
                alpha=0.18,
                zorder=1,
                label=f"ESE candidate {window.candidate_id} "
                f"({window.status}, {window.significance:.1f} sigma)",
            )
            axes.axhline(
                window.baseline_flux_jy * 1e3, color=colour, ls="--", lw=1.2, zorder=2, label="baseline"
            )
        if not plot.windows:
            mean = weighted_mean(plot.flux_jy, plot.flux_err_jy)
            if mean is not None:
                axes.axhline(mean * 1e3, color="grey", ls="--", lw=1.0, label="weighted mean")
        axes.ticklabel_format(axis="x", useOffset=False, style="plain")  # whole MJDs, not "+6.099e4"
        title = f"{plot.source_id} — {'normalised' if plot.normalised else 'raw'} light curve"
        title = title if mjd.size else f"{title} (no measurements)"
        finish(figure, axes, title, "MJD (UTC)", "peak flux density (mJy/beam)")

    return draw


def light_curve_image(plot: LightCurvePlot, canvas: Canvas) -> bytes:
    return render(canvas, draw_light_curve(plot))
