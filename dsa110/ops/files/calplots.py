"""Calibration QA pictures drawn from the calibration tables themselves.

* Bandpass per antenna: amplitude (top) and phase in degrees (bottom) against frequency
  (MHz) across every spectral window, one line per polarisation; flagged solutions are
  left out (gaps), so a flagged antenna shows an empty panel with a note.
* SPW overview: per spectral window, the flagged fraction of solutions (bars, top) and the
  median amplitude of the unflagged ones with its interquartile range (bottom).

Pictures are ``width x height`` pixels at 100 dpi (``BANDPASS_SIZE`` by default), PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dsa110.ops.files.caltables import SpwArrays
from dsa110.ops.files.pictures import figure, png_bytes

BANDPASS_SIZE = (900, 600)
SPW_SIZE = (900, 500)
POL_LABELS = ("X", "Y", "3", "4")


def bandpass_plot(
    arrays: Sequence[SpwArrays], antenna: int, title: str, size: tuple[int, int] = BANDPASS_SIZE
) -> bytes:
    fig = figure(*size)
    amp_ax, phase_ax = fig.subplots(2, 1, sharex=True)
    drawn = 0
    for spw in arrays:
        rows = spw.antennas == antenna
        if not rows.any() or spw.values.ndim != 3:
            continue
        values = np.where(spw.flags[rows], np.nan, spw.values[rows]).mean(axis=0)  # time average
        x = spw.freqs_hz / 1e6 if spw.freqs_hz is not None else np.arange(values.shape[0]) + 0.0
        for pol in range(values.shape[1]):
            color = f"C{pol}"
            label = f"pol {POL_LABELS[pol]}" if spw is arrays[0] else None
            amp_ax.plot(x, np.abs(values[:, pol]), ".-", color=color, ms=3, lw=0.8, label=label)
            phase_ax.plot(x, np.degrees(np.angle(values[:, pol])), ".-", color=color, ms=3, lw=0.8)
            drawn += int(np.isfinite(values[:, pol]).sum())
    amp_ax.set_ylabel("amplitude")
    phase_ax.set_ylabel("phase (deg)")
    phase_ax.set_xlabel("frequency (MHz)" if arrays and arrays[0].freqs_hz is not None else "channel")
    phase_ax.set_ylim(-180, 180)
    amp_ax.set_title(title)
    if drawn:
        amp_ax.legend(loc="upper right", fontsize="small")
    else:
        amp_ax.text(0.5, 0.5, "every solution flagged", transform=amp_ax.transAxes, ha="center")
    fig.tight_layout()
    return png_bytes(fig)


def spw_overview_plot(arrays: Sequence[SpwArrays], title: str, size: tuple[int, int] = SPW_SIZE) -> bytes:
    fig = figure(*size)
    flag_ax, amp_ax = fig.subplots(2, 1, sharex=True)
    ids = [a.spw_id for a in arrays]
    fractions = [float(a.flags.mean()) if a.flags.size else 0.0 for a in arrays]
    flag_ax.bar(ids, fractions, color="C3")
    flag_ax.set_ylim(0, 1)
    flag_ax.set_ylabel("flagged fraction")
    flag_ax.set_title(title)
    for a in arrays:
        good = a.values[~a.flags]
        if a.complex_values and good.size:
            amp = np.abs(good)
            q1, med, q3 = np.percentile(amp, [25, 50, 75])
            amp_ax.errorbar([a.spw_id], [med], yerr=[[med - q1], [q3 - med]], fmt="o", color="C0")
    amp_ax.set_ylabel("median |gain|")
    amp_ax.set_xlabel("spectral window")
    if ids:
        amp_ax.set_xticks(ids)
    fig.tight_layout()
    return png_bytes(fig)


def bandpass_name(antenna: int) -> str:
    return f"bandpass_antenna_{antenna}.png"


def plot_dir(qa_dir: Path, ms_path: Path) -> Path:
    """Where an MS's calibration pictures go: ``<qa>/calibration/<ms name>/``."""
    return qa_dir / "calibration" / ms_path.name
