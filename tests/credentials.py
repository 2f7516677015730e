"""Credentials for tests: real API keys in the test database, and a trusted in-process identity."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from dsa110.auth.identity import Identity, Role
from dsa110.auth.keys import create_key
from dsa110.db.engine import create_engine

TEST_ADMIN = Identity("key", "key:test-admin", Role.ADMIN, "127.0.0.1")
"""What in-process graph tests run as (they exercise the graph, not its access rules)."""


async def key_headers(database: AsyncEngine | str, role: Role, name: str | None = None) -> dict[str, str]:
    """``Authorization`` headers of a new key with ``role`` in ``database`` (an engine or a URL)."""
    engine = create_engine(database) if isinstance(database, str) else database
    try:
        made = await create_key(engine, name or f"test-{role}-{uuid.uuid4().hex[:8]}", role)
    finally:
        if isinstance(database, str):
            await engine.dispose()
    return {"Authorization": f"Bearer {made.secret}"}
