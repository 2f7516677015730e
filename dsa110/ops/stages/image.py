"""``image``: an MS -> a primary-beam corrected FITS image (CASA ``tclean``), registered.

As the legacy ``ImagingStage`` (legacy-pipeline-facts §4.2, CASA tclean): multi-frequency
synthesis of one plane, Hogbom CLEAN to ``niter`` components or a 3 sigma threshold
(sigma: tclean's theoretical sensitivity is not known before imaging, so the threshold is
3 x the robust noise of the dirty image's residual, via ``nsigma=3``), restored with the
fitted PSF. The major-cycle trigger is capped (``maxpsffraction`` 0.2) because a reduced
array's PSF sidelobes are high and would otherwise force a major cycle every few
components.

**Primary-beam correction.** The restored image I is divided by the Airy power pattern of a
4.7 m dish at the image's reference frequency (``dsa110.science.site.airy_primary_beam``),
P(theta) with theta the distance from the pointing (the phase centre: the meridian at
mid time); pixels where P < ``PB_LIMIT`` are blank (NaN), as tclean's ``pblimit``. The
FITS (``<name>.img-image-pb.fits``) keeps tclean's WCS and restoring beam (BMAJ, BMIN,
BPA). The noise is ``1.4826 x MAD`` of the uncorrected image (the restored sources are a
small fraction of the pixels), the dynamic range peak / noise (§4.3 image QA). The image
is registered (``images`` row, ``image`` product derived from the calibrated MS and
calibrated with its tables); with ``photometry`` the catalog sources are then measured on
it (``dsa110.ops.stages.photometry``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from dsa110.ops.stages import records
from dsa110.ops.stages.casaenv import prepare
from dsa110.ops.stages.common import StageContext, StageError, remove, staged_output

PB_LIMIT = 0.1
PRODUCTS = ("image", "model", "residual", "psf", "pb", "sumwt", "mask")


def _has_column(ms_path: str, column: str) -> bool:
    import casatools

    table = casatools.table()
    table.open(ms_path)
    try:
        return column in table.colnames()
    finally:
        table.close()


def clean(ctx: StageContext, params: dict[str, Any], work: Path) -> tuple[Path, str]:
    import casatasks

    ms_path = str(params["ms_path"])
    column = params["datacolumn"]
    if column == "auto":
        column = "corrected" if _has_column(ms_path, "CORRECTED_DATA") else "data"
    name = work / "tclean"
    for ext in PRODUCTS:
        remove(Path(f"{name}.{ext}"))
    ctx.progress(
        0.1, f'tclean {params["imsize"]}x{params["imsize"]} of {params["cell_arcsec"]:g}" ({column})'
    )
    casatasks.tclean(
        vis=ms_path,
        imagename=str(name),
        imsize=params["imsize"],
        cell=f"{params['cell_arcsec']}arcsec",
        specmode="mfs",
        gridder="standard",
        deconvolver="hogbom",
        weighting=params["weighting"],
        robust=params["robust"],
        niter=params["niter"],
        gain=0.1,
        nsigma=3.0,
        maxpsffraction=0.2,
        datacolumn=column,
        pbcor=False,
    )
    if not Path(f"{name}.image").is_dir():
        raise StageError("tclean made no image (see the log above)")
    fits_path = work / "tclean.fits"
    casatasks.exportfits(imagename=f"{name}.image", fitsimage=str(fits_path), overwrite=True, dropdeg=True)
    return fits_path, column


def pb_correct(raw: Path, target: Path) -> dict[str, Any]:
    """Divide by the Airy beam, blank below PB_LIMIT, write ``target``; returns the image's facts."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from dsa110.science.healpix import angular_separation_deg, healpix_index
    from dsa110.science.site import airy_primary_beam

    with fits.open(raw) as hdus:
        header = hdus[0].header.copy()
        data = np.asarray(hdus[0].data, dtype=np.float64)
    while data.ndim > 2:
        data = data[0]
    wcs = WCS(header).celestial
    ny, nx = data.shape
    centre_ra, centre_dec = (float(v) for v in wcs.wcs.crval[:2])
    yy, xx = np.mgrid[0:ny, 0:nx]
    ra, dec = wcs.wcs_pix2world(xx, yy, 0)
    freq = float(header.get("CRVAL3", header.get("RESTFRQ", 1.4e9)))
    pb = airy_primary_beam(angular_separation_deg(centre_ra, centre_dec, ra, dec), freq)
    finite = np.isfinite(data)
    med = float(np.median(data[finite])) if finite.any() else 0.0
    noise = float(1.4826 * np.median(np.abs(data[finite] - med))) if finite.any() else math.nan
    corrected = np.where(pb >= PB_LIMIT, data / np.maximum(pb, PB_LIMIT), np.nan)
    header["BUNIT"] = "Jy/beam"
    header["HISTORY"] = f"primary-beam corrected: Airy 4.7 m at {freq / 1e9:.4f} GHz, blank below {PB_LIMIT}"
    with staged_output(target) as partial:
        fits.PrimaryHDU(corrected.astype(np.float32), header=header).writeto(partial)
    peak = float(np.nanmax(data)) if finite.any() else math.nan
    cdelt = float(abs(wcs.wcs.cdelt[0])) * 3600.0
    return {
        "beam_major_arcsec": float(header.get("BMAJ", math.nan)) * 3600.0,
        "beam_minor_arcsec": float(header.get("BMIN", math.nan)) * 3600.0,
        "beam_pa_deg": float(header.get("BPA", math.nan)),
        "noise_jy": noise,
        "dynamic_range": peak / noise if noise > 0 else None,
        "center_ra_deg": centre_ra,
        "center_dec_deg": centre_dec,
        "healpix": int(healpix_index(centre_ra, centre_dec)),
        "imsize_x": nx,
        "imsize_y": ny,
        "cellsize_arcsec": cdelt,
        "freq_ghz": freq / 1e9,
        "bandwidth_mhz": float(abs(header.get("CDELT3", 0.0))) / 1e6 or None,
        "pbcor": True,
        "peak_jy": peak,
    }


