"""The pipeline job kinds: validation before queueing, the command that runs each."""

from __future__ import annotations

import json
import sys
from typing import Any, Final

from dsa110.ops.queue import kinds
from dsa110.ops.stages import params

RUNNER: Final = "dsa110.ops.stages.run"
CASA_GRACE_S: Final = 3.0


def command(kind: str) -> kinds.Argv:
    def argv(_job_id: int, p: dict[str, Any]) -> list[str]:
        return [sys.executable, "-m", RUNNER, kind, json.dumps(p)]

    return argv


def _register(name: str, validate: kinds.Validate, description: str, **options: Any) -> kinds.JobKind:
    return kinds.register(kinds.JobKind(name, validate, command(name), description=description, **options))


CONVERT = _register(
    "convert",
    params.validate_convert,
    "UVH5 subband files of one group -> one Measurement Set (pyuvdata, python-casacore).",
    max_attempts=2,
    cancel_grace_s=CASA_GRACE_S,
)
CALIBRATE = _register(
    "calibrate",
    params.validate_calibrate,
    "Bandpass and gain solutions on a calibrator MS (CASA bandpass, gaincal): a calibration set.",
    max_attempts=2,
    cancel_grace_s=CASA_GRACE_S,
)
APPLY = _register(
    "apply",
    params.validate_apply,
    "Apply a calibration set to an MS (CASA applycal).",
    max_attempts=2,
    cancel_grace_s=CASA_GRACE_S,
)
IMAGE = _register(
    "image",
    params.validate_image,
    "Image an MS (CASA tclean) to a primary-beam corrected FITS image, then forced photometry.",
    max_attempts=2,
    cancel_grace_s=CASA_GRACE_S,
)
PHOTOMETRY = _register(
    "photometry",
    params.validate_photometry,
    "Forced photometry of the catalog sources on an image, ingested with variability and ESE detection.",
    max_attempts=2,
    cancel_grace_s=CASA_GRACE_S,
)
MOSAIC = _register(
    "mosaic",
    params.validate_mosaic,
    "Co-add the images of a time range with primary-beam weighting (reproject) into a FITS mosaic.",
    max_attempts=2,
    cancel_grace_s=CASA_GRACE_S,
)
WORKFLOW = _register(
    "workflow",
    params.validate_workflow,
    "convert -> calibrate -> apply -> image -> photometry as one job, each step a child process.",
    max_attempts=1,
    retry_on_lost=False,
    cancel_grace_s=CASA_GRACE_S,
)
