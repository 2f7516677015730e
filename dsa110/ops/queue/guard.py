"""The guard: the first process of every job's process group; it ends the job if its worker is gone.

Run as ``python -I -S guard.py --fence-s F -- <job command...>`` (standard library only, so
it starts in milliseconds), by a worker that made it a session leader (its process group
is the job's). It starts the job command in the same group and then:

* reads its stdin, a pipe from the worker: each line ``K <seconds>`` says the worker's
  lease on the job was renewed and is safe for that many more seconds; end of file means
  the worker died (``kill -9`` included: the kernel closes the pipe). With no renewal in
  time, or with the worker gone, it kills the whole group at once (SIGKILL). This fence
  is what keeps a job from running twice: another worker may only take the job over
  after its lease has run out, and by then the guard has killed it;
* ignores SIGTERM itself (a cancel signals the whole group; the job gets it, and the guard stays
  to clean up);
* when the job command exits, kills what it left behind in the group and exits with the
  job's status (128 + signal number for a job killed by a signal).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time

POLL_S = 1.0


def _say(message: str) -> None:
    try:
        sys.stderr.write(f"[guard] {message}\n")
        sys.stderr.flush()
    except OSError:
        pass  # the worker's end of the pipe is gone


def _group_members(pgid: int) -> list[int]:
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if os.getpgid(pid) == pgid:
                members.append(pid)
        except OSError:
            continue
    return members


def _sweep() -> None:
    """Kill what the job left running in the group (daemons, forgotten children)."""
    me = os.getpid()
    if not os.path.isdir("/proc"):
        return
    for pid in _group_members(os.getpgid(0)):
        if pid != me:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _kill_group(reason: str) -> None:
    _say(f"{reason}; killing the job")
    os.killpg(os.getpgid(0), signal.SIGKILL)  # the guard too: nothing of the job outlives this


def _ignore(_signum: int, _frame: object) -> None:
    pass


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "--fence-s" or argv[2] != "--":
        _say("usage: guard.py --fence-s SECONDS -- COMMAND...")
        return 2
    fence_s = float(argv[1])
    command = argv[3:]
    # A handler, not SIG_IGN: an ignored signal would stay ignored in the job after exec.
    signal.signal(signal.SIGTERM, _ignore)
    deadline = time.monotonic() + fence_s
    try:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    except OSError as exc:
        _say(f"cannot start the job: {exc}")
        return 127
    # The job's end wakes the loop at once: SIGCHLD writes a byte to this pipe.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, _ignore)
    pending = b""
    stdin = sys.stdin.fileno()
    while True:
        status = child.poll()
        if status is not None:
            break
        timeout = max(0.0, min(POLL_S, deadline - time.monotonic()))
        readable, _, _ = select.select([stdin, wake_read], [], [], timeout)
        if wake_read in readable:
            os.read(wake_read, 512)
        if stdin in readable:
            data = os.read(stdin, 4096)
            if not data:
                _kill_group("the worker is gone")
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                head, _, value = line.decode("ascii", "replace").partition(" ")
                if head == "K":
                    try:
                        deadline = time.monotonic() + float(value)
                    except ValueError:
                        continue
        if time.monotonic() > deadline:
            _kill_group("the worker's lease was not renewed in time")
    _sweep()
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
