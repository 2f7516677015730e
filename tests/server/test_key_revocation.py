"""A revoked API key is refused at once: by the server process that revoked it on the very
next request, and by the other processes as soon as the shared event bus tells them.

The key cache is set far longer than any test waits (``CACHE_S``), so a refusal seen here
comes from the revocation reaching the cache, never from the cache ageing out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dsa110.auth import keys
from dsa110.auth.cli import run_keys
from dsa110.auth.identity import Role
from dsa110.settings import Settings
from server.app import create_app
from tests.credentials import key_headers
from tests.databases import REDIS_URL
from tests.live.conftest import LiveApp, running

CACHE_S = 600.0
ME = "{ me { name } }"
REVOKE = "mutation($name: String!) { revokeApiKey(name: $name) { name revokedAt } }"
DELIVERY_S = 5.0
"""How long the other process may take to hear the revocation (the bus is milliseconds)."""


def _settings(url: str, tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        data_dir=tmp_path, database_url=url, metrics_interval_s=0, api_key_cache_s=CACHE_S, **changes
    )


async def _me(live: LiveApp, headers: dict[str, str]) -> httpx.Response:
    return await live.http.post("/graphql", json={"query": ME}, headers=headers)


async def _refused_within(live: LiveApp, headers: dict[str, str], seconds: float) -> float:
    """Seconds until ``headers`` are refused (401) on ``/api/status``; fails after ``seconds``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while (answer := await live.http.get("/api/status", headers=headers)).status_code != 401:
        assert answer.status_code == 200, answer.text
        assert loop.time() - start < seconds, "the revoked key is still accepted"
        await asyncio.sleep(0.02)
    return loop.time() - start


async def test_a_key_revoked_through_the_graph_is_refused_by_the_next_request(
    empty_db_url: str, tmp_path: Path
) -> None:
    async with running(_settings(empty_db_url, tmp_path)) as live:
        admin = await key_headers(live.engine, Role.ADMIN, "keeper")
        doomed = await key_headers(live.engine, Role.OPERATOR, "night-ops")
        for path in ("/graphql", "/api/status"):  # verified now, so cached
            assert (await live.http.get(path, params={"query": ME}, headers=doomed)).status_code == 200
        revoked = await live.http.post(
            "/graphql", json={"query": REVOKE, "variables": {"name": "night-ops"}}, headers=admin
        )
        assert revoked.json()["data"]["revokeApiKey"]["revokedAt"], revoked.text
        for path in ("/graphql", "/api/status"):
            refused = await live.http.get(path, params={"query": ME}, headers=doomed)
            assert refused.status_code == 401, (path, refused.text)
        assert (await _me(live, admin)).json()["data"]["me"]["name"] == "key:keeper"  # others kept


@contextlib.asynccontextmanager
async def _http_server(settings: Settings) -> AsyncIterator[LiveApp]:
    """One server process's app with its lifespan, spoken to over HTTP only (two WebSocket
    transports cannot be nested in one task)."""
    app = create_app(settings, migrate=False)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http,
    ):
        yield LiveApp(app, http)


@contextlib.asynccontextmanager
async def _two_servers(url: str, tmp_path: Path) -> AsyncIterator[tuple[LiveApp, LiveApp, Settings]]:
    """Two server processes' apps on one database and one Redis bus (their own namespace)."""
    assert REDIS_URL is not None
    shared = _settings(url, tmp_path, events_url=REDIS_URL, events_namespace=f"t{uuid.uuid4().hex[:10]}")
    async with _http_server(shared) as first, _http_server(shared) as second:
        yield first, second, shared


@pytest.mark.skipif(not REDIS_URL, reason="DSA110_TEST_REDIS_URL not set")
async def test_a_key_revoked_in_one_process_is_refused_by_another_once_the_bus_delivers(
    empty_db_url: str, tmp_path: Path
) -> None:
    async with _two_servers(empty_db_url, tmp_path) as (first, second, _):
        admin = await key_headers(first.engine, Role.ADMIN, "keeper")
        doomed = await key_headers(first.engine, Role.VIEWER, "dashboard")
        other = await key_headers(first.engine, Role.VIEWER, "survivor")
        for live in (first, second):
            for headers in (doomed, other):
                assert (await live.http.get("/api/status", headers=headers)).status_code == 200  # cached
        revoked = await first.http.post(
            "/graphql", json={"query": REVOKE, "variables": {"name": "dashboard"}}, headers=admin
        )
        assert "errors" not in revoked.json(), revoked.text
        assert (await first.http.get("/api/status", headers=doomed)).status_code == 401  # at once
        await _refused_within(second, doomed, DELIVERY_S)
        assert second.app.state.key_changes.forgotten >= 1  # the bus did it, not the cache's age
        for live in (first, second):
            assert (await live.http.get("/api/status", headers=other)).status_code == 200


@pytest.mark.skipif(not REDIS_URL, reason="DSA110_TEST_REDIS_URL not set")
async def test_a_key_revoked_from_the_command_line_is_refused_by_running_servers(
    empty_db_url: str, tmp_path: Path
) -> None:
    async with _two_servers(empty_db_url, tmp_path) as (first, second, shared):
        doomed = await key_headers(first.engine, Role.OPERATOR, "night-ops")
        for live in (first, second):
            assert (await live.http.get("/api/status", headers=doomed)).status_code == 200
        args = argparse.Namespace(action="revoke", name="night-ops", role=None)
        assert await run_keys(args, shared) == 0
        for live in (first, second):
            await _refused_within(live, doomed, DELIVERY_S)


class _OpenStream:
    ended = False

    def end(self) -> None:
        self.ended = True


async def test_after_a_resync_the_open_connections_of_keys_revoked_meanwhile_are_ended(
    empty_db_url: str, tmp_path: Path
) -> None:
    # The revocation's event was lost (the bus was down): only the resync's check can tell
    # the connections open with the key, which never ask again.
    async with running(_settings(empty_db_url, tmp_path)) as live:
        await key_headers(live.engine, Role.VIEWER, "lost-event")
        await key_headers(live.engine, Role.VIEWER, "kept")
        rows = {info.name: info for info in await keys.list_keys(live.engine)}
        authenticator = live.app.state.authenticator
        doomed, kept = _OpenStream(), _OpenStream()
        authenticator.streams.add(rows["lost-event"].prefix, doomed)
        authenticator.streams.add(rows["kept"].prefix, kept)
        await keys.revoke_key(live.engine, "lost-event")  # no announce: as if its event was lost
        assert not doomed.ended
        await live.app.state.key_changes.recheck_open_streams()
        assert doomed.ended and not kept.ended
