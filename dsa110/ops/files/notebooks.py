"""QA notebooks (nbformat v4) that load an observation group's files and plot them.

A notebook is plain code an astronomer can rerun and edit: it opens the group's
Measurement Set with python-casacore (summary, flagged fraction), each calibration table
(amplitude per antenna against frequency, or delays), and the group's image with astropy
(shown with a 1-99.5 percentile stretch). Paths are written into the first code cell as
literals; nothing in the notebook talks to this server. ``notebook_type`` chooses which
sections appear: ``calibration`` (MS + tables), ``image`` (image), ``full`` (all).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dsa110.ops.files.pictures import write_atomic

NOTEBOOK_TYPES = ("full", "calibration", "image")

IMPORTS = """\
import numpy as np
import matplotlib.pyplot as plt
from casacore import tables
from astropy.io import fits
from astropy.visualization import AsymmetricPercentileInterval, ImageNormalize"""

MS_CELL = """\
def ms_summary(path):
    with tables.table(path, ack=False) as ms:
        times = ms.getcol("TIME")
        flags = ms.getcol("FLAG", 0, min(ms.nrows(), 20000))
        n_rows = ms.nrows()
    with tables.table(path + "/SPECTRAL_WINDOW", ack=False) as spw:
        freqs = np.concatenate([spw.getcell("CHAN_FREQ", i) for i in range(spw.nrows())])
    with tables.table(path + "/ANTENNA", ack=False) as ant:
        names = list(ant.getcol("NAME"))
    print(path)
    print(f"  rows {n_rows}, antennas {len(names)}, channels {freqs.size}")
    print(f"  {freqs.min() / 1e9:.4f}-{freqs.max() / 1e9:.4f} GHz, {np.ptp(times):.1f} s")
    print(f"  flagged (first rows): {flags.mean():.1%}")

for path in MS_PATHS:
    ms_summary(path)"""

CALTABLE_CELL = """\
def plot_caltable(path):
    with tables.table(path, ack=False) as cal:
        param = "CPARAM" if "CPARAM" in cal.colnames() else "FPARAM"
        values, flags = cal.getcol(param), cal.getcol("FLAG")
        antennas = cal.getcol("ANTENNA1")
    values = np.where(flags, np.nan, values)
    fig, ax = plt.subplots(figsize=(8, 4))
    for ant in np.unique(antennas):
        per_ant = np.abs(values[antennas == ant]) if param == "CPARAM" else values[antennas == ant].real
        if np.isnan(per_ant).all():
            print(f"antenna {ant}: every solution flagged")
            continue
        ax.plot(np.nanmean(per_ant, axis=(0, 2)), ".-", label=f"ant {ant}")
    ax.set_xlabel("channel")
    ax.set_ylabel("|gain|" if param == "CPARAM" else "delay (ns)")
    ax.set_title(path.rsplit("/", 1)[-1])
    ax.legend(fontsize="x-small", ncol=4)
    plt.show()

for path in CALTABLE_PATHS:
    plot_caltable(path)"""

IMAGE_CELL = """\
def show_image(path):
    with fits.open(path) as hdul:
        data = np.squeeze(hdul[0].data)
        while data.ndim > 2:
            data = data[0]
    norm = ImageNormalize(data[np.isfinite(data)], interval=AsymmetricPercentileInterval(1, 99.5))
    fig, ax = plt.subplots(figsize=(5, 5))
    shown = ax.imshow(data, origin="lower", cmap="inferno", norm=norm)
    fig.colorbar(shown, ax=ax, label="Jy/beam")
    ax.set_title(path.rsplit("/", 1)[-1])
    finite = data[np.isfinite(data)]
    mad = 1.4826 * np.median(np.abs(finite - np.median(finite)))
    print(f"{path}: peak {finite.max():.4g} Jy/beam, robust rms {mad:.3g} Jy/beam")
    plt.show()

for path in IMAGE_PATHS:
    show_image(path)"""


def build_notebook(
    title: str,
    *,
    ms_paths: Sequence[Path],
    caltable_paths: Sequence[Path],
    image_paths: Sequence[Path],
    notebook_type: str = "full",
    notes: Sequence[str] = (),
) -> Any:
    """The notebook object (``nbformat.NotebookNode``), validated against the v4 schema."""
    import nbformat
    from nbformat import v4

    if notebook_type not in NOTEBOOK_TYPES:
        raise ValueError(f"notebook_type must be one of {', '.join(NOTEBOOK_TYPES)}")
    calibration = notebook_type in ("full", "calibration")
    image = notebook_type in ("full", "image")
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    intro = [f"# {title}", "", f"Generated {stamp} by dsa110-graph ({notebook_type} QA).", *notes]
    paths = "\n".join(
        [
            f"MS_PATHS = {[str(p) for p in ms_paths] if calibration else []!r}",
            f"CALTABLE_PATHS = {[str(p) for p in caltable_paths] if calibration else []!r}",
            f"IMAGE_PATHS = {[str(p) for p in image_paths] if image else []!r}",
        ]
    )
    cells = [v4.new_markdown_cell("\n".join(intro)), v4.new_code_cell(IMPORTS + "\n\n" + paths)]
    if calibration:
        cells += [
            v4.new_markdown_cell("## Measurement Set"),
            v4.new_code_cell(MS_CELL),
            v4.new_markdown_cell("## Calibration tables"),
            v4.new_code_cell(CALTABLE_CELL),
        ]
    if image:
        cells += [v4.new_markdown_cell("## Image"), v4.new_code_cell(IMAGE_CELL)]
    notebook = v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.validate(notebook)
    return notebook


def write_notebook(notebook: Any, path: Path) -> Path:
    """Write ``notebook`` to ``path`` atomically. Two requests writing the same path at once each
    write their own temporary file and rename it into place: the last one wins, whole, and a
    reader never sees half a notebook (a shared ``.partial`` name let one rename the other's
    file while it was still being written)."""
    import nbformat

    return write_atomic(path, nbformat.writes(notebook).encode())
