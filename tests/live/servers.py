"""Real server processes for tests and benches: uvicorn subprocesses on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from server.cli import uvicorn_protocol_flags

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


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
    workers: int | None = None,
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """A server process; yield (base URL, process) once healthy.

    ``workers`` None: ``uvicorn server.app:create_app`` as ``serve`` runs it; a number:
    ``dsa110-graph serve --workers N`` itself (a supervisor and N worker processes).
    """

    def argv(port: int) -> list[str]:
        if workers is None:
            return [
                *("-m", "uvicorn", "--factory", "server.app:create_app"),
                *("--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"),
                *uvicorn_protocol_flags(),  # the server as `dsa110-graph serve` runs it
            ]
        return [
            *("-m", "server.cli", "serve", "--workers", str(workers), "--port", str(port)),
            *("--log-level", "warning", "--database-url", database_url, "--events-url", events_url),
            *("--data-dir", str(data_dir)),
        ]

    env = _environment(database_url, events_url, data_dir, namespace, extra_env)
    async with _healthy(argv, env) as running:
        yield running


def _environment(
    database_url: str, events_url: str, data_dir: Path, namespace: str, extra_env: dict[str, str] | None
) -> dict[str, str]:
    return {
        **os.environ,
        "DSA110_DATABASE_URL": database_url,
        "DSA110_EVENTS_URL": events_url,
        "DSA110_EVENTS_NAMESPACE": namespace,
        "DSA110_DATA_DIR": str(data_dir),
        "DSA110_METRICS_INTERVAL_S": "0",
        **(extra_env or {}),
    }


@contextlib.asynccontextmanager
async def _healthy(
    argv: Callable[[int], list[str]], env: dict[str, str]
) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """Run ``python <argv(port)>`` in a session of its own until ``/healthz`` answers; stop it after."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv(port),
        cwd=REPO_ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        start_new_session=True,  # so its workers can be stopped with it if it hangs
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
            process.terminate()  # a supervisor stops its own workers
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await process.wait()
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)  # the session started above, and only it
                await process.wait()


async def next_ws_message(ws: ClientConnection, wait_s: float) -> dict[str, Any]:
    """The next message a server process sends on a GraphQL WebSocket, keep-alives skipped
    (graphql-ws sends ``ka``); ``wait_s`` is a hang guard, not a speed assertion."""
    async with asyncio.timeout(wait_s):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") != "ka":
                return message  # type: ignore[no-any-return]
