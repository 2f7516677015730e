"""``docs/quickstart.ipynb`` runs top to bottom against a real server (nbclient, a real kernel)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.compat.conftest import Demo
from tests.live.servers import REPO_ROOT, server_process

NOTEBOOK = REPO_ROOT / "docs" / "quickstart.ipynb"


async def test_the_quickstart_notebook_runs(
    demo: Demo, backend: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("one backend is enough: the notebook speaks HTTP, not SQL")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    async with server_process(demo.url, "memory://", demo.root) as (base, _):
        monkeypatch.setenv("DSA110_URL", base)  # the kernel inherits this process's environment
        client = NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
        )
        await asyncio.to_thread(client.execute)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "ok" in text and "monitored sources within 2 deg" in text and "ESE window(s)" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the matplotlib figure and the server's own plot
