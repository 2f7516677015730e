"""What every stage process shares: where it is, how it reports, how it reaches the database.

A stage runs as a job process (``python -m dsa110.ops.stages.run <kind> <params>``) with
the worker's environment: ``DSA110_DATABASE_URL``, ``DSA110_DATA_DIR``, ``DSA110_JOB_ID``.
It reports with the queue's line protocol (``dsa110.ops.queue.protocol``): ``@@progress``
and a final ``@@result``. Outputs are written under a temporary name and renamed when
complete, so a cancelled or failed stage leaves a ``.partial`` path, never a product.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.errors import InputError
from dsa110.names import resolve_under

T = TypeVar("T")
PARTIAL = ".partial"


class StageError(RuntimeError):
    """A stage cannot go on: the message is the job's error."""


@dataclass
class StageContext:
    data_dir: Path
    database_url: str | None
    job_id: int | None
    started: float = field(default_factory=time.monotonic)
    output_roots: tuple[Path, ...] = ()
    """Where a job's ``output_dir`` may lie (``Settings.output_roots``; empty: the data dir)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StageContext:
        e = os.environ if env is None else env
        job = e.get("DSA110_JOB_ID")
        roots = tuple(Path(d) for d in e.get("DSA110_OUTPUT_DIRS", "").split(os.pathsep) if d)
        return cls(
            data_dir=Path(e.get("DSA110_DATA_DIR", "data")).resolve(),
            database_url=e.get("DSA110_DATABASE_URL") or None,
            job_id=int(job) if job and job.isdigit() else None,
            output_roots=roots,
        )

    def output_dir(self, params: Mapping[str, Any], default: Path) -> Path:
        """The job's ``output_dir`` if it lies under the output roots (symlinks and ``..``
        resolved), else ``default``: an operator's job writes where the deployment's outputs
        go, never over the server's own files or elsewhere on the machine."""
        given = params.get("output_dir")
        if given is None:
            return default
        try:
            return resolve_under(given, self.output_roots or (self.data_dir,), field="output_dir")
        except InputError as refused:
            raise StageError(refused.message) from None

    def progress(self, fraction: float, message: str) -> None:
        print(f"@@progress {min(1.0, max(0.0, fraction)):.4f} {message}", flush=True)

    def log(self, message: str) -> None:
        print(message, flush=True)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def work_dir(self, name: str) -> Path:
        return self.data_dir / ".casa" / "work" / f"job-{self.job_id or os.getpid()}-{name}"

    def db(self, action: Callable[[AsyncEngine], Awaitable[T]]) -> T | None:
        """Run ``action(engine)`` against the job's database (None when there is none)."""
        if not self.database_url:
            return None
        url = self.database_url

        async def go() -> T:
            from dsa110.db.engine import create_engine

            engine = create_engine(url)
            try:
                return await action(engine)
            finally:
                await engine.dispose()

        return asyncio.run(go())


def result(value: Any) -> None:
    print("@@result " + json.dumps(value, default=str), flush=True)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def staged_output(final: Path, overwrite: bool = True) -> Iterator[Path]:
    """Write to ``<final>.partial``; on success replace ``final`` with it (else leave it marked)."""
    if final.exists() and not overwrite:
        raise StageError(f"{final} exists (set overwrite to replace it)")
    partial = final.with_name(final.name + PARTIAL)
    remove(partial)
    final.parent.mkdir(parents=True, exist_ok=True)
    yield partial
    if final.exists():
        remove(final)
    partial.rename(final)


def stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
