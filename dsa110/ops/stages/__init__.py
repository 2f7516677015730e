"""The pipeline stages as job kinds: convert, calibrate, apply, image, photometry, mosaic, workflow.

Importing this package registers the kinds (``dsa110.ops.queue.kinds.load_plugins`` does,
in the server and in every worker); it stays light. Each job runs
``python -m dsa110.ops.stages.run <kind> <params>`` in its own process group, which
imports the heavy parts (pyuvdata, python-casacore, or CASA - never both casacores in
one process; the workflow runs each step as a child process).
"""

from __future__ import annotations

from pathlib import Path

from dsa110.ops.stages import registry as registry
from dsa110.ops.stages.casaenv import casa_check as _casa_check


def casa_check(data_dir: Path | None = None) -> tuple[bool, str | None]:
    """Whether CASA imports in a job process (tried in a subprocess, cached; see ``casaenv``)."""
    return _casa_check(data_dir)
