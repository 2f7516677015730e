"""HostLease: one holder per lock file, freed by the kernel when the holder dies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dsa110.ops.lease import HostLease

HOLD_AND_WAIT = """
import sys
from pathlib import Path
from dsa110.ops.lease import HostLease
assert HostLease(Path(sys.argv[1])).try_acquire()
print("held", flush=True)
sys.stdin.read()
"""


def test_one_holder_at_a_time(tmp_path: Path) -> None:
    first, second = HostLease(tmp_path / "l.lock"), HostLease(tmp_path / "l.lock")
    assert first.try_acquire() and first.held
    assert first.try_acquire()  # holding already
    assert not second.try_acquire() and not second.held
    first.release()
    assert not first.held
    assert second.try_acquire()
    second.release()
    second.release()  # idempotent


def test_the_lease_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    lock = tmp_path / "dir" / "l.lock"  # parent created on demand
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_WAIT, str(lock)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        mine = HostLease(lock)
        assert not mine.try_acquire()
        holder.kill()  # no clean-up code runs
        holder.wait(timeout=30)
        assert mine.try_acquire()
        mine.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
