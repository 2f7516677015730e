"""Killed mid-delivery, restarted: the alert reaches the receiver exactly once (by its idempotency key).

A real server process delivers to a real receiver that holds the request open; the test
kills the server (SIGKILL: no clean shutdown, the attempt is never recorded), releases
the receiver, starts a new server on the same database, and waits. The outbox row,
claimed by the dead process, is retried once its lease runs out, with the same
``webhook-id``: the receiver has seen two requests and keeps one alert.
"""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert, select

from dsa110.auth.identity import Role
from dsa110.db.engine import create_engine
from dsa110.db.tables import alerts, webhook_outbox
from tests.credentials import key_headers
from tests.live.conftest import WAIT_S, insert_candidate, insert_source
from tests.live.servers import server_process
from tests.waiting import eventually
from tests.webhooks.receiver import receiving

ENV = {
    "DSA110_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
    "DSA110_WEBHOOK_POLL_S": "0.2",
    "DSA110_WEBHOOK_TIMEOUT_S": "2",  # the claim lease is three times this
}
CREATE = """mutation($url: String!) {
  createWebhookSubscription(name: "transients", url: $url, eventKinds: [ESE_CANDIDATE], minSignificance: 5)
  { secret subscription { subscriptionId urlOrigin } }
}"""


async def test_an_alert_survives_a_crash_mid_delivery_and_arrives_once(
    empty_db_url: str, tmp_path: Path
) -> None:
    engine = create_engine(empty_db_url)
    try:
        admin = await key_headers(engine, Role.ADMIN)
        async with engine.begin() as conn:
            source = await insert_source(conn)
        async with receiving(script=["hang"]) as receiver:
            async with server_process(empty_db_url, "memory://", tmp_path, extra_env=ENV) as (base, process):
                async with httpx.AsyncClient(base_url=base, headers=admin) as http:
                    made = await http.post(
                        "/graphql", json={"query": CREATE, "variables": {"url": receiver.url}}
                    )
                body = made.json()["data"]["createWebhookSubscription"]
                receiver.secret = body["secret"]
                assert body["subscription"]["urlOrigin"].startswith("http://127.0.0.1:")
                now = datetime.now(UTC)
                async with engine.begin() as conn:
                    candidate = await insert_candidate(conn, source, significance=7.0, when=now)
                    alert_pk = (
                        await conn.execute(
                            insert(alerts)
                            .values(
                                source_pk=source,
                                candidate_pk=candidate,
                                alert_type="ese_candidate",
                                severity="critical",
                                message="ESE candidate at 7 sigma",
                                triggered_at=now,
                            )
                            .returning(alerts.c.id)
                        )
                    ).scalar_one()
                await asyncio.wait_for(receiver.arrived.wait(), WAIT_S)  # the delivery is in flight...
                os.killpg(process.pid, signal.SIGKILL)  # ...and the server dies under it
                await process.wait()
            receiver.release()
            async with engine.connect() as conn:
                state = (await conn.execute(select(webhook_outbox.c.state))).scalar_one()
            assert state == "pending"  # not lost, not marked delivered
            async with server_process(empty_db_url, "memory://", tmp_path, extra_env=ENV):

                async def delivered() -> bool:
                    async with engine.connect() as conn:
                        return (
                            await conn.execute(select(webhook_outbox.c.state))
                        ).scalar_one() == "delivered"

                await eventually(delivered, 4 * WAIT_S)
        assert len(receiver.raw) == 2 and all(r.verified for r in receiver.raw)
        assert {r.headers["webhook-id"] for r in receiver.raw} == {f"alert:{alert_pk}"}
        assert list(receiver.unique) == [f"alert:{alert_pk}"]  # exactly once, by the idempotency key
        assert receiver.unique[f"alert:{alert_pk}"].json["data"]["significance"] == 7.0
    finally:
        await engine.dispose()
