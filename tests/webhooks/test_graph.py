"""Managing webhooks through the graph, and the server's own dispatcher delivering a test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dsa110.auth.identity import Role
from dsa110.settings import Settings
from tests.credentials import key_headers
from tests.live.conftest import WAIT_S, running
from tests.waiting import eventually
from tests.webhooks.receiver import receiving

CREATE = """mutation($name: String!, $url: String!, $kinds: [WebhookEventKind!]!, $min: Float, $fmt: WebhookFormat!,
                  $fap: Float) {
  createWebhookSubscription(name: $name, url: $url, eventKinds: $kinds, minSignificance: $min, format: $fmt,
                            maxFalseAlarm: $fap) {
    secret subscription {
      subscriptionId name urlOrigin eventKinds minSignificance maxFalseAlarm format enabled createdBy
    }
  }
}"""
DELIVERIES = """query($s: Int) { webhookDeliveries(subscriptionId: $s) {
  deliveryId eventKind eventKey state attempts attemptLog { attempt outcome statusCode } } }"""


def code(body: dict[str, Any]) -> str | None:
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


async def test_create_list_test_update_delete(empty_db_url: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=empty_db_url,
        metrics_interval_s=0,
        webhook_poll_s=0.2,
        webhook_allow_hosts=("127.0.0.1",),
    )
    async with receiving() as receiver, running(settings) as live:
        admin = await key_headers(live.engine, Role.ADMIN, "admin-key")

        async def graph(query: str, **variables: Any) -> dict[str, Any]:
            response = await live.http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=admin
            )
            return response.json()  # type: ignore[no-any-return]

        made = await graph(
            CREATE,
            name="transients",
            url=f"{receiver.url}?token=s3cret",
            kinds=["ESE_CANDIDATE"],
            min=5.0,
            fmt="SLACK",
            fap=0.002,
        )
        created = made["data"]["createWebhookSubscription"]
        receiver.secret = created["secret"]
        assert created["secret"].startswith("whsec_")
        subscription = created["subscription"]
        assert subscription["urlOrigin"] == receiver.url.rsplit("/", 1)[0]  # no path, no token
        assert subscription["createdBy"] == "key:admin-key" and subscription["format"] == "SLACK"
        assert subscription["maxFalseAlarm"] == 0.002
        listed = (await graph("{ webhookSubscriptions { name eventKinds enabled } }"))["data"]
        assert listed == {
            "webhookSubscriptions": [{"name": "transients", "eventKinds": ["ESE_CANDIDATE"], "enabled": True}]
        }
        assert "secret" not in str(listed)

        pk = subscription["subscriptionId"]
        queued = await graph(
            "mutation($s: Int!) { testWebhookSubscription(subscriptionId: $s) { eventKind state } }", s=pk
        )
        assert queued["data"]["testWebhookSubscription"] == {"eventKind": "test", "state": "PENDING"}
        await eventually(
            lambda: len(receiver.unique) == 1, WAIT_S
        )  # the server's dispatcher, woken by the bus
        (test,) = receiver.unique.values()
        assert test.json["text"].startswith(":white_check_mark: Test delivery")

        async def delivered() -> bool:
            rows = (await graph(DELIVERIES, s=pk))["data"]["webhookDeliveries"]
            return bool(rows) and rows[0]["state"] == "DELIVERED"

        await eventually(delivered, WAIT_S)

        paused = await graph(
            "mutation($s: Int!) { updateWebhookSubscription(subscriptionId: $s, enabled: false, minSignificance: 8)"
            " { enabled minSignificance } }",
            s=pk,
        )
        assert paused["data"]["updateWebhookSubscription"] == {"enabled": False, "minSignificance": 8.0}
        ceiling = (
            "mutation($s: Int!, $fap: Float, $clear: Boolean!) { updateWebhookSubscription("
            "subscriptionId: $s, maxFalseAlarm: $fap, clearMaxFalseAlarm: $clear) { maxFalseAlarm minSignificance } }"
        )
        unchanged = await graph(ceiling, s=pk, fap=None, clear=False)
        assert unchanged["data"]["updateWebhookSubscription"] == {
            "maxFalseAlarm": 0.002,
            "minSignificance": 8.0,
        }
        raised = await graph(ceiling, s=pk, fap=0.01, clear=False)
        assert raised["data"]["updateWebhookSubscription"]["maxFalseAlarm"] == 0.01
        cleared = await graph(ceiling, s=pk, fap=None, clear=True)
        assert cleared["data"]["updateWebhookSubscription"] == {"maxFalseAlarm": None, "minSignificance": 8.0}
        assert code(await graph(ceiling, s=pk, fap=1.5, clear=False)) == "BAD_USER_INPUT"
        assert (await graph("mutation($s: Int!) { deleteWebhookSubscription(subscriptionId: $s) }", s=pk))[
            "data"
        ] == {"deleteWebhookSubscription": True}
        gone = await graph("mutation($s: Int!) { deleteWebhookSubscription(subscriptionId: $s) }", s=pk)
        assert code(gone) == "NOT_FOUND"


async def test_hostile_webhook_input_is_refused_and_nothing_is_stored(
    empty_db_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0)
    async with running(settings) as live:
        admin = await key_headers(live.engine, Role.ADMIN)

        async def create(**overrides: Any) -> dict[str, Any]:
            variables = {
                "name": "hook",
                "url": "https://hooks.example.org/x",
                "kinds": ["ESE_CANDIDATE"],
                "min": None,
                "fmt": "STANDARD",
                "fap": None,
            }
            response = await live.http.post(
                "/graphql", json={"query": CREATE, "variables": {**variables, **overrides}}, headers=admin
            )
            return response.json()  # type: ignore[no-any-return]

        for url in (
            "http://169.254.169.254/latest/meta-data/iam",
            "http://127.0.0.1:6379/",
            "http://localhost/x",
            "http://[::1]/x",
            "file:///etc/passwd",
            "gopher://x",
            "https://user:pw@hooks.example.org/x",
            "https://hooks.example.org/" + "x" * 5000,
        ):
            assert code(await create(url=url)) == "BAD_URL", url
        assert code(await create(name="../../etc/passwd")) == "BAD_NAME"
        assert code(await create(kinds=[])) == "BAD_USER_INPUT"
        assert code(await create(min=-1.0)) == "BAD_USER_INPUT"
        for fap in (-0.001, 1.5, 1e308):
            assert code(await create(fap=fap)) == "BAD_USER_INPUT", fap
        assert code(await create(kinds=["NOPE"])) == "BAD_USER_INPUT"  # not a WebhookEventKind
        listed = await live.http.post(
            "/graphql", json={"query": "{ webhookSubscriptions { name } }"}, headers=admin
        )
        assert listed.json()["data"] == {"webhookSubscriptions": []}
        assert "errors" not in await create()
        assert code(await create()) == "CONFLICT"


async def test_a_test_delivery_racing_the_subscriptions_delete_is_not_found(
    empty_db_url: str, tmp_path: Path, monkeypatch: Any
) -> None:
    """Another admin's delete may land between the test's steps: before its outbox row goes in
    (the row's subscription is gone: a foreign-key refusal) or after (the delete takes the row
    with it). Either way NOT_FOUND, never a 500, and no outbox row left for it."""
    from dsa110.webhooks import outbox

    settings = Settings(data_dir=tmp_path, database_url=empty_db_url, metrics_interval_s=0, webhook_poll_s=0)
    real_enqueue, real_deliveries = outbox.enqueue, outbox.deliveries
    async with running(settings) as live:
        admin = await key_headers(live.engine, Role.ADMIN, "admin-key")

        async def graph(query: str, **variables: Any) -> dict[str, Any]:
            response = await live.http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=admin
            )
            return response.json()  # type: ignore[no-any-return]

        async def made(name: str) -> int:
            body = await graph(CREATE, name=name, url="https://hooks.example.org/x", kinds=["ESE_CANDIDATE"],
                               min=5.0, fmt="STANDARD", fap=None)  # fmt: skip
            return int(body["data"]["createWebhookSubscription"]["subscription"]["subscriptionId"])

        async def delete_then_enqueue(engine: Any, events: Any, rows: Any) -> int:
            await outbox.delete_subscription(engine, rows[0]["id"])
            return await real_enqueue(engine, events, rows)

        async def delete_then_list(engine: Any, pk: int, *args: Any) -> Any:
            await outbox.delete_subscription(engine, pk)
            return await real_deliveries(engine, pk, *args)

        test = "mutation($s: Int!) { testWebhookSubscription(subscriptionId: $s) { state } }"
        for name, patch in (
            ("before", ("enqueue", delete_then_enqueue)),
            ("after", ("deliveries", delete_then_list)),
        ):
            pk = await made(name)
            with monkeypatch.context() as m:
                m.setattr(outbox, *patch)
                answer = await graph(test, s=pk)
            assert code(answer) == "NOT_FOUND", answer
            assert (await graph(DELIVERIES, s=pk))["data"]["webhookDeliveries"] == []
        assert code(await graph(test, s=987654)) == "NOT_FOUND"
