"""The stages' formulas against hand-computed values: SIN direction cosines, PB-weighted co-addition."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.wcs import WCS

from dsa110.ops.stages.coadd import Tile, coadd
from dsa110.ops.stages.sky import direction_cosines, offset_position


def test_direction_cosines_by_hand() -> None:
    # Due north by 1 deg of a centre at Dec 0: l = 0, m = sin(1 deg), n = cos(1 deg).
    l_, m_, n_ = direction_cosines(10.0, 1.0, 10.0, 0.0)
    assert (float(l_), float(m_), float(n_)) == pytest.approx(
        (0.0, math.sin(math.radians(1)), math.cos(math.radians(1)))
    )
    # 90 deg east along the equator: l = 1, m = 0, n = 0.
    l_, m_, n_ = direction_cosines(100.0, 0.0, 10.0, 0.0)
    assert (float(l_), float(m_), float(n_)) == pytest.approx((1.0, 0.0, 0.0), abs=1e-12)
    # The inverse returns the position, at Dec 42 too.
    cell = math.radians(60 / 3600)
    ra, dec = offset_position(5 * cell, 3 * cell, 114.6, 42.0)
    back = direction_cosines(ra, dec, 114.6, 42.0)
    assert float(back[0]) == pytest.approx(5 * cell, rel=1e-9) and float(back[1]) == pytest.approx(
        3 * cell, rel=1e-9
    )


def _wcs(ra: float, dec: float, cell_deg: float = 0.05) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---SIN", "DEC--SIN"]
    wcs.wcs.crpix = [16.5, 16.5]
    wcs.wcs.cdelt = [-cell_deg, cell_deg]
    wcs.wcs.crval = [ra, dec]
    return wcs


def test_coadd_weights_each_image_by_its_sensitivity() -> None:
    # Two images of the same field, flat at 1.0 and 4.0 Jy, noise 1 and 2 mJy. At the centre
    # (P = 1): I = (1/1^2 + 4/2^2) / (1/1^2 + 1/2^2) = 2 / 1.25 = 1.6 Jy, noise 1/sqrt(1.25) mJy.
    a = Tile(np.full((32, 32), 1.0), _wcs(30.0, 42.0), noise_jy=1e-3)
    b = Tile(np.full((32, 32), 4.0), _wcs(30.0, 42.0), noise_jy=2e-3)
    mosaic = coadd([a, b])
    ny, nx = mosaic.data.shape
    centre = mosaic.data[ny // 2 - 2 : ny // 2 + 2, nx // 2 - 2 : nx // 2 + 2]
    assert np.allclose(centre, 1.6, rtol=1e-5)
    assert mosaic.noise_jy == pytest.approx(1e-3 / math.sqrt(1.25), rel=1e-3)
    # Only one image covers a point: the mosaic is that image there.
    east = Tile(np.full((32, 32), 7.0), _wcs(31.2, 42.0), noise_jy=1e-3)
    alone = coadd([a, east])
    finite = alone.data[np.isfinite(alone.data)]
    assert finite.min() == pytest.approx(1.0, rel=1e-5) and finite.max() == pytest.approx(7.0, rel=1e-5)