def run(ctx: StageContext, params: dict[str, Any]) -> dict[str, Any]:
    ms_path = str(params["ms_path"])
    work = ctx.work_dir("image")
    prepare(ctx.data_dir, work)
    raw, column = clean(ctx, params, work)
    output = ctx.output_dir(params, ctx.data_dir / "images")
    target = output / f"{Path(ms_path).stem}.img-image-pb.fits"
    ctx.progress(0.7, "primary-beam correction")
    facts = pb_correct(raw, target)
    ms = ctx.db(lambda e: records.ms_row(e, ms_path))
    caltables: list[str] = []
    if ms is not None and ms.get("cal_applied"):
        found = ctx.db(lambda e: records.cal_set_paths(e, None, ms.get("mid_mjd")))
        caltables = found[1] if found else []
    mid = float(ms["mid_mjd"]) if ms and ms.get("mid_mjd") is not None else None
    row = {k: v for k, v in facts.items() if k != "peak_jy"}
    row.update(path=str(target), type="5min", mid_mjd=mid if mid is not None else 0.0, n_measurements=0)
    if ms and ms.get("start_mjd") is not None and ms.get("end_mjd") is not None:
        row["integration_sec"] = (float(ms["end_mjd"]) - float(ms["start_mjd"])) * 86400.0
    ids = ctx.db(
        lambda e: records.record_image(e, job_id=ctx.job_id, image=row, ms_path=ms_path, caltables=caltables)
    )
    out: dict[str, Any] = {"image_path": str(target), "datacolumn": column, **facts, **(ids or {})}
    for ext in PRODUCTS:
        remove(work / f"tclean.{ext}")
    ctx.progress(0.85, f"image {target.name}: noise {facts['noise_jy'] * 1e3:.2f} mJy/beam")
    if params.get("photometry") and ids:
        from dsa110.ops.stages.photometry import measure

        out["photometry"] = measure(ctx, int(ids["image_pk"]), str(target), box_pix=5, detect=True)
    ctx.progress(1.0, "imaged")
    return out
