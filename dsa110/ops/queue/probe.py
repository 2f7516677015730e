"""``probe``: a job kind that proves a job never runs twice at once (tests and ``bench/jobs.py``).

Not registered unless imported (``DSA110_JOB_KINDS_MODULES=dsa110.ops.queue.probe``). A
probe takes an exclusive ``flock`` on ``<dir>/<job id>.lock`` for its whole run; the kernel
drops the lock when the process dies, however it dies. So a second run that starts while
an earlier one is alive finds the lock taken, writes ``<job id>.double`` and exits 3. Each
run that got the lock appends one line to ``<job id>.runs``, then sleeps ``seconds``.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any, Final

from dsa110.ops.queue import kinds

_SOURCE: Final = """
import fcntl, json, os, sys, time
p = json.loads(sys.argv[1])
job = os.environ["DSA110_JOB_ID"]
fd = os.open(os.path.join(p["dir"], job + ".lock"), os.O_CREAT | os.O_RDWR, 0o644)
try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except BlockingIOError:
    with open(os.path.join(p["dir"], job + ".double"), "a") as f:
        f.write("%d\\n" % os.getpid())
    sys.exit(3)
with open(os.path.join(p["dir"], job + ".runs"), "a") as f:
    f.write("%d\\n" % os.getpid())
print("probe %s running in %d" % (job, os.getpid()), flush=True)
time.sleep(p["seconds"])
"""


def _validate(params: Mapping[str, Any]) -> dict[str, Any]:
    kinds.only(params, {"dir", "seconds"})
    directory = kinds.text(params, "dir", "", 4096)
    if not os.path.isabs(directory):
        raise kinds.bad("`dir` must be an absolute directory", "dir")
    return {"dir": directory, "seconds": kinds.number(params, "seconds", 0.0, 0.0, 3600.0)}


PROBE = kinds.register(
    kinds.JobKind(
        "probe",
        _validate,
        lambda _job_id, p: [sys.executable, "-I", "-S", "-c", _SOURCE, json.dumps(p)],
        max_attempts=5,
        cancel_grace_s=1.0,
        description="Hold a per-job lock while running: detects a job running twice at once.",
    )
)
