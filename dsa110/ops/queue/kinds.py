"""What a job may be: the registry of job kinds, and the built-in diagnostic kinds.

A kind says how to check a job's parameters *before* it is queued (``validate``: raise
``InputError`` with a code, return the normalised parameters that are stored), how to
run it (``argv``: the command of its process; every output line is a log line, see
``dsa110.ops.queue.protocol``), how often it may be attempted when its worker is lost
(``max_attempts``, ``retry_on_lost``) and how long it may take to stop once asked
(``cancel_grace_s``: SIGTERM, then SIGKILL).

The pipeline stages register themselves here (``register``); the built-in ``noop``,
``sleep`` and ``fail`` kinds let an operator check a deployment's workers end to end, and
the tests and ``bench/jobs.py`` exercise the queue with them. They run Python in isolated
mode without site packages (``-I -S``), so each costs one interpreter start-up, no imports.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from dsa110.errors import InputError

Validate = Callable[[Mapping[str, Any]], dict[str, Any]]
Argv = Callable[[int, dict[str, Any]], list[str]]

BAD_PARAMS: Final = "BAD_JOB_PARAMS"
UNKNOWN_KIND: Final = "UNKNOWN_JOB_KIND"


@dataclass(frozen=True)
class JobKind:
    name: str
    validate: Validate
    argv: Argv
    max_attempts: int = 3
    """Attempts in all when workers are lost (a job that exits non-zero is not retried)."""
    retry_on_lost: bool = True
    """Queue the job again when its worker's lease runs out (False: it fails instead)."""
    cancel_grace_s: float = 10.0
    description: str = ""


_KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    """Make ``kind`` available to ``submit`` and to workers; a later registration of a name wins."""
    if not kind.name or len(kind.name) > 16:
        raise ValueError(f"job kind names are 1-16 characters: {kind.name!r}")
    if kind.max_attempts < 1 or kind.cancel_grace_s < 0:
        raise ValueError(f"job kind {kind.name!r}: max_attempts >= 1 and cancel_grace_s >= 0")
    _KINDS[kind.name] = kind
    return kind


@contextlib.contextmanager
def replaced(*replacements: JobKind) -> Iterator[None]:
    """Register ``replacements`` for the duration of a block, then restore the registry (tests)."""
    before = dict(_KINDS)
    try:
        for kind in replacements:
            register(kind)
        yield
    finally:
        _KINDS.clear()
        _KINDS.update(before)


def get(name: str) -> JobKind:
    kind = _KINDS.get(name)
    if kind is None:
        known = ", ".join(sorted(_KINDS)) or "none"
        raise InputError(f"no job kind {name[:40]!r} is available; known kinds: {known}", code=UNKNOWN_KIND)
    return kind


def find(name: str) -> JobKind | None:
    return _KINDS.get(name)


def names() -> list[str]:
    return sorted(_KINDS)


STAGES_MODULE: Final = "dsa110.ops.stages"
PLUGINS_ENV: Final = "DSA110_JOB_KINDS_MODULES"


def load_plugins(modules: Sequence[str] | None = None) -> list[str]:
    """Import the modules that register more kinds: the pipeline stages when installed, and
    those named in ``DSA110_JOB_KINDS_MODULES`` (comma-separated). Returns what was imported.

    A kinds module must stay light: it is imported by the server and by every worker
    (CASA, which bundles its own casacore, is imported only inside job processes).
    """
    wanted = (
        list(modules)
        if modules is not None
        else [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",")]
    )
    if importlib.util.find_spec(STAGES_MODULE) is not None:
        wanted.insert(0, STAGES_MODULE)
    wanted.insert(0, "dsa110.ops.ese_detect")  # ESE detection off the ingest request path
    wanted.insert(0, "dsa110.ops.maintenance")  # VACUUM after bulk ingest, off the request path
    loaded = []
    for name in dict.fromkeys(m for m in wanted if m):
        importlib.import_module(name)
        loaded.append(name)
    return loaded


# -- parameter checks shared by kinds ------------------------------------------------------


def bad(message: str, field: str) -> InputError:
    return InputError(message, code=BAD_PARAMS, field=field)


def only(params: Mapping[str, Any], allowed: set[str]) -> None:
    """Refuse unknown parameter names (a typo must not silently mean the default)."""
    unknown = sorted(set(params) - allowed)
    if unknown:
        choices = ", ".join(sorted(allowed)) or "none"
        raise bad(f"unknown parameter {unknown[0][:64]!r}; this kind takes: {choices}", unknown[0][:64])


