"""dataProductUpdates: each lifecycle step (registered, finalized, publishing, published, a
failed publish) reaches subscribers through the bus, through graph mutations as through REST."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from dsa110.auth.identity import Role
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import TransportWs, running
from tests.waiting import eventually

SUBSCRIBE = (
    "subscription($ids: [String!]) { dataProductUpdates(dataIds: $ids) { dataId status publishAttempts } }"
)
REGISTER = """mutation($id: String!, $path: String!) {
  registerDataProduct(dataId: $id, type: MS, stagePath: $path) { dataId } }"""


async def test_lifecycle_steps_are_pushed(live_settings: Settings) -> None:
    ms = live_settings.staging_dir / "ms" / "a.ms"
    ms.mkdir(parents=True)
    (ms / "table.dat").write_bytes(b"x")
    async with running(live_settings) as live, live.ws() as ws:
        client = TransportWs(ws)
        await client.init()
        await client.subscribe("s", SUBSCRIBE, {"ids": [str(ms), "/no/such.ms"]})
        await eventually(lambda: live.app.state.live.subscriber_count == 1)
        graph = live.http
        graph.headers.update(await key_headers(live.engine, Role.OPERATOR, "night-ops"))
        reply = await graph.post(
            "/graphql", json={"query": REGISTER, "variables": {"id": str(ms), "path": str(ms)}}
        )
        assert reply.json()["data"]["registerDataProduct"]["dataId"] == str(ms)
        assert (await client.next_data("s"))["dataProductUpdates"]["status"] == "STAGING"
        finalized = await graph.post(
            f"/api/data/{quote(str(ms), safe='')}/finalize", json={"validation_status_body": "validated"}
        )
        assert finalized.status_code == 200 and finalized.json()["auto_published"]
        assert finalized.json()["finalized_by"] == finalized.json()["published_by"] == "key:night-ops"
        # finalized, claimed, moved: events that arrive together are answered once, with the
        # product as it then is, so the last message says PUBLISHED.
        seen = [(await client.next_data("s"))["dataProductUpdates"]["status"]]
        while seen[-1] != "PUBLISHED" and len(seen) < 3:
            seen.append((await client.next_data("s"))["dataProductUpdates"]["status"])
        assert seen[-1] == "PUBLISHED"
        assert Path(finalized.json()["published_path"]).is_dir()  # noqa: ASYNC240
        missing = live_settings.staging_dir / "ms" / "gone.ms"
        await graph.post(
            "/graphql", json={"query": REGISTER, "variables": {"id": "/no/such.ms", "path": str(missing)}}
        )
        assert (await client.next_data("s"))["dataProductUpdates"]["dataId"] == "/no/such.ms"
        failed = await graph.post(f"/api/data/{quote('/no/such.ms', safe='')}/publish")
        assert failed.status_code == 409
        update = (await client.next_data("s"))["dataProductUpdates"]
        while update["publishAttempts"] == 0:
            update = (await client.next_data("s"))["dataProductUpdates"]
        assert update == {"dataId": "/no/such.ms", "status": "STAGING", "publishAttempts": 1}
