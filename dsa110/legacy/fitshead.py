"""What a FITS header says about an image, for legacy ``images`` rows whose columns are empty.

The pipeline never filled ``noise_jy``, the beams or the centres at the commit the facts
describe (``docs/known-issues/image-metadata-population.md``). The header holds most of
them: the restoring beam (``BMAJ``/``BMIN``/``BPA``, degrees), the image centre (the
world position of the central pixel through the WCS), the size and cell (``NAXISn``,
``CDELT2``), the frequency (``RESTFRQ``, or ``CRVAL3`` on a ``FREQ`` axis) and bandwidth
(``|CDELT3|`` on that axis), and the observation time (``MJD-OBS`` or ``DATE-OBS``).
Only the header is read, never the pixels. The noise is not in the header: it stays empty.
"""

from __future__ import annotations

import math
import os
import warnings
from datetime import UTC, datetime
from typing import Any

from dsa110.times import datetime_to_mjd


def _number(header: Any, key: str) -> float | None:
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def image_header_values(path: str) -> dict[str, Any] | None:
    """Column values read from the FITS header at ``path``; None if it is not a readable FITS file."""
    if not path.lower().endswith((".fits", ".fit", ".fts")) or not os.path.isfile(path):
        return None
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    try:
        header = fits.getheader(path)
    except (OSError, ValueError):
        return None
    out: dict[str, Any] = {}
    for column, key in (("beam_major_arcsec", "BMAJ"), ("beam_minor_arcsec", "BMIN")):
        if (deg := _number(header, key)) is not None:
            out[column] = deg * 3600.0
    if (pa := _number(header, "BPA")) is not None:
        out["beam_pa_deg"] = pa
    nx, ny = _number(header, "NAXIS1"), _number(header, "NAXIS2")
    if nx and ny:
        out["imsize_x"], out["imsize_y"] = int(nx), int(ny)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            try:
                wcs = WCS(header).celestial
                if wcs.naxis == 2:
                    ra, dec = wcs.wcs_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
                    if math.isfinite(ra) and math.isfinite(dec):
                        out["center_ra_deg"], out["center_dec_deg"] = float(ra) % 360.0, float(dec)
            except Exception:  # astropy raises many types for broken WCS keywords
                pass
    if (cell := _number(header, "CDELT2")) is not None:
        out["cellsize_arcsec"] = abs(cell) * 3600.0
    freq_axis = next((i for i in (3, 4) if str(header.get(f"CTYPE{i}", "")).upper().startswith("FREQ")), None)
    freq = _number(header, "RESTFRQ") or (_number(header, f"CRVAL{freq_axis}") if freq_axis else None)
    if freq:
        out["freq_ghz"] = freq / 1e9
    if freq_axis and (width := _number(header, f"CDELT{freq_axis}")):
        out["bandwidth_mhz"] = abs(width) / 1e6
    if (mjd := _number(header, "MJD-OBS")) is not None:
        out["mjd_obs"] = mjd
    elif isinstance(date := header.get("DATE-OBS"), str):
        try:
            moment = datetime.fromisoformat(date.strip().replace("Z", "+00:00"))
            out["mjd_obs"] = datetime_to_mjd(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
        except ValueError:
            pass
    return out