def number(params: Mapping[str, Any], name: str, default: float, lo: float, hi: float) -> float:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(f"`{name}` must be a number", name)
    if not lo <= value <= hi:
        raise bad(f"`{name}` must be between {lo:g} and {hi:g}", name)
    return float(value)


def integer(params: Mapping[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"`{name}` must be an integer", name)
    if not lo <= value <= hi:
        raise bad(f"`{name}` must be between {lo} and {hi}", name)
    return value


def text(params: Mapping[str, Any], name: str, default: str, max_chars: int) -> str:
    value = params.get(name, default)
    if not isinstance(value, str) or len(value) > max_chars:
        raise bad(f"`{name}` must be text of at most {max_chars} characters", name)
    if any(ord(ch) < 32 for ch in value):
        raise bad(f"`{name}` must not contain control characters", name)
    return value


def flag(params: Mapping[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise bad(f"`{name}` must be true or false", name)
    return value


# -- the built-in kinds ---------------------------------------------------------------------


def _python(source: str, params: dict[str, Any]) -> list[str]:
    return [sys.executable, "-I", "-S", "-c", source, json.dumps(params)]


_NOOP_SOURCE: Final = """
import json, sys
p = json.loads(sys.argv[1])
print(p["message"])
print("@@result " + json.dumps({"message": p["message"]}))
"""

_SLEEP_SOURCE: Final = """
import json, signal, subprocess, sys, time
p = json.loads(sys.argv[1])
if p["ignore_term"]:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
kids = [
    subprocess.Popen([sys.executable, "-I", "-S", "-c", "import time; time.sleep(%r)" % (p["seconds"] + 60)])
    for _ in range(p["children"])
]
print("sleeping %gs in %d steps with %d child processes" % (p["seconds"], p["steps"], len(kids)), flush=True)
for i in range(p["steps"]):
    time.sleep(p["seconds"] / p["steps"])
    print("@@progress %.4f step %d of %d" % ((i + 1) / p["steps"], i + 1, p["steps"]), flush=True)
for kid in kids:
    kid.kill()
print("@@result " + json.dumps({"slept_s": p["seconds"]}))
"""

_FAIL_SOURCE: Final = """
import json, sys
p = json.loads(sys.argv[1])
print("about to fail")
print(p["message"], file=sys.stderr)
sys.exit(p["exit_code"])
"""


def _validate_noop(params: Mapping[str, Any]) -> dict[str, Any]:
    only(params, {"message"})
    return {"message": text(params, "message", "nothing to do", 200)}


def _validate_sleep(params: Mapping[str, Any]) -> dict[str, Any]:
    only(params, {"seconds", "steps", "children", "ignore_term"})
    return {
        "seconds": number(params, "seconds", 1.0, 0.0, 86_400.0),
        "steps": integer(params, "steps", 10, 1, 1000),
        "children": integer(params, "children", 0, 0, 8),
        "ignore_term": flag(params, "ignore_term", False),
    }


def _validate_fail(params: Mapping[str, Any]) -> dict[str, Any]:
    only(params, {"exit_code", "message"})
    return {
        "exit_code": integer(params, "exit_code", 1, 1, 255),
        "message": text(params, "message", "failed on purpose", 200),
    }


NOOP = register(
    JobKind(
        "noop",
        _validate_noop,
        lambda _job_id, p: _python(_NOOP_SOURCE, p),
        max_attempts=3,
        cancel_grace_s=2.0,
        description="Print a message and succeed: checks that workers run jobs.",
    )
)
SLEEP = register(
    JobKind(
        "sleep",
        _validate_sleep,
        lambda _job_id, p: _python(_SLEEP_SOURCE, p),
        max_attempts=3,
        cancel_grace_s=2.0,
        description="Sleep, reporting progress (optionally with child processes, or ignoring SIGTERM).",
    )
)
FAIL = register(
    JobKind(
        "fail",
        _validate_fail,
        lambda _job_id, p: _python(_FAIL_SOURCE, p),
        max_attempts=1,
        retry_on_lost=False,
        cancel_grace_s=2.0,
        description="Exit with an error: checks failure handling and alerts.",
    )
)
