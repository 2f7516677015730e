"""``workflow``: convert -> calibrate -> apply -> image -> photometry as one job.

Each step runs as a child process (``python -m dsa110.ops.stages.run <step>``) in the
job's process group, so cancelling the workflow stops the step that is running, and
python-casacore (convert) and CASA (the others) never share a process. The child's lines
are relayed to the job log prefixed with the step; its ``@@progress`` is mapped into the
workflow's share for that step, and its ``@@result`` feeds the next step. Per-step state
(``pending`` / ``running`` / ``done`` / ``failed`` / ``skipped``, seconds, result) is
printed as ``[workflow]`` lines and is the job's result.

Calibration: from a calibrator group (converted first), a calibrator MS, a named set
(``set_name``: the calibrate step is skipped), or else the target MS itself (its group's
calibrator, or the one given in ``calibrate_params``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from dsa110.ops.stages.common import StageContext, StageError

RUNNER = "dsa110.ops.stages.run"


@dataclass
class Step:
    name: str
    kind: str
    state: str = "pending"
    seconds: float | None = None
    result: Any = None
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def run_child(ctx: StageContext, step: Step, share: tuple[float, float]) -> Any:
    """Run one step as a child process, relaying its output; returns its result."""
    lo, hi = share
    command = [sys.executable, "-u", "-m", RUNNER, step.kind, json.dumps(step.params)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1, text=True
    )
    assert process.stdout is not None
    outcome: Any = None
    tail: list[str] = []
    for raw in process.stdout:
        line = raw.rstrip("\n")
        if line.startswith("@@progress "):
            head, _, message = line[len("@@progress ") :].partition(" ")
            try:
                fraction = float(head)
            except ValueError:
                continue
            ctx.progress(lo + (hi - lo) * fraction, f"{step.name}: {message}".strip())
        elif line.startswith("@@result "):
            outcome = json.loads(line[len("@@result ") :])
        else:
            print(f"[{step.name}] {line}", flush=True)
            tail = [*tail, line][-5:]
    status = process.wait()
    if status != 0:
        raise StageError(f"step {step.name} failed (exit {status}): {' | '.join(tail)[-400:]}")
    return outcome


def plan(params: dict[str, Any]) -> list[Step]:
    steps = [Step("convert", "convert", params=dict(params["convert"]))]
    if params.get("calibrator"):
        steps.append(Step("convert-calibrator", "convert", params=dict(params["calibrator"])))
    if not params.get("set_name"):
        steps.append(Step("calibrate", "calibrate", params=dict(params["calibrate"])))
    steps.append(Step("apply", "apply", params=dict(params["apply"])))
    steps.append(Step("image", "image", params={**params["image"], "photometry": False}))
    if params.get("photometry", True):
        steps.append(
            Step("photometry", "photometry", params={"box_pix": 5, "detect": True, "max_sources": 100_000})
        )
    return steps


def _wire(step: Step, done: dict[str, Any], params: dict[str, Any]) -> None:
    """Give ``step`` what the earlier steps made."""
    target_ms = done["convert"]["path"]
    if step.name == "calibrate":
        cal_ms = (
            params.get("calibrator_ms_path")
            or (done.get("convert-calibrator") or {}).get("path")
            or target_ms
        )
        step.params["ms_path"] = cal_ms
    elif step.name == "apply":
        step.params["ms_path"] = target_ms
        if params.get("set_name"):
            step.params["set_name"] = params["set_name"]
        elif "calibrate" in done:
            step.params["caltable_paths"] = [t["path"] for t in done["calibrate"]["tables"]]
            step.params.pop("set_name", None)
    elif step.name == "image":
        step.params["ms_path"] = target_ms
    elif step.name == "photometry":
        image = done["image"]
        step.params.update(
            image_id=image.get("image_pk"), image_path=None if image.get("image_pk") else image["image_path"]
        )


def _report(steps: list[Step]) -> None:
    print("[workflow] " + ", ".join(f"{s.name}={s.state}" for s in steps), flush=True)


def run(ctx: StageContext, params: dict[str, Any]) -> dict[str, Any]:
    steps = plan(params)
    done: dict[str, Any] = {}
    n = len(steps)
    _report(steps)
    for k, step in enumerate(steps):
        if k:
            _wire(step, done, params)
        step.state = "running"
        _report(steps)
        started = time.monotonic()
        try:
            step.result = run_child(ctx, step, (k / n, (k + 1) / n))
        except StageError as exc:
            step.state, step.error = "failed", str(exc)
            step.seconds = time.monotonic() - started
            for later in steps[k + 1 :]:
                later.state = "skipped"
            _report(steps)
            print("@@result " + json.dumps({"steps": [_public(s) for s in steps]}, default=str), flush=True)
            raise
        step.seconds = time.monotonic() - started
        step.state = "done"
        done[step.name] = step.result or {}
        print(f"[workflow] {step.name} done in {step.seconds:.1f} s", flush=True)
        _report(steps)
    return {"steps": [_public(s) for s in steps], "image_path": done["image"].get("image_path")}


def _public(step: Step) -> dict[str, Any]:
    out = asdict(step)
    out.pop("params", None)
    return out
