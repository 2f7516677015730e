"""The per-minute budget is charged once a request is let in to run (``server.budget``): a
request refused by the per-client limit (429 ``TOO_MANY_CONCURRENT_REQUESTS``) did no work
and costs nothing of it, with the in-process counters and with the ones shared through
Redis alike.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from dsa110.settings import Settings
from tests.databases import REDIS_URL
from tests.server.held import SMALL, Held, app_maker, client, graph_code


@pytest.fixture
def settings(empty_db_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0)


@pytest.fixture
async def app_factory() -> AsyncIterator[Any]:
    async with app_maker() as make:
        yield make


def _limiter_kinds() -> list[object]:
    redis = pytest.mark.skipif(not REDIS_URL, reason="DSA110_TEST_REDIS_URL not set")
    return ["memory", pytest.param("redis", marks=redis)]


@pytest.mark.parametrize("limiter", _limiter_kinds())
async def test_refused_requests_cost_nothing_of_the_budget(
    settings: Settings, app_factory: Any, limiter: str
) -> None:
    shared = (
        {"events_url": REDIS_URL, "events_namespace": f"t{uuid.uuid4().hex[:10]}"}
        if limiter == "redis"
        else {}
    )
    app = app_factory(
        settings,
        anonymous_rate_limit_per_minute=3,
        max_concurrent_requests_per_client=1,
        **shared,
    )
    # A window far longer than the test: no turn of the minute refills a budget under it.
    app.state.rate_limiter.window_s = 3600.0
    held = Held(app, "10.0.3.1")  # address A: its one request in flight
    await asyncio.wait_for(held.ready.wait(), 10)
    async with client(app, "10.0.3.1") as a:
        for _ in range(5):
            too_many = await a.post("/graphql", json={"query": SMALL})
            assert too_many.status_code == 429 and graph_code(too_many) == "TOO_MANY_CONCURRENT_REQUESTS"
        assert await held.end() == 200
        # A spent one of its 3 (the held request): the refusals cost nothing.
        a_answers = [(await a.post("/graphql", json={"query": SMALL})).status_code for _ in range(3)]
        over = await a.get("/api/status")
    assert a_answers == [200, 200, 429]
    assert over.json()["code"] == "RATE_LIMITED"  # the budget itself still holds
