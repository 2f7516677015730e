"""Where a job may write: its ``output_dir`` must lie under the deployment's output roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dsa110.ops.queue.worker import job_environment
from dsa110.ops.stages.common import StageContext, StageError
from dsa110.settings import Settings


def _context(data: Path, roots: tuple[Path, ...] = ()) -> StageContext:
    return StageContext(data_dir=data, database_url=None, job_id=7, output_roots=roots)


def test_an_output_dir_under_the_data_dir_is_used_and_none_means_the_default(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "ms").mkdir(parents=True)
    ctx = _context(data)
    assert ctx.output_dir({}, data / "ms") == data / "ms"
    assert (
        ctx.output_dir({"output_dir": str(data / "ms" / "new")}, data / "x")
        == (data / "ms" / "new").resolve()
    )


@pytest.mark.parametrize("escape", ["/etc", "/tmp", "{data}/../elsewhere", "{data}/link/inside"])
def test_an_output_dir_elsewhere_fails_the_stage_before_anything_is_written(
    tmp_path: Path, escape: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (data / "link").symlink_to(outside)  # a name inside leading out
    ctx = _context(data)
    with pytest.raises(StageError, match=r"output_dir.*must lie under"):
        ctx.output_dir({"output_dir": escape.format(data=data)}, data)
    assert list(outside.iterdir()) == []


def test_the_worker_tells_its_jobs_the_output_roots(tmp_path: Path) -> None:
    data, extra = tmp_path / "data", tmp_path / "products"
    extra.mkdir()
    env = job_environment(Settings(data_dir=data, output_dirs=(extra,)), base={})
    ctx = StageContext.from_env(env)
    assert ctx.output_roots == (extra,)
    assert ctx.output_dir({"output_dir": str(extra / "ms")}, data) == (extra / "ms").resolve()
    with pytest.raises(StageError):
        ctx.output_dir({"output_dir": str(data / "ms")}, data)  # the data dir is not a root here
    default = StageContext.from_env(job_environment(Settings(data_dir=data), base={}))
    assert default.output_roots == (data,) and os.pathsep not in str(default.output_roots[0])
