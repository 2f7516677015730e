"""The local executor: each job a process group on this host, led by the guard.

The worker starts ``python -I -S guard.py --fence-s F -- <job argv>`` as a new session
(so the guard's process group is the job's), with the job's output (stdout and stderr
merged) on one pipe and the guard's keepalive pipe as its stdin. Cancelling signals the
whole group (SIGTERM, then SIGKILL): children the job started are stopped with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Final, Protocol

GUARD: Final = Path(__file__).with_name("guard.py")
CHUNK: Final = 65_536


class JobProcess(Protocol):
    """A started job, whatever runs it."""

    process_group: int | None
    host: str

    def chunks(self) -> AsyncIterator[bytes]:
        """The job's output as it comes, until it ends."""
        ...

    def keepalive(self, safe_for_s: float) -> None:
        """The lease was renewed: the job may run ``safe_for_s`` more seconds without another."""

    def terminate(self) -> None:
        """SIGTERM to the job's process group."""

    def kill(self) -> None:
        """SIGKILL to the job's process group."""

    async def wait(self) -> int:
        """The job's exit status (128 + n when signal n ended it)."""
        ...


class Executor(Protocol):
    name: str

    async def start(
        self, job_id: int, argv: Sequence[str], env: Mapping[str, str], fence_s: float
    ) -> JobProcess: ...

    async def close(self) -> None: ...


def guarded(argv: Sequence[str], fence_s: float) -> list[str]:
    return [sys.executable, "-I", "-S", str(GUARD), "--fence-s", f"{max(0.0, fence_s):.3f}", "--", *argv]


class LocalProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process
        self.process_group: int | None = process.pid  # a session leader's pgid is its pid
        self.host = socket.gethostname()

    async def chunks(self) -> AsyncIterator[bytes]:
        stream = self._process.stdout
        assert stream is not None
        while chunk := await stream.read(CHUNK):
            yield chunk

    def keepalive(self, safe_for_s: float) -> None:
        stdin = self._process.stdin
        if stdin is None or stdin.is_closing():
            return
        with contextlib.suppress(OSError, RuntimeError):
            stdin.write(f"K {max(0.0, safe_for_s):.3f}\n".encode())

    def _signal(self, signum: int) -> None:
        if self._process.returncode is not None:
            return  # the guard has exited, having swept its group; the pid may be reused
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signum)

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    async def wait(self) -> int:
        status = await self._process.wait()
        if self._process.stdin is not None:
            self._process.stdin.close()
        return status if status >= 0 else 128 - status


class LocalExecutor:
    name = "local"

    async def start(
        self, job_id: int, argv: Sequence[str], env: Mapping[str, str], fence_s: float
    ) -> JobProcess:
        process = await asyncio.create_subprocess_exec(
            *guarded(argv, fence_s),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
            close_fds=True,
        )
        return LocalProcess(process)

    async def close(self) -> None:
        return None
