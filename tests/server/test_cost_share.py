"""A client's share of the work in flight (``schema.in_flight``) is its own bound: it holds
when the process has no budget of its own (``DSA110_MAX_COST_IN_FLIGHT=0``).

Before, the guards counted nothing unless the process's budget was set, so a deployment
that set only ``DSA110_MAX_COST_IN_FLIGHT_PER_CLIENT`` had no share at all.
"""

from __future__ import annotations

from pathlib import Path

from dsa110.auth.identity import Identity, Role
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import running

COSTLY = "{ sources(first: 20) { nodes { sourceId } } }"  # cost 21
SHARE = 21


async def test_a_clients_share_holds_without_a_process_budget(empty_db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=empty_db_url,
        metrics_interval_s=0,
        job_slots=0,
        max_cost_in_flight=0,
        max_cost_in_flight_per_client=SHARE,
    )
    async with running(settings) as live:
        in_flight = live.app.state.schema.in_flight
        headers = await key_headers(live.engine, Role.VIEWER, name="share")
        client = Identity("key", "key:share", Role.VIEWER).rate_key
        assert in_flight.admit(SHARE, client)  # stands for an operation of that client's, running
        try:
            own = await live.http.post("/graphql", json={"query": COSTLY}, headers=headers)
            other = await live.http.post("/graphql", json={"query": COSTLY})
        finally:
            in_flight.release(SHARE, client)
        again = await live.http.post("/graphql", json={"query": COSTLY}, headers=headers)

    assert own.status_code == 503, own.text
    error = own.json()["errors"][0]
    assert error["extensions"]["code"] == "BUSY"
    assert error["extensions"]["details"]["client_limit"] == SHARE
    assert other.status_code == 200 and other.json() == {"data": {"sources": {"nodes": []}}}
    assert again.status_code == 200, again.text
    assert in_flight.running == 0 and in_flight.by_client == {}
