"""Tiny simulated raw data for the stage tests and the pipeline bench (``bench/jobs.py``).

A calibrator group (a 10 Jy point source at the phase centre) and a target group (an
injected 2 Jy point source 5 and 3 image cells off the phase centre, on a pixel centre of
the 64 x 64 image of 60 arcsec cells), each 2 subbands x 4 channels, 2 integrations, 6
antennas, with the instrument's gains, to be solved on the calibrator and transferred.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsa110.demo.raw import PointSource, RawSpec, simulate_group
from dsa110.ops.stages.sky import offset_position, phase_centre

CELL_ARCSEC = 60.0
IMSIZE = 64
INJECTED_JY = 2.0
CALIBRATOR_JY = 10.0
TARGET_GROUP = "2025-11-13T12:00:00"
CAL_GROUP = "2025-11-13T09:36:00"
TARGET_MJD = 60992.5
CAL_MJD = 60992.4


@dataclass(frozen=True)
class TinyData:
    target: list[str]
    calibrator: list[str]
    source_ra_deg: float
    source_dec_deg: float
    cal_ra_deg: float
    cal_dec_deg: float

    def workflow_params(self) -> dict[str, Any]:
        return {
            "uvh5_paths": self.target,
            "calibrator_uvh5_paths": self.calibrator,
            "calibrate_params": {
                "cal_ra_deg": self.cal_ra_deg,
                "cal_dec_deg": self.cal_dec_deg,
                "cal_flux_jy": CALIBRATOR_JY,
            },
            "image_params": {"imsize": IMSIZE, "cell_arcsec": CELL_ARCSEC, "niter": 200},
        }


def tiny_spec(start_mjd: float, seed: int, n_subbands: int = 2) -> RawSpec:
    return RawSpec(start_mjd=start_mjd, dec_deg=42.0, n_subbands=n_subbands, n_chan=4, n_times=2, seed=seed)


def make_tiny_data(incoming: Path) -> TinyData:
    target = tiny_spec(TARGET_MJD, 1)
    ra0, dec0 = phase_centre(target.mid_mjd, target.dec_deg)
    cell = math.radians(CELL_ARCSEC / 3600.0)
    ra, dec = offset_position(5 * cell, 3 * cell, ra0, dec0)
    target_files = simulate_group(incoming, TARGET_GROUP, target, [PointSource(ra, dec, INJECTED_JY)])
    cal = tiny_spec(CAL_MJD, 2)
    cra, cdec = phase_centre(cal.mid_mjd, cal.dec_deg)
    cal_files = simulate_group(incoming, CAL_GROUP, cal, [PointSource(cra, cdec, CALIBRATOR_JY)])
    return TinyData([str(p) for p in target_files], [str(p) for p in cal_files], ra, dec, cra, cdec)
