"""Real server processes for tests and benches: uvicorn subprocesses on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from server.cli import uvicorn_websocket_flags

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def server_process(
    database_url: str,
    events_url: str,
    data_dir: Path,
    *,
    namespace: str = "dsa110",
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """Start ``uvicorn server.app:create_app`` as ``serve`` runs it; yield (base URL, process) once healthy."""
    port = free_port()
    env = {
        **os.environ,
        "DSA110_DATABASE_URL": database_url,
        "DSA110_EVENTS_URL": events_url,
        "DSA110_EVENTS_NAMESPACE": namespace,
        "DSA110_DATA_DIR": str(data_dir),
        "DSA110_METRICS_INTERVAL_S": "0",
        **(extra_env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "server.app:create_app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        *uvicorn_websocket_flags(),  # the server as `dsa110-graph serve` runs it
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as http, asyncio.timeout(START_TIMEOUT_S):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"server exited with {process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        yield base, process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
