"""CASA's environment: offline measures, a private config, and the import check.

casatools reads its configuration (``casaconfig``) when first imported. Left alone it
tries to download measures data into ``~/.casa/data`` (legacy-pipeline-facts §4.2: the
job environment check). Here every job process that runs CASA first writes, into a
private directory under the data directory, a site config (found through
``CASASITECONFIG``) that points ``measurespath`` at the data the ``casadata`` package
bundles, with both automatic updates off, and sends CASA's log messages to the terminal
(so they reach the job log). CASA is never imported by the server: casatools bundles its
own casacore, which must not meet python-casacore in one process. ``casa_check`` imports
it in a subprocess instead.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

CONFIG_NAME: Final = "casasiteconfig.py"
CHECK_TTL_S: Final = 300.0
CHECK_TIMEOUT_S: Final = 120.0
_CHECKED: dict[str, tuple[float, bool, str | None]] = {}


def casadata_path() -> str | None:
    """The measures and data directory inside the installed ``casadata`` package."""
    spec = importlib.util.find_spec("casadata")
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent / "__data__")


def private_dir(data_dir: Path) -> Path:
    return data_dir / ".casa"


def write_config(data_dir: Path) -> Path:
    """Write (if changed) the site config in ``<data_dir>/.casa``; returns its path."""
    folder = private_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    data = casadata_path() or str(folder / "data")
    text = (
        "# Written by dsa110.ops.stages.casaenv: offline measures, no downloads.\n"
        f"measurespath = {data!r}\n"
        f"datapath = [{data!r}]\n"
        "measures_auto_update = False\n"
        "data_auto_update = False\n"
        f"cachedir = {str(folder)!r}\n"
        f"startupfile = {str(folder / 'startup.py')!r}\n"
        "log2term = True\n"
        "nologger = True\n"
        "nogui = True\n"
        "casaconfig_verbose = 0\n"
    )
    path = folder / CONFIG_NAME
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def prepare(data_dir: Path, work_dir: Path | None = None) -> None:
    """Make this process ready to import CASA: config, environment, working directory.

    CASA writes its ``casa-<time>.log`` in the working directory: ``work_dir`` holds it.
    """
    os.environ["CASASITECONFIG"] = str(write_config(data_dir))
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        os.chdir(work_dir)


def environment(data_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["CASASITECONFIG"] = str(write_config(data_dir))
    return env


def casa_check(data_dir: Path | None = None) -> tuple[bool, str | None]:
    """Whether casatools and casatasks import, tried in a subprocess (cached a few minutes)."""
    now = time.monotonic()
    key = str(data_dir)
    cached = _CHECKED.get(key)
    if cached is not None and now - cached[0] < CHECK_TTL_S:
        return cached[1], cached[2]
    missing = [name for name in ("casatools", "casatasks") if importlib.util.find_spec(name) is None]
    if missing:
        result: tuple[bool, str | None] = (False, f"not installed: {', '.join(missing)}")
    else:
        root = data_dir or Path(os.environ.get("DSA110_DATA_DIR", "data"))
        work = private_dir(root.resolve()) / "check"
        try:
            env = environment(root.resolve())
            work.mkdir(parents=True, exist_ok=True)
            done = subprocess.run(
                [sys.executable, "-c", "import casatools, casatasks; print(casatools.version_string())"],
                env=env,
                cwd=work,
                capture_output=True,
                text=True,
                timeout=CHECK_TIMEOUT_S,
                check=False,
            )
            if done.returncode == 0:
                result = (True, None)
            else:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                result = (False, f"import failed (exit {done.returncode}): {tail[0][:300]}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            result = (False, f"import check failed: {type(exc).__name__}")
    _CHECKED[key] = (now, result[0], result[1])
    return result
