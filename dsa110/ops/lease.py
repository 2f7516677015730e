"""A host lease: at most one process per host holds it, and it frees itself if that process dies.

Used so that several server processes on one machine, sharing one event bus, run one
system-metrics sampler between them rather than one each (each would store the same
host's figures again, and the bounded history would cover a fraction of the time).

The lease is ``flock(2)`` on a file: exclusive, non-blocking, released by the kernel
when the holder exits however it exits, so a standby process takes over at its next
attempt. ``flock`` locks belong to an open file description, so two leases on one path
exclude each other even within one process.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class HostLease:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Hold the lease from now on if nobody does; True when this process holds it."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
